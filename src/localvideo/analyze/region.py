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

What is read goes through :class:`WordCache`: a screen draws the same words in the same
font over and over (a page turned in ``less`` shows new lines of old words), and a word
drawn again is the same pixels. Each run of ink tesseract read is kept with what it read;
a run whose pixels match a kept one (each pixel within ``MATCH_DELTA``: encoder noise
stays under ~60, another glyph moves strokes by 150-250) takes its words, and only the
runs never seen are read — in place, the known ones painted over, all lines that hold one
stacked in one tesseract call. A frame mostly unknown is read whole, as before.

Measured on bench/analyze.py's maximized workload (docs/analyze.md): a page turned in
``less`` ~1.3 CPU-s instead of ~5, the analysis 15 % of a core instead of 31 %.
"""

from __future__ import annotations

import time
from collections import OrderedDict
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
INK_DELTA = 64        # gray levels from the background that make a pixel ink (for runs)
WORD_GAP = 0.6        # blank columns, in line heights, that end a run of ink: a space in
                      # a monospace font is wider, the gap inside a word ("r k") narrower
MATCH_DELTA = 96      # a pixel this far from a kept run's: another word
KNOWN_SHARE = 0.5     # below this share of the ink area known, read the frame whole
RUNS_BYTES = 8 << 20  # pixels of runs kept (a word of a 1080p terminal: ~500 bytes; a
                      # page adds ~100 words); past it the cache starts over
LINE_MARGIN = 8       # rows of background above and below each line on the sheet


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
    inked = _ink(after)
    words = _outside(how.kept.words, how.bands)
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
    return rows[_ink(after[rows]) | covered[rows]]


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


def _ink(rows: np.ndarray) -> np.ndarray:
    """Per row: whether it holds anything to read (not one flat colour)."""
    return np.ptp(rows, axis=1) > PIXEL_DELTA


def _inked(gray: np.ndarray) -> np.ndarray:
    return np.flatnonzero(_ink(gray))


def _outside(words: list[dict[str, Any]], bands: list[tuple[int, int]]
             ) -> list[dict[str, Any]]:
    """The words that no band touches (those are read again)."""
    return [w for w in words
            if not any(int(w["y"]) < b and int(w["y"]) + int(w["h"]) > a for a, b in bands)]


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
                 lang: str = "eng", cache: WordCache | None = None,
                 gray: np.ndarray | None = None) -> ocr.OcrResult:
    """The text of ``image``: the bands read now (through ``cache`` when given, with
    ``gray`` the image's gray pixels), the rest taken from ``last``."""
    started = time.perf_counter()
    words = _outside(last.words, bands)
    for a, b in bands:
        strip = image.crop((0, a, image.width, b))
        read = cache.read(strip, gray[a:b], lang) if cache is not None and gray is not None \
            else ocr.read_text(strip, lang)
        words += [{**w, "y": int(w["y"]) + a} for w in read.words]
    words.sort(key=lambda w: (int(w["y"]), int(w["x"])))
    ms = (time.perf_counter() - started) * 1000
    return ocr.OcrResult(text=ocr.words_text(words), words=words, ms=ms)


Run = tuple[int, int, int, int]        # x0, y0, x1, y1 of a run of ink, tight


def runs(gray: np.ndarray) -> list[Run]:
    """Runs of ink, line by line: the words (or groups of words) a reader would see."""
    bg = int(np.median(gray[::4, ::4]))
    ink = np.abs(gray.astype(np.int16) - bg) > INK_DELTA
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ink.any(axis=1).astype(np.int8), [0]])))
    out: list[Run] = []
    for y0, y1 in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        band = ink[y0:y1]
        xs = np.flatnonzero(band.any(axis=0))
        breaks = np.flatnonzero(np.diff(xs) > max(3, round(WORD_GAP * (y1 - y0))))
        starts = np.concatenate([xs[:1], xs[breaks + 1]]).tolist()
        ends = (np.concatenate([xs[breaks], xs[-1:]]) + 1).tolist()
        for a, b in zip(starts, ends, strict=True):
            r = np.flatnonzero(band[:, a:b].any(axis=1))
            out.append((a, y0 + int(r[0]), b, y0 + int(r[-1]) + 1))
    return out


def _inside(w: dict[str, Any], run: Run, slack: int = 3) -> bool:
    x0, y0, x1, y1 = run
    return (int(w["x"]) >= x0 - slack and int(w["x"]) + int(w["w"]) <= x1 + slack
            and int(w["y"]) >= y0 - slack and int(w["y"]) + int(w["h"]) <= y1 + slack)


class WordCache:
    """Runs of ink tesseract has read, by their pixels, with the words it read in them."""

    def __init__(self, limit: int = RUNS_BYTES) -> None:
        self.limit = limit
        self.bytes = 0         # what the kept runs take, stacks included
        # (h, w) → the runs of that size: their pixels stacked, and their words (x, y
        # relative to the run).
        self._runs: OrderedDict[tuple[int, int],
                                tuple[list[np.ndarray], list[list[dict[str, Any]]]]] = OrderedDict()
        self._stacks: dict[tuple[int, int], np.ndarray] = {}

    @property
    def size(self) -> int:
        """Runs kept."""
        return sum(len(pix) for pix, _ in self._runs.values())

    def lookup(self, pixels: np.ndarray) -> list[dict[str, Any]] | None:
        """The words of a kept run with these pixels (each within MATCH_DELTA), or None."""
        shape = (int(pixels.shape[0]), int(pixels.shape[1]))
        kept = self._runs.get(shape)
        if kept is None:
            return None
        stack = self._stacks.get(shape)
        if stack is None:
            stack = self._stacks[shape] = np.stack(kept[0])
        far = np.abs(stack.astype(np.int16) - pixels.astype(np.int16)) > MATCH_DELTA
        ok = np.flatnonzero(~far.reshape(len(stack), -1).any(axis=1))
        return kept[1][int(ok[0])] if ok.size else None

    def learn(self, gray: np.ndarray, found: list[Run], words: list[dict[str, Any]]) -> None:
        """Keep each run whose words lie wholly inside it (none cut by its edges)."""
        rows: dict[int, list[dict[str, Any]]] = {}     # words by 32-row stretch they touch
        for w in words:
            for i in range(int(w["y"]) // 32, (int(w["y"]) + int(w["h"])) // 32 + 1):
                rows.setdefault(i, []).append(w)
        for run in found:
            x0, y0, x1, y1 = run
            near = {id(w): w for i in range(y0 // 32, y1 // 32 + 1) for w in rows.get(i, [])}
            touching = [w for w in near.values() if int(w["x"]) < x1
                        and int(w["x"]) + int(w["w"]) > x0 and int(w["y"]) < y1
                        and int(w["y"]) + int(w["h"]) > y0]
            if not touching or not all(_inside(w, run) for w in touching):
                continue
            pixels = gray[y0:y1, x0:x1]
            if self.lookup(pixels) is not None:
                continue
            if self.bytes + 2 * pixels.size > self.limit:     # (the pixels, and in a stack)
                self._runs.clear()
                self._stacks.clear()
                self.bytes = 0
            shape = (y1 - y0, x1 - x0)
            pix, texts = self._runs.setdefault(shape, ([], []))
            pix.append(pixels.copy())
            texts.append([{**w, "x": int(w["x"]) - x0, "y": int(w["y"]) - y0}
                          for w in sorted(touching, key=lambda w: int(w["x"]))])
            self._stacks.pop(shape, None)
            self.bytes += 2 * pixels.size

    def read(self, image: Image.Image, gray: np.ndarray, lang: str = "eng") -> ocr.OcrResult:
        """The text of ``image`` (``gray``: its gray pixels): known runs from the cache, the
        others read; mostly unknown: read whole."""
        started = time.perf_counter()
        found = runs(gray)
        known: list[dict[str, Any]] = []
        unknown: list[Run] = []
        area = known_area = 0
        for run in found:
            x0, y0, x1, y1 = run
            area += (x1 - x0) * (y1 - y0)
            hit = self.lookup(gray[y0:y1, x0:x1])
            if hit is None:
                unknown.append(run)
            else:
                known_area += (x1 - x0) * (y1 - y0)
                known += [{**w, "x": int(w["x"]) + x0, "y": int(w["y"]) + y0} for w in hit]
        if not area or known_area < KNOWN_SHARE * area:
            whole = ocr.read_text(image, lang)
            self.learn(gray, found, whole.words)
            return whole
        new = self._read_unknown(image, unknown, found, lang)
        self.learn(gray, unknown, new)
        words = sorted(known + new, key=lambda w: (int(w["y"]), int(w["x"])))
        return ocr.OcrResult(text=ocr.words_text(words), words=words,
                             ms=(time.perf_counter() - started) * 1000)

    @staticmethod
    def _read_unknown(image: Image.Image, unknown: list[Run], found: list[Run], lang: str
                      ) -> list[dict[str, Any]]:
        """The unknown runs where they are, each with its neighbours on the line for context,
        the other runs painted over with the background, the lines that hold one stacked on
        one sheet: one tesseract call that sees them at their own scale and spacing.

        Read alone, a number lost its punctuation ("44." read "44,", "155." "155);"); with
        the words beside it, as in a whole read, it did not. Only the unknown runs' words
        are taken from this read."""
        if not unknown:
            return []
        wanted = set(unknown)
        lines: list[list[Run]] = []
        for run in sorted(found, key=lambda r: (r[1], r[0])):
            if lines and run[1] < max(r[3] for r in lines[-1]) \
                    and run[3] > min(r[1] for r in lines[-1]):
                lines[-1].append(run)
            else:
                lines.append([run])
        arr = np.asarray(image.convert("RGB"))
        bg = np.median(arr[::8, ::8].reshape(-1, 3), axis=0).astype(np.uint8)
        strips: list[np.ndarray] = []
        places: list[tuple[int, int, int, list[Run]]] = []   # sheet y, window y, height, runs
        at = 0
        for line in lines:
            line.sort()
            mine = [i for i, r in enumerate(line) if r in wanted]
            if not mine:
                continue
            shown = sorted({j for i in mine for j in (i - 1, i, i + 1) if 0 <= j < len(line)})
            top = max(0, min(line[j][1] for j in shown) - LINE_MARGIN)
            bottom = min(arr.shape[0], max(line[j][3] for j in shown) + LINE_MARGIN)
            strip = np.empty((bottom - top, arr.shape[1], 3), np.uint8)
            strip[:] = bg
            for j in shown:
                x0, y0, x1, y1 = line[j]
                strip[y0 - top:y1 - top, x0:x1] = arr[y0:y1, x0:x1]
            strips.append(strip)
            places.append((at, top, bottom - top, [line[i] for i in mine]))
            at += bottom - top
        read = ocr.read_text(Image.fromarray(np.concatenate(strips)), lang)
        out = []
        for w in read.words:
            middle = int(w["y"]) + int(w["h"]) / 2
            for sheet_y, top, height, runs_here in places:
                if sheet_y <= middle < sheet_y + height:
                    moved = {**w, "y": int(w["y"]) - sheet_y + top}
                    if any(_inside(moved, r) for r in runs_here):
                        out.append(moved)
                    break
        return out
