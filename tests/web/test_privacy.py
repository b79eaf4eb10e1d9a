"""Audit, scoped tokens, the lock and bounded ids, over real HTTP against a real recording.

The CLI commands (`localvideo token create`, `audit`, `lock`, `unlock`) run as processes on
the same store the live server serves, as a user would run them beside `observe`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from web_helpers import WORD, LiveServer, Recorded, open_xterm

from localvideo.service import Service

PY = sys.executable


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "localvideo", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_api_search_shows_up_in_localvideo_audit(live: LiveServer,
                                                    recorded: Recorded) -> None:
    with live.client() as c:
        r = c.get("/api/search", params={"q": WORD})
        assert r.status_code == 200 and r.json()
        t = r.json()[0]["ts"]
        assert c.get("/api/frame", params={"at": t}).status_code == 200
    out = _cli(recorded.data_dir, "audit", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    search = next(e for e in rows if e["action"] == "search")
    assert search["client"] == "owner" and search["scope"] == "full"
    assert search["channel"] == "api" and search["status"] == 200
    assert f"q={WORD}" in search["target"] and search["ts"] <= time.time()
    assert any(e["action"] == "frame" and f"at={t}" in e["target"] for e in rows)
    # Rows are newest first, and the table form names the client.
    assert rows[0]["id"] > rows[-1]["id"]
    table = _cli(recorded.data_dir, "audit")
    assert "owner" in table.stdout and "search" in table.stdout
    # The UI shows the same log (and reading it there is itself a read).
    with live.client() as c:
        page = c.get("/audit", headers={"Accept": "text/html"})
    assert page.status_code == 200 and f"q={WORD}" in page.text


def test_scoped_tokens_reach_only_their_scope(live: LiveServer, recorded: Recorded) -> None:
    made = _cli(recorded.data_dir, "token", "create", "finder", "--scope", "search")
    assert made.returncode == 0, made.stderr
    finder = made.stdout.strip()
    reader = _cli(recorded.data_dir, "token", "create", "reader", "--scope", "read").stdout.strip()
    assert finder.startswith("lv_") and reader.startswith("lv_") and finder != reader
    # Only a hash of each is kept in the store (index, WAL, anything). grep runs as its own
    # process: opening the live index in this one would drop SQLite's POSIX locks.
    found = subprocess.run(["grep", "-rlF", finder, str(recorded.data_dir)],
                           capture_output=True, text=True)
    assert found.returncode == 1 and not found.stdout, found.stdout
    dup = _cli(recorded.data_dir, "token", "create", "finder")
    assert dup.returncode == 2 and "exists" in dup.stderr
    with httpx.Client(base_url=live.url, headers=_bearer(finder), timeout=60) as c:
        assert c.get("/api/search", params={"q": WORD}).status_code == 200
        for path in ("/api/frame?at=0", "/api/chunks", "/api/timeline", "/api/observations",
                     "/api/audit"):
            r = c.get(path)
            assert r.status_code == 403, (path, r.text)
            assert r.json()["type"] == "ScopeError" and "--scope" in r.json()["hint"]
        assert c.post("/api/ask", json={"question": "what?"}).status_code == 403
    with httpx.Client(base_url=live.url, headers=_bearer(reader), timeout=60) as c:
        assert c.get("/api/chunks").status_code == 200
        assert c.get("/api/timeline").status_code == 200
        assert c.get("/api/audit").status_code == 403        # the owner's alone
        for method, path in (("POST", "/api/pause"), ("DELETE", "/api/range?start=0&end=1"),
                             ("POST", "/api/settings"), ("POST", "/api/generate")):
            assert c.request(method, path, json={}).status_code == 403, path
    assert live.svc.db.get_kv("paused", False) is False
    rows = json.loads(_cli(recorded.data_dir, "audit", "--json", "--client", "finder").stdout)
    assert {e["status"] for e in rows} >= {200, 403}
    assert all(e["client"] == "finder" and e["scope"] == "search" for e in rows)
    listed = json.loads(_cli(recorded.data_dir, "token", "list", "--json").stdout)
    assert {(t["name"], t["scope"]) for t in listed} >= {("finder", "search"), ("reader", "read")}
    assert "token" not in listed[0]
    # Revoked: refused from the next request on.
    assert _cli(recorded.data_dir, "token", "revoke", "finder").returncode == 0
    r = httpx.get(f"{live.url}/api/search", params={"q": WORD}, headers=_bearer(finder))
    assert r.status_code == 401


def test_ids_and_counts_are_bounded_at_the_boundary(live: LiveServer) -> None:
    huge = "9" * 40
    with live.client() as c:
        for path in (f"/api/actions/{huge}", f"/api/jobs/{huge}", f"/api/clips/{huge}",
                     f"/api/observations/{huge}", f"/api/chunks/{huge}/media",
                     f"/api/clips/{huge}/media", f"/api/chunks?limit={huge}",
                     f"/api/clips?limit={huge}"):
            r = c.get(path)
            assert r.status_code == 422, (path, r.status_code, r.text)
            assert r.json()["type"] == "UsageError"
        r = c.post(f"/api/observations/{huge}/act")
        assert r.status_code == 422
        # In range but absent: 404, as before.
        assert c.get(f"/api/actions/{2**63 - 1}").status_code == 404


def test_lock_refuses_reads_and_recording_goes_on(xdisplay: Any, tmp_path: Path,
                                                  serve: Any) -> None:
    data = tmp_path / "lockstore"
    svc = Service.open(data, {"record": {"fps": 4.0}})
    server: LiveServer = serve(svc)
    open_xterm(xdisplay, "Lock test", ["first line"])
    try:
        svc.record.run(duration=1.5)
        with server.client() as c:
            assert c.get("/api/chunks").status_code == 200
        locked = _cli(data, "lock")
        assert locked.returncode == 0 and "locked" in locked.stdout, locked.stderr
        chunks_before = svc.db.one("SELECT count(*), sum(frames) FROM chunks")
        svc.record.run(duration=1.5)                # recording goes on while locked
        chunks_after = svc.db.one("SELECT count(*), sum(frames) FROM chunks")
        assert chunks_after[0] > chunks_before[0] and chunks_after[1] > chunks_before[1]
        with server.client() as c:
            for path in ("/api/chunks", "/api/search?q=first", "/api/frame?at=1h",
                         "/api/timeline", "/api/audit"):
                r = c.get(path)
                assert r.status_code == 423, (path, r.text)
                body = r.json()
                assert body["type"] == "LockedError" and "localvideo unlock" in body["hint"]
            page = c.get("/", headers={"Accept": "text/html"})
            assert page.status_code == 423 and "localvideo unlock" in page.text
            # What is not the history still answers: liveness, status, the lock's state.
            assert c.get("/api/status").status_code == 200
            assert c.get("/api/lock").json()["locked"] is True
            assert httpx.get(f"{server.url}/health").status_code == 200
        assert _cli(data, "unlock").returncode == 0
        with server.client() as c:
            assert c.get("/api/chunks").status_code == 200
        audit = svc.privacy.audit()
        assert [e.status for e in audit if e.target == "/api/chunks"][:2] == [200, 423]
    finally:
        xdisplay.close_windows()


def test_idle_lock_locks_after_no_reads(tmp_path: Path, serve: Any) -> None:
    data = tmp_path / "idle"
    svc = Service.open(data)
    server: LiveServer = serve(svc)
    r = _cli(data, "lock", "--idle", "1s", "--json")
    assert r.returncode == 0, r.stderr
    state = json.loads(r.stdout)
    assert state["locked"] is False and state["idle_after"] == 1.0
    with server.client() as c:
        assert c.get("/api/chunks").status_code == 200
        time.sleep(1.3)
        r2 = c.get("/api/chunks")
        assert r2.status_code == 423 and "without a read" in r2.json()["message"]
        assert c.get("/api/lock").json()["reason"] == "idle"
        assert _cli(data, "unlock").returncode == 0
        assert c.get("/api/chunks").status_code == 200
        assert _cli(data, "lock", "--idle", "off").returncode == 0
        time.sleep(1.3)
        assert c.get("/api/chunks").status_code == 200


def test_absurd_times_and_huge_questions_are_refused_not_500(live: LiveServer) -> None:
    # Found by bench/chaos.py: /moment?at=1e400 reached the page's date formatting (500), and
    # a 6 MB question held the server for seconds.
    with live.client() as c:
        for target in ("/moment?at=1e400", "/moment?at=99999999999999999999",
                       "/api/frame?at=nan", "/api/search?q=x&since=1e400",
                       "/api/timeline?until=-inf"):
            r = c.get(target)
            assert r.status_code == 400, (target, r.status_code, r.text[:200])
            assert "1970 and 9999" in r.json()["message"] or "invalid" in r.json()["message"]
        page = c.get("/moment?at=1e400", headers={"Accept": "text/html"})
        assert page.status_code == 400 and "between 1970 and 9999" in page.text
        r = c.post("/api/ask", json={"question": "a" * 20_001})
        assert r.status_code == 422 and "question" in r.json()["message"]


def _status_with_host(port: int, host: str, token: str) -> int:
    """One request whose only Host header is ``host``, sent as written."""
    req = (f"GET /api/status HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
           "Connection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split()[1])


def test_a_host_with_anything_but_a_port_after_the_colon_is_refused(live: LiveServer) -> None:
    # Found by bench/chaos.py: 'localhost:1@evil' was read as localhost.
    for host in ("localhost:1@evil", "127.0.0.1:x", "localhost:"):
        assert _status_with_host(live.port, host, live.token) == 403, host
    assert _status_with_host(live.port, f"localhost:{live.port}", live.token) == 200
