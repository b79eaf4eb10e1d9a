"""The fixed per-chunk canvas a window is drawn onto: never stretched, never dropped.

A chunk's video has one size, but the active window changes size and position all the time.
The canvas keeps the chunk's size fixed (the display size, capped on the long side, even
dimensions for yuv420p) and draws the window at native pixel scale at the top-left corner;
the rest is a neutral padding. A window (or display) larger than the canvas is scaled down
uniformly to fit, never cropped, and the rectangle actually drawn is what the index stores.

How large a canvas: the display's size in pixels, capped on the long side by ``canvas_max``
(1920) — but never so far that text shrinks below the size it was designed to be read at,
its point size (``scale`` pixels per point: 2 on Retina, 1.5 on a Windows display at 150 %,
1 on a standard one). So only HiDPI pixels are ever scaled away: a Retina MacBook's 3024-px
window is drawn at 1920 (text at 1.27× its point size), a 4K monitor at 200 % at 1920, at
150 % at 2560, while a 2560-px or 3840-px monitor at 100 % gets a canvas its own size.
Measured (tests/record/test_canvas_big_windows.py, 13-px DejaVu Sans UI text, tesseract): on
the canvas alone all words read at 0.9×, one was lost at 0.85×, two at 0.75×, all at 0.5×;
through the encoder at the default quality one was lost already at 0.9× ("lantern" read as
"lantem"), none at 1×.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import media
from ..capture.base import Frame

# Padding and blank fill: a dark neutral grey in limited-range BT.601 (Y, U, V).
PAD_YUV = (40, 128, 128)
BLANK_YUV = (128, 128, 128)


# Rows converted again on each side of a changed band (see Canvas._draw_band).
BAND_MARGIN = 2

# swscale's threads (PyAV's default, 0, is one per CPU): a typed line's band is ~30 rows,
# and waking a thread pool for it cost more than the work — a 24-row 1080p band 0.20 ms of
# CPU with the pool, 0.12 ms on the calling thread; a whole frame the same CPU either way.
SWS_THREADS = 1

# The smallest size text may be drawn at, as a fraction of its point size (what the UI was
# designed to be read at): after encoding, tesseract lost words on 13-px UI text at 0.9×.
LEGIBLE = 1.0


def canvas_size(screen_w: int, screen_h: int, cap: int,
                scale: float = 1.0) -> tuple[int, int]:
    """The display size (pixels), scaled down uniformly so the long side is at most ``cap``
    — or only as far as keeps text at LEGIBLE × its point size (``scale`` = the display's
    pixels per point; 1 when the backend cannot tell) — with even dimensions."""
    w, h = max(2, int(screen_w)), max(2, int(screen_h))
    long_side = max(w, h)
    if cap > 0:
        cap = max(cap, math.ceil(long_side * min(1.0, LEGIBLE / max(float(scale or 1.0), 0.1))))
    if cap > 0 and long_side > cap:
        w = round(w * cap / long_side)
        h = round(h * cap / long_side)
    return max(2, w - w % 2), max(2, h - h % 2)


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


class Canvas:
    """yuv420p planes of one chunk's size; ``draw`` puts a frame on, ``video_frame`` reads out."""

    def __init__(self, width: int, height: int) -> None:
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"canvas must have positive even dimensions, got {width}x{height}")
        self.width = width
        self.height = height
        self.y = np.empty((height, width), np.uint8)
        self.u = np.empty((height // 2, width // 2), np.uint8)
        self.v = np.empty((height // 2, width // 2), np.uint8)
        self._drawn: Rect | None = None
        self._sws = media.Reformatter()
        self._sws_band = media.Reformatter()   # its own: band heights vary, the full size not
        self._out: media.VideoFrame | None = None
        self._dirty = True
        self._dirty_rows: tuple[int, int] | None = None   # None: all rows (when dirty)
        self.fill(PAD_YUV)

    def fill(self, yuv: tuple[int, int, int]) -> None:
        self.y.fill(yuv[0])
        self.u.fill(yuv[1])
        self.v.fill(yuv[2])
        self._drawn = None
        self._dirty = True
        self._dirty_rows = None

    def blank(self) -> Rect:
        """A neutral picture for an excluded window: nothing of it is drawn."""
        self.fill(BLANK_YUV)
        return Rect(0, 0, 0, 0)

    def layout(self, frame: Frame, fit: bool = False) -> tuple[Rect, int, int]:
        """Where ``frame`` goes: the drawn rect, and the source size to take from it.

        A frame larger than the canvas is scaled down uniformly, window or display (``fit``
        is kept for callers; cropping a window lost whatever was right of or below the cap:
        a maximized window on a monitor wider than the canvas, a Retina window). A frame that
        fits is drawn 1:1, never enlarged.
        """
        fw, fh = frame.size
        if fw > self.width or fh > self.height:
            s = min(self.width / fw, self.height / fh)
            w, h = max(1, int(fw * s)), max(1, int(fh * s))
            return Rect(0, 0, w, h), fw, fh
        w, h = min(fw, self.width), min(fh, self.height)
        return Rect(0, 0, w, h), w, h

    def draw(self, frame: Frame, fit: bool = False,
             band: tuple[int, int] | None = None) -> Rect:
        """Convert the frame's BGRA pixels to yuv420p and put them at the top-left.

        ``band``: only the frame's rows [y0, y1) differ from the last frame drawn here (the
        change test says which); when the window is drawn 1:1 where it was, only those
        rows are converted and copied (typing into a maximized window: one line, not a
        1080-row conversion at ~13 ms)."""
        rect, sw, sh = self.layout(frame, fit)
        if self._drawn != rect:
            # The previous window may have been larger: clear what it covered.
            self.fill(PAD_YUV)
        scaled = (sw, sh) != (rect.w, rect.h)
        if band is not None and not scaled and self._drawn == rect:
            self._draw_band(frame, rect, band)
            return rect
        src = frame.pixels[:sh, :sw]
        # yuv420p needs even sizes; the extra row/column duplicates the window's edge and
        # lands in padding the index marks as outside the window rect.
        ew, eh = rect.w + rect.w % 2, rect.h + rect.h % 2
        if not scaled and (ew, eh) != (sw, sh):
            src = np.pad(src, ((0, eh - sh), (0, ew - sw), (0, 0)), mode="edge")
        src = np.ascontiguousarray(src)
        # Zero-copy wrap, and one reformatter kept per canvas so its SwsContext is reused:
        # together ~3x cheaper than from_ndarray + VideoFrame.reformat (measured, 800x600).
        vf = media.frame_over_buffer(src, "bgra")
        if scaled:
            out = self._sws.reformat(vf, width=ew, height=eh, format="yuv420p",
                                     interpolation="AREA", threads=SWS_THREADS)
        else:
            out = self._sws.reformat(vf, format="yuv420p", threads=SWS_THREADS)
        ew, eh = min(ew, self.width), min(eh, self.height)
        for plane, dst, div in zip(out.planes, (self.y, self.u, self.v), (1, 2, 2), strict=True):
            rows = _rows(plane)
            dst[: eh // div, : ew // div] = rows[: eh // div, : ew // div]
        self._drawn = rect
        self._dirty = True
        self._dirty_rows = None
        return rect

    def _draw_band(self, frame: Frame, rect: Rect, band: tuple[int, int]) -> None:
        """Convert rows [y0, y1) of a window drawn 1:1 where it was drawn last time."""
        sw, sh = rect.w, rect.h
        ew, eh = min(sw + sw % 2, self.width), min(sh + sh % 2, self.height)
        # Even rows (4:2:0 chroma pairs), widened by BAND_MARGIN: the chroma filter reads a
        # row or two beyond a pair, so the rows next to the band are converted again too.
        y0 = max(0, (band[0] - BAND_MARGIN) & ~1)
        y1 = min(eh, band[1] + BAND_MARGIN + (band[1] + BAND_MARGIN) % 2)
        if y1 <= y0:
            return
        src = frame.pixels[y0:min(y1, sh), :sw]
        if src.shape[0] != y1 - y0 or sw != ew:
            src = np.pad(src, ((0, y1 - y0 - src.shape[0]), (0, ew - sw), (0, 0)), mode="edge")
        src = np.ascontiguousarray(src)
        vf = media.frame_over_buffer(src, "bgra")
        out = self._sws_band.reformat(vf, format="yuv420p", threads=SWS_THREADS)
        for plane, dst, div in zip(out.planes, (self.y, self.u, self.v), (1, 2, 2), strict=True):
            rows = _rows(plane)
            n = (y1 - y0) // div
            dst[y0 // div: y0 // div + n, : ew // div] = rows[:n, : ew // div]
        if self._dirty and self._dirty_rows is None:
            return     # everything is copied out anyway
        if self._dirty and self._dirty_rows is not None:
            y0, y1 = min(y0, self._dirty_rows[0]), max(y1, self._dirty_rows[1])
        self._dirty, self._dirty_rows = True, (y0, y1)

    def video_frame(self) -> media.VideoFrame:
        """The canvas as a yuv420p frame, reusing one buffer per canvas.

        A fresh 3 MB frame per encode made the heap creep upward over long runs; the one
        frame is copied only when the encoder still holds a reference to it (make_writable),
        and the planes are refreshed only when something was drawn since the last call.
        """
        vf = self._out
        if vf is None:
            vf = self._out = media.blank_frame(self.width, self.height, "yuv420p")
            self._dirty = True
        else:
            vf.make_writable()
        if self._dirty:
            y0, y1 = self._dirty_rows or (0, self.height)
            for plane, src, div in zip(vf.planes, (self.y, self.u, self.v), (1, 2, 2),
                                       strict=True):
                rows = _rows(plane)
                rows[y0 // div: y1 // div, : src.shape[1]] = src[y0 // div: y1 // div]
            self._dirty, self._dirty_rows = False, None
        return vf


def _rows(plane: Any) -> np.ndarray:
    """A plane's bytes as rows (line_size may be wider than the picture: alignment)."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
