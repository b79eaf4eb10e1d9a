"""Capture cost per grab on a private Xvfb, X11Backend vs bare mss, side by side.

Usage: .venv/bin/python bench/capture_grab.py [--n 300]
Baselines: bare mss XShm grab of the same region (the floor: pixels only, no window lookup)
and mss's XGetImage backend (what capture would cost without shared memory).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import mss

from localvideo.capture.virtual import VirtualDisplay
from localvideo.capture.x11 import X11Backend


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(10):
        fn()
    walls, cpu0 = [], time.process_time()
    for _ in range(n):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    return statistics.median(walls) * 1e3, (time.process_time() - cpu0) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    n = ap.parse_args().n
    with VirtualDisplay(demo=False):
        from Xlib import X
        from Xlib import display as xdisplay

        conn = xdisplay.Display()
        scr = conn.screen()
        win = scr.root.create_window(200, 150, 800, 600, 0, scr.root_depth,
                                     background_pixel=scr.white_pixel,
                                     event_mask=X.ExposureMask)
        win.set_wm_class("bench", "Bench")
        win.set_wm_name("bench 800x600")
        win.map()
        conn.sync()
        region = X11Backend()
        f = None
        end = time.time() + 10
        while time.time() < end and f is None:
            # openbox may not manage the window yet on the first try
            os.system(f"xdotool windowactivate --sync {win.id} >/dev/null 2>&1")
            time.sleep(0.2)
            f = region.grab()
        assert f is not None and f.size == (800, 600), f and f.size
        box = {"left": f.x, "top": f.y, "width": 800, "height": 600}
        full = {"left": 0, "top": 0, "width": 1920, "height": 1080}
        shm = mss.MSS()
        xget = mss.MSS(backend="xgetimage")
        display = X11Backend(mode="display")
        rows = [
            ("active-window 800x600: X11Backend.grab", lambda: region.grab()),
            ("  baseline: bare mss XShm grab 800x600", lambda: shm.grab(box)),
            ("  baseline: mss XGetImage grab 800x600", lambda: xget.grab(box)),
            ("  window lookup only (active_window)", lambda: region.active_window()),
            ("display 1920x1080: X11Backend.grab", lambda: display.grab()),
            ("  baseline: bare mss XShm grab 1080p", lambda: shm.grab(full)),
            ("  baseline: mss XGetImage grab 1080p", lambda: xget.grab(full)),
        ]
        results = {name: timed(fn, n) for name, fn in rows}
        print(f"{'case':45s} {'wall ms (median)':>17s} {'cpu ms':>8s} {'ratio':>7s}")
        base = None
        for name, (wall, cpu) in results.items():
            if not name.startswith(" "):
                base = wall
            assert base is not None
            print(f"{name:45s} {wall:17.3f} {cpu:8.3f} {wall / base:7.2f}")
        for b in (region, display):
            b.close()
        shm.close()
        xget.close()
        conn.close()


if __name__ == "__main__":
    main()
