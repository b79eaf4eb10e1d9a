"""Pick the capture backend for this platform and session.

Platform modules are imported here, inside :func:`open_backend`, so a missing OS library
(pyobjc on macOS, pywin32 on Windows, python-xlib on Linux) fails only on its own platform,
with a message that names what to install. Each opened backend carries ``path`` (what reads
the pixels and the window) and ``why`` (why it was chosen) for status and doctor.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
from pathlib import Path

from ..errors import CaptureError, DependencyError, LocalVideoError, NoDisplayError, UsageError
from .base import CaptureBackend

log = logging.getLogger("localvideo.capture")

MODES = ("active-window", "display")
BACKENDS = ("auto", "x11", "wayland")

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


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise UsageError(f"unknown capture backend {backend!r}: expected one of "
                         f"{', '.join(BACKENDS)}",
                         hint="use `--backend auto` (the default), `--backend x11` or "
                              "`--backend wayland`")
    return backend


def _open_x11(mode: str, display: str) -> CaptureBackend:
    try:
        from .x11 import X11Backend
    except ImportError as exc:
        raise _missing(exc, "mss python-xlib") from exc
    return X11Backend(mode=mode, display=display)


def _open_linux(mode: str, display: str, backend: str,
                state_dir: Path | None) -> CaptureBackend:
    wayland, x11 = os.environ.get("WAYLAND_DISPLAY", ""), os.environ.get("DISPLAY", "")
    fallback = ""
    opened: CaptureBackend
    if backend == "wayland" or (backend == "auto" and wayland):
        if not wayland:
            raise NoDisplayError("`--backend wayland` but WAYLAND_DISPLAY is not set",
                                 hint="run inside the Wayland session, or set WAYLAND_DISPLAY "
                                      "to the compositor's socket (a name under "
                                      "XDG_RUNTIME_DIR or an absolute path)")
        from .wayland import open_wayland

        try:
            opened = open_wayland(mode=mode, display=display, state_dir=state_dir)
        except LocalVideoError as exc:
            if backend == "wayland" or not x11:
                raise
            # Better a loud, partial recording than none: X11 sees the XWayland apps.
            fallback = exc.message
        else:
            why = ("--backend wayland" if backend == "wayland" else
                   f"WAYLAND_DISPLAY={wayland} is set: a Wayland session"
                   + (f" (DISPLAY={x11} is XWayland, which cannot see native Wayland windows)"
                      if x11 else ""))
            opened.why = "; ".join(w for w in (why, opened.why) if w)
            return opened
    if backend == "x11" or x11:
        if not x11:
            raise NoDisplayError("`--backend x11` but DISPLAY is not set",
                                 hint="set DISPLAY (e.g. `export DISPLAY=:0`), or use "
                                      "`--backend auto`")
        opened = _open_x11(mode, display)
        if fallback:
            opened.why = (f"Wayland capture is unavailable ({fallback}); using X11 on "
                          f"XWayland DISPLAY={x11}, which sees only X11 apps")
            log.warning("%s", opened.why)
        elif backend == "x11" and wayland:
            opened.why = (f"--backend x11 on a Wayland session: DISPLAY={x11} is XWayland and "
                          "sees only X11 apps, native Wayland windows are missing")
        else:
            opened.why = "--backend x11" if backend == "x11" else f"DISPLAY={x11} is set"
        return opened
    raise NoDisplayError("no display: DISPLAY is not set, so there is no screen to capture",
                         hint=f"log in to a desktop session, set DISPLAY (e.g. `export DISPLAY=:0`), "
                              f"or {_VIRTUAL_HINT}")


def open_backend(mode: str = "active-window", display: str = "1",
                 system: str | None = None, backend: str = "auto",
                 state_dir: Path | None = None) -> CaptureBackend:
    """Open the capture backend for ``system`` (default: this machine's ``platform.system()``).

    ``state_dir`` (the data dir) keeps what a backend must remember between runs: the
    xdg-desktop-portal restore token, so the user is asked to share the screen once.

    ``backend`` is ``auto`` (Wayland whenever WAYLAND_DISPLAY is set, even with DISPLAY set
    too: that DISPLAY is XWayland, blind to native windows), ``x11`` or ``wayland``.
    """
    mode = check_mode(mode)
    display = check_display(display)
    backend = check_backend(backend)
    system = system or platform.system()
    if system != "Linux" and backend != "auto":
        raise UsageError(f"`--backend {backend}` is for Linux; this is {system}",
                         hint="leave out --backend (auto)")

    if system == "Linux":
        return _open_linux(mode, display, backend, state_dir)
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
                       hint="localvideo records on Linux (X11 and wlroots Wayland), macOS and "
                            "Windows; on a headless machine " + _VIRTUAL_HINT)


def plan_linux(backend: str = "auto", state_dir: Path | None = None) -> dict[str, str]:
    """What ``open_backend`` would take on this Linux session, and why — without opening it
    (the portal path would show its dialog). For ``doctor``: ``backend``, ``path``, ``why``,
    ``install`` (what is missing, as one command or pip line; "" when nothing is) and
    ``prompt`` ("yes" when the portal will ask the user to pick a screen)."""
    from .wayland import desktop_name  # Linux only: see the note at the top

    backend = check_backend(backend)
    wayland, x11 = os.environ.get("WAYLAND_DISPLAY", ""), os.environ.get("DISPLAY", "")
    out = {"backend": "", "path": "", "why": "", "install": "", "prompt": ""}
    if backend == "x11" or (backend == "auto" and not wayland):
        out.update(backend="x11", path="mss (XShm) + python-xlib",
                   why=("--backend x11" if backend == "x11" else f"DISPLAY={x11} is set")
                   if x11 else "no display: DISPLAY is not set")
        if wayland and x11:
            out["why"] += "; on this Wayland session it sees only XWayland apps"
        return out
    desktop = desktop_name()
    out["backend"] = "wayland"
    big = any(d in desktop for d in ("gnome", "kde", "plasma"))
    portal = big or not shutil.which("grim")
    if not portal:
        sway = bool(os.environ.get("SWAYSOCK") or os.environ.get("I3SOCK"))
        hypr = bool(os.environ.get("HYPRLAND_INSTANCE_SIGNATURE"))
        windows = ("sway IPC" if sway else "hyprctl activewindow" if hypr
                   else "none found (display mode, title unknown)")
        out.update(path=f"wlr-screencopy (own Wayland connection, grim as fallback) + active "
                        f"window from {windows}",
                   why=f"WAYLAND_DISPLAY={wayland} is set and grim is installed")
        return out
    missing_debs = [p for p in ("gst-launch-1.0",) if not shutil.which(p)]
    try:
        import jeepney  # noqa: F401
        pip = ""
    except ImportError:
        pip = "pip install jeepney"
    install = [] if big else ["apt-get install grim (wlr-screencopy: sway, Hyprland, river…)"]
    if missing_debs:
        install.append("apt-get install gstreamer1.0-tools gstreamer1.0-pipewire "
                       "gstreamer1.0-plugins-base (or your distribution's GStreamer PipeWire "
                       "plugin)")
    if pip:
        install.append(pip)
    from .portal import TOKEN_NAME

    token = (state_dir / "state" / TOKEN_NAME) if state_dir else None
    out.update(path="xdg-desktop-portal ScreenCast → PipeWire",
               why=(f"{desktop} offers no wlr-screencopy" if big else "grim is not installed") +
               "; the portal names no window, so whole monitors are recorded with the title "
               "unknown" + ("; window titles on GNOME need a focused-window D-Bus extension, "
                            "which localvideo does not ship yet" if "gnome" in desktop else ""),
               install="; ".join(install),
               prompt="" if token and token.exists() else "yes")
    return out
