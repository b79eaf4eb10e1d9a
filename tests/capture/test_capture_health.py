"""Capture health: a capture that sees nothing while windows are on screen is reported
within 10 s, through the real recorder on a real X server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from lvdesktop import XDisplay
from typer.testing import CliRunner
from Xlib import X
from Xlib import display as xdisplay

from localvideo.capture.base import Frame
from localvideo.capture.health import CaptureHealth, one_colour
from localvideo.capture.x11 import X11Backend
from localvideo.cli import app as cli_app
from localvideo.config import load_settings
from localvideo.record.lock import RecorderLock
from localvideo.record.recorder import Recorder, setup_logging
from localvideo.service import Service
from localvideo.store.db import Database


class Cover:
    """A black override-redirect window over the whole screen: the window manager does not
    manage it, so _NET_ACTIVE_WINDOW keeps naming the xterm below while every grab of the
    screen reads black — what an X11 grab on XWayland sees of native Wayland windows."""

    def __init__(self, name: str) -> None:
        self.d = xdisplay.Display(name)
        s = self.d.screen()
        self.w = s.root.create_window(0, 0, s.width_in_pixels, s.height_in_pixels, 0,
                                      s.root_depth, X.InputOutput, X.CopyFromParent,
                                      background_pixel=s.black_pixel, override_redirect=True)

    def show(self) -> None:
        self.w.map()
        self.d.sync()

    def hide(self) -> None:
        self.w.unmap()
        self.d.sync()

    def close(self) -> None:
        self.w.destroy()
        self.d.close()


@pytest.fixture
def cover(desktop: XDisplay) -> Iterator[Cover]:
    c = Cover(desktop.name)
    try:
        yield c
    finally:
        c.close()


def run_recorder(data_dir: Path, seconds: float, on_status: Any,
                 stop: threading.Event) -> dict[str, Any]:
    settings = load_settings(data_dir, {"record": {"fps": 4.0}})
    setup_logging(settings.data_dir)
    db = Database(settings.db_path)
    try:
        with RecorderLock(settings.data_dir), X11Backend("active-window") as backend:
            rec = Recorder(settings, db, "test-device", backend)
            return rec.run(duration=seconds, stop=stop, on_status=on_status)
    finally:
        db.close()


def test_blind_x11_capture_is_reported_within_10s(desktop: XDisplay, cover: Cover,
                                                  data_dir: Path) -> None:
    desktop.xterm("visible-term", "health probe 42", geometry="70x20+80+80")
    cover.show()
    seen: list[tuple[float, dict[str, Any]]] = []
    stop = threading.Event()
    t0 = time.monotonic()
    uncovered: list[float] = []
    # What another process sees meanwhile: the service's status and `localvideo status`.
    svc = Service.open(data_dir, recover=False)
    served: list[str] = []
    printed: list[str] = []
    blank_calls: list[float] = []

    def on_status(s: dict[str, Any]) -> None:
        now = time.monotonic() - t0
        seen.append((now, s["health"]))
        if s["health"]["state"] == "blank" and not served:
            health = svc.status().recorder.health
            if health is None or health.state != "blank":
                return                      # the heartbeat is written once a second
            served.append(health.message)
            printed.append(CliRunner().invoke(cli_app, ["status", "--data-dir",
                                                        str(data_dir)]).output)
        if s["health"]["state"] == "blank" and served and not uncovered:
            blank_calls.append(now)         # a status call about once a second
            if len(blank_calls) >= 3:       # a few more blank grabs after the verdict
                cover.hide()                # the screen comes back: so must the verdict
                uncovered.append(now)
        elif uncovered and s["health"]["state"] == "ok":
            stop.set()

    try:
        summary = run_recorder(data_dir, 25, on_status, stop)
        assert served and "visible-term" in served[0], served
        assert "capture blank" in printed[0] and "visible-term" in printed[0], printed
        assert "(x11 via" in printed[0], printed
        blank_rows = svc.db.query("SELECT chunk_id, pts, title FROM frames WHERE state = 'blank'")
        timeline = svc.analyze.timeline()
    finally:
        svc.close()
    blank = [(t, h) for t, h in seen if h["state"] == "blank"]
    assert blank, f"never reported blank: {seen}"
    t, h = blank[0]
    assert t <= 10, f"blank reported only after {t:.1f} s"
    assert "visible-term" in h["message"] and h["backend"] == "x11", h
    # Once the cover is gone the real picture is seen again, and health says so.
    assert stop.is_set(), f"health never came back to ok after the cover went: {seen[-3:]}"
    assert summary["health"]["state"] == "ok"
    # The black stretch is in the index as such, with no picture; only the terminal was
    # encoded, in a chunk that starts when the cover went.
    assert len(blank_rows) >= 4, blank_rows
    assert all(r[0] is None and r[1] is None and r[2] == "[screen blank]" for r in blank_rows)
    assert any(seg.title == "[screen blank]" for seg in timeline), timeline
    assert summary["frames_encoded"] >= 1
    pictures = 0
    for chunk in summary["chunks"]:
        with av.open(str(data_dir / chunk)) as c:
            for f in c.decode(video=0):
                pictures += 1
                assert f.to_ndarray(format="gray").std() > 1, "a blank frame was encoded"
    assert pictures >= 1
    # The heartbeat row carries the verdict for `localvideo status` in another process.
    db = Database(load_settings(data_dir).db_path)
    try:
        beat = db.get_kv("recorder", {})
    finally:
        db.close()
    assert beat["health"]["state"] == "ok" and beat["health"]["backend"] == "x11"


def test_uncovered_window_is_healthy(desktop: XDisplay, data_dir: Path) -> None:
    desktop.xterm("plain-term", "all fine here", geometry="70x20+80+80")
    seen: list[str] = []
    summary = run_recorder(data_dir, 5, lambda s: seen.append(s["health"]["state"]),
                           threading.Event())
    assert "blank" not in seen and summary["health"]["state"] == "ok", seen


def frame(px: np.ndarray, app: str = "", title: str = "", ts: float = 0.0) -> Frame:
    return Frame(pixels=px, ts=ts, app=app, title=title)


def test_verdicts_over_time() -> None:
    black = np.zeros((120, 160, 4), np.uint8)
    busy = np.random.default_rng(1).integers(0, 255, (120, 160, 4), dtype=np.uint8)
    h = CaptureHealth({"backend": "x11", "path": "x11", "why": "--backend x11 on a Wayland "
                       "session"}, blank_after=4, stall_after=60)
    assert h.status()["state"] == "starting"
    # An empty desktop (one colour, no window) is not a blind capture.
    for t in range(10):
        h.seen(frame(black), now=1000 + t)
    assert h.state == "ok"
    # A window on screen and black pixels: blank after 4 s, not before.
    h.seen(frame(black, "foot", "notes"), now=1010)
    h.seen(frame(black, "foot", "notes"), now=1013)
    assert h.state == "ok"
    h.seen(frame(black, "foot", "notes"), now=1014)
    assert h.state == "blank" and h.since == 1010 and "--backend wayland" in h.message
    h.seen(frame(busy, "foot", "notes"), now=1015)
    h.encoded(now=1015)
    assert h.state == "ok"
    # No window found at all for a minute (the X11 path on a Wayland session): stalled.
    for t in range(1016, 1076, 5):
        h.seen(None, now=t)
    assert h.state == "ok"
    h.seen(None, now=1076)
    assert h.state == "stalled" and "61 s" in h.message and h.since == 1015
    # Pausing is not stalling.
    h.idle(now=1200)
    h.seen(None, now=1201)
    assert h.state == "ok"
    for _ in range(3):
        h.failed("grab failed: BadMatch", now=1202)
    assert h.state == "failing" and "BadMatch" in h.message


def test_one_colour_is_exact() -> None:
    px = np.full((1080, 1920, 4), 30, np.uint8)
    px[..., 3] = 0                       # alpha is not looked at
    assert one_colour(px)
    px[501, 777, 1] = 31                 # one pixel off the sample grid
    assert not one_colour(px)
    assert not one_colour(np.random.default_rng(2).integers(0, 255, (1080, 1920, 4),
                                                             dtype=np.uint8))


def test_live_status_lines_show_a_health_problem() -> None:
    """`record`'s live line and `observe`'s status line carry the verdict when it is not ok."""
    from localvideo.cli.record import _status_line
    from localvideo.cli.serve import _status_text
    from localvideo.service.models import CaptureHealthState, RecordProgress

    blank = CaptureHealthState(state="blank", message="the captured frames are all one colour "
                               "while a window is on screen (foot — notes)", since=1.0,
                               backend="x11", path="xshm", why="")
    progress = dict(elapsed=12.0, app="foot", title="notes", frames_seen=24, frames_encoded=1,
                    frames_skipped=0, frames_excluded=0, chunk=None, bytes=0,
                    encoder="libx264", paused=False, disk_paused=False)
    line = _status_line(RecordProgress(**progress, health=blank)).plain
    assert "capture blank: the captured frames are all one colour" in line, line
    ok = blank.model_copy(update={"state": "ok", "message": ""})
    assert "capture" not in _status_line(RecordProgress(**progress, health=ok)).plain
    observe = _status_text([], "http://127.0.0.1:8765/", blank).plain
    assert "capture blank" in observe and "foot — notes" in observe, observe
    assert "capture" not in _status_text([], "http://127.0.0.1:8765/", ok).plain
