"""Read only what changed: OCR the rows of a key frame that differ from the last one read.

A maximized 1080p terminal costs tesseract about a second per key frame, and while someone
types, each cadence key frame differs from the last by a line or two. When the window is
the same and only bands of rows changed, only those bands are read; the words of the last
key frame outside them are kept, so the frame's text is whole, as if read entirely.

The same holds across window switches: the last read of each of the last few windows is
kept, so switching back to a page that did not change costs no OCR at all.

A scroll moves every line, so in place almost every row differs; but the new frame is then
the last one shifted by k rows, save the lines that came in (and perhaps a status line or a
prompt that stayed put). :func:`plan` finds k from the rows' mean gray levels, checks the
shift pixel by pixel, moves the last read's words by -k and reads only the rows that do not
match: a log scrolled by a few lines, a page scrolled with the wheel, ``less`` moved by
lines cost their new lines, not the page.

A band is widened to the full boxes of the words it touches (a glyph cut in half reads as
garbage), and when the bands cover most of the window (a page turned) the whole frame is
read as before.
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
# The same, between rows the encoder saw at other heights (a scroll): its ringing around
# glyphs differs there, by up to ~60 levels (libx264 at CRF 32, 1080p terminals), where a
# changed glyph moves its strokes by 150-250.
SHIFT_DELTA = 64
MARGIN = 3            # blank rows left around the ink of a band: tesseract wants a border
WINDOWS_KEPT = 4      # windows whose last read is kept (a 1080p one: 2 MB of gray pixels)
PROFILE_DELTA = 1.0   # mean gray levels two rows may differ by to vote for a shift
BLOCK = 64            # columns per block whose means must agree too
BLOCK_DELTA = 3.0     # mean gray levels two blocks may differ by (a digit moves ~5-10)
SHIFTS_TRIED = 3      # the best-voted shifts checked pixel by pixel
MIN_VOTES = 0.2       # share of a frame's inked rows that must agree on a shift


@dataclass
class LastRead:
    """The last key frame read in a window: its gray pixels and what OCR found on them."""

    app: str
    title: str
    gray: np.ndarray
    result: ocr.OcrResult


@dataclass
class Plan:
    """How to read a key frame from the last read of its window."""

    shift: int                      # rows the content moved up since (down: negative)
    bands: list[tuple[int, int]]    # row ranges [y0, y1) to read now
    kept: ocr.OcrResult             # the last read's words where they are now


def plan(before: np.ndarray, after: np.ndarray, last: ocr.OcrResult) -> Plan | None:
    """The cheapest way to read ``after`` (a gray crop of the window) given the last read
    ``last`` of ``before``: the rows that changed in place, or — when the content scrolled —
    the rows that are not the last frame shifted. None: read the whole frame."""
    if before.shape != after.shape or before.ndim != 2:
        return None
    h = after.shape[0]
    in_place = _worth_reading(_changed_rows(before, after), after, last.words)
    best: Plan | None = None
    if in_place.size <= MAX_SHARE * h:
        bands = _bands(in_place, h, last.words)
        if bands is not None:
            best = Plan(0, bands, last)
            if in_place.size == 0 or _rows_in(bands) <= 2 * PAD + JOIN_GAP + 40:
                return _trimmed(best, after)   # a line or two typed: no scroll beats that
    for k in _shifts(before, after):
        moved = _moved(last, k, h)
        rows = _worth_reading(_changed_rows(before, after, k), after, moved.words)
        if rows.size > MAX_SHARE * h or (best is not None and rows.size >= in_place.size):
            continue
        bands = _bands(rows, h, moved.words)
        if bands is not None and (best is None or _rows_in(bands) < _rows_in(best.bands)):
            best = Plan(k, bands, moved)
    return None if best is None else _trimmed(best, after)


def _trimmed(how: Plan, after: np.ndarray) -> Plan:
    """The plan with its bands cut to the rows that have ink now (plus a margin): the rows
    a line scrolled out of, or an erased line, hold nothing to read. The last read's words
    anywhere in the untrimmed bands are still dropped."""
    inked = np.ptp(after, axis=1) > PIXEL_DELTA
    words = [w for w in how.kept.words
             if not any(int(w["y"]) < b and int(w["y"]) + int(w["h"]) > a for a, b in how.bands)]
    bands = []
    for a, b in how.bands:
        ys = np.flatnonzero(inked[a:b])
        if ys.size:
            bands.append((max(a, a + int(ys[0]) - MARGIN), min(b, a + int(ys[-1]) + 1 + MARGIN)))
    return Plan(how.shift, bands, ocr.OcrResult(text=ocr.words_text(words), words=words))


def changed_bands(before: np.ndarray, after: np.ndarray,
                  words: list[dict[str, Any]]) -> list[tuple[int, int]] | None:
    """Row ranges [y0, y1) of ``after`` that differ from ``before`` (same-size gray crops),
    widened to whole words; [] when nothing changed; None when it is cheaper or safer to
    read the whole frame (another size, or most of it changed)."""
    if before.shape != after.shape or before.ndim != 2:
        return None
    rows = _changed_rows(before, after)
    if rows.size > MAX_SHARE * after.shape[0]:
        return None
    return _bands(rows, after.shape[0], words)


def _changed_rows(before: np.ndarray, after: np.ndarray, k: int = 0) -> np.ndarray:
    """Rows y of ``after`` that differ from row y + k of ``before`` (or have no such row)."""
    h = after.shape[0]
    if k >= 0:
        a, b, off = after[:h - k], before[k:], 0
    else:
        a, b, off = after[-k:], before[:h + k], -k
    moved = np.abs(b.astype(np.int16) - a.astype(np.int16)) > (SHIFT_DELTA if k else
                                                                 PIXEL_DELTA)
    rows = np.flatnonzero(moved.any(axis=1)) + off
    new = np.arange(h - k, h) if k > 0 else np.arange(0, -k)
    return np.union1d(rows, new) if new.size else rows


def _worth_reading(rows: np.ndarray, after: np.ndarray,
                   words: list[dict[str, Any]]) -> np.ndarray:
    """The changed rows that hold ink now or a word of the last read: a row that only lost
    the ink of a line scrolled away (the descenders above a log's top line) has nothing to
    read, and reading it would re-read the line it borders."""
    if rows.size == 0:
        return rows
    covered = np.zeros(after.shape[0], bool)
    for w in words:
        covered[max(0, int(w["y"])):max(0, int(w["y"]) + int(w["h"]))] = True
    return rows[(np.ptp(after[rows], axis=1) > PIXEL_DELTA) | covered[rows]]


def _shifts(before: np.ndarray, after: np.ndarray) -> list[int]:
    """The shifts k (after[y] ≈ before[y + k]) most rows with ink agree on, best first.

    Two rows vote for the shift between them when their mean gray levels agree over the
    whole row and over each block of ``BLOCK`` columns: a log's lines differ only in a
    number, which the whole row's mean hardly sees (it voted for every multiple of the line
    height). Blank rows, which match any shift, do not vote. The vote only proposes;
    :func:`_changed_rows` checks every pixel.
    """
    h = after.shape[0]
    ya, yb = _inked(after), _inked(before)
    if ya.size < 4 or yb.size < 4:
        return []
    fa, fb = _features(after[ya]), _features(before[yb])
    ia, ib = np.nonzero(np.abs(fa[:, :1] - fb[:, :1].T) <= PROFILE_DELTA)
    same = (np.abs(fa[ia] - fb[ib]) <= BLOCK_DELTA).all(axis=1)
    ia, ib = ia[same], ib[same]
    votes = np.bincount(yb[ib] - ya[ia] + h, minlength=2 * h)
    votes[h] = 0                                  # no shift is tried in place already
    top = np.argsort(votes)[::-1][:SHIFTS_TRIED]
    return [int(i) - h for i in top if votes[i] >= max(4, MIN_VOTES * ya.size)]


def _features(rows: np.ndarray) -> np.ndarray:
    """Per row: its mean gray level, then the means of its blocks of ``BLOCK`` columns."""
    n, w = rows.shape
    whole = rows.mean(axis=1, dtype=np.float32)[:, None]
    if w < 2 * BLOCK:
        return whole
    blocks = rows[:, :w - w % BLOCK].reshape(n, -1, BLOCK).mean(axis=2, dtype=np.float32)
    return np.concatenate([whole, blocks], axis=1)


def _inked(gray: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.ptp(gray, axis=1) > PIXEL_DELTA)


def _moved(last: ocr.OcrResult, k: int, h: int) -> ocr.OcrResult:
    """The last read's words moved up by ``k`` rows; those pushed off the window dropped."""
    words = [{**w, "y": int(w["y"]) - k} for w in last.words
             if int(w["y"]) - k >= 0 and int(w["y"]) + int(w["h"]) - k <= h]
    return ocr.OcrResult(text=ocr.words_text(words), words=words)


def _rows_in(bands: list[tuple[int, int]]) -> int:
    return sum(b - a for a, b in bands)


def _bands(rows: np.ndarray, h: int, words: list[dict[str, Any]]) -> list[tuple[int, int]] | None:
    """Changed rows as padded bands widened to the words they touch; None: most of it."""
    if rows.size == 0:
        return []
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
    if _rows_in(out) > MAX_SHARE * h:
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
