"""The capture contract shared by every platform backend.

A backend has one job: ``grab() -> Frame | None`` and ``close()``. ``None`` means "nothing to
capture right now" (no focused window, a minimised app); the recorder keeps time and tries
again. Platform modules are imported inside :func:`open_backend`, so a missing OS library
fails only on its own platform, with a message that says what to install.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError


@dataclass(frozen=True)
class WindowInfo:
    app: str                    # application name (WM_CLASS / bundle name / exe name)
    title: str                  # window title
    x: int                      # content rectangle in screen coordinates
    y: int
    w: int
    h: int
    pid: int | None = None
    window_id: int | None = None


def check_display_exists(display: str, count: int, where: str) -> None:
    """Refuse ``--display N`` beyond the ``count`` monitors that ``where`` has."""
    if display != "all" and int(display) > count:
        raise UsageError(f"display {display} does not exist: {where} has {count} monitor"
                         f"{'s' if count != 1 else ''}",
                         hint=f"use `--display 1`..`--display {count}` or `--display all`")


def window_extra(win: WindowInfo | None) -> dict[str, object]:
    """What a backend puts in ``Frame.extra`` about the active window (a fresh dict)."""
    if win is None:
        return {}
    return {"window_id": win.window_id, "pid": win.pid,
            "window_rect": (win.x, win.y, win.w, win.h)}


def clip_to_screen(win: WindowInfo, screen: dict[str, int]) -> tuple[int, int, int, int] | None:
    """The part of ``win`` inside ``screen`` (an mss monitor dict) as (x, y, w, h), or None
    when no pixel of it is on screen."""
    x0, y0 = max(win.x, screen["left"]), max(win.y, screen["top"])
    x1 = min(win.x + win.w, screen["left"] + screen["width"])
    y1 = min(win.y + win.h, screen["top"] + screen["height"])
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return x0, y0, x1 - x0, y1 - y0


@dataclass
class Frame:
    pixels: np.ndarray          # H×W×4 uint8, BGRA (what mss and ScreenCaptureKit hand out)
    ts: float                   # unix seconds when grabbed
    app: str = ""
    title: str = ""
    # Window rectangle in screen coordinates (active-window mode), or the display rectangle.
    x: int = 0
    y: int = 0
    w: int = 0
    h: int = 0
    display: str = "1"          # which display the pixels came from
    screen_w: int = 0           # size of that display, for choosing the canvas
    screen_h: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


class CaptureBackend(abc.ABC):
    """One platform's way of grabbing pixels and knowing which window is in front."""

    name: str = "base"
    # Which capture path is in use and why it was chosen (status and doctor show both).
    path: str = ""
    why: str = ""

    def __init__(self, mode: str = "active-window", display: str = "1") -> None:
        self.mode = mode
        self.display = display

    def describe(self) -> dict[str, str]:
        return {"backend": self.name, "path": self.path or self.name, "why": self.why}

    @abc.abstractmethod
    def grab(self) -> Frame | None:
        """Capture one frame now, or None when there is nothing to capture."""

    @abc.abstractmethod
    def active_window(self) -> WindowInfo | None:
        """The window in front (metadata only, no pixels); cheap enough to call every frame."""

    def share_pixels(self) -> bool:
        """Ask ``grab()`` to hand out frames whose pixels are a read-only view of the
        backend's own buffer — valid until the next ``grab()`` or ``close()`` — instead of a
        copy; True when this backend does so from now on. For a caller that is done with a
        frame's pixels before it grabs again (the recorder compares, copies what it keeps
        and draws within one tick); others keep getting frames of their own."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release OS resources."""

    def __enter__(self) -> CaptureBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def now() -> float:
        return time.time()


def open_backend(mode: str = "active-window", display: str = "1",
                 system: str | None = None, backend: str = "auto",
                 state_dir: Path | None = None) -> CaptureBackend:
    """Pick and open the backend for this platform (see capture/registry.py)."""
    from .registry import open_backend as _open  # the registry imports this module: a cycle

    return _open(mode=mode, display=display, system=system, backend=backend,
                 state_dir=state_dir)
