"""The tray icon under the real Xvfb desktop with a real XEmbed tray host (trayer): the icon
appears, shows the recorder's state, a real click pauses and resumes the real recorder, and
SIGTERM takes it away; checked on screenshots of the display."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import mss
import numpy as np
import pytest
from PIL import Image
from waiting import wait_for

from localvideo.tray import COLOURS, icon_image

pytestmark = pytest.mark.x11


def lv(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "localvideo", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def panel(env: dict[str, str], host_pid: int) -> tuple[int, int, int, int] | None:
    """Where trayer's dock window ("panel") is now: x, y, width, height. It grows as icons
    dock, so it is looked up on every screenshot; looking only inside it keeps any other
    window on the shared display (left by an earlier test) from matching an icon colour."""
    found = subprocess.run(["xdotool", "search", "--pid", str(host_pid), "--name", "^panel$"],
                           env=env, capture_output=True, text=True).stdout.split()
    for wid in found:
        geo = dict(line.split("=", 1) for line in subprocess.run(
            ["xdotool", "getwindowgeometry", "--shell", wid], env=env, capture_output=True,
            text=True).stdout.split() if "=" in line)
        if geo.get("HEIGHT") == "32":
            return int(geo["X"]), int(geo["Y"]), int(geo["WIDTH"]), int(geo["HEIGHT"])
    return None


def screenshot(env: dict[str, str], path: Path, host_pid: int) -> tuple[np.ndarray, int, int]:
    """The whole display saved to ``path``; returned: trayer's panel and its top-left corner
    (an empty picture while the panel is not mapped)."""
    factory = getattr(mss, "MSS", None) or mss.mss
    with factory(display=env["DISPLAY"]) as s:
        shot = s.grab(s.monitors[1])
    im = np.asarray(Image.frombytes("RGB", shot.size, shot.rgb))
    Image.fromarray(im).save(path)
    rect = panel(env, host_pid)
    if rect is None:
        return im[:0, :0], 0, 0
    x, y, w, h = rect
    return im[y:y + h, x:x + w], x, y


def pixels(im: np.ndarray, state: str) -> np.ndarray:
    return np.all(np.abs(im.astype(int) - COLOURS[state]) < 12, axis=-1)


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
    rec = lv("record", "--data-dir", str(data), env=env)
    tray = host = None
    try:
        wait_for(lambda: (data / "index.sqlite3").exists(), 20, "the recorder's index")
        tray = lv("tray", "--poll", "0.3", "--data-dir", str(data), env=env)
        # The tray host starts after the icon exists (a panel that comes up late at login):
        # the icon must still dock. pystray alone docked only at start (the icon never showed).
        wait_for(lambda: subprocess.run(["xdotool", "search", "--name", "^localvideo: "],
                                        env=env, capture_output=True).returncode == 0,
                 45, "the tray icon's window")
        host = subprocess.Popen([trayer, "--edge", "top", "--align", "right", "--widthtype",
                                 "request", "--height", "32", "--SetDockType", "true",
                                 "--transparent", "false", "--tint", "0xffffff"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hpid = host.pid

        seen: dict[str, int] = {}

        def colours() -> str:
            return f"pixels of each icon colour in the panel: {seen}"

        def wait_icon(state: str, name: str, what: str, timeout: float = 20) -> Any:
            return wait_for(lambda: icon_in(state, name), timeout, what, detail=colours,
                            every=0.3)

        def icon_in(state: str, name: str) -> tuple[int, int] | None:
            im, x0, y0 = screenshot(env, tmp_path / f"{name}.png", hpid)
            seen.clear()
            seen.update({s: int(pixels(im, s).sum()) for s in COLOURS})
            others = [s for s in ("recording", "paused", "excluded") if s != state]
            if seen[state] < 100 or any(seen[s] > 20 for s in others):
                return None
            ys, xs = np.nonzero(pixels(im, state))
            return x0 + int(xs.mean()), y0 + int(ys.mean())

        # 1. The icon docks in the tray and says "recording" (red) while the recorder runs.
        x, y = wait_icon("recording", "1-recording", "a red tray icon", 45)
        # 2. A real click (XTEST) on it pauses the recorder; the icon turns amber.
        desktop.xdotool("mousemove", str(x), str(y), "click", "1")
        wait_icon("paused", "2-paused", "the amber paused icon")
        st = json.loads(subprocess.run(
            [sys.executable, "-m", "localvideo", "status", "--json", "--data-dir", str(data)],
            env=env, capture_output=True, text=True, timeout=60).stdout)
        assert st["paused"] is True and st["recorder"]["running"] is True
        # 3. Clicked again: recording again.
        desktop.xdotool("mousemove", str(x), str(y), "click", "1")
        wait_icon("recording", "3-resumed", "the red icon again")
        # 4. An excluded window comes to the front: grey, struck through; and back.
        desktop.xterm("secret-tray-window", "not to be stored", geometry="60x10+200+200")
        wait_icon("excluded", "4-excluded", "the grey excluded icon")
        desktop.activate(shown)
        wait_icon("recording", "4-shown", "the red icon after it")
        # 5. The recorder stops: the icon says so (failing: black with a red ring).
        rec.send_signal(signal.SIGINT)
        rec.wait(30)
        wait_for(lambda: pixels(screenshot(env, tmp_path / "4-failing.png", hpid)[0],
                                "failing").sum() > 100, 20, "the failing icon", every=0.3)
        # 6. SIGTERM (what observe sends) quits it and the icon leaves the tray.
        tray.send_signal(signal.SIGTERM)
        assert tray.wait(15) == 0, tray.stderr.read() if tray.stderr else ""
        im = screenshot(env, tmp_path / "5-gone.png", hpid)[0]
        assert im.size, "trayer's panel was not found after the tray quit"
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
        def says_recording() -> bool:
            im = screenshot(env, tmp_path / "observe.png", host.pid)[0]
            return bool(pixels(im, "recording").sum() > 100 and not pixels(im, "failing").any())

        wait_for(says_recording, 60, "observe's tray icon saying recording", every=0.3)
        obs.send_signal(signal.SIGINT)
        out, _ = obs.communicate(timeout=60)
        gone = screenshot(env, tmp_path / "observe-gone.png", host.pid)[0]
    finally:
        for p in (obs, host):
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert obs.returncode == 0, out
    assert "tray" in out and "stopped (" in out, out
    assert gone.size, "trayer's panel was not found after observe stopped"
    assert not pixels(gone, "recording").any(), "the icon outlived observe"
