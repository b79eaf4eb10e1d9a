"""Hosted backends from the REST API and MCP: the preview says what will be sent, and nothing
is queued or sent without ``yes`` (a remote caller cannot pick the host: no base_url)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from web_helpers import LiveServer  # noqa: E402

from localvideo.service import Service  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_rest_preview_and_yes(data_dir: Path) -> None:
    svc = Service.open(data_dir)
    with LiveServer(svc) as live, live.client() as c:
        body = {"prompt": "a red fox", "backend": "veo", "model": "veo-3.0-generate-001",
                "params": {"duration_seconds": 8}}
        r = c.post("/api/generate/preview", json=body)
        assert r.status_code == 200, r.text
        p = r.json()
        assert p["host"] == "https://aiplatform.googleapis.com" and p["mode"] == "text-to-video"
        assert "$0.40" in p["estimate"]["price"] and "$3.20" in p["estimate"]["price"]
        assert any("'a red fox'" in line for line in p["lines"])
        # Without yes: refused before anything is queued.
        before = len(c.get("/api/jobs").json())
        r = c.post("/api/generate", json=body)
        assert r.status_code == 400 and "confirm first" in r.json()["message"]
        assert len(c.get("/api/jobs").json()) == before
        # A remote caller cannot choose where the key goes.
        r = c.post("/api/generate", json={**body, "yes": True, "base_url": "http://evil"})
        assert r.status_code in (400, 422) and "base_url" in r.text
    svc.close()


def test_mcp_refuses_without_yes(data_dir: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from test_mcp import _session

    async def body(session: Any) -> Any:
        return await session.call_tool("generate_video", {
            "prompt": "a fox", "backend": "runway", "model": "gen4.5"})

    res = _session(data_dir, body)
    assert res.is_error and "confirm first" in res.content[0].text


def test_a_hosted_clip_is_in_the_gallery(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hosted_servers import FalServer  # tests/synth is on the path (conftest rootdir)

    from localvideo.service.models import GenerateRequest

    monkeypatch.setenv("LOCALVIDEO_SYNTH_HOSTED_POLL", "0.05")
    svc = Service.open(data_dir)
    with FalServer() as server:
        monkeypatch.setenv("FAL_KEY", server.key)
        clip = svc.synth.generate(GenerateRequest.of(
            prompt="a lantern in fog", backend="fal", model="fal-ai/tiny-video",
            base_url=server.url, yes=True))  # default out: in the store, so it is served
    with LiveServer(svc) as live, live.client() as c:
        rows = c.get("/api/clips").json()
        assert [r["id"] for r in rows] == [clip.id] and rows[0]["hosted"]["request_id"]
        assert "abs_path" not in rows[0]
        media = c.get(f"/api/clips/{clip.id}/media")
        assert media.status_code == 200 and media.content == Path(clip.abs_path).read_bytes()
        page = c.get("/clips")
        assert page.status_code == 200, page.text[:300]
        assert "a lantern in fog" in page.text and "on fal" in page.text
        assert "64×48 · 12 frames" in page.text and "None" not in page.text.split(
            "a lantern in fog", 1)[1].split("</figcaption>", 1)[0]
    svc.close()
