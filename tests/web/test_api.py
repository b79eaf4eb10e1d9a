"""The REST API through a real uvicorn on 127.0.0.1: auth, Host check, traversal, the data."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import av
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from PIL import Image
from starlette.routing import Mount, Route
from web_helpers import WORD, LiveServer, Recorded, raw_get, record_window

from localvideo.service import Service

pytestmark = pytest.mark.x11

# Routes that must exist: the walk below would pass vacuously if the app had lost them.
EXPECTED = {
    ("GET", "/api/status"), ("POST", "/api/pause"), ("POST", "/api/resume"),
    ("GET", "/api/chunks"), ("GET", "/api/chunks/1/media"), ("GET", "/api/frame"),
    ("GET", "/api/frame/info"), ("DELETE", "/api/range"), ("GET", "/api/search"),
    ("GET", "/api/timeline"), ("GET", "/api/observations"), ("GET", "/api/observations/1"),
    ("POST", "/api/observations/1/act"), ("GET", "/api/actions"), ("POST", "/api/ask"),
    ("GET", "/api/clips"), ("GET", "/api/clips/1/media"), ("POST", "/api/generate"),
    ("GET", "/api/jobs"), ("GET", "/api/jobs/1"), ("GET", "/api/settings"),
    ("POST", "/api/settings"), ("GET", "/api/models"), ("GET", "/docs"),
    ("GET", "/openapi.json"), ("GET", "/"), ("GET", "/search"), ("GET", "/clips"),
    ("GET", "/settings"), ("GET", "/static/style.css"),
}


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app really serves, read from ``app.routes`` (included routers
    flattened): path parameters filled in, a mounted folder by a file in it."""
    out = []
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if isinstance(route, Mount):
            out.append(("GET", f"{route.path}/style.css"))
        elif isinstance(route, Route) and rc.path:
            path = re.sub(r"\{[^}]+\}", "1", rc.path)
            out += [(m, path) for m in sorted((rc.methods or set()) - {"HEAD"})]
        else:
            raise AssertionError(f"unknown kind of route {route!r}: teach this test to call it")
    return out


def test_health_needs_no_token(live: LiveServer) -> None:
    r = httpx.get(f"{live.url}/health")
    assert r.status_code == 200 and r.json() == {"ok": True}


def test_every_route_refuses_without_token(live: LiveServer) -> None:
    routes = app_routes(live.app)
    assert EXPECTED <= set(routes), EXPECTED - set(routes)
    with live.client(auth=False) as c:
        for method, path in routes:
            if path == "/health":
                continue  # the one open route: liveness only (test_health_needs_no_token)
            r = c.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["type"] == "Unauthorized"
            r = c.request(method, path, json={},
                          headers={"Authorization": "Bearer not-the-token"})
            assert r.status_code == 401, (method, path)
            r = c.request(method, path, json={}, headers={"Cookie": "localvideo_token=guess"})
            assert r.status_code == 401, (method, path)
    assert ("GET", "/health") in routes
    # Nothing was changed by the refused calls.
    assert live.svc.db.get_kv("paused", False) is False


def test_browser_gets_a_readable_401(live: LiveServer) -> None:
    r = httpx.get(f"{live.url}/", headers={"Accept": "text/html"})
    assert r.status_code == 401
    assert "text/html" in r.headers["content-type"]
    assert "localvideo token --url" in r.text


def test_token_in_url_becomes_a_strict_httponly_cookie(live: LiveServer) -> None:
    r = httpx.get(f"{live.url}/search?q={WORD}&token={live.token}")
    assert r.status_code == 303
    # The token leaves the address bar: the redirect keeps the other parameters only.
    assert r.headers["location"] == f"/search?q={WORD}"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    with httpx.Client(base_url=live.url, cookies=r.cookies) as c:
        assert c.get("/api/status").status_code == 200
    assert httpx.get(f"{live.url}/?token=wrong").status_code == 401


@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{8765}", "127.0.0.1.nip.io",
                                  "localhost.evil.example", "10.0.0.5", "[::2]:80", ""])
def test_foreign_host_header_is_refused(live: LiveServer, host: str) -> None:
    # DNS rebinding: the attacker's name resolves to 127.0.0.1 but the Host stays theirs.
    with live.client() as c:
        r = c.get("/api/status", headers={"Host": host})
    assert r.status_code == 403
    assert r.json()["type"] == "ForbiddenHost"


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}",
                                  "LOCALHOST:{port}"])
def test_loopback_host_names_are_accepted(live: LiveServer, host: str) -> None:
    with live.client() as c:
        r = c.get("/api/status", headers={"Host": host.format(port=live.port)})
    assert r.status_code == 200


def test_cross_origin_write_is_refused(live: LiveServer) -> None:
    with live.client() as c:
        r = c.post("/api/pause", headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["type"] == "ForbiddenOrigin"
        assert live.svc.db.get_kv("paused", False) is False
        r = c.post("/api/pause", headers={"Origin": live.url})
        assert r.status_code == 200 and r.json()["paused"] is True
        assert c.post("/api/resume").json()["paused"] is False


def test_errors_are_json_with_type_message_hint(live: LiveServer) -> None:
    with live.client() as c:
        r = c.get("/api/observations/987654")
        assert r.status_code == 404
        assert r.json()["type"] == "NotFoundError" and "987654" in r.json()["message"]
        r = c.get("/api/frame", params={"at": "yesterday-ish"})
        assert r.status_code == 400
        body = r.json()
        assert body["type"] == "UsageError" and "ISO 8601" in body["hint"]
        r = c.get("/api/chunks/abc/media")
        assert r.status_code == 422 and r.json()["type"] == "UsageError"
        r = c.get("/api/no-such-route")
        assert r.status_code == 404 and r.json()["type"] == "NotFound"
        r = c.get("/api/search", params={"q": WORD, "limit": 0})
        assert r.status_code == 422 and "limit" in r.json()["message"]


# -- traversal ----------------------------------------------------------------------------
TRAVERSALS = [
    "/api/chunks/..%2F..%2F..%2Fetc%2Fpasswd/media",
    "/api/chunks/%2e%2e%2f%2e%2e%2fetc%2fpasswd/media",
    "/api/clips/..%2F..%2Fetc%2Fpasswd/media",
    "/static/../../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fservice%2frecord.py",          # src/localvideo/service/record.py
    "/static/..%2f..%2f..%2f..%2fsrc%2flocalvideo%2fservice%2frecord.py",
    "/static//etc/passwd",
    "/api/frame?at=../../../../etc/passwd",
    "/api/chunks/-1/media",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_attempts_are_refused(live: LiveServer, target: str) -> None:
    status, body = raw_get(live.port, target, {"Authorization": f"Bearer {live.token}"})
    assert status in (400, 403, 404, 422), (target, status)
    # Markers of what a traversal would reach: /etc/passwd, or the service's own source
    # (service/serve.py and its ServeOps were the mixin era's: the marker must exist today).
    assert b"root:" not in body and b"class RecordArea" not in body


def _chunk_row(svc: Service, path: str) -> int:
    with svc.db.tx() as conn:
        cur = conn.execute("INSERT INTO chunks(path, device_id, start_ts, end_ts, codec, state) "
                           "VALUES(?, 'x', ?, ?, 'h264', 'closed')",
                           (path, time.time() - 1e6, time.time() - 1e6 + 1))
    return int(cur.lastrowid or 0)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_index_rows_pointing_outside_the_store_are_refused(
        data_dir: Path, serve: object, tmp_path: Path, kind: str) -> None:
    # A tampered or corrupt index must still not make the server read outside the store.
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours")
    svc = Service.open(data_dir)
    if kind == "dotdot":
        path = os.path.relpath(secret, data_dir)
    elif kind == "absolute":
        path = str(secret)
    else:
        link = data_dir / "observer-recordings" / "link.mp4"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(secret)
        path = str(link.relative_to(data_dir))
    chunk_id = _chunk_row(svc, path)
    server = serve(svc)  # type: ignore[operator]
    with server.client() as c:
        r = c.get(f"/api/chunks/{chunk_id}/media")
    assert r.status_code in (400, 403), r.text
    assert "outside the store" in r.json()["message"]
    assert b"not yours" not in r.content


def test_generate_model_path_must_stay_in_the_store(live: LiveServer) -> None:
    with live.client() as c:
        before = len(c.get("/api/jobs").json())
        for p in ("../../../../etc", "/etc", "../models/../../x"):
            r = c.post("/api/generate", json={"prompt": "a fox", "model_path": p})
            assert r.status_code == 403, r.text
            assert "inside" in r.json()["message"]
        assert len(c.get("/api/jobs").json()) == before


# -- the data through the API --------------------------------------------------------------
def test_search_finds_the_word_and_the_frame_shows_it(live: LiveServer,
                                                      recorded: Recorded) -> None:
    with live.client() as c:
        hits = c.get("/api/search", params={"q": WORD}).json()
        assert hits, "OCR of the recorded xterm should find the word"
        hit = hits[0]
        assert recorded.start - 1 <= hit["ts"] <= recorded.end + 1
        assert "abs_path" not in hit
        r = c.get("/api/frame", params={"at": hit["ts"]})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        img = Image.open(io.BytesIO(r.content))
        assert img.width >= 400 and img.height >= 200
        r = c.get("/api/frame", params={"at": hit["ts"], "fmt": "jpeg", "max_side": 200,
                                        "crop": "true"})
        assert r.headers["content-type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(r.content)).size) <= 200
        info = c.get("/api/frame/info", params={"at": hit["ts"]}).json()
        assert info["chunk_id"] == hit["chunk_id"] and info["title"] == "Build log"


def test_chunk_media_is_browser_playable_and_seekable(live: LiveServer) -> None:
    with live.client() as c:
        chunks = c.get("/api/chunks").json()
        assert chunks and "abs_path" not in chunks[0]
        r = c.get(f"/api/chunks/{chunks[0]['id']}/media")
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        with av.open(io.BytesIO(r.content)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert sum(1 for _ in container.decode(stream)) >= 1
        # <video> seeks with Range requests.
        r = c.get(f"/api/chunks/{chunks[0]['id']}/media", headers={"Range": "bytes=0-99"})
        assert r.status_code == 206 and len(r.content) == 100


def test_timeline_and_status(live: LiveServer, recorded: Recorded) -> None:
    with live.client() as c:
        segs = c.get("/api/timeline", params={"since": recorded.start - 5}).json()
        assert any(s["title"] == "Build log" for s in segs)
        st = c.get("/api/status").json()
        assert st["totals"]["chunks"] >= 1 and st["serve"] == {"agent_command": False}


def test_settings_validate_before_saving(live: LiveServer, recorded: Recorded) -> None:
    config = recorded.data_dir / "config.toml"
    before = config.read_text() if config.exists() else ""
    with live.client() as c:
        r = c.post("/api/settings", json={"exclude_apps": ["KeePassXC", "Bank"],
                                          "exclude_titles": ["(unclosed"]})
        assert r.status_code == 400 and "regex" in r.json()["message"]
        assert (config.read_text() if config.exists() else "") == before
        r = c.post("/api/settings", json={"max_bytes": "3GB", "max_age": "7d",
                                          "exclude_titles": ["(?i)bank"]})
        assert r.status_code == 200, r.text
        assert r.json()["max_bytes"] == 3_000_000_000 and r.json()["max_age"] == 7 * 86400
    text = config.read_text()
    assert "max_bytes = 3000000000" in text and "(?i)bank" in text


def test_delete_range_removes_rows_and_files(data_dir: Path, desktop: object,
                                             serve: object) -> None:
    rec = record_window(data_dir, desktop, seconds=3, title="Delete me",
                        lines=["zebracorn delete test"])
    svc = rec.svc
    chunks = svc.record.chunks()
    assert chunks
    files = [Path(c.abs_path) for c in chunks]
    assert all(f.exists() for f in files)
    server = serve(svc)  # type: ignore[operator]
    with server.client() as c:
        r = c.delete("/api/range", params={"start": rec.start - 1, "end": rec.end + 1})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["chunks"] == len(chunks) and body["frames"] > 0
        assert c.get("/api/chunks").json() == []
        r = c.get("/api/frame", params={"at": rec.end})
        assert r.status_code == 404
        r = c.delete("/api/range", params={"start": rec.end, "end": rec.start})
        assert r.status_code == 400
    assert not any(f.exists() for f in files)
    assert svc.db.one("SELECT count(*) FROM frames")[0] == 0


def test_ask_and_observations(live: LiveServer, recorded: Recorded) -> None:
    with live.client() as c:
        r = c.post("/api/ask", json={"question": f"when was {WORD} on screen?"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["reasoner"] == "offline" and body["answer"]
        assert body["timestamps"] and all(recorded.start - 1 <= t <= recorded.end + 1
                                          for t in body["timestamps"])
        assert c.post("/api/ask", json={"question": ""}).status_code == 422
        obs = c.get("/api/observations").json()
        assert obs and {"id", "summary", "task", "status"} <= set(obs[0])
        one = c.get(f"/api/observations/{obs[0]['id']}").json()
        assert one == obs[0]
        # Acting needs [serve] agent_command: refused with the way to configure it.
        r = c.post(f"/api/observations/{obs[0]['id']}/act")
        assert r.status_code == 409
        assert r.json()["type"] == "ConfigError" and "agent_command" in r.json()["hint"]


def test_ui_pages_show_errors_as_pages(live: LiveServer) -> None:
    with live.client(headers={"Accept": "text/html"}) as c:
        r = c.get("/moment", params={"at": "2001-01-01T00:00:00"})
        assert r.status_code == 404 and "text/html" in r.headers["content-type"]
        assert "recording starts" in r.text and "Back to today" in r.text
        r = c.get("/", params={"day": "31/12/2026"})
        assert r.status_code == 400 and "YYYY-MM-DD" in r.text
        # The same error on the API stays JSON whatever the Accept header says.
        r = c.get("/api/frame", params={"at": "2001-01-01T00:00:00"})
        assert r.status_code == 404 and r.json()["type"] == "NotFoundError"


def test_api_reference_page_lists_every_route_and_reaches_nowhere(live: LiveServer) -> None:
    with live.client() as c:
        spec = c.get("/openapi.json").json()
        r = c.get("/docs")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        page = r.text
        # Every documented route and method is on the page, with its parameters.
        for path, methods in spec["paths"].items():
            for method, op in methods.items():
                assert f">{method.upper()}</span> <code>{path}</code>" in page, (method, path)
                for p in op.get("parameters", []):
                    assert f"<code>{p['name']}</code>" in page, (path, p["name"])
        assert "GenerateParams" in page and "<code>prompt</code>" in page
        assert "≥ 1" in page                                   # constraints are shown
        # No Swagger UI / ReDoc from a CDN: every script and stylesheet is this server's.
        refs = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert refs and all(ref.startswith(("/", "#")) for ref in refs), refs
        assert c.get("/redoc").status_code == 404
