"""macOS backend at the OS boundary: fake Quartz / AppKit / ScreenCaptureKit modules.

macOS cannot run here, so the frameworks are replaced by small fakes that behave like the
documented APIs (window list front to back, completion handlers called on another thread,
CGImages with padded rows). What is tested is our logic: permission path, window choice,
pixel conversion, Retina scale, fallbacks and timeouts.

Where the real API surprises, the fake does too (issue 9):
- ``NSWorkspace.frontmostApplication()`` is cached: it keeps answering the app that was in
  front at the first call until a run loop delivers AppKit's notifications.
- ``CGDisplayPixelsWide/High`` answer in points; only the display mode knows the pixels.
- Objective-C accessors return autoreleased objects, freed only when a pool drains.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from localvideo.errors import CaptureError, UsageError


@dataclass
class FakeImage:
    pixels: np.ndarray             # H×W×4 as it should come out (BGRA)
    pad: int = 16                  # bytes of padding per row, as CoreGraphics adds
    big_endian: bool = False

    def data(self) -> bytes:
        px = self.pixels[..., [3, 2, 1, 0]] if self.big_endian else self.pixels
        h = px.shape[0]
        rows = np.zeros((h, px.shape[1] * 4 + self.pad), np.uint8)
        rows[:, : px.shape[1] * 4] = px.reshape(h, -1)
        return rows.tobytes()


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float

    @property
    def origin(self) -> Any:
        return types.SimpleNamespace(x=self.x, y=self.y)

    @property
    def size(self) -> Any:
        return types.SimpleNamespace(width=self.w, height=self.h)


@dataclass
class FakeMac:
    allowed: bool = True
    requested: int = 0
    front_pid: int = 42
    front_name: str = "Safari"
    windows: list[dict[str, Any]] = field(default_factory=list)
    displays: dict[int, Rect] = field(default_factory=lambda: {69: Rect(0, 0, 1440, 900)})
    scale: int = 2
    cg_images: list[tuple[str, Any]] = field(default_factory=list)
    sck_configs: list[Any] = field(default_factory=list)
    sck_answers: bool = True
    app_cache: tuple[int, str] | None = None   # AppKit's idea of the frontmost app
    run_loop_ran: bool = False
    pool_depth: int = 0
    pools_drained: int = 0
    leaked: int = 0                # objects autoreleased with no pool to drain them

    def autoreleased(self) -> None:
        if self.pool_depth == 0:
            self.leaked += 1

    def bring_to_front(self, pid: int, name: str) -> None:
        """The user clicks another app: the window server reorders its list at once."""
        mine = [w for w in self.windows if w["kCGWindowOwnerPID"] == pid]
        self.windows = mine + [w for w in self.windows if w["kCGWindowOwnerPID"] != pid]
        self.front_pid, self.front_name = pid, name

    def objc(self) -> types.ModuleType:
        o = types.ModuleType("objc")
        mac = self

        @contextlib.contextmanager
        def autorelease_pool() -> Iterator[None]:
            mac.pool_depth += 1
            try:
                yield
            finally:
                mac.pool_depth -= 1
                mac.pools_drained += 1

        o.autorelease_pool = autorelease_pool  # type: ignore[attr-defined]
        return o

    def image_for(self, w_px: int, h_px: int) -> FakeImage:
        rng = np.random.default_rng(w_px * 1000 + h_px)
        return FakeImage(rng.integers(0, 256, (h_px, w_px, 4), dtype=np.uint8))

    # -- Quartz ------------------------------------------------------------------------
    def quartz(self) -> types.ModuleType:
        q = types.ModuleType("Quartz")
        mac = self

        def request() -> bool:
            mac.requested += 1
            return False

        q.CGPreflightScreenCaptureAccess = lambda: mac.allowed  # type: ignore[attr-defined]
        q.CGRequestScreenCaptureAccess = request  # type: ignore[attr-defined]
        q.CGGetActiveDisplayList = lambda n, a, b: (0, tuple(mac.displays), len(mac.displays))  # type: ignore[attr-defined]
        q.CGDisplayBounds = lambda did: mac.displays[did]  # type: ignore[attr-defined]
        # Points, despite the name (the current mode's size in points on a Retina display).
        q.CGDisplayPixelsWide = lambda did: int(mac.displays[did].w)  # type: ignore[attr-defined]
        q.CGDisplayPixelsHigh = lambda did: int(mac.displays[did].h)  # type: ignore[attr-defined]
        q.CGDisplayCopyDisplayMode = lambda did: did  # type: ignore[attr-defined]
        q.CGDisplayModeGetWidth = lambda m: int(mac.displays[m].w)  # type: ignore[attr-defined]
        q.CGDisplayModeGetHeight = lambda m: int(mac.displays[m].h)  # type: ignore[attr-defined]
        q.CGDisplayModeGetPixelWidth = lambda m: int(mac.displays[m].w * mac.scale)  # type: ignore[attr-defined]
        q.CGDisplayModeGetPixelHeight = lambda m: int(mac.displays[m].h * mac.scale)  # type: ignore[attr-defined]
        q.kCGWindowListOptionOnScreenOnly = 1  # type: ignore[attr-defined]
        q.kCGWindowListExcludeDesktopElements = 16  # type: ignore[attr-defined]
        q.kCGWindowListOptionIncludingWindow = 8  # type: ignore[attr-defined]
        q.kCGNullWindowID = 0  # type: ignore[attr-defined]
        q.kCGWindowImageBoundsIgnoreFraming = 1  # type: ignore[attr-defined]
        q.kCGWindowImageDefault = 0  # type: ignore[attr-defined]
        q.CGRectNull = "null"  # type: ignore[attr-defined]
        q.CGRectInfinite = "inf"  # type: ignore[attr-defined]
        def window_list(opts: int, wid: int) -> list[dict[str, Any]]:
            # Front to back; with OnScreenOnly, windows on other Spaces or minimised are left out.
            return [dict(w) for w in mac.windows
                    if not opts & 1 or w.get("kCGWindowIsOnscreen", True)]

        q.CGWindowListCopyWindowInfo = window_list  # type: ignore[attr-defined]

        def window_image(rect: Any, opts: int, wid: int, flags: int) -> FakeImage | None:
            mac.cg_images.append(("window", wid))
            for info in mac.windows:
                if info["kCGWindowNumber"] == wid:
                    b = info["kCGWindowBounds"]
                    return mac.image_for(b["Width"] * mac.scale, b["Height"] * mac.scale)
            return None

        q.CGWindowListCreateImage = window_image  # type: ignore[attr-defined]
        q.CGDisplayCreateImage = lambda did: mac.image_for(  # type: ignore[attr-defined]
            int(mac.displays[did].w * mac.scale), int(mac.displays[did].h * mac.scale))
        q.CGImageGetWidth = lambda im: im.pixels.shape[1]  # type: ignore[attr-defined]
        q.CGImageGetHeight = lambda im: im.pixels.shape[0]  # type: ignore[attr-defined]
        q.CGImageGetBytesPerRow = lambda im: im.pixels.shape[1] * 4 + im.pad  # type: ignore[attr-defined]
        q.CGImageGetBitsPerPixel = lambda im: 32  # type: ignore[attr-defined]
        q.CGImageGetBitmapInfo = lambda im: (0x4000 if im.big_endian else 0x2000) | 2  # type: ignore[attr-defined]
        q.CGImageGetDataProvider = lambda im: im  # type: ignore[attr-defined]
        q.CGDataProviderCopyData = lambda im: im.data()  # type: ignore[attr-defined]
        return q

    def appkit(self) -> types.ModuleType:
        a = types.ModuleType("AppKit")
        mac = self

        class App:
            def __init__(self, pid: int, name: str) -> None:
                self.pid, self.name = pid, name

            def processIdentifier(self) -> int:  # noqa: N802 - Cocoa's name
                return self.pid

            def localizedName(self) -> str:  # noqa: N802
                mac.autoreleased()
                return self.name

        class Workspace:
            def frontmostApplication(self) -> App:  # noqa: N802
                # Cached: refreshed only by notifications a run loop delivers.
                if mac.app_cache is None or mac.run_loop_ran:
                    mac.app_cache, mac.run_loop_ran = (mac.front_pid, mac.front_name), False
                mac.autoreleased()
                return App(*mac.app_cache)

        shared = Workspace()

        class RunLoop:
            def runUntilDate_(self, date: Any) -> None:  # noqa: N802
                mac.run_loop_ran = True

        a.NSWorkspace = types.SimpleNamespace(sharedWorkspace=lambda: shared)  # type: ignore[attr-defined]
        a.NSRunLoop = types.SimpleNamespace(currentRunLoop=RunLoop)  # type: ignore[attr-defined]
        a.NSDate = types.SimpleNamespace(dateWithTimeIntervalSinceNow_=lambda s: s)  # type: ignore[attr-defined]
        return a

    def sck(self) -> types.ModuleType:
        s = types.ModuleType("ScreenCaptureKit")
        mac = self

        def later(fn: Any, *args: Any) -> None:
            # Real handlers arrive on a dispatch queue, never on the calling thread.
            if mac.sck_answers:
                threading.Timer(0.01, fn, args).start()

        class SCWindow:
            def __init__(self, info: dict[str, Any]) -> None:
                self.info = info

            def windowID(self) -> int:  # noqa: N802
                return int(self.info["kCGWindowNumber"])

        class SCDisplay:
            def __init__(self, did: int) -> None:
                self.did = did

            def displayID(self) -> int:  # noqa: N802
                return self.did

            def width(self) -> int:
                return int(mac.displays[self.did].w)

            def height(self) -> int:
                return int(mac.displays[self.did].h)

        class Content:
            def windows(self) -> list[SCWindow]:
                mac.autoreleased()
                return [SCWindow(i) for i in mac.windows]

            def displays(self) -> list[SCDisplay]:
                mac.autoreleased()
                return [SCDisplay(d) for d in mac.displays]

        class Shareable:
            @staticmethod
            def getShareableContentExcludingDesktopWindows_onScreenWindowsOnly_completionHandler_(  # noqa: N802
                    exclude: bool, onscreen: bool, handler: Any) -> None:
                later(handler, Content(), None)

        class Filter:
            def __init__(self) -> None:
                self.target: Any = None

            @classmethod
            def alloc(cls) -> Filter:
                return cls()

            def initWithDesktopIndependentWindow_(self, w: SCWindow) -> Filter:  # noqa: N802
                self.target = w
                return self

            def initWithDisplay_excludingWindows_(self, d: SCDisplay, ex: list[Any]) -> Filter:  # noqa: N802
                self.target = d
                return self

            def pointPixelScale(self) -> float:  # noqa: N802
                return float(mac.scale)

        class Config:
            @classmethod
            def alloc(cls) -> Config:
                return cls()

            def init(self) -> Config:
                mac.sck_configs.append(self)
                return self

            def setWidth_(self, v: int) -> None:  # noqa: N802
                self.width = v

            def setHeight_(self, v: int) -> None:  # noqa: N802
                self.height = v

            def setPixelFormat_(self, v: int) -> None:  # noqa: N802
                self.pixel_format = v

            def setShowsCursor_(self, v: bool) -> None:  # noqa: N802
                self.cursor = v

        class Manager:
            @staticmethod
            def captureImageWithFilter_configuration_completionHandler_(  # noqa: N802
                    flt: Filter, cfg: Config, handler: Any) -> None:
                later(handler, mac.image_for(cfg.width, cfg.height), None)

        s.SCShareableContent = Shareable  # type: ignore[attr-defined]
        s.SCContentFilter = Filter  # type: ignore[attr-defined]
        s.SCStreamConfiguration = Config  # type: ignore[attr-defined]
        s.SCScreenshotManager = Manager  # type: ignore[attr-defined]
        return s


def _win(number: int, pid: int, x: int, y: int, w: int, h: int, title: str = "",
         layer: int = 0, owner: str = "") -> dict[str, Any]:
    return {"kCGWindowNumber": number, "kCGWindowOwnerPID": pid, "kCGWindowLayer": layer,
            "kCGWindowName": title, "kCGWindowOwnerName": owner, "kCGWindowAlpha": 1.0,
            "kCGWindowBounds": {"X": x, "Y": y, "Width": w, "Height": h}}


@pytest.fixture
def mac() -> FakeMac:
    return FakeMac(windows=[
        _win(1, 7, 1300, 0, 30, 22, layer=25, owner="Control Center"),   # menu bar extra
        _win(2, 42, 0, 0, 0, 0, owner="Safari"),                         # zero-size helper
        _win(3, 42, 100, 50, 800, 600, "localvideo — GitHub", owner="Safari"),
        _win(4, 42, 200, 80, 640, 480, "Older tab", owner="Safari"),
        _win(5, 99, 0, 0, 1440, 900, "Terminal", owner="Terminal"),
    ])


def _load(monkeypatch: pytest.MonkeyPatch, mac: FakeMac, with_sck: bool = True) -> Any:
    monkeypatch.setitem(sys.modules, "Quartz", mac.quartz())
    monkeypatch.setitem(sys.modules, "AppKit", mac.appkit())
    monkeypatch.setitem(sys.modules, "objc", mac.objc())
    if with_sck:
        monkeypatch.setitem(sys.modules, "ScreenCaptureKit", mac.sck())
    else:
        monkeypatch.setitem(sys.modules, "ScreenCaptureKit", None)   # import → ImportError
    sys.modules.pop("localvideo.capture.macos", None)
    return importlib.import_module("localvideo.capture.macos")


@pytest.fixture(autouse=True)
def _forget_module() -> Iterator[None]:
    # The module under test was imported against fakes: never let another test see it.
    yield
    sys.modules.pop("localvideo.capture.macos", None)
    import localvideo.capture as pkg
    pkg.__dict__.pop("macos", None)


def test_permission_missing_says_where_to_grant(monkeypatch: pytest.MonkeyPatch,
                                                mac: FakeMac) -> None:
    mac.allowed = False
    m = _load(monkeypatch, mac)
    with pytest.raises(CaptureError) as err:
        m.MacOSBackend()
    assert "Privacy & Security › Screen Recording" in (err.value.hint or "")
    assert mac.requested == 1      # the system prompt was asked for


def test_front_window_picks_the_apps_topmost_normal_window(monkeypatch: pytest.MonkeyPatch,
                                                           mac: FakeMac) -> None:
    m = _load(monkeypatch, mac)
    win = m.front_window(mac.windows, 42, "Safari")
    assert (win.app, win.title, win.x, win.y, win.w, win.h, win.window_id) == (
        "Safari", "localvideo — GitHub", 100, 50, 800, 600, 3)
    assert m.front_window(mac.windows, 1234, "Ghost") is None
    # No localized name: fall back to the window list's owner name.
    assert m.front_window(mac.windows, 99, "").app == "Terminal"


def test_cgimage_conversion_drops_padding_and_fixes_byte_order(
        monkeypatch: pytest.MonkeyPatch, mac: FakeMac) -> None:
    m = _load(monkeypatch, mac)
    px = np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4)
    assert np.array_equal(m.cgimage_to_bgra(FakeImage(px, pad=12)), px)
    assert np.array_equal(m.cgimage_to_bgra(FakeImage(px, pad=0, big_endian=True)), px)


def test_grab_window_through_screencapturekit_at_retina_scale(
        monkeypatch: pytest.MonkeyPatch, mac: FakeMac) -> None:
    m = _load(monkeypatch, mac)
    b = m.MacOSBackend()
    f = b.grab()
    assert f is not None
    # Pixels everywhere: the window list's 800×600 points at (100, 50) are 1600×1200 px.
    assert (f.app, f.title, f.x, f.y, f.w, f.h) == ("Safari", "localvideo — GitHub",
                                                    200, 100, 1600, 1200)
    assert f.pixels.shape == (1200, 1600, 4) and f.extra["scale"] == 2.0
    assert f.extra["window_rect"] == (100, 50, 800, 600)        # the OS's own points
    assert np.array_equal(f.pixels, mac.image_for(1600, 1200).pixels)
    assert (f.screen_w, f.screen_h, f.display) == (2880, 1800, "1")
    cfg = mac.sck_configs[-1]
    assert (cfg.width, cfg.height, cfg.pixel_format, cfg.cursor) == (1600, 1200,
                                                                     0x42475241, False)
    assert mac.cg_images == []     # the deprecated CoreGraphics path was not used


def test_window_closed_between_list_and_capture_is_none(monkeypatch: pytest.MonkeyPatch,
                                                        mac: FakeMac) -> None:
    m = _load(monkeypatch, mac)
    b = m.MacOSBackend()
    win = b.active_window()
    mac.windows = [w for w in mac.windows if w["kCGWindowNumber"] != win.window_id]
    assert b._window_pixels(win) is None


def test_fallback_without_screenshot_manager(monkeypatch: pytest.MonkeyPatch,
                                             mac: FakeMac) -> None:
    m = _load(monkeypatch, mac, with_sck=False)
    f = m.MacOSBackend().grab()
    assert f is not None and f.pixels.shape == (1200, 1600, 4)
    assert mac.cg_images == [("window", 3)]


def test_display_mode_and_bad_display(monkeypatch: pytest.MonkeyPatch, mac: FakeMac) -> None:
    m = _load(monkeypatch, mac)
    f = m.MacOSBackend(mode="display", display="1").grab()
    assert f is not None and f.pixels.shape == (1800, 2880, 4) and f.app == "Safari"
    with pytest.raises(UsageError, match="1 display"):
        m.MacOSBackend(mode="display", display="2")


def test_no_answer_from_screencapturekit_times_out(monkeypatch: pytest.MonkeyPatch,
                                                   mac: FakeMac) -> None:
    mac.sck_answers = False
    m = _load(monkeypatch, mac)
    b = m.MacOSBackend(timeout=0.2)
    with pytest.raises(CaptureError, match="did not answer"):
        b.grab()


def test_active_window_follows_the_front_app_without_a_run_loop(
        monkeypatch: pytest.MonkeyPatch, mac: FakeMac) -> None:
    # Issue 9.1: the recorder runs no run loop, so NSWorkspace kept naming the app that was
    # in front at start. The window list is read fresh by the window server every call.
    m = _load(monkeypatch, mac)
    b = m.MacOSBackend()
    assert b.grab().app == "Safari"
    mac.bring_to_front(99, "Terminal")
    f = b.grab()
    assert f is not None and (f.app, f.title) == ("Terminal", "Terminal")
    assert f.extra["window_id"] == 5 and f.pixels.shape == (1800, 2880, 4)
    mac.bring_to_front(42, "Safari")
    assert b.active_window().title == "localvideo — GitHub"


def test_front_window_skips_what_is_not_an_app_window(monkeypatch: pytest.MonkeyPatch,
                                                      mac: FakeMac) -> None:
    m = _load(monkeypatch, mac)
    shield = _win(9, 0, 0, 0, 1440, 900, owner="Window Server")
    gone = {**_win(8, 77, 0, 0, 500, 400, "Minimised", owner="Notes"),
            "kCGWindowIsOnscreen": False}
    clear = {**_win(7, 55, 0, 0, 500, 400, "Invisible", owner="Helper"), "kCGWindowAlpha": 0.0}
    mac.windows = [shield, gone, clear, *mac.windows]
    win = m.MacOSBackend().active_window()
    assert (win.app, win.title, win.pid) == ("Safari", "localvideo — GitHub", 42)


def test_retina_window_fits_the_canvas_whole(monkeypatch: pytest.MonkeyPatch,
                                             mac: FakeMac) -> None:
    # Issue 9.2: a 1500-pt window on a 1512×982-pt MacBook Pro (3024×1964 px) was captured
    # at 3000 px while the canvas was sized from 1512 points: cropped to half. Now both are
    # pixels and the canvas keeps the whole window.
    from localvideo.record.canvas import Canvas, canvas_size

    mac.displays = {69: Rect(0, 0, 1512, 982)}
    mac.windows = [_win(3, 42, 6, 30, 1500, 940, "Wide", owner="Safari")]
    m = _load(monkeypatch, mac)
    f = m.MacOSBackend().grab()
    assert f is not None and f.pixels.shape == (1880, 3000, 4)
    assert (f.screen_w, f.screen_h) == (3024, 1964)
    c = Canvas(*canvas_size(f.screen_w, f.screen_h, 1920, float(f.extra["scale"])))
    rect, src_w, src_h = c.layout(f)
    assert (src_w, src_h) == (3000, 1880)                      # all of it, none cropped
    assert rect.w / 3000 == pytest.approx(rect.h / 1880, abs=0.002) and rect.w <= c.width


def test_each_grab_drains_its_autorelease_pool(monkeypatch: pytest.MonkeyPatch,
                                               mac: FakeMac) -> None:
    # Issue 9.7: without a pool, every autoreleased object of every grab stayed alive.
    m = _load(monkeypatch, mac)
    b = m.MacOSBackend()
    for _ in range(5):
        assert b.grab() is not None
    b2 = m.MacOSBackend(mode="display")
    assert b2.grab() is not None
    assert mac.leaked == 0 and mac.pools_drained >= 6 and mac.pool_depth == 0


def test_permission_hint_names_python_under_launchd(monkeypatch: pytest.MonkeyPatch,
                                                    mac: FakeMac) -> None:
    # Issue 9.7: under launchd no terminal is involved: macOS asks for the Python binary.
    mac.allowed = False
    m = _load(monkeypatch, mac)
    monkeypatch.setattr(os, "getppid", lambda: 1)
    with pytest.raises(CaptureError) as err:
        m.MacOSBackend()
    hint = err.value.hint or ""
    assert os.path.realpath(sys.executable) in hint and "terminal" not in hint
    monkeypatch.setattr(os, "getppid", lambda: 4242)
    monkeypatch.setenv("TERM_PROGRAM", "iTerm.app")
    monkeypatch.delenv("XPC_SERVICE_NAME", raising=False)
    with pytest.raises(CaptureError) as err:
        m.MacOSBackend()
    assert "switch on iTerm" in (err.value.hint or "")


def test_launchd_agent_finds_homebrew_programs(data_dir: Any, tmp_path: Any) -> None:
    # Issue 9.7: launchd starts agents with PATH=/usr/bin:/bin:/usr/sbin:/sbin, where
    # Homebrew's tesseract and ffmpeg are not. The agent now carries its own PATH.
    import plistlib
    import shutil

    from localvideo.service import Service

    svc = Service.open(data_dir)
    try:
        r = svc.autostart.install(home=tmp_path, system="Darwin",
                                  python="/Users/me/.venv/bin/python3")
        plist = plistlib.loads(open(r.path, "rb").read())
    finally:
        svc.close()
    path = plist.get("EnvironmentVariables", {}).get("PATH", "")
    dirs = path.split(":")
    assert dirs[0] == "/Users/me/.venv/bin"                   # the venv's own programs
    assert dirs.index("/opt/homebrew/bin") < dirs.index("/usr/bin")   # Apple Silicon
    assert dirs.index("/usr/local/bin") < dirs.index("/usr/bin")      # Intel
    # A program in one of those folders is found through that PATH (here: a stand-in in
    # a folder taking Homebrew's place, since /opt/homebrew does not exist on Linux).
    brew = tmp_path / "homebrew-bin"
    brew.mkdir()
    (brew / "lv-brew-probe").write_text("#!/bin/sh\n")
    (brew / "lv-brew-probe").chmod(0o755)
    assert shutil.which("lv-brew-probe", path=path.replace("/opt/homebrew/bin", str(brew)))
