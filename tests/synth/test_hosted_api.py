"""Hosted backends from the REST API and MCP: the preview says what will be sent, and nothing
is queued or sent without ``yes`` (a remote caller cannot pick the host: no base_url)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
sys.path.insert(0, str(Path(__file__).parents[1]))

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
