"""The MCP server through the official MCP client over stdio (`localvideo mcp` as a process)."""

from __future__ import annotations

import base64
import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image

from localvideo.service import Service
from localvideo.service.models import AnalyzeRequest

pytestmark = pytest.mark.x11

WORD = "wombat"


@pytest.fixture(scope="module")
def store(xdisplay: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real recording of a real xterm, read by the real analyzer."""
    data_dir = tmp_path_factory.mktemp("mcp-store")
    # The server process reads this too: answers come from the local rules, no network.
    (data_dir / "config.toml").write_text('[analyze]\nreasoner = "offline"\n')
    svc = Service.open(data_dir, {"record": {"fps": 4.0}})
    xdisplay.xterm("Notes for MCP", f"{WORD} migration plan\nship on friday",
                   geometry="60x8+40+40")
    try:
        svc.record.run(duration=3)
        svc.analyze.run(AnalyzeRequest(window="5s", reasoner="offline"))
    finally:
        xdisplay.close_windows()
        svc.close()
    yield data_dir


def _session(data_dir: Path, body: Any) -> Any:
    """Start `python -m localvideo mcp` and run ``body(session)`` in a real client session."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "localvideo", "mcp", "--data-dir", str(data_dir)])

    async def main() -> Any:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await body(session)

    return anyio.run(main)


def test_lists_the_tools_with_schemas(store: Path) -> None:
    async def body(session: Any) -> Any:
        return (await session.list_tools()).tools

    tools = {t.name: t for t in _session(store, body)}
    assert set(tools) == {"search_screen", "get_timeline", "get_frame", "list_observations",
                          "ask", "generate_video"}
    schema = tools["search_screen"].input_schema
    assert schema["required"] == ["query"] and "limit" in schema["properties"]
    assert "ctx" not in tools["generate_video"].input_schema["properties"]
    assert tools["get_frame"].description and "image" in tools["get_frame"].description
    # Every tool that answers data declares its model as the output schema (typed, not
    # "object"): an agent sees the fields and their types before it calls.
    hits = tools["search_screen"].output_schema
    hit = hits["$defs"]["ScreenHit"]
    assert hits["properties"]["result"]["items"] == {"$ref": "#/$defs/ScreenHit"}
    assert hit["properties"]["ts"]["type"] == "number"
    assert hit["properties"]["matched"]["enum"] == ["words", "meaning", "both"]
    assert "chunk_path" not in hit["properties"] and "frame_id" not in hit["properties"]
    for name in ("get_timeline", "list_observations", "ask", "generate_video"):
        out = tools[name].output_schema
        assert out and (out.get("$defs") or out.get("properties")), (name, out)


def test_search_then_get_frame(store: Path) -> None:
    async def body(session: Any) -> Any:
        hits = await session.call_tool("search_screen", {"query": WORD})
        assert not hits.is_error, hits.content
        found = hits.structured_content["result"]
        frame = await session.call_tool("get_frame", {"at": str(found[0]["ts"]),
                                                      "max_side": 800})
        timeline = await session.call_tool("get_timeline", {"since": "today"})
        obs = await session.call_tool("list_observations", {})
        answer = await session.call_tool("ask", {"question": f"when did I see {WORD}?"})
        return found, frame, timeline, obs, answer

    found, frame, timeline, obs, answer = _session(store, body)
    assert not answer.is_error, answer.content
    assert answer.structured_content["reasoner"] == "offline"
    assert answer.structured_content["timestamps"]
    assert found and found[0]["title"] == "Notes for MCP"
    assert set(found[0]) == {"ts", "app", "title", "snippet", "matched", "chunk_id", "offset"}
    assert WORD in found[0]["snippet"].lower()
    assert time.time() - 600 < found[0]["ts"] <= time.time()
    image = frame.content[0]
    assert image.type == "image" and image.mime_type == "image/png"
    png = Image.open(io.BytesIO(base64.b64decode(image.data)))
    assert max(png.size) <= 800 and min(png.size) > 50
    segments = timeline.structured_content["result"]
    assert any(s["title"] == "Notes for MCP" for s in segments)
    assert obs.structured_content["result"], "the analyzer wrote at least one observation"


def test_errors_come_back_as_tool_errors_with_the_hint(store: Path) -> None:
    async def body(session: Any) -> Any:
        bad_time = await session.call_tool("get_frame", {"at": "not a time"})
        too_early = await session.call_tool("get_frame", {"at": "2001-01-01T00:00:00"})
        return bad_time, too_early

    bad_time, too_early = _session(store, body)
    assert bad_time.is_error and "invalid at" in bad_time.content[0].text
    assert "ISO 8601" in bad_time.content[0].text  # the hint travels with the message
    assert too_early.is_error and "recording starts" in too_early.content[0].text


@pytest.mark.synth
def test_generate_video_reports_progress(tmp_path: Path) -> None:
    import tinymodels as tiny
    svc = Service.open(tmp_path / "store")
    tiny.build_tiny("ltx", svc.settings.models_dir / "tiny-ltx")
    svc.close()
    progress: list[tuple[float, float | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    async def body(session: Any) -> Any:
        outside = await session.call_tool("generate_video", {"prompt": "a fox",
                                                             "model_path": "../../etc"})
        made = await session.call_tool(
            "generate_video", {"prompt": "a red fox", "model_path": "tiny-ltx",
                               **tiny.TINY_SIZES["ltx"], "steps": 2, "seed": 1},
            progress_callback=on_progress)
        return outside, made

    outside, made = _session(tmp_path / "store", body)
    assert outside.is_error and "outside the store" in outside.content[0].text
    assert not made.is_error, made.content
    clip = made.structured_content
    assert Path(clip["path"]).is_file() or (tmp_path / "store" / clip["path"]).is_file()
    assert clip["params"]["steps"] == 2
    assert progress and progress[-1][1] == 2
