"""The whole path as a user runs it: a real window under Xvfb → `localvideo record` →
`localvideo analyze --follow` → `search` finds the word within seconds → `ask`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import plain
import pytest

from localvideo.service import Service

pytestmark = pytest.mark.x11

WORD = "velvetpangolin"


def lv(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localvideo", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_record_analyze_search_ask(desktop: Any, tmp_path: Path) -> None:
    data = tmp_path / "D"
    env = {**desktop.env, "LOCALVIDEO_HOME": str(tmp_path / "unused"), "COLUMNS": "200"}
    for k in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL"):
        env.pop(k, None)
    other = desktop.xterm("other-window", "nothing to see here", geometry="60x10+40+40")
    rec = subprocess.Popen([sys.executable, "-m", "localvideo", "record", "--chunk-seconds",
                            "6", "--data-dir", str(data)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ana: subprocess.Popen[str] | None = None
    try:
        time.sleep(2)
        ana = subprocess.Popen([sys.executable, "-m", "localvideo", "analyze", "--follow",
                                "--window", "5s", "--data-dir", str(data)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        win = desktop.xterm("word-window", "", geometry="70x12+200+150", hold=False)
        desktop.xdotool("type", "--window", str(win), f"echo {WORD}\n")
        shown = time.time()
        svc = Service.open(data, recover=False)
        found: list[dict[str, Any]] = []
        i = 0
        while time.time() - shown < 30 and not found:
            # Keep typing, as a user does; each keystroke is a changed frame.
            desktop.xdotool("type", "--window", str(win), "." if i % 2 else ":")
            i += 1
            time.sleep(0.5)
            found = plain.search(svc, WORD, mode="keyword")
        lag = time.time() - shown
        assert found, f"{WORD} was not found within 30 s of being shown"
        assert lag <= 15, f"found only after {lag:.1f}s"
        print(f"\nsearch found the word {lag:.1f}s after it was shown")
        while time.time() - shown < 12:       # a real session, not a glance (≥ 10 s)
            time.sleep(0.5)
        desktop.activate(other)
        time.sleep(1.5)
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait(30)
        if ana is not None:
            time.sleep(4)                     # let --follow finish the closed chunk
            ana.send_signal(signal.SIGINT)
            out, err = ana.communicate(timeout=60)
    assert rec.returncode == 0, rec.stderr.read() if rec.stderr else ""
    assert ana is not None and ana.returncode == 0, err

    # `localvideo search` as a user types it.
    r = lv("search", WORD, "--json", "--data-dir", str(data), env=env)
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert hits and hits[0]["title"] == "word-window" and hits[0]["app"].lower() == "xterm"
    assert hits[0]["chunk_path"].startswith("observer-recordings/")
    r = lv("search", WORD, "--data-dir", str(data), env=env)
    assert r.returncode == 0 and "word-window" in r.stdout

    # `frame --at` shows that moment.
    png = tmp_path / "moment.png"
    r = lv("frame", "--at", repr(hits[0]["ts"]), "--crop", "--out", str(png),
           "--data-dir", str(data), env=env)
    assert r.returncode == 0, r.stderr
    from PIL import Image

    from localvideo.analyze.ocr import read_text
    assert WORD in read_text(Image.open(png)).text

    # Timeline, observations (offline: nothing configured), ask.
    r = lv("timeline", "--json", "--data-dir", str(data), env=env)
    titles = {s["title"] for s in json.loads(r.stdout)}
    assert {"other-window", "word-window"} <= titles
    r = lv("observations", "--json", "--data-dir", str(data), env=env)
    obs = json.loads(r.stdout)
    assert obs and all(o["status"] == "done" and o["reasoner"] == "offline" for o in obs)
    r = lv("ask", f"when did I see {WORD}?", "--json", "--data-dir", str(data), env=env)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert WORD in answer["answer"]
    assert any(abs(t - hits[0]["ts"]) < 15 for t in answer["timestamps"])
    r = lv("status", "--json", "--data-dir", str(data), env=env)
    if r.returncode == 0 and r.stdout.strip().startswith("{"):
        assert json.loads(r.stdout)["analysis"]["chunks_pending"] == 0
