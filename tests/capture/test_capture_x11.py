"""X11 backend against a real Xvfb: real windows, real pixels, real X errors."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from lvdesktop import XDisplay, content_rect
from Xlib import X, Xatom
from Xlib import display as xdisplay

from localvideo.capture.x11 import X11Backend
from localvideo.errors import CaptureError, NoDisplayError, UsageError

pytestmark = pytest.mark.x11


def _not_blank(pixels: np.ndarray) -> bool:
    # xterm draws black glyphs on white: a real window has both.
    return bool(pixels[..., :3].min() < 64 and pixels[..., :3].max() > 192)


@pytest.fixture
def backend(desktop: XDisplay):
    b = X11Backend()
    yield b
    b.close()


def test_active_window_follows_focus(desktop: XDisplay, backend: X11Backend) -> None:
    a = desktop.xterm("Alpha window", "alpha text", geometry="60x20+100+100",
                      app_class="AlphaTerm")
    b = desktop.xterm("Beta window", "beta text", geometry="40x10+900+500",
                      app_class="BetaTerm")
    for wid, app, title in ((a, "AlphaTerm", "Alpha window"), (b, "BetaTerm", "Beta window"),
                            (a, "AlphaTerm", "Alpha window")):
        desktop.activate(wid)
        f = backend.grab()
        assert f is not None
        assert (f.app, f.title) == (app, title)
        assert f.extra["window_id"] == wid
        assert (f.x, f.y, f.w, f.h) == content_rect(desktop.env, wid)
        assert f.pixels.shape == (f.h, f.w, 4) and f.pixels.dtype == np.uint8
        assert f.size == (f.w, f.h)
        assert _not_blank(f.pixels)
        assert (f.screen_w, f.screen_h) == (1920, 1080) and f.display == "1"
        # The window's pixels are exactly that region of the whole screen.
        whole = X11Backend(mode="display", display="all")
        try:
            full = whole.grab()
        finally:
            whole.close()
        assert full is not None
        assert np.array_equal(full.pixels[f.y:f.y + f.h, f.x:f.x + f.w], f.pixels)


def test_title_change_is_seen(desktop: XDisplay, backend: X11Backend) -> None:
    wid = desktop.xterm("Before", "x")
    desktop.xdotool("set_window", "--name", "After – ünïcode", str(wid))
    f = backend.grab()
    assert f is not None and f.title == "After – ünïcode"
    # A browser-length title (longer than one request's default 40 bytes, and than 1 KB)
    # arrives whole.
    for long in ("Résumé – " + "a tab with a long title " * 6, "x" * 3000):
        desktop.xdotool("set_window", "--name", long, str(wid))
        f = backend.grab()
        assert f is not None and f.title == long


def test_display_mode_whole_monitor_with_active_app(desktop: XDisplay) -> None:
    desktop.xterm("Display mode", "some text", app_class="DispTerm")
    b = X11Backend(mode="display", display="1")
    try:
        f = b.grab()
    finally:
        b.close()
    assert f is not None
    assert f.pixels.shape == (1080, 1920, 4)
    assert (f.x, f.y, f.w, f.h, f.screen_w, f.screen_h) == (0, 0, 1920, 1080, 1920, 1080)
    assert (f.app, f.title, f.display) == ("DispTerm", "Display mode", "1")
    assert _not_blank(f.pixels)


def test_display_that_does_not_exist(desktop: XDisplay) -> None:
    with pytest.raises(UsageError) as err:
        X11Backend(mode="display", display="3")
    assert "1 monitor" in err.value.message and "--display" in (err.value.hint or "")


def test_partly_off_screen_window_is_clipped(desktop: XDisplay, backend: X11Backend) -> None:
    wid = desktop.xterm("Edge", "edge text", geometry="80x24+1700+900")
    desktop.xdotool("windowmove", "--sync", str(wid), "1700", "900")
    f = backend.grab()
    assert f is not None
    assert f.extra["clipped"] is True
    assert f.x + f.w == 1920 and f.y + f.h == 1080
    assert f.pixels.shape == (f.h, f.w, 4)
    wx, wy, ww, wh = f.extra["window_rect"]  # type: ignore[misc]
    assert ww > f.w and wh > f.h


def test_no_window_then_closed_window(desktop: XDisplay, backend: X11Backend) -> None:
    desktop.close_windows()
    assert backend.grab() is None
    desktop.xterm("Short lived", "bye")
    assert backend.grab() is not None
    desktop.close_windows()
    assert backend.grab() is None
    assert backend.active_window() is None


@pytest.fixture
def bare() -> XDisplay:
    d = XDisplay(wm=False)
    yield d
    d.stop()


def test_without_window_manager_pointer_then_focus(bare: XDisplay) -> None:
    a = bare.xterm("Bare A", "a", geometry="40x10+50+50", app_class="BareA")
    b = bare.xterm("Bare B", "b", geometry="40x10+800+600", app_class="BareB")
    backend = X11Backend(display_name=bare.name)
    try:
        # No manager, nothing focused yet: focus is PointerRoot, the pointer decides.
        bare.xdotool("mousemove", "--sync", "900", "650")
        f = backend.grab()
        assert f is not None and (f.app, f.title) == ("BareB", "Bare B")
        bare.xdotool("mousemove", "--sync", "100", "100")
        f = backend.grab()
        assert f is not None and f.app == "BareA"
        assert (f.x, f.y, f.w, f.h) == content_rect(bare.env, a)
        # Explicit focus wins over the pointer, even if xterm focuses a child widget.
        bare.xdotool("windowfocus", "--sync", str(b))
        f = backend.grab()
        assert f is not None and f.app == "BareB" and _not_blank(f.pixels)
        # Pointer over the bare root with focus back on PointerRoot: nothing to capture.
        bare.xdotool("mousemove", "--sync", "1800", "50")
        conn = xdisplay.Display(bare.name)
        conn.set_input_focus(X.PointerRoot, X.RevertToPointerRoot, X.CurrentTime)
        conn.sync()
        conn.close()
        assert backend.grab() is None
    finally:
        backend.close()


def test_window_destroyed_between_requests_is_none(bare: XDisplay) -> None:
    """A stale _NET_ACTIVE_WINDOW naming a destroyed window: a real BadWindow, no crash."""
    conn = xdisplay.Display(bare.name)
    root = conn.screen().root
    win = root.create_window(10, 10, 200, 100, 0, conn.screen().root_depth,
                             background_pixel=conn.screen().white_pixel)
    win.set_wm_class("ghost", "Ghost")
    win.set_wm_name("Ghost window")
    win.map()
    active = conn.intern_atom("_NET_ACTIVE_WINDOW")
    root.change_property(active, Xatom.WINDOW, 32, [win.id])
    conn.sync()
    backend = X11Backend(display_name=bare.name)
    try:
        f = backend.grab()
        assert f is not None and (f.app, f.title, f.w, f.h) == ("Ghost", "Ghost window", 200, 100)
        win.destroy()
        conn.sync()
        assert backend.grab() is None
        assert backend.active_window() is None
    finally:
        backend.close()
        conn.close()


def test_lost_x_server_raises_capture_error() -> None:
    d = XDisplay(wm=False)
    backend = X11Backend(display_name=d.name)
    try:
        d.stop()
        with pytest.raises(CaptureError) as err:
            for _ in range(3):  # the first request after the kill may still be buffered
                backend.grab()
        assert d.name in err.value.message
    finally:
        backend.close()


def test_unreachable_display_is_no_display_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":31999")
    with pytest.raises(NoDisplayError) as err:
        X11Backend()
    assert ":31999" in err.value.message and "--virtual-display" in (err.value.hint or "")


def test_display_env_is_used(desktop: XDisplay) -> None:
    assert os.environ["DISPLAY"] == desktop.name
    b = X11Backend()
    try:
        assert b.display_name == desktop.name
        assert b.monitors[0]["width"] == 1920
    finally:
        b.close()


def test_focus_on_a_frame_or_a_widget_finds_the_client(bare: XDisplay) -> None:
    """Without EWMH, focus may name a manager's frame (client inside) or a child widget."""
    conn = xdisplay.Display(bare.name)
    scr = conn.screen()
    frame = scr.root.create_window(300, 200, 420, 330, 0, scr.root_depth,
                                   background_pixel=scr.black_pixel)   # no WM_CLASS: a frame
    client = frame.create_window(10, 30, 400, 300, 0, scr.root_depth,
                                 background_pixel=scr.white_pixel)
    client.set_wm_class("framed", "Framed")
    client.set_wm_name("Inside a frame")
    widget = client.create_window(5, 5, 50, 20, 0, scr.root_depth,
                                  background_pixel=scr.black_pixel)
    for w in (frame, client, widget):
        w.map()
    conn.sync()
    backend = X11Backend(display_name=bare.name)
    try:
        for target in (frame, widget):
            target.set_input_focus(X.RevertToParent, X.CurrentTime)
            conn.sync()
            f = backend.grab()
            assert f is not None, target
            assert (f.app, f.title, f.x, f.y, f.w, f.h) == ("Framed", "Inside a frame",
                                                            310, 230, 400, 300)
            assert f.extra["window_id"] == client.id
            # White client with a black widget at (5, 5): the crop is the client, not the frame.
            assert f.pixels[0, 0, :3].tolist() == [255, 255, 255]
            assert f.pixels[10, 10, :3].tolist() == [0, 0, 0]
    finally:
        backend.close()
        conn.close()


def test_direct_construction_checks_arguments(desktop: XDisplay) -> None:
    with pytest.raises(UsageError, match="capture mode"):
        X11Backend(mode="fullscreen")
    with pytest.raises(UsageError, match="invalid display"):
        X11Backend(mode="display", display="second")


def test_display_scale_follows_xft_dpi(desktop: XDisplay, backend: X11Backend) -> None:
    desktop.xterm("Scaled", "s")
    f = backend.grab()
    assert f is not None and f.extra["scale"] == 1.0          # nothing set: 100 %
    for resources, scale in (("Xcursor.size:\t48\nXft.dpi:\t192\n", 2.0),
                             ("Xft.dpi: 144", 1.5),
                             ("Xft.antialias:\t1\n", 1.0),       # no dpi: 100 %
                             ("Xft.dpi:\tlarge\n", 1.0),         # unreadable: 100 %
                             ("Xft.dpi:\t72\n", 1.0)):           # never below the pixels
        desktop.set_resources(resources)
        f = backend.grab()
        assert f is not None and f.extra["scale"] == scale, resources
    desktop.set_resources(None)
    f = backend.grab()
    assert f is not None and f.extra["scale"] == 1.0


def test_title_and_active_window_are_asked_again_only_after_x_says_they_changed(
        desktop: XDisplay, backend: X11Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    a = desktop.xterm("Cached A", "a", geometry="40x10+50+50")
    b = desktop.xterm("Cached B", "b", geometry="40x10+700+400")
    reads: list[int] = []
    real = backend._read_title

    def counted(w: Any) -> str:
        reads.append(w.id)
        return real(w)

    monkeypatch.setattr(backend, "_read_title", counted)
    for _ in range(5):
        f = backend.grab()
        assert f is not None and f.title == "Cached B"
    assert reads == [b]                   # one request for five frames of a still title
    desktop.xdotool("set_window", "--name", "Cached B, renamed", str(b))
    f = backend.grab()
    assert f is not None and f.title == "Cached B, renamed"
    desktop.activate(a)
    f = backend.grab()
    assert f is not None and (f.title, f.extra["window_id"]) == ("Cached A", a)
    # A title changed while its window was in the background is read when it comes back.
    desktop.xdotool("set_window", "--name", "Cached B, again", str(b))
    desktop.activate(b)
    f = backend.grab()
    assert f is not None and f.title == "Cached B, again"
    assert reads == [b, b, a, b]
    # Moving and resizing need no event: the rectangle is asked every frame.
    before = (f.x, f.y, f.w, f.h)
    desktop.xdotool("windowmove", "--sync", str(b), "300", "200")
    desktop.xdotool("windowsize", "--sync", str(b), "500", "300")   # xterm snaps to cells
    f = backend.grab()
    assert f is not None and (f.x, f.y, f.w, f.h) == content_rect(desktop.env, b)
    assert (f.x, f.y) != before[:2] and (f.w, f.h) != before[2:]


def test_shared_pixels_are_the_same_picture_without_a_copy(desktop: XDisplay) -> None:
    """share_pixels(): frames are read-only views of mss's shared-memory segment, the same
    pixels a copying grab gets; closing with a frame still alive neither raises nor unmaps it."""
    wid = desktop.xterm("Shared", "shared pixels", geometry="70x20+40+40")
    copying, sharing = X11Backend(), X11Backend()
    try:
        assert sharing.share_pixels() is True
        for step in range(4):
            if step == 2:
                desktop.xdotool("set_window", "--name", "Shared", str(wid))
                desktop.xdotool("windowmove", "--sync", str(wid), "300", "120")
            want, got = copying.grab(), sharing.grab()
            assert want is not None and got is not None
            assert (got.x, got.y, got.w, got.h) == (want.x, want.y, want.w, want.h)
            assert np.array_equal(got.pixels, want.pixels)
            assert want.pixels.flags.writeable and want.pixels.base is not None
            # From the first frame on: share_pixels() had mss judge its shared memory on a
            # 1×1 grab, so no full-size copy is ever made.
            assert sharing._segment is not None
            assert np.shares_memory(got.pixels, sharing._segment.view)
        # Lent, not copied: the frame is a view of the segment, which the next grab reuses.
        assert sharing._segment is not None
        assert np.shares_memory(got.pixels, sharing._segment.view)
        assert not got.pixels.flags.writeable
        kept = got.pixels
    finally:
        copying.close()
        sharing.close()
    assert _not_blank(kept)          # still mapped and readable after close


def test_shared_pixels_fall_back_to_copies_where_mss_is_not_as_expected(
        desktop: XDisplay, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another mss version (no shared segment where this code looks): mss's own grab, with
    the same frames, and sharing is given up instead of retried on every frame."""
    desktop.xterm("Fallback", "copy me")
    b = X11Backend()
    try:
        from localvideo.capture import x11

        def other_mss(sct: Any) -> Any:
            raise LookupError("mss's shared-memory segment is not available")

        monkeypatch.setattr(x11, "_SharedSegment", other_mss)
        b.share_pixels()
        for _ in range(3):
            f = b.grab()
            assert f is not None and f.title == "Fallback" and _not_blank(f.pixels)
            assert f.pixels.flags.writeable          # mss's fresh copy
        assert b._segment is None and b._share is False
    finally:
        b.close()
