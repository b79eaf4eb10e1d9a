"""`localvideo observe`: the supervisor with real child processes, and the whole product end to
end on a private virtual display (real Xvfb, recorder, OCR, uvicorn)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from netutil import free_port

from localvideo.supervise import Part, Supervisor

PY = sys.executable


def _part(name: str, code: str) -> Part:
    return Part(name, [PY, "-c", code])


def _run(sup: Supervisor, seconds: float) -> None:
    sup.run(threading.Event(), seconds, interval=0.1)


def test_a_dying_part_is_restarted_with_backoff_and_said(tmp_path: Path) -> None:
    events: list[str] = []
    steady = _part("steady", "import time; time.sleep(100)")
    crasher = _part("crasher", "import sys; print('boom: no such device'); sys.exit(3)")
    sup = Supervisor([steady, crasher], log_dir=tmp_path, on_event=events.append)
    _run(sup, 4.5)
    said = "\n".join(events)
    # First restart after 1 s, the next after 2 s: two restarts fit in 4.5 s, not more.
    assert "crasher exited with code 3" in said and "restarting in 1 s" in said
    assert "last output: boom: no such device" in said
    assert "crasher restarted" in said
    assert 1 <= crasher.restarts <= 3
    assert steady.restarts == 0 and "steady" not in said
    assert steady.proc is not None and steady.proc.poll() is not None  # stopped at the end
    log = (tmp_path / "crasher.log").read_text().splitlines()
    assert log.count("boom: no such device") == crasher.restarts + 1


def test_stop_forwards_sigint_then_kills_what_ignores_it(tmp_path: Path) -> None:
    done = tmp_path / "closed-cleanly"
    polite = _part("polite", (
        "import signal, sys, time, pathlib\n"
        "def bye(*a):\n"
        f"    pathlib.Path({str(done)!r}).write_text('ok'); sys.exit(0)\n"
        "signal.signal(signal.SIGINT, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(100)\n"))
    stubborn = _part("stubborn", "import signal, time; signal.signal(signal.SIGINT, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(100)")
    events: list[str] = []
    sup = Supervisor([polite, stubborn], log_dir=tmp_path, on_event=events.append,
                     stop_timeout=1.5)
    started = time.monotonic()
    _run(sup, 1.0)
    took = time.monotonic() - started
    assert done.read_text() == "ok" and polite.last_exit == 0
    assert stubborn.last_exit == -signal.SIGKILL
    assert any("stubborn did not stop" in e for e in events)
    assert took < 1.0 + 1.5 + 2.0  # both waited on in parallel, not one after the other
    assert [p["state"] for p in sup.snapshot()] == ["stopped", "stopped"]


def test_a_config_change_restarts_the_parts_that_read_it(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[record]\nfps = 2\n")
    rec = _part("record", "import time; time.sleep(100)")
    srv = _part("serve", "import time; time.sleep(100)")
    events: list[str] = []
    sup = Supervisor([rec, srv], on_event=events.append, watch=config,
                     restart_on_change=("record",))
    stop = threading.Event()

    def edit() -> None:
        time.sleep(0.6)
        first = rec.pid
        config.write_text("[record]\nfps = 1\n")
        os.utime(config, (time.time() + 5, time.time() + 5))
        time.sleep(1.0)
        assert rec.pid is not None and rec.pid != first
        stop.set()

    t = threading.Thread(target=edit)
    t.start()
    sup.run(stop, 10, interval=0.1)
    t.join()
    assert "config changed: restarting record" in events
    assert rec.restarts == 1 and srv.restarts == 0


# -- the CLI ------------------------------------------------------------------------------
def _env_without_display(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["LOCALVIDEO_HOME"] = str(data_dir)
    return env


@pytest.mark.skipif(sys.platform != "linux", reason="DISPLAY is how Linux finds its screen")
def test_no_display_says_so_and_offers_virtual_display(tmp_path: Path) -> None:
    r = subprocess.run([PY, "-m", "localvideo", "observe", "--duration", "5"],
                       env=_env_without_display(tmp_path), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "no display server" in r.stderr
    assert "localvideo observe --virtual-display" in r.stderr


def test_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([PY, "-m", "localvideo", "observe", "--virtual-display",
                            "--duration", "5", "--port", str(port)],
                           env=_env_without_display(tmp_path), capture_output=True, text=True,
                           timeout=60)
    assert r.returncode == 2
    assert f"port {port}" in r.stderr and f"--port {port + 1}" in r.stderr
    assert not (tmp_path / "logs").exists()  # no child was started


def _children(data_dir: Path, needle: str) -> list[int]:
    """Pids of processes whose command line has ``needle`` and our data dir."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmd and str(data_dir) in cmd:
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(sys.platform != "linux", reason="--virtual-display is Xvfb")
def test_observe_end_to_end_on_a_virtual_display(tmp_path: Path) -> None:
    data_dir = tmp_path / "home"
    port = free_port()
    proc = subprocess.Popen(
        [PY, "-m", "localvideo", "observe", "--virtual-display", "--duration", "40",
         "--port", str(port), "--data-dir", str(data_dir), "--reasoner", "offline"],
        env=_env_without_display(data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        # 1. The UI address with the token is printed at start.
        url = None
        end = time.time() + 30
        while time.time() < end and url is None:
            m = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", "".join(lines))
            url = m.group(1) if m else None
            time.sleep(0.2)
        assert url, "".join(lines)
        token = url.split("token=")[1]
        assert f":{port}/" in url
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                              headers={"Authorization": f"Bearer {token}"}, timeout=20)
        # 2. Chunks are recorded and a word of the demo window becomes searchable.
        hits: list[dict] = []
        end = time.time() + 34
        while time.time() < end and not hits:
            time.sleep(2)
            try:
                hits = client.get("/api/search", params={"q": "demo"}).json()
            except httpx.HTTPError:
                continue  # serve may still be starting
        assert hits, "".join(lines)
        assert client.get("/api/chunks").json()
        assert client.get("/api/frame", params={"at": hits[0]["ts"]}).status_code == 200
        # 3. A part that dies is restarted, and that is said.
        victims = _children(data_dir, "analyze --follow")
        assert victims
        os.kill(victims[0], signal.SIGKILL)
        end = time.time() + 15
        while time.time() < end and "analyze restarted" not in "".join(lines):
            time.sleep(0.3)
        assert "analyze exited with code -9" in "".join(lines)
        assert "analyze restarted" in "".join(lines)
        # 4. It stops by itself after --duration, and takes every child with it.
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    reader.join(5)
    out = "".join(lines)
    assert "virtual display" in out and "stopped (record 0, analyze 0, serve 0)" in out, out
    assert _children(data_dir, "localvideo") == []
    display = re.search(r"virtual display :(\d+) started", out)
    assert display, out
    # Xvfb removes its socket when it exits: the private display went away with observe.
    assert not Path(f"/tmp/.X11-unix/X{display.group(1)}").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux")
def test_children_stop_when_the_supervisor_is_killed_outright(tmp_path: Path) -> None:
    marker = tmp_path / "child-closed"
    child = (f"import signal, sys, time, pathlib\n"
             f"signal.signal(signal.SIGINT, lambda *a: (pathlib.Path({str(marker)!r})"
             f".write_text('ok'), sys.exit(0)))\n"
             f"print('ready', flush=True)\ntime.sleep(100)\n")
    supervisor = (
        "import sys, threading\n"
        "from localvideo.supervise import Part, Supervisor\n"
        f"sup = Supervisor([Part('child', [sys.executable, '-c', {child!r}])], "
        f"log_dir=__import__('pathlib').Path({str(tmp_path)!r}))\n"
        "sup.run(threading.Event(), 60)\n")
    proc = subprocess.Popen([PY, "-c", supervisor])
    log = tmp_path / "child.log"
    end = time.time() + 20

    def ready() -> bool:
        # A line of its own: the log's "starting:" header quotes the child's script, whose
        # print('ready') would match a plain substring test before the child had even set
        # its handler (then the SIGINT killed it: flaky under load).
        return log.exists() and re.search(r"^ready$", log.read_text(), re.M) is not None

    while time.time() < end and not ready():
        time.sleep(0.1)
    assert ready(), log.read_text() if log.exists() else "no child log"
    proc.kill()  # SIGKILL: the supervisor runs no cleanup at all
    proc.wait()
    end = time.time() + 10
    while time.time() < end and not marker.exists():
        time.sleep(0.1)
    # The child got SIGINT (not a kill), so it could close its files like the recorder does.
    assert marker.read_text() == "ok"
