"""Pick the capture backend for this platform and session.

Platform modules are imported here, inside :func:`open_backend`, so a missing OS library
(pyobjc on macOS, pywin32 on Windows, python-xlib on Linux) fails only on its own platform,
with a message that names what to install.
"""

from __future__ import annotations

import os
import platform

from ..errors import CaptureError, DependencyError, NoDisplayError, UsageError
from .base import CaptureBackend

MODES = ("active-window", "display")

_VIRTUAL_HINT = "run `localvideo record --virtual-display` to record a private virtual screen"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"unknown capture mode {mode!r}: expected one of {', '.join(MODES)}",
                         hint="use `--mode active-window` (the default) or `--mode display`")
    return mode


def check_display(display: str | int) -> str:
    """Normalise a display choice to ``"all"`` or a 1-based number as text.

    Whether the number exists is checked by the backend, which knows how many there are.
    """
    text = str(display).strip().lower()
    if text == "all":
        return text
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"invalid display {display!r}: expected a number from 1 or 'all'",
                         hint="use `--display 1` for the first monitor or `--display all`")
    return str(int(text))


def _missing(exc: ImportError, pip: str) -> DependencyError:
    return DependencyError(f"screen capture on this platform needs {pip}, and importing it "
                           f"failed: {exc}", hint=f"run `pip install {pip}`")


def open_backend(mode: str = "active-window", display: str = "1",
                 system: str | None = None) -> CaptureBackend:
    """Open the capture backend for ``system`` (default: this machine's ``platform.system()``)."""
    mode = check_mode(mode)
    display = check_display(display)
    system = system or platform.system()

    if system == "Linux":
        if os.environ.get("DISPLAY"):
            try:
                from .x11 import X11Backend
            except ImportError as exc:
                raise _missing(exc, "mss python-xlib") from exc
            return X11Backend(mode=mode, display=display)
        if os.environ.get("WAYLAND_DISPLAY"):
            from .wayland import open_wayland

            return open_wayland(mode=mode, display=display)
        raise NoDisplayError("no display: DISPLAY is not set, so there is no screen to capture",
                             hint=f"log in to a desktop session, set DISPLAY (e.g. `export DISPLAY=:0`), "
                                  f"or {_VIRTUAL_HINT}")
    if system == "Darwin":
        try:
            from .macos import MacOSBackend
        except ImportError as exc:
            raise _missing(exc, "pyobjc-framework-ScreenCaptureKit pyobjc-framework-Quartz") from exc
        return MacOSBackend(mode=mode, display=display)
    if system == "Windows":
        try:
            from .windows import WindowsBackend
        except ImportError as exc:
            raise _missing(exc, "mss pywin32") from exc
        return WindowsBackend(mode=mode, display=display)
    raise CaptureError(f"screen capture is not supported on {system!r}",
                       hint="localvideo records on Linux (X11), macOS and Windows; "
                            "on a headless machine " + _VIRTUAL_HINT)
