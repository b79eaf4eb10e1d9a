"""The own wlr-screencopy client against a real headless sway: the same pixels grim reads,
no copy while nothing changes, a fresh picture as soon as something does (typed with
wtype), output scale applied, and grim when it is switched off."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from lvsway import SwaySession

from localvideo.capture import open_backend
from localvideo.capture.wayland import Grim, WaylandBackend
from localvideo.capture.wlr_screencopy import WlrScreencopy


@pytest.fixture(scope="module")
def sway() -> Iterator[SwaySession]:
    s = SwaySession(xwayland=False)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def wl(sway: SwaySession, monkeypatch: pytest.MonkeyPatch) -> SwaySession:
    for k in ("DISPLAY", "I3SOCK", "HYPRLAND_INSTANCE_SIGNATURE", "XDG_CURRENT_DESKTOP",
              "LOCALVIDEO_WAYLAND_GRIM"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", sway.wayland)
    monkeypatch.setenv("SWAYSOCK", sway.swaysock)
    return sway


def test_same_pixels_as_grim_and_no_copy_while_idle(wl: SwaySession) -> None:
    wl.foot("copy — wlsc", "screencopy probe 31", app_id="lvsc")
    sc = WlrScreencopy()
    try:
        assert [o.name for o in sc.outputs] == ["HEADLESS-1"]
        full = sc.grab("HEADLESS-1")
        ref = Grim().grab(output="HEADLESS-1")
        assert full.shape == ref.shape == (720, 1280, 4)
        assert np.array_equal(full[..., :3], ref[..., :3])
        region = sc.grab("HEADLESS-1", (100, 40, 500, 300))
        assert np.array_equal(region[..., :3], ref[40:340, 100:600, :3])
        # Nothing changes on screen: no copy, the same picture back at once.
        time.sleep(0.3)
        sc.grab("HEADLESS-1", (100, 40, 500, 300))
        copies = sc.copies
        t0 = time.process_time()
        for _ in range(50):
            same = sc.grab("HEADLESS-1", (100, 40, 500, 300))
        idle_ms = (time.process_time() - t0) / 50 * 1000
        assert sc.copies == copies and same is sc.grab("HEADLESS-1", (100, 40, 500, 300))
        assert idle_ms < 1.0, f"an idle grab cost {idle_ms:.2f} ms CPU"
        # Typing changes the screen: the next grabs bring the new picture.
        wl.type("qwerty")
        end = time.monotonic() + 3
        while time.monotonic() < end and sc.copies == copies:
            time.sleep(0.1)
            after = sc.grab("HEADLESS-1")
        assert sc.copies > copies, "typing produced no new copy"
        assert not np.array_equal(after[..., :3], ref[..., :3])
        assert np.array_equal(after[..., :3], Grim().grab(output="HEADLESS-1")[..., :3])
    finally:
        sc.close()


def test_backend_uses_it_with_scale_and_can_fall_back(wl: SwaySession,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    con = wl.foot("scale — wlsc2", "scaled copy", app_id="lvsc2")
    wl.swaymsg(f"[con_id={con}] floating enable, resize set 400 300, move position 60 40")
    time.sleep(0.3)
    wl.swaymsg("output HEADLESS-1 scale 2")
    try:
        time.sleep(0.3)
        with open_backend("active-window") as b:
            assert isinstance(b, WaylandBackend) and b.native is not None
            assert "own Wayland connection" in b.path
            f = b.grab()
            assert f is not None and f.size == (800, 600) and f.title == "scale — wlsc2"
            ref = Grim().grab(region=(60, 40, 400, 300), scale=2)
            assert np.array_equal(f.pixels[..., :3], ref[..., :3])
        monkeypatch.setenv("LOCALVIDEO_WAYLAND_GRIM", "1")
        with open_backend("active-window") as b:
            assert isinstance(b, WaylandBackend) and b.native is None
            assert b.path.startswith("wlr-screencopy (grim)")
            g = b.grab()
            assert g is not None and np.array_equal(g.pixels[..., :3], ref[..., :3])
    finally:
        wl.swaymsg("output HEADLESS-1 scale 1")


def test_a_display_that_is_not_there(wl: SwaySession) -> None:
    from localvideo.errors import UsageError

    with pytest.raises(UsageError, match="display 2 does not exist: this Wayland session has 1"):
        open_backend("display", "2")
    with open_backend("display", "all") as b:     # the whole layout, through grim
        f = b.grab()
        assert f is not None and f.size == (1280, 720)
