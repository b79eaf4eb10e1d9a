"""The Wayland backend's parsers: grim's PPM, sway's get_tree reply, finding the socket.

The trees are trimmed from real `swaymsg -t get_tree` output (sway 1.7): a native window
with a title bar, an XWayland window (class, no app_id), a floating one, and an empty
focused workspace.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localvideo.capture.sway import find_socket, focused
from localvideo.capture.wayland import parse_ppm
from localvideo.errors import CaptureError


def test_ppm_to_bgra() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], np.uint8)
    px = parse_ppm(b"P6\n2 2\n255\n" + rgb.tobytes())
    assert px.shape == (2, 2, 4)
    assert px[0, 0].tolist() == [0, 0, 255, 255]          # red as BGRA
    assert px[1, 1].tolist() == [30, 20, 10, 255]
    # Comments-free but odd whitespace is still a PPM header.
    assert parse_ppm(b"P6 2\t2\r\n255 " + rgb.tobytes()).shape == (2, 2, 4)
    with pytest.raises(CaptureError, match="no PPM"):
        parse_ppm(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(CaptureError, match="truncated"):
        parse_ppm(b"P6\n2 2\n255\n" + rgb.tobytes()[:5])


def con(cid: int, **kw: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"id": cid, "type": "con", "focused": False, "nodes": [],
                            "floating_nodes": [], "name": None, "app_id": None,
                            "rect": {"x": 0, "y": 0, "width": 0, "height": 0},
                            "window_rect": {"x": 0, "y": 0, "width": 0, "height": 0}}
    node.update(kw)
    return node


def tree(*workspaces: dict[str, Any], scale: float = 1.0) -> dict[str, Any]:
    return {"id": 1, "type": "root", "focused": False, "floating_nodes": [], "nodes": [
        {"id": 2, "type": "output", "name": "__i3", "nodes": [], "floating_nodes": []},
        {"id": 3, "type": "output", "name": "DP-1", "scale": scale, "focused": False,
         "rect": {"x": 0, "y": 0, "width": 1920, "height": 1080}, "floating_nodes": [],
         "nodes": list(workspaces)}]}


def ws(*nodes: dict[str, Any], floating: tuple[dict[str, Any], ...] = (),
       is_focused: bool = False) -> dict[str, Any]:
    return {"id": 4, "type": "workspace", "name": "1", "focused": is_focused,
            "nodes": list(nodes), "floating_nodes": list(floating)}


def test_focused_native_window_content_below_its_title_bar() -> None:
    t = tree(ws(con(7, focused=True, name="vim notes.txt", app_id="foot", pid=321,
                    rect={"x": 0, "y": 0, "width": 960, "height": 1080},
                    window_rect={"x": 2, "y": 25, "width": 956, "height": 1053})), scale=1.5)
    fw = focused(t)
    assert fw is not None and fw.output is not None
    i = fw.info
    assert (i.app, i.title, i.pid, i.window_id) == ("foot", "vim notes.txt", 321, 7)
    assert (i.x, i.y, i.w, i.h) == (2, 25, 956, 1053)
    assert (fw.output.name, fw.output.scale, fw.output.w) == ("DP-1", 1.5, 1920)


def test_focused_xwayland_and_floating_windows() -> None:
    x = con(8, focused=True, name="xterm", window_properties={"class": "XTerm",
                                                              "instance": "xterm"},
            rect={"x": 960, "y": 0, "width": 960, "height": 1080},
            window_rect={"x": 0, "y": 0, "width": 960, "height": 1080})
    fw = focused(tree(ws(con(7, app_id="foot"), x)))
    assert fw is not None and fw.info.app == "XTerm" and fw.info.x == 960
    f = con(9, focused=True, app_id="pavucontrol", name="Volume",
            rect={"x": 600, "y": 300, "width": 700, "height": 500},
            window_rect={"x": 0, "y": 0, "width": 700, "height": 500})
    fw = focused(tree(ws(con(7, app_id="foot"), floating=(f,))))
    assert fw is not None and fw.info.app == "pavucontrol" and (fw.info.x, fw.info.y) == (600, 300)


def test_empty_workspace_focused_is_no_window() -> None:
    assert focused(tree(ws(is_focused=True))) is None
    assert focused({"id": 1, "type": "root", "nodes": []}) is None


def test_find_socket(tmp_path: Path) -> None:
    assert find_socket({"SWAYSOCK": "/run/s.sock", "I3SOCK": "/x"}) == "/run/s.sock"
    assert find_socket({"I3SOCK": "/x"}) == "/x"
    # No SWAYSOCK (a recorder started by a service manager): the live sway's socket next to
    # the Wayland socket; one left by a dead sway is ignored.
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"sway-ipc.0.{dead.pid}.sock").touch()
    assert find_socket({"XDG_RUNTIME_DIR": str(tmp_path)}) is None
    live = tmp_path / f"sway-ipc.0.{os.getpid()}.sock"
    live.touch()
    assert find_socket({"XDG_RUNTIME_DIR": str(tmp_path)}) == str(live)
    assert find_socket({"WAYLAND_DISPLAY": str(tmp_path / "wayland-1")}) == str(live)
    assert find_socket({"WAYLAND_DISPLAY": "wayland-1"}) is None


def test_doctor_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from localvideo.config import load_settings
    from localvideo.doctor import check_display, run_checks

    settings = load_settings(tmp_path / "d")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    # A wlroots session without grim: the fix names it.
    monkeypatch.delenv("XDG_CURRENT_DESKTOP", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    d = check_display(settings)
    assert not d.ok and "grim" in (d.fix or "") and "gstreamer1.0-pipewire" in (d.fix or "")
    # GNOME: the portal path, whole monitors, the dialog once; doctor does not open it.
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "GNOME")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    d = check_display(settings)
    assert "xdg-desktop-portal" in d.detail and "asks once" in d.detail, d.detail
    assert "focused-window D-Bus extension" in d.detail
    checks = {c["name"]: c for c in run_checks(settings)["checks"]}
    assert checks["capture"]["detail"].startswith("not tried"), checks["capture"]
