"""Is the capture really seeing the screen? Noticed within seconds, on every backend.

Capture can fail without an error: an X11 grab on XWayland returns black where native
Wayland windows are, macOS without the Screen Recording permission hands out wallpaper or
black, a lock screen covers everything. The recorder feeds every grab here and shows the
verdict (``Recorder.status()["health"]`` and the heartbeat row ``kv.recorder.health``):

- ``blank``: the frames are all one colour (black included) while a window is known to be
  on screen (the backend named an app, a title or a window id), for ``blank_after`` seconds.
- ``stalled``: nothing visible (no window found, or blank frames) and nothing encoded for
  ``stall_after`` seconds while recording — what the X11 path on a Wayland session does
  when a native window is in front.
- ``failing``: grabs keep raising (the recorder stops after 20 in a row).
- ``locked``: the backend says the screen is locked (Windows): nothing to see, nothing
  expected, and the index says so; not a failure.
- ``ok`` otherwise; ``starting`` until the first frame.

A single colour is tested on a sparse grid first (~0.1 ms at 1080p) and on every pixel only
when the grid is uniform, so a busy screen costs almost nothing and a verdict is exact.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from .base import Frame

log = logging.getLogger("localvideo.capture")

BLANK_AFTER = 4.0      # seconds of one-colour frames with a window on screen
STALL_AFTER = 60.0     # seconds with nothing visible and nothing encoded
FAIL_AFTER = 3         # grabs failing in a row
GRID = 8               # sample every 8th pixel each way before the full test


def one_colour(pixels: np.ndarray) -> bool:
    """True when every pixel has the same colour (alpha ignored: X11 leaves it undefined)."""
    if pixels.size == 0:
        return True
    # Coarse to fine: ~64 points settle a real window at once (the every-8th-pixel grid
    # still touched most of a 1080p frame's cache lines: 5 % of the recorder's busy time).
    h, w = pixels.shape[:2]
    for grid in (pixels[::max(1, h // 8), ::max(1, w // 8), :3], pixels[::GRID, ::GRID, :3]):
        if not (grid == grid[0, 0]).all():
            return False
    return bool((pixels[..., :3] == pixels[0, 0, :3]).all())


def window_known(frame: Frame) -> bool:
    return bool(frame.app or frame.title or frame.extra.get("window_id"))


def hint_for(backend: dict[str, str]) -> str:
    """The likely cause of a blind capture on this backend, said with the verdict."""
    name, why = backend.get("backend", ""), backend.get("why", "")
    if name == "x11" and "Wayland" in why:
        return ("on a Wayland session the X11 path sees only XWayland apps: record with "
                "`--backend wayland`")
    if name == "macos":
        return ("grant Screen Recording to the program that runs localvideo in System "
                "Settings › Privacy & Security")
    return ""


class CaptureHealth:
    def __init__(self, backend: dict[str, str] | None = None, *,
                 blank_after: float = BLANK_AFTER, stall_after: float = STALL_AFTER,
                 hint: str = "") -> None:
        self.backend = dict(backend or {})
        self.blank_after = blank_after
        self.stall_after = stall_after
        self.hint = hint or hint_for(self.backend)
        self.state = "starting"
        self.message = ""
        self.since: float | None = None
        self._blank_since: float | None = None
        self._blank_frames = 0
        self._visible: float | None = None      # last time a real picture was seen
        self._encoded: float | None = None
        self._started: float | None = None
        self._failures = 0
        self.checked_ms = 0.0
        # The last grab was one colour with a window known on screen: the recorder keeps no
        # picture of it (the index says "blank" instead).
        self.frame_blank = False

    # -- what the recorder reports ---------------------------------------------------------
    def seen(self, frame: Frame | None, now: float | None = None) -> None:
        """After every successful grab (``None``: the backend found nothing to capture)."""
        now = time.time() if now is None else now
        if self._started is None:
            self._started = self._visible = now
        self._failures = 0
        blank = False
        if frame is not None:
            t0 = time.perf_counter()
            uniform = one_colour(frame.pixels)
            self.checked_ms = (time.perf_counter() - t0) * 1000
            if uniform and window_known(frame):
                blank = True
                if self._blank_since is None:
                    self._blank_since, self._blank_frames = now, 0
                self._blank_frames += 1
            else:
                self._blank_since, self._blank_frames = None, 0
            if not uniform:
                self._visible = now
        else:
            self._blank_since, self._blank_frames = None, 0
        self.frame_blank = blank
        self._judge(now, frame, blank)

    def encoded(self, now: float | None = None) -> None:
        self._encoded = time.time() if now is None else now

    def failed(self, error: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._failures += 1
        if self._failures >= FAIL_AFTER:
            self._set("failing", f"capture keeps failing ({self._failures} grabs in a row): "
                                 f"{error}", now)

    def idle(self, now: float | None = None) -> None:
        """Recording is paused (by the user or a full disk): nothing is expected meanwhile."""
        now = time.time() if now is None else now
        self._visible = self._encoded = now
        self._blank_since, self._blank_frames = None, 0

    def locked(self, now: float | None = None) -> None:
        """The screen is locked: nothing is expected until it is unlocked."""
        now = time.time() if now is None else now
        self.idle(now)
        self._failures = 0
        self._set("locked", "the screen is locked: nothing is recorded until it is unlocked",
                  now)

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "message": self.message, "since": self.since,
                **{k: self.backend.get(k, "") for k in ("backend", "path", "why")}}

    # -- the verdict -----------------------------------------------------------------------
    def _judge(self, now: float, frame: Frame | None, blank: bool) -> None:
        if (blank and self._blank_since is not None and self._blank_frames >= 2
                and now - self._blank_since >= self.blank_after):
            what = f"{frame.app or '?'} — {frame.title}" if frame and frame.title else \
                (frame.app if frame else "")
            self._set("blank", f"the captured frames are all one colour while a window is on "
                               f"screen ({what}): the capture is not seeing it"
                      + self._with_hint(), self._blank_since)
            return
        last = max(t for t in (self._visible, self._encoded, self._started) if t is not None)
        if now - last >= self.stall_after:
            self._set("stalled", f"nothing visible captured and no frame encoded for "
                                 f"{now - last:.0f} s: no window found, or only blank frames"
                      + self._with_hint(), last)
            return
        self._set("ok", "", now)

    def _with_hint(self) -> str:
        return f"; {self.hint}" if self.hint else ""

    def _set(self, state: str, message: str, since: float) -> None:
        if state == self.state:
            if state != "ok":
                self.message = message
            return
        if state != "ok":
            log.warning("capture health: %s: %s", state, message)
        elif self.state not in ("starting", "ok"):
            log.warning("capture health: ok again")
        self.state, self.message, self.since = state, message, since
