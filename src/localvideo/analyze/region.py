"""Read only what changed: OCR the rows of a key frame that differ from the last one read.

A maximized 1080p terminal costs tesseract about a second per key frame, and while someone
types, each cadence key frame differs from the last by a line or two. When the window is
the same and only bands of rows changed, only those bands are read; the words of the last
key frame outside them are kept, so the frame's text is whole, as if read entirely.

The same holds across window switches: the last read of each of the last few windows is
kept, so switching back to a page that did not change costs no OCR at all.

A band is widened to the full boxes of the words it touches (a glyph cut in half reads as
garbage), and when the bands cover most of the window (a page turned, a log scrolled)
the whole frame is read as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from . import ocr

PAD = 6               # rows around a change: the rest of a glyph's line above and below
JOIN_GAP = 12         # bands closer than this are read as one
MAX_SHARE = 0.5       # changed rows above this share of the height: read the whole frame
PIXEL_DELTA = 16      # gray levels a pixel must move to count (encoder noise stays below)
WINDOWS_KEPT = 4      # windows whose last read is kept (a 1080p one: 2 MB of gray pixels)


@dataclass
class LastRead:
    """The last key frame read in a window: its gray pixels and what OCR found on them."""

    app: str
    title: str
    gray: np.ndarray
    result: ocr.OcrResult


def changed_bands(before: np.ndarray, after: np.ndarray,
                  words: list[dict[str, Any]]) -> list[tuple[int, int]] | None:
    """Row ranges [y0, y1) of ``after`` that differ from ``before`` (same-size gray crops),
    widened to whole words; [] when nothing changed; None when it is cheaper or safer to
    read the whole frame (another size, or most of it changed)."""
    if before.shape != after.shape or before.ndim != 2:
        return None
    h = after.shape[0]
    moved = np.abs(before.astype(np.int16) - after.astype(np.int16)) > PIXEL_DELTA
    rows = np.flatnonzero(moved.any(axis=1))
    if rows.size == 0:
        return []
    if rows.size > MAX_SHARE * h:
        return None
    bands: list[list[int]] = []
    for y in rows.tolist():
        if bands and y - bands[-1][1] <= JOIN_GAP:
            bands[-1][1] = y + 1
        else:
            bands.append([y, y + 1])
    out = [(max(0, a - PAD), min(h, b + PAD)) for a, b in bands]
    # Widen to every old word a band touches, until nothing more is touched.
    grown = True
    while grown:
        grown = False
        for i, (a, b) in enumerate(out):
            for w in words:
                top, bottom = int(w["y"]), int(w["y"]) + int(w["h"])
                if top < b and bottom > a and (top < a or bottom > b):
                    a, b = min(a, max(0, top - 2)), max(b, min(h, bottom + 2))
                    grown = True
            out[i] = (a, b)
        out = _join(out)
    if sum(b - a for a, b in out) > MAX_SHARE * h:
        return None
    return out


def _join(bands: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(bands):
        if merged and a - merged[-1][1] <= JOIN_GAP:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def read_changed(image: Image.Image, last: ocr.OcrResult, bands: list[tuple[int, int]],
                 lang: str = "eng") -> ocr.OcrResult:
    """The text of ``image``: the bands read now, the rest taken from ``last``."""
    started = time.perf_counter()
    words = [w for w in last.words
             if not any(int(w["y"]) < b and int(w["y"]) + int(w["h"]) > a for a, b in bands)]
    for a, b in bands:
        strip = ocr.read_text(image.crop((0, a, image.width, b)), lang)
        words += [{**w, "y": int(w["y"]) + a} for w in strip.words]
    words.sort(key=lambda w: (int(w["y"]), int(w["x"])))
    ms = (time.perf_counter() - started) * 1000
    return ocr.OcrResult(text=ocr.words_text(words), words=words, ms=ms)
