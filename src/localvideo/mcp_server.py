"""MCP server (`localvideo mcp`, stdio): the screen history as tools for agents.

Thin over :class:`localvideo.service.Service`, built on the official SDK's ``MCPServer``
(2.x; it was ``FastMCP`` in 1.x). Our errors become ``ToolError`` so the model reads the
message and the hint instead of a bare "Error executing tool".

Claude Code: ``claude mcp add localvideo -- localvideo mcp``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .errors import LocalVideoError
from .store.layout import inside
from .units import parse_time

F = TypeVar("F", bound=Callable[..., Any])

INSTRUCTIONS = (
    "localvideo records the user's screen locally and indexes the text on it. Use "
    "search_screen to find when something was on screen, get_frame to see that moment, "
    "get_timeline for what the user worked on, list_observations for summaries and suggested "
    "tasks, ask for a question answered from the history, and generate_video to synthesize "
    "a clip. Times accept unix seconds, ISO 8601, HH:MM (today), today, yesterday or an age "
    "such as 2h."
)


def _tool_errors(fn: F) -> F:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except LocalVideoError as exc:
            raise ToolError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _when(value: str | None, what: str) -> float | None:
    return None if value in (None, "") else parse_time(value, what=what)


def build_server(service: Any) -> MCPServer[Any]:
    svc = service
    server: MCPServer[Any] = MCPServer("localvideo", instructions=INSTRUCTIONS,
                                       version="0.1.0")

    # Service calls touch SQLite and decode video: run them off the event loop.
    async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    @server.tool()
    @_tool_errors
    async def search_screen(query: str, app: str | None = None, since: str | None = None,
                            until: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Find moments when words were on the user's screen (full-text search over OCR).

        Returns hits with ts (unix seconds), app, window title and a text snippet; pass a
        hit's ts to get_frame to see it."""
        hits = await call(svc.search, query, app=app, since=_when(since, "since"),
                          until=_when(until, "until"), limit=limit)
        return [{k: h.get(k) for k in ("ts", "app", "title", "snippet", "chunk_id", "offset")}
                for h in hits]

    @server.tool()
    @_tool_errors
    async def get_timeline(since: str | None = "today", until: str | None = None,
                           ) -> list[dict[str, Any]]:
        """Which apps and windows the user had in front, when and for how long.

        ``since`` defaults to the start of today."""
        start = None
        if since == "today":
            import datetime as dt

            start = dt.datetime.combine(dt.date.today(), dt.time()).timestamp()
        else:
            start = _when(since, "since")
        return await call(svc.timeline, since=start,  # type: ignore[no-any-return]
                          until=_when(until, "until"))

    @server.tool()
    @_tool_errors
    async def get_frame(at: str, crop: bool = False, max_side: int = 1600) -> Image:
        """The user's screen at a moment, as an image (nearest recorded frame at or before
        ``at``). ``crop`` keeps only the active window."""
        data = await call(svc.frame_bytes, parse_time(at, what="at"), fmt="png", crop=crop,
                          max_side=max_side)
        return Image(data=data, format="png")

    @server.tool()
    @_tool_errors
    async def list_observations(since: str | None = None, limit: int = 20,
                                status: str | None = None) -> list[dict[str, Any]]:
        """Summaries of what the user did, each with activities and, when found, a suggested
        task (task.verdict == TASK_FOUND)."""
        return await call(svc.observations,  # type: ignore[no-any-return]
                          since=_when(since, "since"), limit=limit, status=status)

    @server.tool()
    @_tool_errors
    async def ask(question: str, since: str | None = None) -> dict[str, Any]:
        """Answer a question from the screen history; the answer cites timestamps.

        The question may name times ("what was I doing at 14:00?", "yesterday afternoon",
        "in the last 20 minutes"); `times` in the result says which spans were looked at.
        """
        return await call(svc.ask, question,  # type: ignore[no-any-return]
                          since=_when(since, "since"))

    @server.tool()
    @_tool_errors
    async def generate_video(prompt: str, ctx: Context, model: str | None = None,
                             model_path: str | None = None, frames: int | None = None,
                             width: int | None = None, height: int | None = None,
                             steps: int | None = None, seed: int | None = None,
                             ) -> dict[str, Any]:
        """Synthesize a video clip from a text prompt with a local open model (needs a GPU
        for real models). ``model`` is a name from the registry; ``model_path`` a folder
        under the models directory. Returns the clip's path and metadata; reports step
        progress."""
        if model_path:
            # Same rule as the REST API: an agent reads weights from the store only.
            model_path = str(inside(svc.settings.models_dir, model_path))

        def on_progress(event: dict[str, Any]) -> None:
            if event.get("steps"):
                anyio.from_thread.run(ctx.report_progress, float(event.get("step") or 0),
                                      float(event["steps"]), str(event.get("stage") or ""))

        result: dict[str, Any] = await call(
            svc.generate, prompt, model=model, model_path=model_path, frames=frames,
            width=width, height=height, steps=steps, seed=seed, on_progress=on_progress)
        return {k: v for k, v in result.items() if k != "latents"}

    return server


def run_stdio(data_dir: str | Path | None = None) -> None:
    from .service import Service

    svc = Service.open(data_dir)
    try:
        build_server(svc).run("stdio")
    finally:
        svc.close()
