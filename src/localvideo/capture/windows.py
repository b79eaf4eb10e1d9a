"""Windows capture: mss (GDI BitBlt) for pixels, pywin32 for the foreground window.

Unverified on real hardware: written against the documented Win32 APIs and tested here only
at the OS boundary (fake ``win32gui`` / ``win32process`` / ``win32api`` modules).

- Rectangle: ``DwmGetWindowAttribute(DWMWA_EXTENDED_FRAME_BOUNDS)`` is the visible frame;
  ``GetWindowRect`` on Windows 10/11 includes ~7 px of invisible resize border on three sides,
  which would record a strip of whatever is behind the window. It is the fallback only.
- Coordinates are physical pixels because mss makes the process per-monitor DPI aware.
- App name: the executable's name from ``QueryFullProcessImageNameW``, which needs only
  PROCESS_QUERY_LIMITED_INFORMATION and so also works for most elevated processes.
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

from ..errors import CaptureError, UsageError
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
        return WindowInfo(app=self._app(int(pid), hwnd), title=title, x=left, y=top,
                          w=right - left, h=bottom - top, pid=int(pid), window_id=hwnd)

    def _grab_region(self, left: int, top: int, width: int, height: int) -> np.ndarray:
        try:
            shot = self._sct.grab({"left": left, "top": top, "width": width, "height": height})
        except ScreenShotError as exc:
            raise CaptureError(f"cannot read the screen: {exc}",
                               hint="the desktop may be locked; recording resumes after "
                                    "sign-in if you run `localvideo record` again") from exc
        return np.asarray(shot)

    def grab(self) -> Frame | None:
        ts = self.now()
        win = self.active_window()
        extra = window_extra(win)
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
