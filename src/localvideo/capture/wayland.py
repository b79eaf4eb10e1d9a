"""Wayland sessions without an X server.

A Wayland compositor does not let one client read another's pixels or ask which window is
in front; the only sanctioned path is the xdg-desktop-portal ScreenCast flow (a user prompt,
then a PipeWire stream), which also hides the active window's name. localvideo does not
speak it yet, so this module's job is to say clearly what does work.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import NoDisplayError
from .base import CaptureBackend

X_SOCKETS = Path("/tmp/.X11-unix")


def x_displays(socket_dir: Path = X_SOCKETS) -> list[str]:
    """Local X servers listening here (XWayland among them), as DISPLAY values."""
    try:
        names = [p.name for p in socket_dir.iterdir()]
    except OSError:
        return []
    return sorted((f":{n[1:]}" for n in names if n.startswith("X") and n[1:].isdigit()),
                  key=lambda d: int(d[1:]))


def open_wayland(mode: str = "active-window", display: str = "1",
                 socket_dir: Path = X_SOCKETS) -> CaptureBackend:
    wayland = os.environ.get("WAYLAND_DISPLAY", "")
    found = x_displays(socket_dir)
    # Name the X server that is really there when there is one; ":0" is only the usual guess.
    xwayland = (f"`export DISPLAY={found[0]}` (an X server is listening there)" if found
                else "`export DISPLAY=:0` where XWayland runs")
    raise NoDisplayError(
        f"Wayland session ({wayland}) without DISPLAY: localvideo cannot capture native Wayland "
        "windows (compositors only share the screen through the xdg-desktop-portal prompt)",
        hint=f"to record X11 and XWayland apps set DISPLAY to the XWayland display: {xwayland}; "
             "or log in to an 'X11' / 'Xorg' session from the login screen; or run "
             "`localvideo record --virtual-display` to record a private virtual screen")
