"""Windows backend at the OS boundary: fake pywin32 modules, real mss pixels.

pywin32 cannot run here, so ``win32gui`` / ``win32process`` / ``win32api`` are small fakes
that answer like the documented calls. The pixels still come from real mss, grabbing the
test's real Xvfb screen, so rectangles and clipping are checked against real pixels.

Where the real system surprises, the fake does too (issue 9):
- a UWP app's foreground window belongs to ApplicationFrameHost.exe; the app's own process
  owns a child ``Windows.UI.Core.CoreWindow`` (EnumChildWindows walks all descendants);
- on the lock screen the input desktop is "Winlogon" and every GDI grab fails.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lvdesktop import XDisplay

from localvideo.errors import CaptureError, UsageError

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
    # Child windows of the foreground window: (hwnd, pid, class name), all descendants.
    children: list[tuple[int, int, str]] = field(default_factory=list)
    exes: dict[int, str] = field(default_factory=dict)   # other processes: pid → exe path
    locked: bool = False

    def modules(self) -> dict[str, types.ModuleType]:
        w = self
        gui, proc, api = (types.ModuleType(n) for n in ("win32gui", "win32process", "win32api"))

        def check(hwnd: int) -> None:
            if w.closed or (hwnd != w.hwnd and hwnd not in {c[0] for c in w.children}):
                raise FakeWinError(1400, "GetWindowRect", "Invalid window handle.")

        def thread_process(hwnd: int) -> tuple[int, int]:
            check(hwnd)
            pid = next((c[1] for c in w.children if c[0] == hwnd), w.pid)
            return 77, pid

        def class_name(hwnd: int) -> str:
            check(hwnd)
            return next((c[2] for c in w.children if c[0] == hwnd), w.class_name)

        def enum_children(hwnd: int, callback: Any, extra: Any) -> None:
            check(hwnd)
            for child in w.children:
                if not callback(child[0], extra):
                    # pywin32: a callback that stops the walk makes EnumChildWindows raise.
                    raise FakeWinError(0, "EnumChildWindows", "No error message is available")

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
            if pid == w.pid:
                return 0x99
            return 0x1000 + pid if pid in w.exes else 0

        gui.error = FakeWinError  # type: ignore[attr-defined]
        gui.GetForegroundWindow = lambda: w.hwnd  # type: ignore[attr-defined]
        gui.IsWindowVisible = lambda h: w.visible  # type: ignore[attr-defined]
        gui.IsIconic = lambda h: w.iconic  # type: ignore[attr-defined]
        gui.GetWindowRect = rect  # type: ignore[attr-defined]
        gui.GetWindowText = text  # type: ignore[attr-defined]
        gui.GetClassName = class_name  # type: ignore[attr-defined]
        gui.EnumChildWindows = enum_children  # type: ignore[attr-defined]
        proc.GetWindowThreadProcessId = thread_process  # type: ignore[attr-defined]
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
    # The ctypes calls (dwmapi, kernel32, user32) are the rest of the OS boundary.
    monkeypatch.setattr(m, "dwm_frame_bounds", lambda hwnd: dwm)
    monkeypatch.setattr(
        m, "process_image_path",
        lambda h: exe_path if h == 0x99 else fake.exes.get(int(h) - 0x1000, ""))
    monkeypatch.setattr(m, "input_desktop_name",
                        lambda: "Winlogon" if fake.locked else "Default", raising=False)
    return m


class LockableScreen:
    """Real mss around the Xvfb screen, failing like GDI does while the screen is locked."""

    def __init__(self, sct: Any, fake: FakeWin) -> None:
        self.sct, self.fake, self.monitors = sct, fake, sct.monitors

    def grab(self, region: dict[str, int]) -> Any:
        if self.fake.locked:
            from mss.exception import ScreenShotError

            raise ScreenShotError("gdi32.GetDIBits() failed.")
        return self.sct.grab(region)

    def close(self) -> None:
        self.sct.close()


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


def _uwp_calculator() -> FakeWin:
    # What Spy++ shows for Calculator on Windows 11: the frame and two of its children are
    # ApplicationFrameHost's; the CoreWindow belongs to CalculatorApp.exe.
    return FakeWin(rect=(200, 150, 520, 650), title="Calculator", pid=1200,
                   class_name="ApplicationFrameWindow",
                   children=[(0x21, 1200, "ApplicationFrameTitleBarWindow"),
                             (0x22, 1200, "ApplicationFrameInputSinkWindow"),
                             (0x23, 5150, "Windows.UI.Core.CoreWindow")],
                   exes={5150: r"C:\Program Files\WindowsApps\Microsoft.WindowsCalculator_11."
                               r"2307.4.0_x64__8wekyb3d8bbwe\CalculatorApp.exe"})


def test_uwp_app_is_named_by_its_core_window(monkeypatch: pytest.MonkeyPatch,
                                             desktop: XDisplay) -> None:
    fake = _uwp_calculator()
    m = _load(monkeypatch, fake, exe_path=r"C:\Windows\System32\ApplicationFrameHost.exe")
    b = m.WindowsBackend()
    try:
        win = b.active_window()
        assert win is not None and (win.app, win.title, win.pid) == (
            "CalculatorApp", "Calculator", 5150)
        assert win.window_id == 0x10                     # the frame: its rect is the window
        # An exclusion by app name now matches it.
        from localvideo.record.filter import Exclusion

        assert Exclusion(["calculatorapp"], []).matches(win.app, win.title)
        # Suspended / minimised: the CoreWindow leaves the frame; the host's name remains.
        fake.children = fake.children[:2]
        assert b.active_window().app == "ApplicationFrameHost"
    finally:
        b.close()


def test_window_dpi_becomes_the_frame_scale(monkeypatch: pytest.MonkeyPatch,
                                            desktop: XDisplay) -> None:
    fake = FakeWin(rect=(10, 10, 610, 410), title="Doc")
    m = _load(monkeypatch, fake, exe_path=r"C:\x\winword.exe")
    monkeypatch.setattr(m, "window_dpi", lambda hwnd: 144 if hwnd == 0x10 else 0)
    b = m.WindowsBackend()
    try:
        f = b.grab()
    finally:
        b.close()
    assert f is not None and f.extra["scale"] == 1.5    # 150 %: the canvas keeps text legible


def test_lock_screen_is_recorded_as_locked_not_a_failure(
        monkeypatch: pytest.MonkeyPatch, desktop: XDisplay, data_dir: Path) -> None:
    # Issue 9.7: on the lock screen every grab failed, and after 20 the recorder quit.
    from localvideo.config import load_settings
    from localvideo.record import recorder as rec_mod
    from localvideo.record.lock import RecorderLock
    from localvideo.service import Service

    desktop.xterm("Win lock", "before the lock", geometry="50x12+100+100")
    fake = FakeWin(rect=(90, 90, 700, 500), title="Notes - Notepad")
    m = _load(monkeypatch, fake, exe_path=r"C:\Windows\notepad.exe")
    monkeypatch.setattr(rec_mod, "LOCKED_RETRY", 0.0, raising=False)   # no waiting here
    svc = Service(load_settings(data_dir, {"record": {"fps": 50.0}}))
    b = m.WindowsBackend()
    b._sct = LockableScreen(b._sct, fake)
    stop = threading.Event()
    calls = 0
    grab = b.grab

    def scripted() -> Any:
        nonlocal calls
        fake.locked = 3 <= calls < 33          # 30 locked grabs: more than the old limit
        calls += 1
        if calls >= 40:
            stop.set()
        return grab()

    b.grab = scripted  # type: ignore[method-assign]
    try:
        with RecorderLock(data_dir):
            rec = rec_mod.Recorder(svc.settings, svc.db, svc.device_id, b)
            summary = rec.run(duration=30, stop=stop)
        rows = [dict(r) for r in svc.db.query("SELECT * FROM frames ORDER BY ts")]
        chunks = [dict(r) for r in svc.db.query("SELECT * FROM chunks ORDER BY start_ts")]
        heartbeat = svc.db.get_kv("recorder")
    finally:
        b.close()
        svc.close()
    locked = [r for r in rows if r["title"] == "[screen locked]"]
    assert len(locked) == 30 and all(r["chunk_id"] is None for r in locked)
    assert summary["frames_encoded"] >= 2 and calls >= 40
    # The chunk closed at the lock and a new one opened after it: no black video between.
    assert len(chunks) == 2
    assert chunks[0]["end_ts"] <= locked[0]["ts"] and chunks[1]["start_ts"] >= locked[-1]["ts"]
    assert rows[-1]["title"] == "Notes - Notepad"
    assert heartbeat is not None


def test_a_failing_grab_off_the_lock_screen_is_still_an_error(
        monkeypatch: pytest.MonkeyPatch, desktop: XDisplay) -> None:
    fake = FakeWin(rect=(10, 10, 300, 200))
    m = _load(monkeypatch, fake)
    b = m.WindowsBackend()
    monkeypatch.setattr(m, "input_desktop_name", lambda: "Default")
    b._sct = LockableScreen(b._sct, fake)
    fake.locked = True                         # GDI fails, but the desktop is not locked
    try:
        with pytest.raises(CaptureError) as err:
            b.grab()
        assert type(err.value) is CaptureError
        monkeypatch.setattr(m, "input_desktop_name", lambda: "Winlogon")
        fake.hwnd = 0                          # locked, no foreground window
        from localvideo.errors import ScreenLockedError

        with pytest.raises(ScreenLockedError):
            b.grab()
    finally:
        b.close()


def test_data_dir_on_windows_is_not_nested_twice(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    # Issue 9.7: platformdirs on Windows puts the app under an author folder, which
    # defaults to the app name: %LOCALAPPDATA%\localvideo\localvideo. The real Windows
    # class of platformdirs, reading the folder from the environment (its own fallback).
    import platformdirs
    import platformdirs.windows as pw

    from localvideo.config import resolve_data_dir

    local = tmp_path / "AppData" / "Local"
    monkeypatch.setenv("LOCALAPPDATA", str(local))
    monkeypatch.delenv("LOCALVIDEO_HOME", raising=False)
    monkeypatch.setattr(pw, "_RESOLVE_WIN_FOLDER", pw.get_win_folder_from_env_vars)
    monkeypatch.setattr(platformdirs, "PlatformDirs", pw.Windows)
    assert resolve_data_dir() == (local / "localvideo").resolve()
    # A store an older version made at the nested place stays in use (no history lost).
    (local / "localvideo" / "localvideo").mkdir(parents=True)
    (local / "localvideo" / "localvideo" / "index.sqlite3").write_bytes(b"")
    assert resolve_data_dir() == (local / "localvideo" / "localvideo").resolve()
