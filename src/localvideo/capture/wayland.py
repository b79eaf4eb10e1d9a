"""Wayland sessions without an X server.

A Wayland compositor does not let one client read another's pixels or ask which window is
in front; the only sanctioned path is the xdg-desktop-portal ScreenCast flow (a user prompt,
then a PipeWire stream), which also hides the active window's name. localvideo does not
speak it yet, so this module's job is to say clearly what does work.
"""

from __future__ import annotations

import os

from ..errors import NoDisplayError
from .base import CaptureBackend


def open_wayland(mode: str = "active-window", display: str = "1") -> CaptureBackend:
    wayland = os.environ.get("WAYLAND_DISPLAY", "")
    raise NoDisplayError(
        f"Wayland session ({wayland}) without DISPLAY: localvideo cannot capture native Wayland "
        "windows (compositors only share the screen through the xdg-desktop-portal prompt)",
        hint="set DISPLAY to the XWayland display (often `export DISPLAY=:0`) to record X11 "
             "and XWayland apps, log in to an 'X11' / 'Xorg' session from the login screen, "
             "or run `localvideo record --virtual-display` to record a private virtual screen")
