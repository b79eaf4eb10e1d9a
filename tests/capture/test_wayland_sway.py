"""Wayland capture against a real headless sway (run as the unprivileged test user) with
real foot windows: `localvideo record` with only WAYLAND_DISPLAY set records the native
window with its title and app id; with DISPLAY set to sway's Xwayland it still takes the
Wayland path (the X11 path, forced, sees no native window: the bug this fixes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lvsway import SwaySession
from PIL import Image

from localvideo.analyze import ocr
from localvideo.capture import open_backend
from localvideo.capture.sway import SwayIPC, focused
from localvideo.capture.wayland import WaylandBackend


@pytest.fixture(scope="module")
def sway() -> Iterator[SwaySession]:
    s = SwaySession()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def wl_env(sway: SwaySession, monkeypatch: pytest.MonkeyPatch) -> SwaySession:
    """This process's environment as a Wayland session's: WAYLAND_DISPLAY and SWAYSOCK only."""
    for k in ("DISPLAY", "I3SOCK", "HYPRLAND_INSTANCE_SIGNATURE", "XDG_CURRENT_DESKTOP"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", sway.wayland)
    monkeypatch.setenv("SWAYSOCK", sway.swaysock)
    return sway


def lv(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localvideo", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def last_picture(path: Path) -> Image.Image:
    import av

    last = None
    with av.open(str(path)) as c:
        for f in c.decode(c.streams.video[0]):
            last = f.to_image()
    assert last is not None, f"{path} has no decodable frame"
    return last


def words(image: Image.Image) -> set[str]:
    return {w.strip(".,:;'\"").lower() for w in ocr.read_text(image).text.split()}


def heartbeat(data: Path) -> dict[str, Any]:
    """The recorder's last heartbeat row: what `localvideo status` reads."""
    from localvideo.config import load_settings
    from localvideo.store.db import Database

    db = Database(load_settings(data).db_path)
    try:
        return dict(db.get_kv("recorder", {}))
    finally:
        db.close()


def record(sway: SwaySession, tmp_path: Path, *, display: bool, extra: tuple[str, ...] = (),
           seconds: int = 4) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    data = tmp_path / "D"
    env = {**sway.env(display=display), "LOCALVIDEO_HOME": str(tmp_path / "unused")}
    r = lv("record", "--duration", str(seconds), "--data-dir", str(data), "--json", *extra,
           env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    if not summary["frames_encoded"]:
        return summary, [], data
    c = lv("chunks", "--json", "--data-dir", str(data), env=env)
    assert c.returncode == 0, c.stderr[-2000:]
    return summary, json.loads(c.stdout), data


def test_record_native_window_with_only_wayland_display(sway: SwaySession,
                                                        tmp_path: Path) -> None:
    sway.foot("notes — wlwin", "zucchini 8145 wayland", app_id="lvnotes")
    summary, chunks, data = record(sway, tmp_path, display=False)
    assert summary["frames_encoded"] >= 1 and chunks, summary
    apps = {a["app"]: a["titles"] for c in chunks for a in c["apps"]}
    assert apps.get("lvnotes") == ["notes — wlwin"], apps
    seen = words(last_picture(data / chunks[-1]["path"]))
    assert {"zucchini", "8145"} <= seen, seen
    health = heartbeat(data)["health"]
    assert health["state"] == "ok" and health["backend"] == "wayland", health
    assert "sway IPC" in health["path"] and "WAYLAND_DISPLAY" in health["why"]


def test_auto_takes_wayland_even_with_xwayland_display(sway: SwaySession,
                                                       tmp_path: Path) -> None:
    sway.foot("ledger — wlboth", "quokka 5521 native", app_id="lvledger")
    # The X11 path on sway's Xwayland sees no native window: nothing to encode (the bug).
    x11, x11_chunks, _ = record(sway, tmp_path / "x11", display=True,
                                extra=("--backend", "x11"), seconds=2)
    assert x11["frames_encoded"] == 0 and not x11_chunks, x11
    health = heartbeat(tmp_path / "x11" / "D")["health"]
    assert health["backend"] == "x11" and "native Wayland windows are missing" in health["why"]
    summary, chunks, data = record(sway, tmp_path / "auto", display=True, seconds=3)
    health = heartbeat(data)["health"]
    assert health["backend"] == "wayland" and "XWayland" in health["why"], health
    apps = {a["app"]: a["titles"] for c in chunks for a in c["apps"]}
    assert apps.get("lvledger") == ["ledger — wlboth"], apps
    assert {"quokka", "5521"} <= words(last_picture(data / chunks[-1]["path"]))


def test_open_backend_says_which_path_and_why(wl_env: SwaySession,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", wl_env.xdisplay)
    with open_backend("active-window") as b:
        assert isinstance(b, WaylandBackend)
        d = b.describe()
    assert d["backend"] == "wayland" and "grim" in d["path"] and "sway IPC" in d["path"]
    assert "WAYLAND_DISPLAY" in d["why"] and "XWayland" in d["why"], d


def test_window_crop_rect_and_output_scale(wl_env: SwaySession) -> None:
    sway = wl_env
    con = sway.foot("scaled — wlscale", "scale probe", app_id="lvscale")
    sway.swaymsg(f'[con_id={con}] floating enable, resize set 600 400, move position 100 50')
    time.sleep(0.3)
    with open_backend("active-window") as b:
        f = b.grab()
        assert f is not None and f.app == "lvscale" and f.title == "scaled — wlscale"
        assert f.size == (600, 400) and (f.x, f.y) == (100, 50), (f.size, f.x, f.y)
        assert (f.screen_w, f.screen_h) == (1280, 720) and f.extra["output"] == "HEADLESS-1"
        # The window's pixels, not the desktop around it: foot's white background.
        assert f.pixels[..., :3].mean() > 200
        sway.swaymsg("output HEADLESS-1 scale 2")
        try:
            time.sleep(0.3)
            f2 = b.grab()
            assert f2 is not None and f2.extra["scale"] == 2.0
            # The output is now 640×360 logical with 1280×720 real pixels: the window
            # (100,50 600×400 logical) is cut at the output's edge, then read at 2×.
            assert (f2.screen_w, f2.screen_h) == (1280, 720), (f2.screen_w, f2.screen_h)
            assert f2.size == (2 * 540, 2 * 310) and (f2.x, f2.y) == (200, 100), f2.size
            assert f2.extra["clipped"] is True
        finally:
            sway.swaymsg("output HEADLESS-1 scale 1")
    with open_backend("display") as b:
        f = b.grab()
        assert f is not None and f.size == (1280, 720) and f.title == "scaled — wlscale"


def test_ipc_socket_is_cheaper_than_swaymsg(wl_env: SwaySession) -> None:
    """Per tick the recorder asks for the tree: one socket round trip, not a subprocess."""
    wl_env.foot("tree — wlipc", "ipc", app_id="lvipc")
    ipc = wl_env.ipc()
    try:
        n = 40
        c0 = time.process_time()
        for _ in range(n):
            assert focused(ipc.tree()) is not None
        c1 = time.process_time()
        k1 = os.times()
        for _ in range(n):
            out = subprocess.run(["swaymsg", "-s", wl_env.swaysock, "-t", "get_tree", "-r"],
                                 capture_output=True, check=True).stdout
            assert focused(json.loads(out)) is not None
        c2, k2 = time.process_time(), os.times()
    finally:
        ipc.close()
    sock_ms = (c1 - c0) / n * 1000
    sub_ms = ((c2 - c1) + (k2.children_user + k2.children_system
                           - k1.children_user - k1.children_system)) / n * 1000
    print(f"get_tree: socket {sock_ms:.2f} ms CPU, swaymsg {sub_ms:.2f} ms CPU")
    assert sock_ms < sub_ms


def test_ipc_reconnects_and_names_a_dead_socket(wl_env: SwaySession, tmp_path: Path) -> None:
    from localvideo.errors import CaptureError

    ipc = SwayIPC(wl_env.swaysock)
    try:
        ipc._sock.close()  # type: ignore[union-attr]   # sway dropped us between ticks
        assert ipc.tree()["type"] == "root"
    finally:
        ipc.close()
    with pytest.raises(CaptureError, match="sway IPC socket") as err:
        SwayIPC(str(tmp_path / "nope.sock"))
    assert "SWAYSOCK" in (err.value.hint or "")


def test_doctor_names_the_wayland_path(wl_env: SwaySession, data_dir: Path) -> None:
    from localvideo.config import load_settings
    from localvideo.doctor import check_capture, check_display

    wl_env.foot("doctor — wldoc", "doctor", app_id="lvdoc")
    settings = load_settings(data_dir)
    d = check_display(settings)
    assert d.ok and "capture: wayland via wlr-screencopy (own Wayland connection" in d.detail, \
        d.detail
    assert "sway IPC" in d.detail
    c = check_capture(settings)
    assert c.ok and c.detail.startswith("wayland via wlr-screencopy") and "1280×720" in c.detail
