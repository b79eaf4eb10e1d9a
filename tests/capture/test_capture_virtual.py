"""VirtualDisplay: a real private Xvfb + openbox + demo xterms, started and fully stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from localvideo.capture.virtual import VirtualDisplay
from localvideo.capture.x11 import X11Backend
from localvideo.errors import DependencyError

pytestmark = pytest.mark.x11


def _children_of(pids: list[int]) -> set[int]:
    """Every live process descending from ``pids`` (read from /proc, no helpers)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the ')'.
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(pids) & set(parent), set(pids)
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_virtual_display_runs_demo_and_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":4242")
    with VirtualDisplay(switch_every=1.5) as vd:
        assert os.environ["DISPLAY"] == vd.name != ":4242"
        assert len(vd.windows) == 2
        tree = _children_of(vd.pids)
        assert len(tree) >= 4          # Xvfb, openbox, two xterms (plus their shells)
        b = X11Backend()
        try:
            first = b.grab()
            assert first is not None and first.app == "LocalvideoDemo"
            titles = {first.title}
            changed = False
            end = time.time() + 8
            while time.time() < end and (len(titles) < 2 or not changed):
                time.sleep(0.5)
                f = b.grab()
                if f is None:
                    continue
                titles.add(f.title)
                if f.title == first.title and f.pixels.shape == first.pixels.shape:
                    changed = changed or not np.array_equal(f.pixels, first.pixels)
            assert titles == {"localvideo demo - clock", "localvideo demo - notes"}
            assert changed, "the demo text never changed on screen"
        finally:
            b.close()
    assert os.environ["DISPLAY"] == ":4242"
    time.sleep(0.2)
    assert not [p for p in tree if _alive(p)], "processes left behind"


def test_cleans_up_when_the_body_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="boom"):
        with VirtualDisplay(demo=False) as vd:
            tree = _children_of(vd.pids)
            assert os.environ["DISPLAY"] == vd.name
            raise RuntimeError("boom")
    assert "DISPLAY" not in os.environ
    time.sleep(0.2)
    assert tree and not [p for p in tree if _alive(p)]


def test_missing_programs_name_the_install_command(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))   # an empty folder: nothing can be found
    with pytest.raises(DependencyError) as err:
        VirtualDisplay().start()
    assert "Xvfb" in err.value.message and "xdotool" in err.value.message
    assert "apt-get install xvfb openbox xterm xdotool" in (err.value.hint or "")


def test_killed_owner_leaves_nothing_behind() -> None:
    """SIGKILL runs no cleanup code: the children must still go (PR_SET_PDEATHSIG)."""
    script = ("import sys, time\n"
              "from localvideo.capture.virtual import VirtualDisplay\n"
              "vd = VirtualDisplay(switch_every=0)\n"
              "vd.start()\n"
              "print(' '.join(map(str, vd.pids)), flush=True)\n"
              "time.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 4, pids             # Xvfb, openbox, two xterms
        tree = _children_of(pids)
        assert all(_alive(p) for p in pids)
    finally:
        owner.kill()
        owner.wait(5)
    end = time.time() + 10
    while time.time() < end and [p for p in tree if _alive(p)]:
        time.sleep(0.1)
    assert not [p for p in tree if _alive(p)], "processes outlived their killed owner"
