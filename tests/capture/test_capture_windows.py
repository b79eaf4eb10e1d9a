"""Windows backend at the OS boundary: fake pywin32 modules, real mss pixels.

pywin32 cannot run here, so ``win32gui`` / ``win32process`` / ``win32api`` are small fakes
that answer like the documented calls. The pixels still come from real mss, grabbing the
test's real Xvfb screen, so rectangles and clipping are checked against real pixels.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from lvdesktop import XDisplay

from localvideo.errors import UsageError

pytestmark = pytest.mark.x11


class FakeWinError(Exception):
    """pywintypes.error stand-in."""


@dataclass
class FakeWin:
    hwnd: int = 0x10
    rect: tuple[int, int, int, int] = (0, 0, 100, 100)       # GetWindowRect
    title: str = ""
    pid: int = 4321
    exe: str = ""
    visible: bool = True
    iconic: bool = False
    closed: bool = False
    open_denied: bool = False
    class_name: str = "Chrome_WidgetWin_1"
    handles_closed: list[int] = field(default_factory=list)

    def modules(self) -> dict[str, types.ModuleType]:
        w = self
        gui, proc, api = (types.ModuleType(n) for n in ("win32gui", "win32process", "win32api"))

        def check(hwnd: int) -> None:
            if w.closed or hwnd != w.hwnd:
                raise FakeWinError(1400, "GetWindowRect", "Invalid window handle.")

        def rect(hwnd: int) -> tuple[int, int, int, int]:
            check(hwnd)
            return w.rect

        def text(hwnd: int) -> str:
            check(hwnd)
            return w.title

        def open_process(access: int, inherit: bool, pid: int) -> int:
            assert access == 0x1000        # limited information is all we ask for
            if w.open_denied:
                raise FakeWinError(5, "OpenProcess", "Access is denied.")
            return 0x99 if pid == w.pid else 0

        gui.error = FakeWinError  # type: ignore[attr-defined]
        gui.GetForegroundWindow = lambda: w.hwnd  # type: ignore[attr-defined]
        gui.IsWindowVisible = lambda h: w.visible  # type: ignore[attr-defined]
        gui.IsIconic = lambda h: w.iconic  # type: ignore[attr-defined]
        gui.GetWindowRect = rect  # type: ignore[attr-defined]
        gui.GetWindowText = text  # type: ignore[attr-defined]
        gui.GetClassName = lambda h: w.class_name  # type: ignore[attr-defined]
        proc.GetWindowThreadProcessId = lambda h: (77, w.pid)  # type: ignore[attr-defined]
        api.error = FakeWinError  # type: ignore[attr-defined]
        api.OpenProcess = open_process  # type: ignore[attr-defined]
        api.CloseHandle = w.handles_closed.append  # type: ignore[attr-defined]
        return {"win32gui": gui, "win32process": proc, "win32api": api}


@pytest.fixture(autouse=True)
def _forget_module() -> Iterator[None]:
    yield
    sys.modules.pop("localvideo.capture.windows", None)
    import localvideo.capture as pkg
    pkg.__dict__.pop("windows", None)


def _load(monkeypatch: pytest.MonkeyPatch, fake: FakeWin, exe_path: str = "",
          dwm: tuple[int, int, int, int] | None = None) -> Any:
    for name, mod in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    sys.modules.pop("localvideo.capture.windows", None)
    m = importlib.import_module("localvideo.capture.windows")
    # The two ctypes calls (dwmapi, kernel32) are the rest of the OS boundary.
    monkeypatch.setattr(m, "dwm_frame_bounds", lambda hwnd: dwm)
    monkeypatch.setattr(m, "process_image_path", lambda h: exe_path if h == 0x99 else "")
    return m


def _screen(desktop: XDisplay) -> np.ndarray:
    from localvideo.capture.x11 import X11Backend

    b = X11Backend(mode="display", display="all")
    try:
        f = b.grab()
    finally:
        b.close()
    assert f is not None
    return f.pixels


def test_foreground_window_real_pixels(monkeypatch: pytest.MonkeyPatch,
                                       desktop: XDisplay) -> None:
    desktop.xterm("Win test", "text to see", geometry="50x12+300+200")
    fake = FakeWin(rect=(290, 190, 900, 600), title="Inbox - Outlook")
    m = _load(monkeypatch, fake, exe_path=r"C:\Program Files\Microsoft Office\OUTLOOK.EXE",
              dwm=(297, 190, 893, 593))
    b = m.WindowsBackend()
    try:
        f = b.grab()
    finally:
        b.close()
    assert f is not None
    assert (f.app, f.title, f.x, f.y, f.w, f.h) == ("OUTLOOK", "Inbox - Outlook",
                                                    297, 190, 596, 403)   # DWM, not GetWindowRect
    assert f.extra["clipped"] is False and fake.handles_closed == [0x99]
    assert (f.screen_w, f.screen_h, f.display) == (1920, 1080, "1")
    assert np.array_equal(f.pixels, _screen(desktop)[190:593, 297:893])


def test_rect_fallback_and_clipping(monkeypatch: pytest.MonkeyPatch, desktop: XDisplay) -> None:
    # A maximised window hangs past every edge; without DWM, GetWindowRect is used.
    fake = FakeWin(rect=(-8, -8, 1928, 1088), title="Maximised")
    m = _load(monkeypatch, fake, exe_path=r"C:\Windows\notepad.exe")
    b = m.WindowsBackend()
    try:
        f = b.grab()
    finally:
        b.close()
    assert f is not None and f.app == "notepad"
    assert (f.x, f.y, f.w, f.h) == (0, 0, 1920, 1080) and f.extra["clipped"] is True
    assert f.extra["window_rect"] == (-8, -8, 1936, 1096)
    assert f.pixels.shape == (1080, 1920, 4)


def test_nothing_to_capture_is_none(monkeypatch: pytest.MonkeyPatch, desktop: XDisplay) -> None:
    fake = FakeWin(rect=(10, 10, 300, 200))
    m = _load(monkeypatch, fake)
    b = m.WindowsBackend()
    try:
        fake.iconic = True
        assert b.grab() is None                   # minimised
        fake.iconic, fake.hwnd = False, 0
        assert b.grab() is None                   # no foreground window (UAC, lock screen)
        fake.hwnd, fake.closed = 0x10, True
        assert b.active_window() is None          # closed between calls: no crash
        fake.closed, fake.rect = False, (3000, 10, 3200, 200)
        assert b.grab() is None                   # wholly off-screen
        fake.rect = (50, 50, 50, 90)
        assert b.grab() is None                   # zero width
    finally:
        b.close()


def test_app_name_when_process_cannot_be_opened(monkeypatch: pytest.MonkeyPatch,
                                                desktop: XDisplay) -> None:
    fake = FakeWin(rect=(10, 10, 300, 200), open_denied=True, class_name="TaskManagerWindow")
    m = _load(monkeypatch, fake)
    b = m.WindowsBackend()
    try:
        win = b.active_window()
    finally:
        b.close()
    assert win is not None and win.app == "TaskManagerWindow" and fake.handles_closed == []


def test_app_name_from_path(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _load(monkeypatch, FakeWin())
    assert m.app_name_from_path(r"C:\Program Files\Mozilla Firefox\firefox.exe") == "firefox"
    assert m.app_name_from_path(r"D:\tools\My App.EXE") == "My App"
    assert m.app_name_from_path("") == ""
    # ctypes.WinDLL does not exist off Windows: the real helpers say "unknown", not crash.
    sys.modules.pop("localvideo.capture.windows", None)
    real = importlib.import_module("localvideo.capture.windows")
    assert real.dwm_frame_bounds(1) is None and real.process_image_path(1) == ""


def test_display_mode_and_bad_display(monkeypatch: pytest.MonkeyPatch,
                                      desktop: XDisplay) -> None:
    fake = FakeWin(rect=(10, 10, 300, 200), title="Editor")
    m = _load(monkeypatch, fake, exe_path=r"C:\x\code.exe")
    b = m.WindowsBackend(mode="display", display="1")
    try:
        f = b.grab()
    finally:
        b.close()
    assert f is not None and f.pixels.shape == (1080, 1920, 4)
    assert (f.app, f.title) == ("code", "Editor")
    with pytest.raises(UsageError, match="1 monitor"):
        m.WindowsBackend(mode="display", display="4")
