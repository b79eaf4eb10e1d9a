"""Only the rows that changed are converted: the change test finds them, the canvas converts
and copies out just those, and the picture is the one a full conversion makes."""

from __future__ import annotations

import numpy as np
import pytest
from record_helpers import glyph, solid

from localvideo.capture.base import Frame
from localvideo.record.canvas import Canvas
from localvideo.record.filter import ChangeTest


def _frame(px: np.ndarray) -> Frame:
    return Frame(pixels=px, ts=0.0, app="XTerm", title="t")


def _text(w: int, h: int, seed: int) -> np.ndarray:
    """A page of dark 'glyphs' on white, like a terminal full of text."""
    px = solid(w, h)
    rng = np.random.default_rng(seed)
    for y in range(4, h - 12, 14):
        for x in rng.choice(np.arange(4, w - 8, 7), size=max(1, w // 20), replace=False):
            px = glyph(px, int(x), y)
    return px


def _planes(c: Canvas) -> list[np.ndarray]:
    vf = c.video_frame()
    return [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy()
            for p in vf.planes]


@pytest.mark.parametrize("size", [(640, 360), (641, 359)])    # xterm sizes are often odd
@pytest.mark.parametrize("rows", [(100, 109), (0, 9), (350, 359), (41, 42), (60, 70), (0, 359)])
def test_band_draw_matches_a_full_conversion(size: tuple[int, int],
                                             rows: tuple[int, int]) -> None:
    w, h = size
    a = _text(w, h, 1)
    b = a.copy()
    y0, y1 = rows[0], min(rows[1], h)
    b[y0:y1, 10:200, :3] = 0                       # a "typed" stretch of one line
    change = ChangeTest()
    assert change.changed(a, ("r",))
    assert change.changed(b, ("r",)) and change.band == (y0, y1)
    assert not change.changed(b.copy(), ("r",))     # the remembered copy is the new frame

    canvas = Canvas(700, 400)
    canvas.draw(_frame(a))
    _planes(canvas)                                 # the encoder took the first picture
    canvas.draw(_frame(b), band=change.band)
    by_band = _planes(canvas)
    full = Canvas(700, 400)
    full.draw(_frame(b))
    whole = _planes(full)
    assert np.array_equal(by_band[0], whole[0]), "luma differs from a full conversion"
    for got, want in zip(by_band[1:], whole[1:], strict=True):
        # Chroma is filtered across a row or two; the band's margin keeps it within 1.
        assert int(np.abs(got.astype(int) - want.astype(int)).max()) <= 1


@pytest.mark.parametrize("h", [1080, 1081, 63, 1])
def test_band_spans_changes_far_apart(h: int) -> None:
    """Two changes in strips far apart (a clock at the top, a prompt at the bottom): the band
    runs from the first changed row to the last, wherever the 64-row strips fall."""
    a = solid(40, h)
    change = ChangeTest()
    assert change.changed(a, ("r",))
    b = a.copy()
    b[0, 3, :3] = 0
    b[h - 1, 39, :3] = 0
    assert change.changed(b, ("r",)) and change.band == (0, h)
    c = b.copy()
    c[h // 3, 0, 0] ^= 1
    c[(2 * h) // 3, 5, 1] ^= 1
    assert change.changed(c, ("r",)) and change.band == (h // 3, (2 * h) // 3 + 1)


def test_band_is_none_when_the_window_changes() -> None:
    a, b = _text(320, 200, 2), _text(320, 200, 3)
    change = ChangeTest()
    change.changed(a, ("r1",))
    assert change.changed(b, ("r2",)) and change.band is None   # another rect: all of it
    assert change.changed(_text(322, 200, 3), ("r2",)) and change.band is None  # new size
    c = b.copy()
    c[150:152] = 0
    assert change.changed(c, ("r2",)) is True
    change.reset()
    assert change.band is None and change.changed(c, ("r2",)) and change.band is None


def test_non_contiguous_pixels_still_compare() -> None:
    big = _text(400, 300, 4)
    view = big[:, 10:330]                           # a crop: not C-contiguous
    change = ChangeTest()
    assert change.changed(view, ())
    assert not change.changed(big[:, 10:330].copy(), ())
    other = big.copy()
    other[5, 20, 0] ^= 1
    assert change.changed(other[:, 10:330], ()) and change.band == (5, 6)


def test_band_is_exactly_the_rows_that_differ() -> None:
    # The rows whose hashes differ must be the rows a plain (a != b) finds, for every shape
    # of change: none, one bit of one pixel, one line, the first or last row, everywhere;
    # on even and odd widths.
    rng = np.random.default_rng(7)
    for w, h in ((640, 360), (641, 359), (1920, 1080)):
        a = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        cases = [None, (0, 1), (h - 1, h), (63, 65), (64, 128), (0, h), (h // 2, h // 2 + 16)]
        for rows in cases + [tuple(sorted(rng.integers(0, h, 2))) for _ in range(20)]:
            b = a.copy()
            if rows is not None and rows[1] > rows[0]:
                x = int(rng.integers(0, w))
                b[rows[0]:rows[1], x, int(rng.integers(0, 4))] ^= 0x80
            differ = np.flatnonzero((a != b).any(axis=(1, 2)))
            change = ChangeTest()
            assert change.changed(a, ("r",))
            assert change.changed(b, ("r",)) is (differ.size > 0), (w, h, rows)
            if differ.size:
                assert change.band == (int(differ[0]), int(differ[-1]) + 1), (w, h, rows)


def test_the_last_frame_is_kept_as_row_hashes_not_pixels() -> None:
    """What the change test holds between frames: 8 bytes a row, not a copy of the frame
    (8 MB at 1080p, 33 MB at 4K) — unless a noise threshold needs the pixels."""
    px = _text(1920, 1080, 5)
    change = ChangeTest()
    change.changed(px, ())
    assert change._last is None and change._rows is not None
    assert change._rows.nbytes == 1080 * 8
    noisy = ChangeTest(threshold=30)
    noisy.changed(px, ())
    assert noisy._last is not None and not np.shares_memory(noisy._last, px)
