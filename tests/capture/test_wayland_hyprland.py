"""Hyprland: the window in front from `hyprctl activewindow -j`.

Hyprland itself needs a GPU, so `hyprctl` here is a stand-in executable on PATH that prints
what Hyprland 0.4x prints (the JSON shapes below are copied from real output); the pixels
still come from a real compositor — the headless sway of test_wayland_sway.py — via grim.
Unverified on a real Hyprland session (README).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lvsway import SwaySession

from localvideo.capture import open_backend
from localvideo.capture.hyprland import Hyprctl
from localvideo.capture.wayland import WaylandBackend
from localvideo.errors import CaptureError, DependencyError

ACTIVE = {
    "address": "0x55d0c3a1e2f0", "mapped": True, "hidden": False, "at": [100, 50],
    "size": [600, 400], "workspace": {"id": 1, "name": "1"}, "floating": True,
    "pseudo": False, "monitor": 0, "class": "foot", "title": "~/src — hyprwin",
    "initialClass": "foot", "initialTitle": "foot", "pid": 4242, "xwayland": False,
    "pinned": False, "fullscreen": 0, "fullscreenClient": 0, "grouped": [], "tags": [],
    "swallowing": "0x0", "focusHistoryID": 0, "inhibitingIdle": False,
}


def monitor(scale: float, width: int, height: int) -> dict[str, object]:
    return {
        "id": 0, "name": "HEADLESS-1", "description": "headless", "make": "headless",
        "model": "headless", "serial": "", "width": width, "height": height,
        "refreshRate": 60.0, "x": 0, "y": 0, "activeWorkspace": {"id": 1, "name": "1"},
        "specialWorkspace": {"id": 0, "name": ""}, "reserved": [0, 0, 0, 0], "scale": scale,
        "transform": 0, "focused": True, "dpmsStatus": True, "vrr": False, "solitary": "0",
        "activelyTearing": False, "directScanoutTo": "0", "disabled": False,
        "currentFormat": "XRGB8888", "mirrorOf": "none", "availableModes": [],
    }


def fake_hyprctl(folder: Path, active: object, monitors: object, rc: int = 0) -> Path:
    """An executable `hyprctl` that answers `activewindow -j` and `monitors -j`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in (("activewindow", active), ("monitors", monitors)):
        (folder / f"{name}.out").write_text(value if isinstance(value, str)
                                            else json.dumps(value, indent=4))
    (folder / "calls").write_text("")
    exe = folder / "hyprctl"
    exe.write_text(f"""#!/bin/sh
echo "$@" >> '{folder}/calls'
[ "$2" = "-j" ] || {{ echo "fake hyprctl: expected -j" >&2; exit 2; }}
cat '{folder}/'"$1".out
exit {rc}
""")
    exe.chmod(0o755)
    return exe


@pytest.fixture(scope="module")
def sway() -> Iterator[SwaySession]:
    s = SwaySession(xwayland=False)
    try:
        yield s
    finally:
        s.stop()


def test_hyprland_window_cropped_from_real_pixels(sway: SwaySession, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hyprctl(tmp_path / "bin", ACTIVE, [monitor(1.0, 1280, 720)])
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    for k in ("DISPLAY", "SWAYSOCK", "I3SOCK", "XDG_CURRENT_DESKTOP"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", sway.wayland)
    monkeypatch.setenv("HYPRLAND_INSTANCE_SIGNATURE", "v0.45.0_1730000000_abcdef")
    with open_backend("active-window") as b:
        assert isinstance(b, WaylandBackend) and "hyprctl" in b.path
        f = b.grab()
        assert f is not None and f.app == "foot" and f.title == "~/src — hyprwin"
        assert f.size == (600, 400) and (f.x, f.y) == (100, 50)
        assert f.extra["pid"] == 4242 and f.extra["output"] == "HEADLESS-1"
        assert f.extra["window_id"] == 0x55d0c3a1e2f0
    calls = (tmp_path / "bin" / "calls").read_text().split("\n")
    assert "activewindow -j" in calls and "monitors -j" in calls


def test_hyprland_scale_and_empty_answers(tmp_path: Path) -> None:
    # A 2560×1600 panel at scale 2 is 1280×800 logical; windows are in logical pixels.
    exe = fake_hyprctl(tmp_path / "a", ACTIVE, [monitor(2.0, 2560, 1600)])
    h = Hyprctl(str(exe))
    fw = h.active()
    assert fw is not None and fw.output is not None
    assert (fw.output.w, fw.output.h, fw.output.scale) == (1280, 800, 2.0)
    assert (fw.info.x, fw.info.y, fw.info.w, fw.info.h) == (100, 50, 600, 400)
    # Nothing focused: recent Hyprland prints {}, older ones "Invalid".
    for empty in ("{}", "Invalid\n", ""):
        assert Hyprctl(str(fake_hyprctl(tmp_path / "e", empty, []))).active() is None
    assert Hyprctl(str(fake_hyprctl(tmp_path / "h", {**ACTIVE, "hidden": True}, []))
                   ).active() is None


def test_hyprctl_failures_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = fake_hyprctl(tmp_path / "f", "HYPRLAND_INSTANCE_SIGNATURE not set!", [], rc=1)
    with pytest.raises(CaptureError, match="exited 1") as err:
        Hyprctl(str(exe)).active()
    assert "HYPRLAND_INSTANCE_SIGNATURE" in (err.value.hint or "")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DependencyError, match="hyprctl"):
        Hyprctl()
