"""Fault injection: does the screen history survive the ways machines fail?

    .venv/bin/python bench/chaos.py            # the full run (about 15 min on 2 busy cores)
    .venv/bin/python bench/chaos.py --quick    # fewer kills, a shorter outage, 300 requests

Five scenarios, each against real processes (`localvideo record --virtual-display`,
`observe`, `analyze --follow`, `serve`), real files, a real tmpfs and a real HTTP endpoint:

1. **kill -9 of the recorder** at N random moments (20; 5 with --quick) into one store:
   every chunk closed before a kill is still there and decodes whole; the chunk being
   written loses at most its last fragment (one frame: frag_every_frame); the index's
   integrity_check is ok after each recovery.
2. **disk full mid-chunk**: the store on a 32 MB tmpfs (root mounts it) that a filler file
   leaves 4 MB of, noise frames at CRF 0 until ENOSPC; recording pauses; the filler goes
   (space comes back), recording resumes; closed chunks decode; integrity ok.
3. **record + analyze + serve killed together** (observe's whole process tree, kill -9)
   while writing and answering: integrity ok, no chunk left "recording", every chunk read
   by the next `analyze`, no observation failed.
4. **reasoning endpoint down** (connection refused) for a scaled window (60 s; 20 s with
   --quick — the issue's 10 minutes scaled, same retry path: 15 s backoff doubling, 8 tries)
   while `analyze --follow` runs: every observation is done once it is back, none lost.
5. **1,000 malformed API requests** (300 with --quick) against `localvideo serve`: bad JSON,
   huge bodies, reversed and absurd ranges, 40-digit ids, path tricks, wrong tokens and
   scopes, foreign Host headers: 0 crashes, 0 5xx, no response carries a canary file placed
   next to the store or /etc/passwd.

``--encrypted`` runs the same with every store encrypted at rest (`encrypt enable
--passphrase`, the passphrase in LOCALVIDEO_PASSPHRASE for every process).

Prints one table (and --json writes the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))   # the fake reasoning endpoint, the poll loop

from waiting import poll  # noqa: E402

from localvideo import media  # noqa: E402
from localvideo.capture.base import CaptureBackend, Frame, WindowInfo  # noqa: E402
from localvideo.config import load_settings  # noqa: E402
from localvideo.service import Service  # noqa: E402

PY = sys.executable
ENV = {k: v for k, v in os.environ.items()
       if k not in ("DISPLAY", "WAYLAND_DISPLAY", "LOCALVIDEO_HOME")
       and not k.startswith(("LOCALVIDEO_", "OPENAI_", "ANTHROPIC_", "GEMINI_"))}


# -- helpers ----------------------------------------------------------------------------------
def cli(data: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "localvideo", *args, "--data-dir", str(data)],
                          env={**ENV, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def spawn(data: Path, *args: str, env: dict[str, str] | None = None,
          log: Path | None = None) -> subprocess.Popen[bytes]:
    out: Any = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([PY, "-m", "localvideo", *args, "--data-dir", str(data)],
                            env={**ENV, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children start their own sessions, so a process
    group does not reach them)."""
    parent: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parent.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill9(pids: list[int]) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def gone(pids: list[int], timeout: float = 20) -> None:
    """Wait until each pid has exited (a zombie holds no lock): SIGKILL is delivered at once
    but a process takes a moment to die, and recovery must not meet its lock still held."""
    def dead(p: int) -> bool:
        try:
            return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            return True

    poll(lambda: all(dead(p) for p in pids), timeout, 0.02)


def reap(proc: subprocess.Popen[bytes], extra: list[int] = ()) -> None:  # type: ignore[assignment]
    kill9([proc.pid, *extra])
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


ENCRYPTED = False        # --encrypted: every store sealed (SQLCipher index, AES-GCM chunks)
PASSPHRASE = "chaos-bench-passphrase"


def ro(db_path: Path) -> sqlite3.Connection:
    """A connection for a look at the index from outside the service (a dead recorder's rows
    before recovery). Encrypted, it goes through the store's own opening (the key)."""
    if ENCRYPTED:
        from localvideo.store.db import Database

        return Database(db_path).conn
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)


def encrypt(data: Path) -> None:
    """Seal a new store before anything records into it (--encrypted)."""
    if not ENCRYPTED:
        return
    r = cli(data, "encrypt", "enable", "--passphrase")
    if r.returncode:
        raise SystemExit(f"encrypt enable failed:\n{r.stdout}{r.stderr}")


def integrity(svc: Service) -> bool:
    return svc.db.one("PRAGMA integrity_check")[0] == "ok"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- 1. kill -9 of the recorder ---------------------------------------------------------------
def kill_recorder(work: Path, kills: int, rng: random.Random) -> dict[str, Any]:
    data = work / "kill"
    db_path = data / "index.sqlite3"
    closed_frames: dict[int, int] = {}       # chunk id → frames, for every closed chunk seen
    verified: set[int] = set()
    lost_max, lost_total, recovered, emptied, damaged, ok, before_first = 0, 0, 0, 0, 0, 0, 0
    problems: list[str] = []
    encrypt(data)
    for i in range(kills):
        proc = spawn(data, "record", "--virtual-display", "--chunk-seconds", "2", "--fps", "4",
                     "--codec", "h264", log=work / "kill-record.log")
        # A random moment from start-up on: some kills land before the first fragment.
        time.sleep(rng.uniform(0.5, 9.0))
        kids = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        kill9(kids)                          # its private Xvfb and demo windows
        gone(kids)
        if not db_path.exists():
            before_first += 1
            continue
        # What the dead recorder had indexed, before recovery touches anything.
        with contextlib.closing(ro(db_path)) as conn:
            live = {r[0]: [p for (p,) in conn.execute(
                "SELECT DISTINCT pts FROM frames WHERE chunk_id = ? AND pts IS NOT NULL",
                (r[0],))] for r in conn.execute("SELECT id FROM chunks WHERE state = "
                                                "'recording'")}
        svc = Service.open(data)             # the next start of any command recovers
        try:
            done = svc.db.query("SELECT id, path, state, frames FROM chunks")
            by_id = {r["id"]: r for r in done}
            # Closed chunks: still there, same frame count, and they decode to the end.
            for cid, frames in closed_frames.items():
                row = by_id.get(cid)
                if row is None or row["frames"] != frames:
                    problems.append(f"kill {i}: closed chunk {cid} changed or lost")
            for r in done:
                if r["state"] == "closed" and r["id"] not in verified:
                    got = media.scan_decodable(data / r["path"]).frames
                    if got < r["frames"]:
                        problems.append(f"kill {i}: closed chunk {r['id']} decodes {got} of "
                                        f"{r['frames']} frames")
                    verified.add(r["id"])
                    closed_frames[r["id"]] = r["frames"]
            # The chunk the kill hit: pictures indexed past what decodes = fragments lost.
            for cid, pts in live.items():
                row = by_id.get(cid)
                if row is None:
                    emptied += 1            # header only: removed by recovery
                    lost = len(pts)
                else:
                    p = media.scan_decodable(data / row["path"])
                    last = p.last_pts if p.last_pts is not None else -1.0
                    lost = sum(1 for t in pts if t > last + 1e-4)
                    recovered += row["state"] == "recovered"
                    damaged += row["state"] == "damaged"
                    closed_frames[cid] = row["frames"]
                    verified.add(cid)
                lost_max = max(lost_max, lost)
                lost_total += lost
            if integrity(svc):
                ok += 1
            else:
                problems.append(f"kill {i}: integrity_check failed")
        finally:
            svc.close()
    closed = len(verified)
    return {"kills": kills, "closed_chunks_checked": closed, "closed_chunks_lost":
            sum("closed chunk" in p for p in problems), "max_fragments_lost_per_kill": lost_max,
            "fragments_lost_total": lost_total, "recovered_chunks": recovered,
            "header_only_removed": emptied, "damaged": damaged, "killed_before_store": before_first,
            "integrity_ok": ok, "integrity_runs": kills - before_first, "problems": problems}


# -- 2. disk full mid-chunk ---------------------------------------------------------------------
class NoiseBackend(CaptureBackend):
    """Random pixels at 480×360: at CRF 0 each frame is ~0.5 MB, so 12 MB fill in seconds."""

    name = "noise"

    def __init__(self) -> None:
        super().__init__()
        self.rng = np.random.default_rng(11)
        self.grabs = 0

    def grab(self) -> Frame | None:
        self.grabs += 1
        px = self.rng.integers(0, 255, (360, 480, 4), dtype=np.uint8)
        return Frame(pixels=px, ts=time.time(), app="Noise", title="noise", x=0, y=0, w=480,
                     h=360, display="1", screen_w=480, screen_h=360)

    def active_window(self) -> WindowInfo | None:
        return WindowInfo("Noise", "noise", 0, 0, 480, 360)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def disk_full(work: Path) -> dict[str, Any]:
    from localvideo.record.lock import RecorderLock
    from localvideo.record.recorder import Recorder, setup_logging

    # 32 MB with 28 MB taken by a filler: the chunks fill the rest; removing the filler gives
    # back more than the recorder's resume headroom (8 MB), as freeing space would.
    with tmpfs(work / "disk", "32m") as mnt:
        data = mnt / "lv"
        encrypt(data)
        svc = Service(load_settings(data, {"record": {"fps": 10.0, "min_free_bytes": 0,
                                                      "chunk_seconds": 1.0, "quality": 0,
                                                      "codec": "h264"}}))
        svc.record.recover()
        filler = mnt / "filler"
        filler.write_bytes(b"\0" * 28_000_000)
        setup_logging(data)
        backend = NoiseBackend()
        stop = threading.Event()
        out: dict[str, Any] = {}
        with RecorderLock(data):
            rec = Recorder(svc.settings, svc.db, svc.device_id, backend)
            t = threading.Thread(target=lambda: out.update(rec.run(duration=90, stop=stop)))
            t.start()
            paused_at = poll(lambda: rec.stats.disk_paused and time.time(), 60)
            free_at_pause = shutil.disk_usage(mnt).free
            encoded_at_pause = rec.stats.frames_encoded
            grabs_at_pause = backend.grabs
            time.sleep(2)
            grabs_while_paused = backend.grabs - grabs_at_pause
            filler.unlink()                               # space comes back
            freed_at = time.time()
            resumed_at = poll(lambda: not rec.stats.disk_paused and time.time(), 30)
            poll(lambda: rec.stats.frames_encoded > encoded_at_pause + 3, 20)
            encoded_after = rec.stats.frames_encoded - encoded_at_pause
            stop.set()
            t.join(60)
        ok = integrity(svc)
        chunks = svc.db.query("SELECT path, state, frames FROM chunks")
        closed = [c for c in chunks if c["state"] == "closed" and c["frames"]]
        bad = [c["path"] for c in closed
               if media.scan_decodable(data / c["path"]).frames < c["frames"]]
        svc.close()
    return {"paused": bool(paused_at), "free_bytes_at_pause": free_at_pause,
            "frames_grabbed_while_paused": grabs_while_paused,
            "resumed": bool(resumed_at), "resume_s": round(resumed_at - freed_at, 2)
            if resumed_at else None, "frames_after_resume": encoded_after,
            "closed_chunks": len(closed), "closed_chunks_not_decoding": len(bad),
            "integrity_ok": ok, "last_error": out.get("last_error")}


# -- 3. record + analyze + serve killed together ------------------------------------------------
def kill_observe(work: Path, runs: int, rng: random.Random) -> dict[str, Any]:
    data = work / "observe"
    env = {"LOCALVIDEO_RECORD_CHUNK_SECONDS": "3", "LOCALVIDEO_ANALYZE_WINDOW": "10s",
           "LOCALVIDEO_ANALYZE_KEYFRAME_INTERVAL": "2"}
    results = []
    encrypt(data)
    for i in range(runs):
        port = free_port()
        proc = spawn(data, "observe", "--virtual-display", "--port", str(port), "--reasoner",
                     "offline", "--fps", "4", env=env, log=work / "observe.log")
        token = None
        answered = 0
        until = time.monotonic() + rng.uniform(20, 35)
        # Keep the server busy while the recorder and the analyzer write.
        while time.monotonic() < until:
            try:
                if token is None and (data / "api-token").exists():
                    token = (data / "api-token").read_text().strip()
                if token:
                    r = httpx.get(f"http://127.0.0.1:{port}/api/search", params={"q": "the"},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=5)
                    answered += r.status_code == 200
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        tree = [proc.pid, *descendants(proc.pid)]
        kill9(tree)                                        # all at once, no clean-up
        proc.wait(10)
        gone(tree)
        with contextlib.closing(ro(data / "index.sqlite3")) as conn:
            left_recording = conn.execute("SELECT count(*) FROM chunks WHERE state = "
                                          "'recording'").fetchone()[0]
        svc = Service.open(data)
        ok = integrity(svc)
        states = Counter(r[0] for r in svc.db.query("SELECT state FROM chunks"))
        svc.close()
        # Everything recovered: the next analysis reads every chunk, observations all done.
        r = cli(data, "analyze", "--reasoner", "offline", "--window", "10s", "--json",
                env=env, timeout=600)
        svc = Service.open(data)
        pending = svc.db.one("SELECT count(*) FROM chunks c LEFT JOIN analysis_progress p "
                             "ON p.chunk_id = c.id WHERE coalesce(p.done, 0) = 0")[0]
        obs = Counter(o.status for o in svc.analyze.observations(limit=500))
        ok_after = integrity(svc)
        svc.close()
        results.append({"run": i, "api_answers_before_kill": answered,
                        "chunks_left_recording": left_recording, "chunk_states": dict(states),
                        "integrity_ok": ok and ok_after, "analyze_rc": r.returncode,
                        "chunks_unread_after_analyze": pending, "observations": dict(obs)})
    return {"runs": runs, "results": results,
            "integrity_ok": sum(r["integrity_ok"] for r in results),
            "still_recording_after_recovery": sum(r["chunk_states"].get("recording", 0)
                                                  for r in results),
            "unread_after_analyze": sum(r["chunks_unread_after_analyze"] or 0 for r in results),
            "observations_failed": sum(r["observations"].get("failed", 0) for r in results),
            "observations_pending": sum(r["observations"].get("pending", 0) for r in results),
            "analyze_failures": sum(r["analyze_rc"] != 0 for r in results)}


# -- 4. the reasoning endpoint down -------------------------------------------------------------
def endpoint_down(work: Path, outage: float) -> dict[str, Any]:
    from http.server import ThreadingHTTPServer

    from reason.servers import OpenAIServer

    data = work / "outage"
    encrypt(data)
    r = cli(data, "record", "--virtual-display", "--duration", "24", "--chunk-seconds", "6",
            "--fps", "2", "--codec", "h264", timeout=300)
    if r.returncode:
        raise SystemExit(f"recording for the outage run failed:\n{r.stderr[-2000:]}")
    srv = OpenAIServer()
    port, handler = srv.port, srv.httpd.RequestHandlerClass
    srv.httpd.server_close()                     # down: connection refused on that port
    env = {"OPENAI_API_KEY": "sk-chaos", "LOCALVIDEO_ANALYZE_KEYFRAME_INTERVAL": "2"}
    t0 = back = first_refused = time.time()
    follow = spawn(data, "analyze", "--follow", "--reasoner", "openai", "--model",
                   "gpt-4o-mini", "--base-url", f"http://127.0.0.1:{port}/v1", "--window", "6s",
                   env=env, log=work / "outage-analyze.log")
    try:
        # The outage counts from the first refused attempt (reading the screen text comes
        # first and takes a while), so every observation meets the endpoint down.
        def refused() -> bool:
            if not (data / "index.sqlite3").exists():
                return False
            with contextlib.closing(ro(data / "index.sqlite3")) as conn:
                return bool(conn.execute("SELECT count(*) FROM observations WHERE attempts > 0 "
                                         "AND status = 'pending'").fetchone()[0])

        first_refused = poll(lambda: refused() and time.time(), 600, every=0.5)
        if not first_refused:
            raise SystemExit(f"no observation was attempted:\n"
                             f"{(work / 'outage-analyze.log').read_text()[-2000:]}")
        time.sleep(outage)
        srv.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        srv.httpd.daemon_threads = True
        srv._thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        srv.start()
        back = time.time()

        def settled() -> bool:
            with contextlib.closing(ro(data / "index.sqlite3")) as conn:
                st = dict(conn.execute("SELECT status, count(*) FROM observations "
                                       "GROUP BY status").fetchall())
            return bool(st) and not st.get("pending") and not st.get("failed")

        done_at = poll(lambda: settled() and time.time(), outage * 2 + 240, every=1.0)
    finally:
        follow.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            follow.wait(30)
        reap(follow)
        srv.stop()
    svc = Service.open(data)
    obs = Counter(o.status for o in svc.analyze.observations(limit=500))
    log_rows = svc.db.query("SELECT status, count(*) AS n FROM reason_log GROUP BY status")
    attempts = {r["status"]: r["n"] for r in log_rows}
    ok = integrity(svc)
    svc.close()
    return {"outage_s": outage, "observations": dict(obs),
            "observations_total": sum(obs.values()), "lost": obs.get("failed", 0)
            + obs.get("pending", 0), "failed_attempts_during_outage":
            sum(v for k, v in attempts.items() if k != "ok"),
            "requests_answered": len(srv.requests), "all_done_s_after_return":
            round(done_at - back, 1) if done_at else None,
            "down_s_total": round(back - t0, 1), "down_s_after_first_refusal":
            round(back - first_refused, 1),
            "total_s": round((done_at or time.time()) - t0, 1), "integrity_ok": ok}


# -- 5. 1,000 malformed API requests ------------------------------------------------------------
def raw(port: int, request: bytes, timeout: float = 20) -> tuple[int | None, bytes]:
    """Send bytes exactly as written; (status, body) or (None, b'') when the connection broke."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        return int(head.split()[1]), body
    except (IndexError, ValueError):
        return None, data


def malformed_requests(rng: random.Random, n: int, token: str, search_token: str,
                       canary: Path) -> Iterator[tuple[str, str, str, dict[str, str], bytes]]:
    """(kind, method, target, headers, body): raw targets, no client-side normalisation."""
    auth = {"Authorization": f"Bearer {token}"}
    huge = "9" * 40
    rel = os.path.relpath(canary, "/")
    ids = ["actions", "jobs", "clips", "observations"]
    times = ["3h", "2h", "1e400", "-1e308", "inf", "-inf", "nan", "NaN", "9" * 400, "0", "-1",
             "99999999999999999999", "2026-13-45T25:61:61", "yesterday", "tomorrow", "'; DROP",
             "%00", "..", "1" * 30 + "h", "-5m", "1e-400", "\u202e2h", "9999-12-31T23:59:59"]
    gets = ["/api/search?q={w}&since={a}&until={b}", "/api/timeline?since={a}&until={b}",
            "/api/chunks?since={a}&until={b}&limit={n}", "/api/frame?at={a}&max_side={n}",
            "/api/frame/info?at={a}", "/api/observations?since={a}&limit={n}",
            "/api/audit?since={a}&until={b}&limit={n}", "/api/jobs?limit={n}",
            "/api/actions?limit={n}", "/api/clips?limit={n}", "/?day={a}", "/moment?at={a}",
            "/search?q={w}"]
    nums = ["0", "-1", "-5", huge, "1e9", "abc", "", "NaN", "2.5", "999999999", str(2**63)]
    words = ["the", "", "*", "\"", "a" * 5000, "NEAR(", "OR OR", "%22", "\\", "'", "^", "-",
             "col:x", "😀", "%ff%fe"]
    paths = [f"/static/../../../../{rel}", f"/static/..%2f..%2f..%2f..%2f{rel}",
             f"/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{rel}", "/static/../../../../etc/passwd",
             f"/api/chunks/1/media/../../../../{rel}", "//etc/passwd", "/api/../../etc/passwd",
             f"/api/frame?at=../../../../{rel}", "/static/%00", "/static/" + "a/" * 3000,
             f"/api/clips/..%2f..%2f{rel}/media", "/api/jobs/1%00", "/static/.%2e/.%2e/etc/passwd",
             f"/{rel}", "/api/chunks/-1/media", "/api/clips/0/media", "/docs/../" + rel]
    bodies: list[tuple[str, bytes]] = [
        ("/api/ask", b"{"), ("/api/ask", b'{"question": 5}'), ("/api/ask", b"null"),
        ("/api/ask", b'{"question": "x", "since": "1e400"}'), ("/api/ask", b"[" * 5000),
        ("/api/ask", b'{"question": "' + b"a" * 6_000_000 + b'"}'),
        ("/api/generate", b'{"prompt": "x", "model_path": "../../etc"}'),
        ("/api/generate", b'{"prompt": "x", "frames": 1e400}'),
        ("/api/generate", b'{"prompt": "x", "width": -8}'), ("/api/generate", b"\xff\xfe"),
        ("/api/settings", b'{"max_bytes": "-1"}'), ("/api/settings", b'{"bogus": 1}'),
        ("/api/settings", b'{"exclude_titles": ["(unclosed"]}'),
        ("/api/ask", b'{"question": "' + "\u0000".encode() * 10 + b'"}'),
        ("/api/observations/1/act", b"{}"), ("/api/resume", b"{}"),
    ]
    for i in range(n):
        kind = ("ranges", "ids", "paths", "bodies", "tokens", "hosts", "methods")[i % 7]
        h = dict(auth)
        body = b""
        method = "GET"
        if kind == "ranges":
            tpl = rng.choice(gets)
            target = tpl.format(a=rng.choice(times), b=rng.choice(times), n=rng.choice(nums),
                                w=rng.choice(words))
            target = target.replace(" ", "%20").replace("\u202e", "%E2%80%AE")
        elif kind == "ids":
            target = f"/api/{rng.choice(ids)}/{rng.choice([huge, '-1', '0', 'x', '1.5', huge + '0'])}"
            if rng.random() < 0.3:
                method, target = "POST", f"/api/observations/{huge}/act"
        elif kind == "paths":
            target = rng.choice(paths)
        elif kind == "bodies":
            method = "POST"
            target, body = rng.choice(bodies)
            h["Content-Type"] = rng.choice(["application/json", "text/plain",
                                            "application/x-www-form-urlencoded"])
        elif kind == "tokens":
            target = rng.choice(["/api/chunks", "/api/search?q=the", "/api/frame?at=1m",
                                 "/api/audit", "/", f"/?token={'x' * rng.randint(0, 200)}"])
            h = rng.choice([{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"},
                            {"Authorization": "Basic " + token},
                            {"Authorization": f"Bearer {token[:-1]}"},
                            {"Cookie": "localvideo_token=guess"},
                            {"Authorization": f"Bearer {search_token}"},
                            {"Authorization": "Bearer " + "A" * 9000}])
        elif kind == "hosts":
            target = "/api/chunks"
            h["Host"] = rng.choice(["evil.example", "127.0.0.1.evil", "", "localhost:1@evil",
                                    "[::1", "x" * 300])
        else:
            method = rng.choice(["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FOO"])
            target = rng.choice(["/api/chunks", "/api/range?start=2h&end=3h",
                                 f"/api/range?start=0&end={huge}", "/api/lock", "/api/status"])
            if method == "DELETE" and "range" in target:
                h = {"Authorization": f"Bearer {search_token}"}   # must not delete anything
        yield kind, method, target, h, body


def api_fuzz(work: Path, n: int, rng: random.Random, data: Path) -> dict[str, Any]:
    port = free_port()
    canary = work / f"canary-{rng.getrandbits(48):012x}.txt"
    secret = f"CANARY-{rng.getrandbits(64):016x}"
    canary.write_text(secret + "\n")
    os.chmod(canary, 0o644)
    token = cli(data, "token").stdout.strip()
    made = cli(data, "token", "create", f"chaos-{rng.getrandbits(32):08x}", "--scope", "search")
    search_token = made.stdout.strip()
    chunks_before = _count(data, "chunks")
    log = work / "serve.log"
    proc = spawn(data, "serve", "--port", str(port), log=log)
    statuses: Counter[str] = Counter()
    by_kind: dict[str, Counter[int | None]] = {}
    leaks, fivexx, broken = 0, [], 0
    try:
        if not poll(lambda: raw(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                          b"Connection: close\r\n\r\n")[0] == 200, 60, 0.3):
            raise SystemExit(f"serve did not start:\n{log.read_text()[-2000:]}")
        for kind, method, target, headers, body in malformed_requests(rng, n, token,
                                                                      search_token, canary):
            lines = [f"{method} {target} HTTP/1.1"]
            if "Host" not in headers:
                lines.append(f"Host: 127.0.0.1:{port}")
            lines += [f"{k}: {v}" for k, v in headers.items()]
            lines += [f"Content-Length: {len(body)}", "Connection: close"]
            req = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
            code, resp = raw(port, req)
            by_kind.setdefault(kind, Counter())[code] += 1
            statuses[str(code)] += 1
            if code is None:
                broken += 1
            elif code >= 500:
                fivexx.append(f"{code} {method} {target[:120]}")
            if secret.encode() in resp or b"root:x:0:0" in resp:
                leaks += 1
        alive = proc.poll() is None and raw(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                  b"Connection: close\r\n\r\n")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(20)
        reap(proc)
        canary.unlink(missing_ok=True)
    tracebacks = log.read_text(errors="replace").count("Traceback")
    return {"requests": n, "statuses": dict(sorted(statuses.items())),
            "by_kind": {k: dict(sorted(((str(c), v) for c, v in v.items())))
                        for k, v in by_kind.items()},
            "5xx": len(fivexx), "5xx_examples": fivexx[:10], "connections_broken": broken,
            "server_alive": alive, "tracebacks_in_log": tracebacks, "canary_leaks": leaks,
            "chunks_deleted": chunks_before - _count(data, "chunks")}


def _count(data: Path, table: str) -> int:
    with contextlib.closing(ro(data / "index.sqlite3")) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# -- the table ----------------------------------------------------------------------------------
def table(fig: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    if "kill" in fig:
        k = fig["kill"]
        rows.append((f"kill -9 of the recorder × {k['kills']}",
                     f"closed chunks lost {k['closed_chunks_lost']} of "
                     f"{k['closed_chunks_checked']}; fragments lost per kill ≤ "
                     f"{k['max_fragments_lost_per_kill']} (total {k['fragments_lost_total']}); "
                     f"{k['recovered_chunks']} recovered, {k['header_only_removed']} "
                     f"header-only removed, {k['damaged']} damaged; integrity_check ok "
                     f"{k['integrity_ok']}/{k['integrity_runs']}",
                     _verdict(not k["problems"] and k["max_fragments_lost_per_kill"] <= 1
                              and k["integrity_ok"] == k["integrity_runs"])))
    if "disk" in fig:
        d = fig["disk"]
        rows.append(("disk filled to 0 bytes mid-chunk (tmpfs)",
                     f"paused {d['paused']} ({d['free_bytes_at_pause']} B free, "
                     f"{d['frames_grabbed_while_paused']} grabs while paused); resumed "
                     f"{d['resumed']} {d['resume_s']} s after space came back, "
                     f"{d['frames_after_resume']} frames since; closed chunks not decoding "
                     f"{d['closed_chunks_not_decoding']} of {d['closed_chunks']}; integrity "
                     f"{'ok' if d['integrity_ok'] else 'FAILED'}",
                     _verdict(d["paused"] and d["resumed"] and d["integrity_ok"]
                              and not d["closed_chunks_not_decoding"])))
    if "observe" in fig:
        o = fig["observe"]
        rows.append((f"record + analyze + serve kill -9 together × {o['runs']}",
                     f"integrity ok {o['integrity_ok']}/{o['runs']}; chunks left recording "
                     f"after recovery {o['still_recording_after_recovery']}; unread after the "
                     f"next analyze {o['unread_after_analyze']}; observations failed "
                     f"{o['observations_failed']}, pending {o['observations_pending']}",
                     _verdict(o["integrity_ok"] == o["runs"]
                              and not o["still_recording_after_recovery"]
                              and not o["unread_after_analyze"] and not o["observations_failed"]
                              and not o["observations_pending"] and not o["analyze_failures"])))
    if "outage" in fig:
        e = fig["outage"]
        rows.append((f"reasoning endpoint down {e['outage_s']:g} s (scaled from 10 min)",
                     f"{e['observations_total']} observations, lost {e['lost']}; "
                     f"{e['failed_attempts_during_outage']} refused attempts while down "
                     f"({e['down_s_after_first_refusal']:g} s after the first refusal, "
                     f"{e['down_s_total']:g} s in all); all done "
                     f"{e['all_done_s_after_return']} s after it returned",
                     _verdict(e["lost"] == 0 and e["observations_total"] > 0
                              and e["integrity_ok"])))
    if "fuzz" in fig:
        f = fig["fuzz"]
        rows.append((f"{f['requests']:,} malformed API requests",
                     f"crashes {0 if f['server_alive'] else 1}, 5xx {f['5xx']}, broken "
                     f"connections {f['connections_broken']}, tracebacks {f['tracebacks_in_log']}"
                     f", outside-store reads in responses {f['canary_leaks']}, chunks deleted "
                     f"{f['chunks_deleted']}; statuses {f['statuses']}",
                     _verdict(f["server_alive"] and not f["5xx"] and not f["canary_leaks"]
                              and not f["connections_broken"] and not f["chunks_deleted"])))
    width = max(len(r[0]) for r in rows)
    out = [f"| {'scenario':<{width}} | result | verdict |", f"|{'-' * (width + 2)}|---|---|"]
    out += [f"| {a:<{width}} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(out)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 kills, 1 observe kill, a 20 s "
                    "outage, 300 requests")
    ap.add_argument("--kills", type=int, help="recorder kills (default 20, quick 5)")
    ap.add_argument("--outage", type=float, help="seconds the endpoint is down (60, quick 20)")
    ap.add_argument("--requests", type=int, help="malformed requests (1000, quick 300)")
    ap.add_argument("--only", default="kill,disk,observe,outage,fuzz",
                    help="comma-separated scenarios to run")
    ap.add_argument("--encrypted", action="store_true", help="every store encrypted at rest "
                    "(`encrypt enable --passphrase`, LOCALVIDEO_PASSPHRASE for every process)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    if os.geteuid() != 0 and "disk" in args.only:
        raise SystemExit("the disk-full scenario mounts a tmpfs, which needs root "
                         "(or leave it out: --only kill,observe,outage,fuzz)")
    if args.encrypted:
        global ENCRYPTED
        ENCRYPTED = True
        os.environ["LOCALVIDEO_PASSPHRASE"] = ENV["LOCALVIDEO_PASSPHRASE"] = PASSPHRASE
    rng = random.Random(args.seed)
    kills = args.kills or (5 if args.quick else 20)
    outage = args.outage or (20.0 if args.quick else 60.0)
    n_req = args.requests or (300 if args.quick else 1000)
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="lv-chaos-"))
    os.chmod(work, 0o755)       # the canary is readable by anyone: only the server may not
    fig: dict[str, Any] = {"seed": args.seed, "quick": args.quick,
                           "encrypted": args.encrypted}
    t0 = time.time()
    try:
        for name, run in (
            ("kill", lambda: kill_recorder(work, kills, rng)),
            ("disk", lambda: disk_full(work)),
            ("observe", lambda: kill_observe(work, 1 if args.quick else 3, rng)),
            ("outage", lambda: endpoint_down(work, outage)),
            ("fuzz", lambda: api_fuzz(work, n_req, rng, work / "observe"
                                      if (work / "observe").exists() else work / "kill")),
        ):
            if name not in only:
                continue
            t = time.time()
            print(f"» {name} …", file=sys.stderr, flush=True)
            fig[name] = run()
            fig[name]["seconds"] = round(time.time() - t, 1)
            print(f"  {name}: {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    finally:
        fig["seconds"] = round(time.time() - t0, 1)
        if args.json:
            args.json.write_text(json.dumps(fig, indent=2, default=str))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work folder kept: {work}", file=sys.stderr)
    print(table(fig))
    flags = (" --quick" if args.quick else "") + (" --encrypted" if args.encrypted else "")
    print(f"\n{'quick' if args.quick else 'full'} run{', encrypted' if args.encrypted else ''}"
          f", seed {args.seed}, {fig['seconds']:.0f} s; command: .venv/bin/python "
          f"bench/chaos.py{flags}")


if __name__ == "__main__":
    main()
