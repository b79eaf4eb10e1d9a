"""The fixed per-chunk canvas a window is drawn onto: never stretched, never dropped.

A chunk's video has one size, but the active window changes size and position all the time.
The canvas keeps the chunk's size fixed (the display size, capped on the long side, even
dimensions for yuv420p) and draws the window at native pixel scale at the top-left corner;
the rest is a neutral padding. A window larger than the canvas is cropped, and the rectangle
actually drawn is what the index stores, so a reader knows what part of the window it sees.

The canvas is kept in yuv420p planes and only the window's pixels are converted from BGRA:
FIELD-NOTES measured the conversion as the fixed per-frame cost (~12.7 ms for a 1080p frame,
~1.6 ms for a 800×600 window), so converting only what changed position matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import media
from ..capture.base import Frame

# Padding and blank fill: a dark neutral grey in limited-range BT.601 (Y, U, V).
PAD_YUV = (40, 128, 128)
BLANK_YUV = (128, 128, 128)


def canvas_size(screen_w: int, screen_h: int, cap: int) -> tuple[int, int]:
    """The display size, scaled down uniformly so the long side is at most ``cap``, even dims."""
    w, h = max(2, int(screen_w)), max(2, int(screen_h))
    long_side = max(w, h)
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
        self._out: media.VideoFrame | None = None
        self._dirty = True
        self.fill(PAD_YUV)

    def fill(self, yuv: tuple[int, int, int]) -> None:
        self.y.fill(yuv[0])
        self.u.fill(yuv[1])
        self.v.fill(yuv[2])
        self._drawn = None
        self._dirty = True

    def blank(self) -> Rect:
        """A neutral picture for an excluded window: nothing of it is drawn."""
        self.fill(BLANK_YUV)
        return Rect(0, 0, 0, 0)

    def layout(self, frame: Frame, fit: bool = False) -> tuple[Rect, int, int]:
        """Where ``frame`` goes: the drawn rect, and the source size to take from it.

        ``fit`` (display mode) scales a too-large display down uniformly instead of cropping,
        so a whole screen stays whole; a window (``fit=False``) is never scaled, only cropped.
        """
        fw, fh = frame.size
        if fit and (fw > self.width or fh > self.height):
            s = min(self.width / fw, self.height / fh)
            w, h = max(1, int(fw * s)), max(1, int(fh * s))
            return Rect(0, 0, w, h), fw, fh
        w, h = min(fw, self.width), min(fh, self.height)
        return Rect(0, 0, w, h), w, h

    def draw(self, frame: Frame, fit: bool = False) -> Rect:
        """Convert the frame's BGRA pixels to yuv420p and put them at the top-left."""
        rect, sw, sh = self.layout(frame, fit)
        if self._drawn != rect:
            # The previous window may have been larger: clear what it covered.
            self.fill(PAD_YUV)
        src = frame.pixels[:sh, :sw]
        scaled = (sw, sh) != (rect.w, rect.h)
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
                                     interpolation="AREA")
        else:
            out = self._sws.reformat(vf, format="yuv420p")
        ew, eh = min(ew, self.width), min(eh, self.height)
        for plane, dst, div in zip(out.planes, (self.y, self.u, self.v), (1, 2, 2), strict=True):
            rows = _rows(plane)
            dst[: eh // div, : ew // div] = rows[: eh // div, : ew // div]
        self._drawn = rect
        self._dirty = True
        return rect

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
            for plane, src in zip(vf.planes, (self.y, self.u, self.v), strict=True):
                rows = _rows(plane)
                rows[:, : src.shape[1]] = src
            self._dirty = False
        return vf


def _rows(plane: Any) -> np.ndarray:
    """A plane's bytes as rows (line_size may be wider than the picture: alignment)."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
