"""Wayland sessions: pixels through wlr-screencopy, the window in front through the
compositor's own IPC.

A Wayland compositor does not let an ordinary client read another's pixels or ask which
window is in front. What each desktop offers instead:

- wlroots compositors (sway, Hyprland, river, Wayfire…) expose the ``wlr-screencopy``
  protocol; ``grim`` speaks it, so one ``grim -t ppm -`` run per frame gives the output's
  real pixels with its scale applied (``-s``). A region (``-g``) crops the active window.
- sway/i3 answer ``get_tree`` on their IPC socket (capture/sway.py); Hyprland answers
  ``hyprctl activewindow -j`` (capture/hyprland.py). Without either, only display mode
  works and the title is unknown (said once, in ``why``).
- GNOME and KDE offer only the xdg-desktop-portal ScreenCast → PipeWire path
  (capture/portal.py): whole monitors, the window in front unknown (no portal names it).
  It is also the way out on a wlroots compositor without grim or wlr-screencopy.

The recorder may run as another user than the compositor (the tests run it as root against
an unprivileged user's sway): WAYLAND_DISPLAY and SWAYSOCK may be absolute paths.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import CaptureError, DependencyError, LocalVideoError, NoDisplayError, UsageError
from .base import CaptureBackend, Frame, WindowInfo, check_display_exists, window_extra
from .sway import FocusedWindow, Output, SwayIPC, find_socket
from .wlr_screencopy import WlrScreencopy

log = logging.getLogger("localvideo.capture")

X_SOCKETS = Path("/tmp/.X11-unix")
_PPM = re.compile(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s")
_NO_SCREENCOPY = ("screencopy", "screen-copy", "zwlr_screencopy")
NO_SCREENCOPY = "this Wayland compositor does not offer wlr-screencopy"


def x_displays(socket_dir: Path = X_SOCKETS) -> list[str]:
    """Local X servers listening here (XWayland among them), as DISPLAY values."""
    try:
        names = [p.name for p in socket_dir.iterdir()]
    except OSError:
        return []
    return sorted((f":{n[1:]}" for n in names if n.startswith("X") and n[1:].isdigit()),
                  key=lambda d: int(d[1:]))


def desktop_name(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    return (env.get("XDG_CURRENT_DESKTOP") or env.get("XDG_SESSION_DESKTOP") or "").lower()


def _fallback_hint(socket_dir: Path = X_SOCKETS) -> str:
    found = x_displays(socket_dir)
    # Name the X server that is really there when there is one; ":0" is only the usual guess.
    xwayland = (f"`export DISPLAY={found[0]}` (an X server is listening there)" if found
                else "`export DISPLAY=:0` where XWayland runs")
    return (f"to record X11 and XWayland apps set DISPLAY to the XWayland display: {xwayland} "
            "and pass `--backend x11`; or log in to an 'X11' / 'Xorg' session from the login "
            "screen; or run `localvideo record --virtual-display` to record a private virtual "
            "screen")


class WindowSource(Protocol):
    def active(self) -> FocusedWindow | None: ...
    def outputs(self) -> list[Output]: ...
    def close(self) -> None: ...


# -- pixels ----------------------------------------------------------------------------------

def parse_ppm(data: bytes | bytearray | memoryview) -> np.ndarray:
    """A binary PPM (what ``grim -t ppm`` writes) as H×W×4 BGRA, the layout Frame uses."""
    m = _PPM.match(bytes(data[:64]))
    if m is None:
        raise CaptureError(f"grim wrote no PPM image (starts with {bytes(data[:16])!r})",
                           hint="update grim; localvideo reads `grim -t ppm -`")
    w, h, maxval = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if maxval != 255 or len(data) < m.end() + w * h * 3:
        raise CaptureError(f"grim wrote a truncated or 16-bit PPM ({w}×{h}, max {maxval}, "
                           f"{len(data)} bytes)", hint="update grim")
    rgb = np.frombuffer(data, np.uint8, count=w * h * 3, offset=m.end()).reshape(h, w, 3)
    # One plane at a time: 3× cheaper than one reversed-slice copy (1.1 vs 3.5 ms at 720p).
    out = np.empty((h, w, 4), np.uint8)
    out[..., 0], out[..., 1], out[..., 2], out[..., 3] = rgb[..., 2], rgb[..., 1], rgb[..., 0], 255
    return out


class Grim:
    """wlr-screencopy through the ``grim`` tool, one run per frame.

    grim writes straight into an anonymous memory file given as its stdout, so a 6 MB frame
    costs no pipe round trips in this process.
    """

    def __init__(self, program: str | None = None, timeout: float = 5.0,
                 socket_dir: Path = X_SOCKETS) -> None:
        self.socket_dir = socket_dir      # where the error hint looks for XWayland
        found = program or shutil.which("grim")
        if not found:
            raise DependencyError("Wayland capture on wlroots compositors (sway, Hyprland, "
                                  "river…) needs `grim`, which is not installed",
                                  hint="install it: `apt-get install grim` (Debian/Ubuntu), "
                                       "`dnf install grim`, `pacman -S grim`")
        self.program = found
        self.timeout = timeout

    def grab(self, region: tuple[int, int, int, int] | None = None, output: str | None = None,
             scale: float | None = None) -> np.ndarray:
        args = [self.program, "-t", "ppm"]
        if scale:
            args += ["-s", f"{scale:g}"]
        if region is not None:
            x, y, w, h = region
            args += ["-g", f"{x},{y} {w}x{h}"]
        elif output:
            args += ["-o", output]
        args.append("-")
        fd = os.memfd_create("lv-grim", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(fd), "wb", closefd=True) as sink:
                try:
                    done = subprocess.run(args, stdout=sink, stderr=subprocess.PIPE,
                                          timeout=self.timeout, check=False)
                except subprocess.TimeoutExpired as exc:
                    raise CaptureError(f"grim took longer than {self.timeout:g} s",
                                       hint="the compositor is not answering") from exc
                except OSError as exc:
                    raise CaptureError(f"cannot run grim: {exc}", hint="reinstall grim") from exc
            if done.returncode != 0:
                raise _grim_error(done.stderr.decode("utf-8", "replace").strip(),
                                  self.socket_dir)
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
        finally:
            os.close(fd)
        return parse_ppm(data)


def _grim_error(stderr: str, socket_dir: Path = X_SOCKETS) -> CaptureError:
    low = stderr.lower()
    if any(k in low for k in _NO_SCREENCOPY):
        return NoDisplayError(f"{NO_SCREENCOPY} (grim: {stderr[:200]})",
                              hint=_fallback_hint(socket_dir))
    if "display" in low and ("connect" in low or "failed" in low):
        return NoDisplayError(f"cannot connect to the Wayland compositor at "
                              f"{os.environ.get('WAYLAND_DISPLAY', '')!r} (grim: {stderr[:200]})",
                              hint="check WAYLAND_DISPLAY (and XDG_RUNTIME_DIR, or give it as "
                                   "an absolute socket path); " + _fallback_hint(socket_dir))
    return CaptureError(f"grim failed: {stderr[:300] or 'no message'}",
                        hint="see `grim -t ppm - > /dev/null` run by hand in the same session")


# -- the backend -----------------------------------------------------------------------------

class WaylandBackend(CaptureBackend):
    name = "wayland"

    def __init__(self, mode: str = "active-window", display: str = "1", *,
                 grim: Grim, windows: WindowSource | None, windows_via: str = "",
                 native: WlrScreencopy | None = None) -> None:
        super().__init__(mode=mode, display=display)
        self.grim = grim
        self.native = native
        self.windows = windows
        self._windows_via = windows_via
        self._set_path()
        self._outputs = windows.outputs() if windows is not None else []
        if display not in ("all", "1") or self._outputs:
            if not self._outputs:
                raise UsageError(f"display {display}: this compositor does not list its outputs "
                                 "to localvideo", hint="use `--display 1` (the whole layout)")
            check_display_exists(display, len(self._outputs), "this Wayland session")
        if mode == "active-window" and windows is None:
            self.mode = "display"
            self.why = ("no sway/i3 IPC socket (SWAYSOCK) and no Hyprland session found, so the "
                        "window in front is unknown: recording the whole display, title unknown")
            log.warning("%s", self.why)

    def _set_path(self) -> None:
        pixels = ("wlr-screencopy (own Wayland connection, copies on damage; grim for "
                  "--display all)" if self.native is not None else "wlr-screencopy (grim)")
        self.path = pixels + (f" + active window from {self._windows_via}"
                              if self.windows is not None else "")

    def _read(self, out: Output | None, region: tuple[int, int, int, int] | None
              ) -> np.ndarray:
        """Pixels of ``out`` (or of ``region``, layout logical pixels, inside it) at the
        output's scale: through the own connection when there is one, else grim."""
        if self.native is not None and out is not None:
            local = None if region is None else (region[0] - out.x, region[1] - out.y,
                                                 region[2], region[3])
            try:
                return self.native.grab(out.name, local)
            except CaptureError as exc:
                # A compositor that speaks the protocol differently: grim still works.
                log.warning("own wlr-screencopy client failed (%s); using grim from now on",
                            exc.message)
                self.native.close()
                self.native = None
                self._set_path()
        if region is None:
            return self.grim.grab(output=out.name if out else None)
        return self.grim.grab(region=region, scale=out.scale if out else 1.0)

    def active_window(self) -> WindowInfo | None:
        fw = self.windows.active() if self.windows is not None else None
        return fw.info if fw else None

    def _output_for(self) -> Output | None:
        if self.display == "all" or not self._outputs:
            return None
        return self._outputs[int(self.display) - 1]

    def grab(self) -> Frame | None:
        ts = self.now()
        fw = self.windows.active() if self.windows is not None else None
        if self.mode == "display":
            out = self._output_for()
            px = self._read(out, None)
            h, w = px.shape[:2]
            return Frame(pixels=px, ts=ts, app=fw.info.app if fw else "",
                         title=fw.info.title if fw else "", x=out.x if out else 0,
                         y=out.y if out else 0, w=w, h=h, display=self.display,
                         screen_w=w, screen_h=h, extra=self._extra(fw, out))
        if fw is None:
            return None
        win, out = fw.info, fw.output
        # Crop the window out of its output: the part on another output, or off screen,
        # has no pixels to read there.
        x0, y0, x1, y1 = win.x, win.y, win.x + win.w, win.y + win.h
        if out is not None:
            x0, y0 = max(x0, out.x), max(y0, out.y)
            x1, y1 = min(x1, out.x + out.w), min(y1, out.y + out.h)
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        scale = out.scale if out else 1.0
        px = self._read(out, (x0, y0, x1 - x0, y1 - y0))
        h, w = px.shape[:2]
        extra = self._extra(fw, out)
        extra["clipped"] = (x0, y0, x1 - x0, y1 - y0) != (win.x, win.y, win.w, win.h)
        idx = self._outputs.index(out) + 1 if out in self._outputs else 1
        # Pixel coordinates: the logical position times the output's scale.
        return Frame(pixels=px, ts=ts, app=win.app, title=win.title, x=round(x0 * scale),
                     y=round(y0 * scale), w=w, h=h, display=str(idx),
                     screen_w=round(out.w * scale) if out else w,
                     screen_h=round(out.h * scale) if out else h, extra=extra)

    @staticmethod
    def _extra(fw: FocusedWindow | None, out: Output | None) -> dict[str, object]:
        extra = window_extra(fw.info if fw else None)
        if out is not None or (fw and fw.output):
            o = out or (fw.output if fw else None)
            assert o is not None
            extra["output"], extra["scale"] = o.name, o.scale
        return extra

    def close(self) -> None:
        windows, self.windows = self.windows, None
        if windows is not None:
            windows.close()
        native, self.native = self.native, None
        if native is not None:
            native.close()


def open_wayland(mode: str = "active-window", display: str = "1",
                 socket_dir: Path = X_SOCKETS, state_dir: Path | None = None) -> CaptureBackend:
    """Open the wlroots path (grim + sway IPC or hyprctl); on GNOME and KDE, or where
    wlr-screencopy is missing, the xdg-desktop-portal path; or explain what works instead.

    ``state_dir`` is the data dir: the portal's restore token is kept under it.
    """
    wayland = os.environ.get("WAYLAND_DISPLAY", "")
    desktop = desktop_name()
    if any(d in desktop for d in ("gnome", "kde", "plasma")):
        # GNOME and KDE have no wlr-screencopy: the portal is the only way in.
        return open_portal(mode, display, socket_dir, state_dir,
                           why=f"{os.environ.get('XDG_CURRENT_DESKTOP') or desktop} offers "
                               "no wlr-screencopy")
    try:
        grim = Grim(socket_dir=socket_dir)
    except DependencyError as exc:
        try:
            return open_portal(mode, display, socket_dir, state_dir, why="grim is missing")
        except LocalVideoError:
            raise DependencyError(f"Wayland session ({wayland}): {exc.message}", exc.hint) \
                from exc
    windows: WindowSource | None = None
    via = ""
    # An explicit SWAYSOCK wins; on Hyprland ask hyprctl; else look for a sway socket.
    sock = os.environ.get("SWAYSOCK") or os.environ.get("I3SOCK")
    try:
        if not sock and os.environ.get("HYPRLAND_INSTANCE_SIGNATURE"):
            from .hyprland import Hyprctl

            windows, via = Hyprctl(), "hyprctl activewindow"
        elif sock := sock or find_socket():
            windows, via = SwayIPC(sock), f"sway IPC ({sock})"
        # One tiny grab proves the compositor speaks wlr-screencopy before recording starts.
        try:
            grim.grab(region=(0, 0, 1, 1))
        except NoDisplayError as exc:
            if NO_SCREENCOPY not in exc.message:
                raise
            try:
                return open_portal(mode, display, socket_dir, state_dir, why=NO_SCREENCOPY)
            except LocalVideoError as portal_exc:
                raise NoDisplayError(f"{exc.message}; the xdg-desktop-portal path failed too: "
                                     f"{portal_exc.message}", exc.hint) from portal_exc
        native = _open_native() if windows is not None else None
        try:
            return WaylandBackend(mode, display, grim=grim, windows=windows, windows_via=via,
                                  native=native)
        except BaseException:
            if native is not None:
                native.close()
            raise
    except BaseException:
        if windows is not None:
            windows.close()
        raise


def _open_native() -> WlrScreencopy | None:
    """The own wlr-screencopy connection, or None (grim then does every frame).
    ``LOCALVIDEO_WAYLAND_GRIM=1`` forces grim (benches compare the two)."""
    if os.environ.get("LOCALVIDEO_WAYLAND_GRIM") == "1":
        return None
    try:
        native = WlrScreencopy()
    except CaptureError as exc:
        log.warning("own wlr-screencopy client unavailable (%s); using grim", exc.message)
        return None
    if not all(o.name for o in native.outputs):
        native.close()              # wl_output < v4 names no output: grim matches by name
        return None
    return native


def open_portal(mode: str, display: str, socket_dir: Path = X_SOCKETS,
                state_dir: Path | None = None, why: str = "") -> CaptureBackend:
    """The xdg-desktop-portal ScreenCast path (capture/portal.py), with errors that say
    what does work when it cannot run."""
    from .portal import TOKEN_NAME, PortalBackend  # jeepney (D-Bus): the portal path only

    if display not in ("1", "all"):
        raise UsageError(f"display {display}: through the portal localvideo records the "
                         "monitor you pick in its dialog", hint="use `--display 1`")
    if state_dir is None:
        # Here, not at the top: capture/ depends on errors only, and only this fallback
        # (no state dir given) needs to know where the data dir is.
        from ..config import resolve_data_dir

        state_dir = resolve_data_dir(None)
    try:
        backend = PortalBackend(mode, display, token_file=state_dir / "state" / TOKEN_NAME)
    except LocalVideoError as exc:
        raise NoDisplayError(f"Wayland session ({os.environ.get('WAYLAND_DISPLAY', '')}): "
                             f"{why + ', and ' if why else ''}the xdg-desktop-portal screen "
                             f"cast failed: {exc.message}",
                             hint=f"{exc.hint}; or {_fallback_hint(socket_dir)}"
                             if exc.hint else _fallback_hint(socket_dir)) from exc
    backend.why = "; ".join(w for w in (why, backend.why) if w)
    return backend
