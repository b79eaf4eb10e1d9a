"""The tray icon under the real Xvfb desktop with a real XEmbed tray host (trayer): the icon
appears, shows the recorder's state, a real click pauses and resumes the real recorder, and
SIGTERM takes it away; checked on screenshots of the display."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mss
import numpy as np
import pytest
from PIL import Image

from localvideo.tray import COLOURS, icon_image

pytestmark = pytest.mark.x11


def lv(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "localvideo", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


TRAY_ROWS = 40      # trayer docks at the top edge, 32 px high


def screenshot(env: dict[str, str], path: Path) -> np.ndarray:
    """The whole display saved to ``path``; returned: the tray's strip along the top."""
    factory = getattr(mss, "MSS", None) or mss.mss
    with factory(display=env["DISPLAY"]) as s:
        shot = s.grab(s.monitors[1])
    im = np.asarray(Image.frombytes("RGB", shot.size, shot.rgb))
    Image.fromarray(im).save(path)
    return im[:TRAY_ROWS]


def pixels(im: np.ndarray, state: str) -> np.ndarray:
    return np.all(np.abs(im.astype(int) - COLOURS[state]) < 12, axis=-1)


def wait_for(cond: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    end = time.time() + timeout
    while time.time() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_icon_pictures_differ_by_state() -> None:
    seen = {}
    for state in COLOURS:
        im = np.asarray(icon_image(state).convert("RGB"))
        seen[state] = int(pixels(im, state).sum())
        assert seen[state] > 200, (state, seen)
    # Paused is bars, not a dot: no red anywhere.
    assert not pixels(np.asarray(icon_image("paused").convert("RGB")), "recording").any()


def test_tray_click_pauses_and_resumes_the_recorder(desktop: Any, tmp_path: Path) -> None:
    trayer = shutil.which("trayer")
    assert trayer, "trayer (an XEmbed tray host) is not installed: apt-get install trayer"
    data = tmp_path / "D"
    env = {**desktop.env, "LOCALVIDEO_HOME": str(tmp_path / "unused"),
           "LOCALVIDEO_RECORD_EXCLUDE_TITLES": '["secret-tray-window"]'}
    shown = desktop.xterm("tray-test-window", "something to record", geometry="60x10+80+120")
    host = subprocess.Popen([trayer, "--edge", "top", "--align", "right", "--widthtype",
                             "request", "--height", "32", "--SetDockType", "true",
                             "--transparent", "false", "--tint", "0xffffff"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rec = lv("record", "--data-dir", str(data), env=env)
    tray = None
    try:
        wait_for(lambda: (data / "index.sqlite3").exists(), what="the recorder's index")
        tray = lv("tray", "--poll", "0.3", "--data-dir", str(data), env=env)

        def icon_in(state: str, name: str) -> tuple[int, int] | None:
            im = screenshot(env, tmp_path / f"{name}.png")
            m = pixels(im, state)
            others = [s for s in ("recording", "paused", "excluded") if s != state]
            if m.sum() < 100 or any(pixels(im, s).sum() > 20 for s in others):
                return None
            ys, xs = np.nonzero(m)
            return int(xs.mean()), int(ys.mean())

        # 1. The icon docks in the tray and says "recording" (red) while the recorder runs.
        x, y = wait_for(lambda: icon_in("recording", "1-recording"), what="a red tray icon")
        # 2. A real click (XTEST) on it pauses the recorder; the icon turns amber.
        desktop.xdotool("mousemove", str(x), str(y), "click", "1")
        wait_for(lambda: icon_in("paused", "2-paused"), what="the amber paused icon")
        st = json.loads(subprocess.run(
            [sys.executable, "-m", "localvideo", "status", "--json", "--data-dir", str(data)],
            env=env, capture_output=True, text=True, timeout=60).stdout)
        assert st["paused"] is True and st["recorder"]["running"] is True
        # 3. Clicked again: recording again.
        desktop.xdotool("mousemove", str(x), str(y), "click", "1")
        wait_for(lambda: icon_in("recording", "3-resumed"), what="the red icon again")
        # 4. An excluded window comes to the front: grey, struck through; and back.
        desktop.xterm("secret-tray-window", "not to be stored", geometry="60x10+200+200")
        wait_for(lambda: icon_in("excluded", "4-excluded"), what="the grey excluded icon")
        desktop.activate(shown)
        wait_for(lambda: icon_in("recording", "4-shown"), what="the red icon after it")
        # 5. The recorder stops: the icon says so (failing: black with a red ring).
        rec.send_signal(signal.SIGINT)
        rec.wait(30)
        wait_for(lambda: pixels(screenshot(env, tmp_path / "4-failing.png"), "failing").sum()
                 > 100, what="the failing icon")
        # 6. SIGTERM (what observe sends) quits it and the icon leaves the tray.
        tray.send_signal(signal.SIGTERM)
        assert tray.wait(15) == 0, tray.stderr.read() if tray.stderr else ""
        im = screenshot(env, tmp_path / "5-gone.png")
        assert not any(pixels(im, s).sum() > 20 for s in ("paused", "failing"))
    finally:
        for p in (tray, rec, host):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)


def test_observe_starts_the_tray_and_stops_it_with_the_rest(desktop: Any,
                                                            tmp_path: Path) -> None:
    from netutil import free_port

    trayer = shutil.which("trayer")
    assert trayer, "trayer (an XEmbed tray host) is not installed: apt-get install trayer"
    data = tmp_path / "D"
    env = {**desktop.env, "LOCALVIDEO_HOME": str(tmp_path / "unused"),
           "LOCALVIDEO_ANALYZE_REASONER": "offline"}
    desktop.xterm("observe-tray-window", "observed", geometry="60x10+80+120")
    host = subprocess.Popen([trayer, "--edge", "top", "--align", "right", "--widthtype",
                             "request", "--height", "32", "--SetDockType", "true",
                             "--transparent", "false", "--tint", "0xffffff"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    obs = subprocess.Popen([sys.executable, "-m", "localvideo", "observe", "--port",
                            str(free_port()), "--data-dir", str(data)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: pixels(screenshot(env, tmp_path / "observe.png"), "recording").sum()
                 > 100 and not pixels(screenshot(env, tmp_path / "observe.png"),
                                      "failing").any(),
                 timeout=60, what="observe's tray icon saying recording")
        obs.send_signal(signal.SIGINT)
        out, _ = obs.communicate(timeout=60)
    finally:
        for p in (obs, host):
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert obs.returncode == 0, out
    assert "tray" in out and "stopped (" in out, out
    im = screenshot(env, tmp_path / "observe-gone.png")
    assert not pixels(im, "recording").any(), "the icon outlived observe"
