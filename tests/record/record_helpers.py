"""Helpers for the recorder tests: a scripted capture backend, ffprobe, decoding, MP4 boxes.

``ScriptedBackend`` is a real :class:`CaptureBackend` whose pictures come from a list of
numpy frames instead of an X server — it exercises the whole recorder (filter, canvas,
encoder, index) at a high frame rate in a second or two. The end-to-end tests use the
real Xvfb ``desktop`` fixture and the real X11 backend.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from localvideo.capture.base import CaptureBackend, Frame, WindowInfo
from localvideo.service import Service


def solid(w: int, h: int, bgr: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    px = np.empty((h, w, 4), np.uint8)
    px[..., 0], px[..., 1], px[..., 2], px[..., 3] = bgr[0], bgr[1], bgr[2], 255
    return px


def glyph(px: np.ndarray, x: int, y: int) -> np.ndarray:
    """A copy of ``px`` with one 6×9 dark 'character' drawn at (x, y)."""
    out = px.copy()
    out[y:y + 9, x:x + 1, :3] = 0
    out[y:y + 1, x:x + 6, :3] = 0
    out[y + 4:y + 5, x:x + 5, :3] = 0
    return out


class Step:
    def __init__(self, pixels: np.ndarray, app: str = "XTerm", title: str = "term",
                 screen: tuple[int, int] = (1280, 720), error: Exception | None = None) -> None:
        self.pixels, self.app, self.title, self.screen = pixels, app, title, screen
        self.error = error                 # raised by grab() instead of returning a frame


class ScriptedBackend(CaptureBackend):
    """Hands out one scripted step per grab; after the last one, sets ``done``.

    Like the X11 backend, it lends its pixels when asked (``share_pixels``, which the
    recorder does): every frame is then a read-only view of one buffer that the next grab
    overwrites, so a recorder that kept a frame's pixels past its tick would compare or
    draw the wrong picture in these tests."""

    name = "scripted"

    def __init__(self, steps: list[Step], on_step: Callable[[int], None] | None = None) -> None:
        super().__init__()
        self.steps = steps
        self.i = 0
        self.done = threading.Event()
        self.on_step = on_step
        self.shared = False
        self._buffer = np.empty(0, np.uint8)

    def share_pixels(self) -> bool:
        self.shared = True
        return True

    def _lend(self, pixels: np.ndarray) -> np.ndarray:
        if self._buffer.size < pixels.size:
            self._buffer = np.empty(pixels.size, np.uint8)
        view = self._buffer[: pixels.size].reshape(pixels.shape)
        view[...] = pixels
        lent = view.view()
        lent.flags.writeable = False
        return lent

    def grab(self) -> Frame | None:
        if self.i >= len(self.steps):
            self.done.set()
            return None
        if self.on_step:
            self.on_step(self.i)
        s = self.steps[self.i]
        self.i += 1
        if self.i >= len(self.steps):
            self.done.set()
        if s.error is not None:
            raise s.error
        h, w = s.pixels.shape[:2]
        pixels = self._lend(s.pixels) if self.shared else s.pixels
        return Frame(pixels=pixels, ts=time.time(), app=s.app, title=s.title, x=10, y=20,
                     w=w, h=h, display="1", screen_w=s.screen[0], screen_h=s.screen[1])

    def active_window(self) -> WindowInfo | None:
        s = self.steps[min(self.i, len(self.steps) - 1)]
        return WindowInfo(s.app, s.title, 10, 20, s.pixels.shape[1], s.pixels.shape[0])


def run_scripted(svc: Service, steps: list[Step], *, timeout: float = 30,
                 on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Record ``steps`` through the real Recorder (lock, encoder plan, index) and return
    the summary."""
    from localvideo.record.lock import RecorderLock
    from localvideo.record.recorder import Recorder, setup_logging

    backend = ScriptedBackend(steps, on_step)
    setup_logging(svc.settings.data_dir)
    stop = threading.Event()
    with RecorderLock(svc.settings.data_dir):
        rec = Recorder(svc.settings, svc.db, svc.device_id, backend)
        watcher = threading.Thread(target=lambda: (backend.done.wait(timeout), stop.set()),
                                   daemon=True)
        watcher.start()
        return rec.run(duration=timeout, stop=stop)


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def decode_all(path: Path) -> list[tuple[float, np.ndarray]]:
    """(seconds, rgb24 array) for every decodable frame; stops at a torn last fragment."""
    import av

    out: list[tuple[float, np.ndarray]] = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        try:
            for f in c.decode(s):
                out.append((float(f.pts * f.time_base), f.to_ndarray(format="rgb24")))
        except av.FFmpegError:
            pass
    return out


def mp4_boxes(path: Path) -> list[str]:
    """Top-level ISO-BMFF box types, read straight from the file."""
    data = path.read_bytes()
    boxes, i = [], 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        boxes.append(data[i + 4:i + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[i + 8:i + 16], "big")
        if size < 8:
            break
        i += size
    return boxes
