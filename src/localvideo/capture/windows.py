"""Windows capture: mss (GDI BitBlt) for pixels, pywin32 for the foreground window.

Unverified on real hardware: written against the documented Win32 APIs and tested here only
at the OS boundary (fake ``win32gui`` / ``win32process`` / ``win32api`` modules).

- Rectangle: ``DwmGetWindowAttribute(DWMWA_EXTENDED_FRAME_BOUNDS)`` is the visible frame;
  ``GetWindowRect`` on Windows 10/11 includes ~7 px of invisible resize border on three sides,
  which would record a strip of whatever is behind the window. It is the fallback only.
- Coordinates are physical pixels because mss makes the process per-monitor DPI aware.
- App name: the executable's name from ``QueryFullProcessImageNameW``, which needs only
  PROCESS_QUERY_LIMITED_INFORMATION and so also works for most elevated processes. A UWP
  app (Calculator, Settings, Photos...) is an ``ApplicationFrameWindow`` of
  ApplicationFrameHost.exe; the app's own process owns its child ``CoreWindow``, so that
  child's process names the app and exclusions match it.
- Scale: ``GetDpiForWindow`` / 96 is the window's pixels per point (1.5 at 150 %), which
  tells the canvas how far a big window may be scaled down and stay readable.
- Lock screen: the input desktop becomes Winlogon and every BitBlt fails. That is a state,
  not a failure: :class:`ScreenLockedError` tells the recorder to note it and wait.
"""

from __future__ import annotations

import ctypes
import ntpath
from typing import Any

import mss
import numpy as np
import win32api
import win32gui
import win32process
from mss.exception import ScreenShotError

from ..errors import CaptureError, ScreenLockedError, UsageError
from .base import (
    CaptureBackend,
    Frame,
    WindowInfo,
    check_display_exists,
    clip_to_screen,
    window_extra,
)
from .registry import check_display, check_mode

PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
DWMWA_EXTENDED_FRAME_BOUNDS = 9
DESKTOP_READOBJECTS = 0x0001
UOI_NAME = 2
UWP_HOST = "applicationframehost"
UWP_CORE_CLASS = "Windows.UI.Core.CoreWindow"


class _RECT(ctypes.Structure):
    _fields_ = [("left", ctypes.c_long), ("top", ctypes.c_long),
                ("right", ctypes.c_long), ("bottom", ctypes.c_long)]


def dwm_frame_bounds(hwnd: int) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the visible frame, or None where DWM cannot say."""
    try:
        dwmapi = ctypes.WinDLL("dwmapi")  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    rect = _RECT()
    hr = dwmapi.DwmGetWindowAttribute(ctypes.c_void_p(hwnd), DWMWA_EXTENDED_FRAME_BOUNDS,
                                      ctypes.byref(rect), ctypes.sizeof(rect))
    return (rect.left, rect.top, rect.right, rect.bottom) if hr == 0 else None


def process_image_path(handle: Any) -> str:
    """Full path of a process's executable (QueryFullProcessImageNameW), or ""."""
    try:
        kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return ""
    size = ctypes.c_ulong(32768)
    buf = ctypes.create_unicode_buffer(size.value)
    ok = kernel32.QueryFullProcessImageNameW(ctypes.c_void_p(int(handle)), 0, buf,
                                             ctypes.byref(size))
    return buf.value if ok else ""


def window_dpi(hwnd: int) -> int:
    """The window's DPI (96 = 100 %), or 0 where Windows cannot say (before 10 1607)."""
    try:
        user32 = ctypes.WinDLL("user32")  # type: ignore[attr-defined]
        return int(user32.GetDpiForWindow(ctypes.c_void_p(hwnd)))
    except (AttributeError, OSError):
        return 0


def input_desktop_name() -> str | None:
    """The desktop that receives input: "Default" while the user works, "Winlogon" on the
    lock screen (or "" when it cannot even be opened: the secure desktop). None off Windows."""
    try:
        user32 = ctypes.WinDLL("user32")  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    desk = user32.OpenInputDesktop(0, False, DESKTOP_READOBJECTS)
    if not desk:
        return ""
    try:
        buf = ctypes.create_unicode_buffer(256)
        needed = ctypes.c_ulong(0)
        ok = user32.GetUserObjectInformationW(desk, UOI_NAME, buf, ctypes.sizeof(buf),
                                              ctypes.byref(needed))
        return buf.value if ok else ""
    finally:
        user32.CloseDesktop(desk)


def app_name_from_path(path: str) -> str:
    """``C:\\Program Files\\Mozilla Firefox\\firefox.exe`` → ``firefox``."""
    base = ntpath.basename(path)
    return base[:-4] if base.lower().endswith(".exe") else base


def _open_mss() -> Any:
    factory = getattr(mss, "MSS", None) or mss.mss
    return factory()


class WindowsBackend(CaptureBackend):
    name = "windows"

    def __init__(self, mode: str = "active-window", display: str = "1") -> None:
        mode, display = check_mode(mode), check_display(display)
        super().__init__(mode=mode, display=display)
        try:
            self._sct = _open_mss()
            self._monitors = list(self._sct.monitors)
        except ScreenShotError as exc:
            raise CaptureError(f"cannot read the screen: {exc}",
                               hint="run localvideo in the signed-in desktop session, "
                                    "not as a service") from exc
        try:
            check_display_exists(display, len(self._monitors) - 1, "this PC")
        except UsageError:
            self.close()
            raise
        self._names: dict[int, str] = {}

    def _app(self, pid: int, hwnd: int) -> str:
        name = self._names.get(pid)
        if name is None:
            name = ""
            try:
                handle = win32api.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
            except win32api.error:
                handle = None  # e.g. a protected system process: fall back to the class name
            if handle:
                try:
                    name = app_name_from_path(process_image_path(handle))
                finally:
                    win32api.CloseHandle(handle)
            if not name:
                name = str(win32gui.GetClassName(hwnd) or "")
            if len(self._names) > 512:
                self._names.clear()
            self._names[pid] = name
        return name

    def _uwp_app(self, hwnd: int, host_pid: int) -> tuple[int, int] | None:
        """(pid, hwnd) of the app inside a UWP frame: the child CoreWindow whose process is
        not the frame host's. None when the app is suspended or minimised (its CoreWindow
        is then not a child of the frame)."""
        found: list[tuple[int, int, bool]] = []

        def visit(child: int, _: object) -> bool:
            try:
                _, pid = win32process.GetWindowThreadProcessId(child)
                core = str(win32gui.GetClassName(child) or "") == UWP_CORE_CLASS
            except win32gui.error:
                return True
            if int(pid) and int(pid) != host_pid:
                found.append((int(pid), int(child), core))
            return True     # pywin32 raises when a callback stops the enumeration early

        try:
            win32gui.EnumChildWindows(hwnd, visit, None)
        except win32gui.error:
            return None
        found.sort(key=lambda f: not f[2])          # the CoreWindow first
        return (found[0][0], found[0][1]) if found else None

    def active_window(self) -> WindowInfo | None:
        hwnd = int(win32gui.GetForegroundWindow() or 0)
        if not hwnd:
            return None            # the secure desktop (UAC, lock screen) or a switch in progress
        try:
            if not win32gui.IsWindowVisible(hwnd) or win32gui.IsIconic(hwnd):
                return None
            bounds = dwm_frame_bounds(hwnd) or tuple(win32gui.GetWindowRect(hwnd))
            _, pid = win32process.GetWindowThreadProcessId(hwnd)
            title = str(win32gui.GetWindowText(hwnd) or "")
        except win32gui.error:
            return None            # the window closed between two calls
        left, top, right, bottom = (int(v) for v in bounds)
        if right - left < 1 or bottom - top < 1:
            return None
        pid = int(pid)
        app = self._app(pid, hwnd)
        if app.casefold() == UWP_HOST:
            inner = self._uwp_app(hwnd, pid)
            if inner is not None:
                pid = inner[0]
                app = self._app(pid, inner[1])
        return WindowInfo(app=app, title=title, x=left, y=top,
                          w=right - left, h=bottom - top, pid=pid, window_id=hwnd)

    def locked(self) -> bool:
        """Whether the screen is locked (or the secure desktop is up)."""
        name = input_desktop_name()
        return name is not None and name.casefold() != "default"

    def _check_locked(self) -> None:
        if self.locked():
            raise ScreenLockedError("the screen is locked",
                                    hint="recording resumes by itself after sign-in")

    def _grab_region(self, left: int, top: int, width: int, height: int) -> np.ndarray:
        try:
            shot = self._sct.grab({"left": left, "top": top, "width": width, "height": height})
        except ScreenShotError as exc:
            self._check_locked()
            raise CaptureError(f"cannot read the screen: {exc}",
                               hint="if it keeps failing, run localvideo in the signed-in "
                                    "desktop session") from exc
        return np.asarray(shot)

    def grab(self) -> Frame | None:
        ts = self.now()
        win = self.active_window()
        if win is None:
            self._check_locked()    # no foreground window: the lock screen, or a switch
        extra = window_extra(win)
        # The window's own DPI; in display mode the foreground window may sit on another
        # monitor, so the display keeps the default (never scaled below its pixels).
        dpi = window_dpi(win.window_id) if win and win.window_id and self.mode != "display" else 0
        if dpi > 0:
            extra["scale"] = dpi / 96
        if self.mode == "display":
            mon = self._monitors[0 if self.display == "all" else int(self.display)]
            pixels = self._grab_region(mon["left"], mon["top"], mon["width"], mon["height"])
            return Frame(pixels=pixels, ts=ts, app=win.app if win else "",
                         title=win.title if win else "", x=mon["left"], y=mon["top"],
                         w=mon["width"], h=mon["height"], display=self.display,
                         screen_w=mon["width"], screen_h=mon["height"], extra=extra)
        if win is None:
            return None
        # Clip to the virtual screen: maximised windows hang a few pixels past the edges and
        # windows can be dragged partly off-screen.
        rect = clip_to_screen(win, self._monitors[0])
        if rect is None:
            return None
        x, y, w, h = rect
        cx, cy = x + w // 2, y + h // 2
        idx = next((i for i, m in enumerate(self._monitors[1:], start=1)
                    if m["left"] <= cx < m["left"] + m["width"]
                    and m["top"] <= cy < m["top"] + m["height"]), 1)
        mon = self._monitors[idx]
        extra["clipped"] = rect != (win.x, win.y, win.w, win.h)
        return Frame(pixels=self._grab_region(x, y, w, h), ts=ts, app=win.app,
                     title=win.title, x=x, y=y, w=w, h=h, display=str(idx),
                     screen_w=mon["width"], screen_h=mon["height"], extra=extra)

    def close(self) -> None:
        sct = getattr(self, "_sct", None)
        if sct is not None:
            sct.close()
            self._sct = None
