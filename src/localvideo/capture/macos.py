"""macOS capture: ScreenCaptureKit through pyobjc, with CoreGraphics as the fallback.

Unverified on real hardware: written against Apple's documented APIs and tested here only at
the OS boundary (fake ``Quartz`` / ``AppKit`` / ``ScreenCaptureKit`` modules).

- Which window: the first on-screen normal-layer (0) window of the CoreGraphics window list,
  which is ordered front to back, names the app (its owner), the title and the bounds
  (points). Not ``NSWorkspace.frontmostApplication``: AppKit refreshes that value from
  notifications delivered by a run loop, which the recorder has none of, so it stayed on
  whatever app was in front at start.
- Sizes: every rectangle a Frame carries (window, screen) is in pixels, like the image: the
  window list and ``CGDisplayPixelsWide`` speak points (on Retina 1 point = 2 pixels), the
  display mode says how many pixels a point is, and ``extra["scale"]`` keeps that ratio.
- Pixels: ``SCScreenshotManager.captureImageWithFilter`` (macOS 14+) on a
  desktop-independent-window filter, so the window is captured even when covered; on older
  systems ``CGWindowListCreateImage``. Both hand back a BGRA ``CGImage``.
- Permission: without Screen Recording access macOS returns wallpaper-only images and no
  window titles, which would be recorded silently; check first and say where to grant it,
  and to which program (the terminal, or the Python binary itself under launchd).
- Memory: pyobjc hands back autoreleased Objective-C objects; only a pool drains them and
  the recorder runs no run loop that would, so every grab runs in its own pool.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import numpy as np
import objc
import Quartz

from ..errors import CaptureError, UsageError
from .base import CaptureBackend, Frame, WindowInfo, window_extra
from .registry import check_display, check_mode

try:  # macOS 12.3+; SCScreenshotManager itself is macOS 14+
    import ScreenCaptureKit as SCK
except ImportError:  # pragma: no cover - depends on the installed pyobjc frameworks
    SCK = None

SETTINGS_PATH = "System Settings › Privacy & Security › Screen Recording"
_BGRA = 0x42475241                  # kCVPixelFormatType_32BGRA ('BGRA')
_BYTE_ORDER_MASK = 0x7000           # kCGBitmapByteOrderMask
_BYTE_ORDER_32_LITTLE = 0x2000      # kCGBitmapByteOrder32Little: BGRA in memory


# $TERM_PROGRAM as terminals set it → the name System Settings lists.
_TERMINALS = {"Apple_Terminal": "Terminal", "iTerm.app": "iTerm", "vscode": "Visual Studio Code",
              "WezTerm": "WezTerm", "ghostty": "Ghostty", "Hyper": "Hyper"}


def under_launchd() -> bool:
    """Started by launchd (the autostart agent), not from a terminal: its parent is pid 1."""
    return os.getppid() == 1 or "localvideo" in os.environ.get("XPC_SERVICE_NAME", "")


def permission_holder() -> str:
    """Who macOS asks Screen Recording for: the app that started this process — a terminal,
    or, under launchd, the Python binary itself (the real file, not a venv's symlink)."""
    if under_launchd():
        return f"the Python program {os.path.realpath(sys.executable)} (add it with +)"
    term = _TERMINALS.get(os.environ.get("TERM_PROGRAM", ""), "")
    return f"{term or 'your terminal'} (or the app running localvideo)"


def check_permission() -> None:
    """Raise CaptureError unless this process may record the screen."""
    if Quartz.CGPreflightScreenCaptureAccess():
        return
    # Shows the system prompt (once per app); the grant applies after a restart of the app.
    Quartz.CGRequestScreenCaptureAccess()
    again = ("then restart the agent: `localvideo service uninstall` and "
             "`localvideo service install`" if under_launchd()
             else "quit and reopen it, then run `localvideo record` again")
    raise CaptureError(
        "macOS has not allowed this app to record the screen, so frames would be blank",
        hint=f"open {SETTINGS_PATH}, switch on {permission_holder()}, {again}")


# Layer-0 windows that belong to no app the user is in (the cursor's and screen shields).
_NOT_APPS = {"Window Server"}


def _normal_window(info: Any) -> tuple[int, int, int, int] | None:
    """Bounds (x, y, w, h, points) of a visible normal-layer window, else None."""
    if int(info.get("kCGWindowLayer", 0)) != 0 or float(info.get("kCGWindowAlpha", 1)) == 0:
        return None           # menus, tooltips, the menu bar extras, invisible helpers
    b = info.get("kCGWindowBounds") or {}
    w, h = int(b.get("Width", 0)), int(b.get("Height", 0))
    if w < 1 or h < 1:
        return None
    return int(b.get("X", 0)), int(b.get("Y", 0)), w, h


def frontmost_window(infos: list[Any]) -> WindowInfo | None:
    """The window in front: the first on-screen normal window of a CGWindowList (front to
    back). Its owner is the frontmost app — read fresh every call, unlike NSWorkspace's."""
    for info in infos:
        if str(info.get("kCGWindowOwnerName", "")) in _NOT_APPS:
            continue
        bounds = _normal_window(info)
        if bounds is None:
            continue
        pid = int(info.get("kCGWindowOwnerPID", -1))
        return front_window([info], pid, "")
    return None



def front_window(infos: list[Any], pid: int, app_name: str) -> WindowInfo | None:
    """The frontmost app's topmost visible normal window from a CGWindowList (front to back)."""
    for info in infos:
        if int(info.get("kCGWindowOwnerPID", -1)) != pid:
            continue
        bounds = _normal_window(info)
        if bounds is None:
            continue
        x, y, w, h = bounds
        return WindowInfo(app=app_name or str(info.get("kCGWindowOwnerName", "")),
                          title=str(info.get("kCGWindowName") or ""),
                          x=x, y=y, w=w, h=h, pid=pid,
                          window_id=int(info["kCGWindowNumber"]))
    return None


def display_pixels(did: int) -> tuple[int, int, float]:
    """(width, height) of a display in pixels and its pixels per point.

    ``CGDisplayPixelsWide/High`` answer in points despite the name (1512 × 982 on a 14-inch
    MacBook Pro whose panel is 3024 × 1964); the current display mode has both.
    """
    mode = Quartz.CGDisplayCopyDisplayMode(did)
    pt_w = int(Quartz.CGDisplayPixelsWide(did))
    if mode is None:
        return pt_w, int(Quartz.CGDisplayPixelsHigh(did)), 1.0
    px_w, px_h = (int(Quartz.CGDisplayModeGetPixelWidth(mode)),
                  int(Quartz.CGDisplayModeGetPixelHeight(mode)))
    scale = px_w / max(1, int(Quartz.CGDisplayModeGetWidth(mode)) or pt_w)
    return px_w, px_h, scale


def cgimage_to_bgra(image: Any) -> np.ndarray:
    """Copy a 32-bit CGImage into an H×W×4 BGRA array, dropping row padding."""
    w, h = int(Quartz.CGImageGetWidth(image)), int(Quartz.CGImageGetHeight(image))
    stride = int(Quartz.CGImageGetBytesPerRow(image))
    if int(Quartz.CGImageGetBitsPerPixel(image)) != 32:
        raise CaptureError("macOS returned an image that is not 32-bit BGRA",
                           hint="switch the display to standard (SDR) colour and try again")
    data = Quartz.CGDataProviderCopyData(Quartz.CGImageGetDataProvider(image))
    rows = np.frombuffer(bytes(data), dtype=np.uint8)[: h * stride].reshape(h, stride)
    px = rows[:, : w * 4].reshape(h, w, 4)
    if int(Quartz.CGImageGetBitmapInfo(image)) & _BYTE_ORDER_MASK != _BYTE_ORDER_32_LITTLE:
        px = px[..., [3, 2, 1, 0]]      # big-endian ARGB → BGRA
    return np.ascontiguousarray(px)


def _wait(start: Any, timeout: float, what: str) -> Any:
    """Run an API that answers through a completion handler, and wait for the answer.

    ScreenCaptureKit calls handlers on its own dispatch queue, so a plain Event works without
    a run loop on this thread.
    """
    done = threading.Event()
    box: dict[str, Any] = {}

    def handler(result: Any, error: Any) -> None:
        box["result"], box["error"] = result, error
        done.set()

    start(handler)
    if not done.wait(timeout):
        raise CaptureError(f"macOS did not answer {what} within {timeout:.0f} s",
                           hint="check the Screen Recording permission in " + SETTINGS_PATH)
    if box.get("error") is not None or box.get("result") is None:
        raise CaptureError(f"{what} failed: {box.get('error')}",
                           hint="check the Screen Recording permission in " + SETTINGS_PATH)
    return box["result"]


class MacOSBackend(CaptureBackend):
    name = "macos"

    def __init__(self, mode: str = "active-window", display: str = "1",
                 timeout: float = 2.0) -> None:
        mode, display = check_mode(mode), check_display(display)
        super().__init__(mode=mode, display=display)
        self.timeout = timeout
        check_permission()
        err, ids, count = Quartz.CGGetActiveDisplayList(32, None, None)
        self._displays = [int(d) for d in list(ids or [])[: int(count)]] if not err else []
        if not self._displays:
            raise CaptureError("macOS reports no active display", hint="wake the screen and retry")
        if display != "all" and int(display) > len(self._displays):
            n = len(self._displays)
            raise UsageError(f"display {display} does not exist: this Mac has {n} display"
                             f"{'s' if n != 1 else ''}",
                             hint=f"use `--display 1`..`--display {n}` or `--display all`")
        self._sck = SCK is not None and hasattr(SCK, "SCScreenshotManager")

    # -- window ----------------------------------------------------------------------------

    def active_window(self) -> WindowInfo | None:
        opts = (Quartz.kCGWindowListOptionOnScreenOnly
                | Quartz.kCGWindowListExcludeDesktopElements)
        infos = Quartz.CGWindowListCopyWindowInfo(opts, Quartz.kCGNullWindowID) or []
        return frontmost_window(list(infos))

    def _display_of(self, win: WindowInfo) -> int:
        cx, cy = win.x + win.w / 2, win.y + win.h / 2
        for i, did in enumerate(self._displays, start=1):
            r = Quartz.CGDisplayBounds(did)
            if (r.origin.x <= cx < r.origin.x + r.size.width
                    and r.origin.y <= cy < r.origin.y + r.size.height):
                return i
        return 1

    # -- pixels ----------------------------------------------------------------------------

    def _shareable(self) -> Any:
        return _wait(lambda h: SCK.SCShareableContent
                     .getShareableContentExcludingDesktopWindows_onScreenWindowsOnly_completionHandler_(
                         True, True, h), self.timeout, "the list of shareable windows")

    def _sck_capture(self, content_filter: Any, w_pt: int, h_pt: int) -> np.ndarray:
        # Ask for native pixels (Retina is 2 pixels per point), not points.
        scale = float(getattr(content_filter, "pointPixelScale", lambda: 1.0)() or 1.0)
        config = SCK.SCStreamConfiguration.alloc().init()
        config.setWidth_(max(1, round(w_pt * scale)))
        config.setHeight_(max(1, round(h_pt * scale)))
        config.setPixelFormat_(_BGRA)
        config.setShowsCursor_(False)
        image = _wait(lambda h: SCK.SCScreenshotManager
                      .captureImageWithFilter_configuration_completionHandler_(
                          content_filter, config, h), self.timeout, "the screenshot")
        return cgimage_to_bgra(image)

    def _window_pixels(self, win: WindowInfo) -> np.ndarray | None:
        if self._sck:
            content = self._shareable()
            match = [w for w in content.windows() if int(w.windowID()) == win.window_id]
            if not match:
                return None           # closed between the two calls
            flt = SCK.SCContentFilter.alloc().initWithDesktopIndependentWindow_(match[0])
            return self._sck_capture(flt, win.w, win.h)
        image = Quartz.CGWindowListCreateImage(
            Quartz.CGRectNull, Quartz.kCGWindowListOptionIncludingWindow, win.window_id,
            Quartz.kCGWindowImageBoundsIgnoreFraming)
        return None if image is None else cgimage_to_bgra(image)

    def _display_pixels(self) -> np.ndarray:
        if self.display == "all":
            image = Quartz.CGWindowListCreateImage(
                Quartz.CGRectInfinite, Quartz.kCGWindowListOptionOnScreenOnly,
                Quartz.kCGNullWindowID, Quartz.kCGWindowImageDefault)
            if image is None:
                raise CaptureError("this macOS version cannot capture all displays at once",
                                   hint="record one display: `--display 1`")
            return cgimage_to_bgra(image)
        did = self._displays[int(self.display) - 1]
        if self._sck:
            displays = [d for d in self._shareable().displays() if int(d.displayID()) == did]
            if displays:
                d = displays[0]
                flt = SCK.SCContentFilter.alloc().initWithDisplay_excludingWindows_(d, [])
                return self._sck_capture(flt, int(d.width()), int(d.height()))
        image = Quartz.CGDisplayCreateImage(did)
        if image is None:
            raise CaptureError(f"macOS returned no image for display {self.display}",
                               hint="check the Screen Recording permission in " + SETTINGS_PATH)
        return cgimage_to_bgra(image)

    def grab(self) -> Frame | None:
        # Each grab drains what it autoreleased (images, window lists, SCK content): with
        # no run loop, nothing else ever would, and memory grew over hours of recording.
        with objc.autorelease_pool():
            return self._grab()

    def _grab(self) -> Frame | None:
        ts = self.now()
        win = self.active_window()
        extra = window_extra(win)
        if self.mode == "display":
            pixels = self._display_pixels()
            h, w = pixels.shape[:2]
            if self.display != "all":
                extra["scale"] = display_pixels(self._displays[int(self.display) - 1])[2]
            # The screen is the image itself: all displays at once have no one mode.
            return Frame(pixels=pixels, ts=ts, app=win.app if win else "",
                         title=win.title if win else "", w=w, h=h, display=self.display,
                         screen_w=w, screen_h=h, extra=extra)
        if win is None:
            return None
        shot = self._window_pixels(win)
        if shot is None or shot.size == 0:
            return None
        idx = self._display_of(win)
        screen_w, screen_h, display_scale = display_pixels(self._displays[idx - 1])
        # Pixels for every size the recorder sees (the canvas is chosen from screen_w/h and
        # the image is in pixels); window_rect in extra keeps the window list's points.
        scale = shot.shape[1] / win.w
        extra["scale"] = scale
        return Frame(pixels=shot, ts=ts, app=win.app, title=win.title,
                     x=round(win.x * display_scale), y=round(win.y * display_scale),
                     w=shot.shape[1], h=shot.shape[0], display=str(idx),
                     screen_w=screen_w, screen_h=screen_h, extra=extra)
