"""macOS capture: ScreenCaptureKit through pyobjc, with CoreGraphics as the fallback.

Unverified on real hardware: written against Apple's documented APIs and tested here only at
the OS boundary (fake ``Quartz`` / ``AppKit`` / ``ScreenCaptureKit`` modules).

- Which window: ``NSWorkspace.frontmostApplication`` names the app; the CoreGraphics window
  list (front to back) gives its topmost normal-layer window, title and bounds (points).
- Pixels: ``SCScreenshotManager.captureImageWithFilter`` (macOS 14+) on a
  desktop-independent-window filter, so the window is captured even when covered; on older
  systems ``CGWindowListCreateImage``. Both hand back a BGRA ``CGImage``.
- Permission: without Screen Recording access macOS returns wallpaper-only images and no
  window titles, which would be recorded silently; check first and say where to grant it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import Quartz
from AppKit import NSWorkspace

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


def check_permission() -> None:
    """Raise CaptureError unless this process may record the screen."""
    if Quartz.CGPreflightScreenCaptureAccess():
        return
    # Shows the system prompt (once per app); the grant applies after a restart of the app.
    Quartz.CGRequestScreenCaptureAccess()
    raise CaptureError(
        "macOS has not allowed this app to record the screen, so frames would be blank",
        hint=f"open {SETTINGS_PATH}, switch on your terminal (or the app running localvideo), "
             "quit and reopen it, then run `localvideo record` again")


def front_window(infos: list[Any], pid: int, app_name: str) -> WindowInfo | None:
    """The frontmost app's topmost visible normal window from a CGWindowList (front to back)."""
    for info in infos:
        if int(info.get("kCGWindowOwnerPID", -1)) != pid:
            continue
        if int(info.get("kCGWindowLayer", 0)) != 0 or float(info.get("kCGWindowAlpha", 1)) == 0:
            continue          # menus, tooltips, the menu bar extras, invisible helpers
        b = info.get("kCGWindowBounds") or {}
        w, h = int(b.get("Width", 0)), int(b.get("Height", 0))
        if w < 1 or h < 1:
            continue
        return WindowInfo(app=app_name or str(info.get("kCGWindowOwnerName", "")),
                          title=str(info.get("kCGWindowName") or ""),
                          x=int(b.get("X", 0)), y=int(b.get("Y", 0)), w=w, h=h, pid=pid,
                          window_id=int(info["kCGWindowNumber"]))
    return None


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
        app = NSWorkspace.sharedWorkspace().frontmostApplication()
        if app is None:
            return None
        opts = (Quartz.kCGWindowListOptionOnScreenOnly
                | Quartz.kCGWindowListExcludeDesktopElements)
        infos = Quartz.CGWindowListCopyWindowInfo(opts, Quartz.kCGNullWindowID) or []
        return front_window(list(infos), int(app.processIdentifier()),
                            str(app.localizedName() or ""))

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
        ts = self.now()
        win = self.active_window()
        extra = window_extra(win)
        if self.mode == "display":
            pixels = self._display_pixels()
            idx = 1 if self.display == "all" else int(self.display)
            did = self._displays[idx - 1]
            return Frame(pixels=pixels, ts=ts, app=win.app if win else "",
                         title=win.title if win else "", w=pixels.shape[1], h=pixels.shape[0],
                         display=self.display,
                         screen_w=int(Quartz.CGDisplayPixelsWide(did)),
                         screen_h=int(Quartz.CGDisplayPixelsHigh(did)), extra=extra)
        if win is None:
            return None
        shot = self._window_pixels(win)
        if shot is None or shot.size == 0:
            return None
        idx = self._display_of(win)
        did = self._displays[idx - 1]
        # Rectangles stay in points (what the window list reports); the pixel scale says how
        # they map onto the image.
        extra["scale"] = shot.shape[1] / win.w
        return Frame(pixels=shot, ts=ts, app=win.app, title=win.title, x=win.x, y=win.y,
                     w=win.w, h=win.h, display=str(idx),
                     screen_w=int(Quartz.CGDisplayPixelsWide(did)),
                     screen_h=int(Quartz.CGDisplayPixelsHigh(did)), extra=extra)
