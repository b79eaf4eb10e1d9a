"""Wayland capture cost per frame against X11, same 1280×720 picture size, all processes.

A private headless sway (pixman renderer, as the tests run it: an unprivileged user when
this runs as root) with a foot window, and a private Xvfb of the same size with an xterm.
For each path, the CPU of every process the grab involves — this process, the tools it
starts (grim, swaymsg: reaped children) and the display server (sway / Xvfb, from
/proc/PID/stat) — per frame, at the recorder's pace (a short pause between grabs, so the
compositor is idle between frames as it is at 2 FPS).

    .venv/bin/python bench/wayland_capture.py [--n 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "capture"))
sys.path.insert(0, str(ROOT / "tests"))

from lvdesktop import XDisplay  # noqa: E402
from lvsway import SwaySession  # noqa: E402

from localvideo.capture.sway import SwayIPC, focused  # noqa: E402
from localvideo.capture.wayland import Grim, WaylandBackend  # noqa: E402
from localvideo.capture.wlr_screencopy import WlrScreencopy  # noqa: E402
from localvideo.capture.x11 import X11Backend  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def pid_of(name: str, marker: str) -> int:
    """The pid of ``name`` whose environment holds ``marker`` (this bench's own server)."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == name and \
                        marker.encode() in (d / "environ").read_bytes():
                    return int(d.name)
            except OSError:
                continue
    raise RuntimeError(f"no {name} process found")


def measure(fn: Callable[[], object], n: int, server: int) -> dict[str, float]:
    for _ in range(5):
        fn()
    t0, s0, w0 = os.times(), proc_cpu(server), time.perf_counter()
    walls = 0.0
    for _ in range(n):
        t = time.perf_counter()
        fn()
        walls += time.perf_counter() - t
        time.sleep(0.02)
    t1, s1 = os.times(), proc_cpu(server)
    own = (t1.user + t1.system - t0.user - t0.system) / n * 1e3
    kids = (t1.children_user + t1.children_system - t0.children_user - t0.children_system) / n * 1e3
    srv = (s1 - s0) / n * 1e3
    return {"own_ms": round(own, 2), "tools_ms": round(kids, 2), "server_ms": round(srv, 2),
            "total_ms": round(own + kids + srv, 2), "wall_ms": round(walls / n * 1e3, 2),
            "elapsed_s": round(time.perf_counter() - w0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    sway = SwaySession(1280, 720, xwayland=False)
    try:
        sway.foot("bench — wl", "wayland capture cost " * 4, app_id="lvbench")
        server = pid_of("sway", f"XDG_RUNTIME_DIR={sway.rt}")
        os.environ.update(WAYLAND_DISPLAY=sway.wayland, SWAYSOCK=sway.swaysock)
        grim = Grim()
        ipc = SwayIPC(sway.swaysock)
        backend = WaylandBackend("display", "1", grim=grim, windows=ipc, windows_via="sway IPC")
        results["wayland: grim 720p output"] = measure(lambda: grim.grab(output="HEADLESS-1"),
                                                      args.n, server)
        results["wayland: backend.grab() display, 720p (grim)"] = measure(backend.grab, args.n,
                                                                          server)
        sc = WlrScreencopy(sway.wayland)
        results["wayland: own screencopy 720p, screen idle"] = measure(
            lambda: sc.grab("HEADLESS-1"), args.n, server)
        # A terminal printing every 30 ms: every grab finds new damage to copy.
        sway.foot("busy — wl", "", app_id="lvbusy",
                  script="while :; do date +%s.%N; sleep 0.03; done")
        before = sc.copies
        changing = measure(lambda: sc.grab("HEADLESS-1"), args.n, server)
        copies = sc.copies - before
        results["wayland: own screencopy 720p, screen changing"] = changing
        # Per picture really copied (some grabs find no new damage yet and cost ~nothing).
        per = {k: round(v * (args.n + 5) / max(copies, 1), 2) if k.endswith("_ms") else v
               for k, v in changing.items()}
        results["wayland: own screencopy 720p, per copied picture"] = per
        sc.close()
        results["wayland: grim 800x600 region"] = measure(
            lambda: grim.grab(region=(100, 60, 800, 600)), args.n, server)
        results["sway get_tree over the IPC socket"] = measure(lambda: focused(ipc.tree()),
                                                              args.n, server)
        results["sway get_tree via swaymsg"] = measure(
            lambda: focused(json.loads(subprocess.run(
                ["swaymsg", "-s", sway.swaysock, "-t", "get_tree", "-r"],
                capture_output=True, check=True).stdout)), args.n, server)
        backend.close()
    finally:
        sway.stop()
    results["own screencopy copies in the changing run"] = copies
    xd = XDisplay(1280, 720)
    try:
        xd.xterm("bench-x11", "x11 capture cost " * 4, geometry="80x24+100+60")
        with X11Backend("display", "1", display_name=xd.name) as x11:
            results["x11: backend.grab() display, 720p (mss XShm)"] = measure(
                x11.grab, args.n, xd.xvfb.pid)
        with X11Backend("active-window", "1", display_name=xd.name) as x11:
            results["x11: backend.grab() active xterm window"] = measure(
                x11.grab, args.n, xd.xvfb.pid)
    finally:
        xd.stop()
    wl = results["wayland: backend.grab() display, 720p (grim)"]["total_ms"]
    own = results["wayland: own screencopy 720p, per copied picture"]["total_ms"]
    x = results["x11: backend.grab() display, 720p (mss XShm)"]["total_ms"]
    results["ratio wayland/x11 (display 720p, total CPU)"] = round(wl / x, 1) if x else None
    results["ratio own screencopy (per copy)/x11"] = round(own / x, 1) if x else None
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'path':52} {'own':>6} {'tools':>6} {'server':>7} {'total':>7} {'wall':>7}  ms/frame")
    for k, v in results.items():
        if isinstance(v, dict):
            print(f"{k:52} {v['own_ms']:6.2f} {v['tools_ms']:6.2f} {v['server_ms']:7.2f} "
                  f"{v['total_ms']:7.2f} {v['wall_ms']:7.2f}")
    print(f"own screencopy, changing screen: "
          f"{results['own screencopy copies in the changing run']} pictures copied in "
          f"{args.n + 5} grabs")
    print(f"wayland (grim) / x11 CPU per 720p display frame: "
          f"{results['ratio wayland/x11 (display 720p, total CPU)']}×; own screencopy per "
          f"copied picture / x11: {results['ratio own screencopy (per copy)/x11']}×")


if __name__ == "__main__":
    main()
