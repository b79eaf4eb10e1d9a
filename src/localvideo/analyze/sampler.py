"""Key frames: which decoded frames are worth reading.

Reading every frame would cost a core; most frames differ from the last one read by a
cursor blink. A frame becomes a key frame when the window changes (app or title), when much
of the window changed, or — while anything changes at all — once every
``keyframe_interval`` seconds. The comparison runs on a small gray thumbnail of the window
rectangle (the luma plane, strided), which costs well under a millisecond.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import media

THUMB_WIDTH = 160          # px; enough to see a changed line of text, cheap to compare
PIXEL_DELTA = 24           # gray levels a thumbnail pixel must move to count as changed
LARGE_CHANGE = 0.15        # fraction of thumbnail pixels changed that makes a key frame at once


@dataclass
class FrameRow:
    """The index row of a frame, as the sampler needs it."""

    id: int
    ts: float
    pts: float
    app: str
    title: str
    x: int
    y: int
    w: int
    h: int
    excluded: bool


@dataclass
class SamplerState:
    """What the last key frame looked like; persisted so a restart decides the same way."""

    key_ts: float | None = None
    key_app: str | None = None
    key_title: str | None = None
    thumb: np.ndarray | None = None

    def thumb_bytes(self) -> bytes | None:
        if self.thumb is None:
            return None
        buf = io.BytesIO()
        np.save(buf, self.thumb, allow_pickle=False)
        return buf.getvalue()

    @staticmethod
    def thumb_from(blob: bytes | None) -> np.ndarray | None:
        return None if not blob else np.load(io.BytesIO(blob), allow_pickle=False)


def crop_box(row: FrameRow, width: int, height: int) -> tuple[int, int, int, int]:
    """The window rectangle clamped to the canvas; the whole canvas when none is stored."""
    if row.w <= 0 or row.h <= 0:
        return 0, 0, width, height
    x0, y0 = max(0, min(row.x, width - 1)), max(0, min(row.y, height - 1))
    x1, y1 = max(x0 + 1, min(row.x + row.w, width)), max(y0 + 1, min(row.y + row.h, height))
    return x0, y0, x1, y1


def frame_thumbnail(dec: Decoded, row: FrameRow) -> np.ndarray:
    """The thumbnail of ``row``'s window in a decoded frame: every n-th pixel of it, read
    from the luma plane — the few thousand pixels it needs, not a gray copy of the whole
    frame (2 ms at 1080p, on every frame the analyzer decodes)."""
    x0, y0, x1, y1 = crop_box(row, dec.frame.width, dec.frame.height)
    step = max(1, (x1 - x0) // THUMB_WIDTH)
    return dec.gray_at(slice(y0, y1, step), slice(x0, x1, step))


def changed_fraction(a: np.ndarray | None, b: np.ndarray) -> float:
    """Share of thumbnail pixels that moved; 1.0 when there is nothing to compare with."""
    if a is None or a.shape != b.shape:
        return 1.0
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(np.count_nonzero(diff > PIXEL_DELTA)) / diff.size


class Sampler:
    def __init__(self, interval: float, state: SamplerState | None = None) -> None:
        self.interval = interval
        self.state = state or SamplerState()

    def decide(self, row: FrameRow, thumb: np.ndarray) -> str | None:
        """The reason this frame is a key frame (start|switch|change|cadence), or None.

        (``leave`` and ``end`` come from :meth:`leave` and :meth:`settle`.)
        """
        st = self.state
        if row.excluded:
            # Never read; the next readable frame counts as a window switch.
            st.key_app = st.key_title = None
            st.thumb = None
            return None
        if st.key_ts is None:
            reason: str | None = "start"
        elif (row.app, row.title) != (st.key_app, st.key_title):
            reason = "switch"
        else:
            frac = changed_fraction(st.thumb, thumb)
            if frac >= LARGE_CHANGE:
                reason = "change"
            elif frac > 0 and row.ts - st.key_ts >= self.interval:
                reason = "cadence"
            else:
                reason = None
        if reason:
            self.take(row, thumb)
        return reason

    def leaving(self, row: FrameRow) -> bool:
        """Whether ``row`` leaves the window of the last key frame."""
        st = self.state
        return st.key_app is not None and (
            row.excluded or (row.app, row.title) != (st.key_app, st.key_title))

    def leave(self, prev: FrameRow, thumb: np.ndarray) -> bool:
        """Before a switch: read the window's last frame if it moved since its key frame.

        What was typed or scrolled in just before switching away is often the point of the
        visit; the cadence alone would miss it.
        """
        st = self.state
        if prev.excluded or (prev.app, prev.title) != (st.key_app, st.key_title) \
                or prev.ts == st.key_ts or changed_fraction(st.thumb, thumb) == 0:
            return False
        self.take(prev, thumb)
        return True

    def settle(self, row: FrameRow, thumb: np.ndarray) -> str | None:
        """At the end of a chunk: read the last frame if it moved since the last key frame.

        Only changed frames are encoded, so the last edit before a quiet spell would
        otherwise wait for the next change to be read.
        """
        if row.excluded or changed_fraction(self.state.thumb, thumb) == 0:
            return None
        self.take(row, thumb)
        return "end"

    def take(self, row: FrameRow, thumb: np.ndarray) -> None:
        self.state = SamplerState(row.ts, row.app, row.title, thumb)


# Decoding lives in media.py (the one module that opens PyAV); the analysis reads chunks
# through these names.
Decoded = media.Decoded
decode = media.iter_frames
ChunkDecoder = media.IncrementalDecoder


def images_at(path: Path, wanted: list[float]) -> dict[float, Image.Image]:
    """Decode once and keep the canvas images at the given pts (for an observation's images)."""
    keys = {round(p, 3) for p in wanted}
    out: dict[float, Image.Image] = {}
    if not keys:
        return out
    last = max(keys)
    for d in decode(path):
        if d.pts in keys:
            out[d.pts] = d.image()
        if d.pts >= last:
            break
    return out
