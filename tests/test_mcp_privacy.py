"""MCP and privacy, through the official MCP client over stdio: `localvideo mcp --since/
--until/--app` keeps an agent to a time range or apps, a locked history refuses every read
tool, and each call lands in `localvideo audit` as ``mcp:<session>``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from localvideo.service import Service
from localvideo.service.models import AnalyzeRequest

pytestmark = pytest.mark.x11

WORD = "okapi"
PY = sys.executable


@pytest.fixture(scope="module")
def store(xdisplay: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("mcp-privacy")
    (data_dir / "config.toml").write_text('[analyze]\nreasoner = "offline"\n')
    svc = Service.open(data_dir, {"record": {"fps": 4.0}})
    xdisplay.xterm("Okapi notes", f"{WORD} sightings log\nthree at dawn", geometry="60x8+40+40")
    try:
        svc.record.run(duration=3)
        svc.analyze.run(AnalyzeRequest(window="5s", reasoner="offline"))
    finally:
        xdisplay.close_windows()
        svc.close()
    yield data_dir


def _session(data_dir: Path, body: Any, *flags: str) -> Any:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=PY, args=["-m", "localvideo", "mcp", "--data-dir",
                                                     str(data_dir), *flags])

    async def main() -> Any:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await body(session)

    return anyio.run(main)


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "localvideo", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120)


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_limits_keep_the_agent_to_its_apps_and_times(store: Path) -> None:
    async def unlimited(session: Any) -> Any:
        hits = await session.call_tool("search_screen", {"query": WORD})
        assert not hits.is_error, hits.content
        return hits.structured_content["result"]

    found = _session(store, unlimited)
    assert found, "the word is on screen and indexed"
    app, ts = found[0]["app"], found[0]["ts"]

    async def other_app(session: Any) -> Any:
        return (await session.call_tool("search_screen", {"query": WORD}),
                await session.call_tool("search_screen", {"query": WORD, "app": app}),
                await session.call_tool("get_frame", {"at": str(ts)}),
                await session.call_tool("get_timeline", {"since": "today"}),
                await session.call_tool("ask", {"question": f"when did I see {WORD}?"}),
                await session.call_tool("list_observations", {}))

    hits, named, frame, timeline, ask, obs = _session(store, other_app, "--app", "Firefox")
    assert not hits.is_error and hits.structured_content["result"] == []
    assert named.is_error and "may only read the apps Firefox" in _text(named)
    assert frame.is_error and "outside what this MCP server may read" in _text(frame)
    assert not timeline.is_error and timeline.structured_content["result"] == []
    assert ask.is_error and "draws on the whole history" in _text(ask)
    assert obs.is_error and "draws on the whole history" in _text(obs)

    async def own_app(session: Any) -> Any:
        return (await session.call_tool("search_screen", {"query": WORD}),
                await session.call_tool("get_frame", {"at": str(ts), "max_side": 400}))

    hits, frame = _session(store, own_app, "--app", app)
    assert hits.structured_content["result"] and not frame.is_error

    async def later(session: Any) -> Any:
        return (await session.call_tool("search_screen", {"query": WORD}),
                await session.call_tool("get_frame", {"at": str(ts)}))

    hits, frame = _session(store, later, "--since", str(ts + 3600))
    assert hits.structured_content["result"] == [] and frame.is_error

    bad = subprocess.run([PY, "-m", "localvideo", "mcp", "--data-dir", str(store), "--since",
                          "1h", "--until", "2h"], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "reversed" in bad.stderr

    rows = json.loads(_cli(store, "audit", "--json", "--limit", "100").stdout)
    mcp_rows = [r for r in rows if r["client"].startswith("mcp:")]
    assert {r["channel"] for r in mcp_rows} == {"mcp"}
    assert len({r["client"] for r in mcp_rows}) == 4           # one per session
    assert any(r["scope"] == "apps Firefox" and r["action"] == "answer" and r["status"] == 403
               for r in mcp_rows)
    assert any(r["action"] == "search" and WORD in r["target"] and r["status"] == 200
               for r in mcp_rows)


def test_a_locked_history_refuses_every_read_tool(store: Path) -> None:
    assert _cli(store, "lock").returncode == 0
    try:
        async def body(session: Any) -> Any:
            return [await session.call_tool(name, args) for name, args in (
                ("search_screen", {"query": WORD}), ("get_frame", {"at": "1m"}),
                ("get_timeline", {}), ("list_observations", {}),
                ("ask", {"question": "what did I do?"}))]

        results = _session(store, body)
    finally:
        assert _cli(store, "unlock").returncode == 0
    for r in results:
        assert r.is_error and "locked" in _text(r) and "localvideo unlock" in _text(r)
    rows = json.loads(_cli(store, "audit", "--json", "--limit", "5").stdout)
    assert [r["status"] for r in rows] == [423] * 5
