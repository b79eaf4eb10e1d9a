"""MCP server (`localvideo mcp`, stdio): the screen history as tools for agents.

Thin over :class:`localvideo.service.Service`, built on the official SDK's ``MCPServer``
(2.x; it was ``FastMCP`` in 1.x). Our errors become ``ToolError`` so the model reads the
message and the hint instead of a bare "Error executing tool".

Claude Code: ``claude mcp add localvideo -- localvideo mcp``.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .errors import LocalVideoError, LockedError, ScopeError
from .service import Service
from .service.models import (
    Answer,
    AskQuestion,
    Clip,
    GenerateParams,
    Observation,
    Picture,
    ScreenHit,
    SearchHit,
    Segment,
)
from .service.privacy import Client, Limits

_ACTION = {"search_screen": "search", "get_timeline": "timeline", "get_frame": "frame",
           "list_observations": "observation", "ask": "answer"}

P = ParamSpec("P")
T = TypeVar("T")

INSTRUCTIONS = (
    "localvideo records the user's screen locally and indexes the text on it. Use "
    "search_screen to find when something was on screen, get_frame to see that moment, "
    "get_timeline for what the user worked on, list_observations for summaries and suggested "
    "tasks, ask for a question answered from the history, and generate_video to synthesize "
    "a clip. Times accept unix seconds, ISO 8601, HH:MM (today), today, yesterday or an age "
    "such as 2h."
)


def _tool_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except LocalVideoError as exc:
            raise ToolError(str(exc)) from exc

    return wrapper


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Service calls touch SQLite and decode video: run them off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def build_server(svc: Service, limits: Limits | None = None,
                 session: str | None = None) -> MCPServer[Any]:
    """The tools, thin over the service: it parses the times and confines the paths.

    Every read is refused while the history is locked and appended to the audit log as
    ``mcp:<session>``; ``limits`` keeps the server to a time range and/or apps."""
    lim = limits or Limits()
    client = Client(f"mcp:{session or uuid.uuid4().hex[:12]}", lim.describe(), "mcp")
    instructions = INSTRUCTIONS + (f" This server may only read: {lim.describe()}."
                                   if lim.limited else "")
    server: MCPServer[Any] = MCPServer("localvideo", instructions=instructions,
                                       version="0.1.0")

    async def read(tool: str, args: dict[str, Any], fn: Callable[[], T]) -> T:
        """Lock check, the call, and one audit row however it ends."""
        target = tool + " " + json.dumps({k: v for k, v in args.items() if v is not None},
                                         default=str, ensure_ascii=False)

        def run() -> T:
            code = 200
            try:
                svc.privacy.check_unlocked()
                return fn()
            except LocalVideoError as exc:
                code = 423 if isinstance(exc, LockedError) else (
                    403 if isinstance(exc, ScopeError) else 400)
                raise
            finally:
                svc.privacy.record_read(client, _ACTION[tool], target, code)

        return await _call(run)

    def no_limits(what: str) -> None:
        if lim.limited:
            raise ScopeError(f"{what} draws on the whole history, and this MCP server may only "
                             f"read {lim.describe()}", "use search_screen, get_timeline and "
                             "get_frame, which keep to the limits")

    @server.tool()
    @_tool_errors
    async def search_screen(query: str, app: str | None = None, since: str | None = None,
                            until: str | None = None, limit: int = 20,
                            mode: str | None = None) -> list[ScreenHit]:
        """Find moments when something was on the user's screen: by its words (full-text
        search over OCR), its meaning (local embeddings), or both. ``mode`` is keyword,
        semantic or hybrid (the default once the screen text is embedded): describe what you
        look for in other words and hybrid still finds it.

        Returns hits with ts (unix seconds), app, window title, a text snippet and
        ``matched`` (words, meaning or both); pass a hit's ts to get_frame to see it."""
        def go() -> list[SearchHit]:
            lim.check_app(app)
            lo, hi = svc.privacy.window(lim, since, until)
            apps: list[str | None] = [app] if app else [*lim.apps] or [None]
            found = [h for a in apps
                     for h in svc.analyze.search(query, app=a, since=lo, until=hi, limit=limit,
                                                 mode=mode)]
            return [h for h in found if lim.app_allowed(h.app) and lim.in_range(h.ts)][:limit]

        hits = await read("search_screen", {"query": query, "app": app, "since": since,
                                            "until": until, "limit": limit, "mode": mode}, go)
        # What an agent needs, no more: the chunk's file path stays out of the context.
        return [h.for_agent() for h in hits]

    @server.tool()
    @_tool_errors
    async def get_timeline(since: str | None = "today", until: str | None = None,
                           ) -> list[Segment]:
        """Which apps and windows the user had in front, when and for how long.

        ``since`` defaults to the start of today."""
        def go() -> list[Segment]:
            lo, hi = svc.privacy.window(lim, since, until)
            return [s for s in svc.analyze.timeline(since=lo, until=hi)
                    if lim.app_allowed(s.app)]

        return await read("get_timeline", {"since": since, "until": until}, go)

    @server.tool()
    @_tool_errors
    async def get_frame(at: str, crop: bool = False, max_side: int = 1600) -> Image:
        """The user's screen at a moment, as an image (nearest recorded frame at or before
        ``at``). ``crop`` keeps only the active window."""
        def go() -> Picture:
            if lim.limited:
                info = svc.record.frame_info(at)
                lim.check_moment(info.ts, info.app)
                return svc.record.frame_bytes(info.ts, fmt="png", crop=crop,
                                              max_side=max_side)
            return svc.record.frame_bytes(at, fmt="png", crop=crop, max_side=max_side)

        pic = await read("get_frame", {"at": at, "crop": crop, "max_side": max_side}, go)
        return Image(data=pic.data, format="png")

    @server.tool()
    @_tool_errors
    async def list_observations(since: str | None = None, limit: int = 20,
                                status: str | None = None) -> list[Observation]:
        """Summaries of what the user did, each with activities and, when found, a suggested
        task (task.verdict == TASK_FOUND)."""
        def go() -> list[Observation]:
            if lim.apps:
                no_limits("list_observations")
            lo, hi = svc.privacy.window(lim, since, None)
            return [o for o in svc.analyze.observations(since=lo, limit=limit, status=status)
                    if lim.in_range(o.start_ts) and lim.in_range(o.end_ts)]

        return await read("list_observations", {"since": since, "limit": limit,
                                                "status": status}, go)

    @server.tool()
    @_tool_errors
    async def ask(question: str, since: str | None = None) -> Answer:
        """Answer a question from the screen history; the answer cites timestamps.

        The question may name times ("what was I doing at 14:00?", "yesterday afternoon",
        "in the last 20 minutes"); `times` in the result says which spans were looked at.
        """
        def go() -> Answer:
            no_limits("ask")
            return svc.analyze.ask(AskQuestion.of(question=question, since=since))

        return await read("ask", {"question": question, "since": since}, go)

    @server.tool()
    @_tool_errors
    async def generate_video(prompt: str, ctx: Context, model: str | None = None,
                             model_path: str | None = None, frames: int | None = None,
                             width: int | None = None, height: int | None = None,
                             steps: int | None = None, seed: int | None = None,
                             backend: str | None = None,
                             params: dict[str, Any] | None = None, yes: bool = False,
                             ) -> Clip:
        """Synthesize a video clip from a text prompt with a local open model (needs a GPU
        for real models). ``model`` is a name from the registry; ``model_path`` a folder
        under the models directory. Returns the clip's path and metadata; reports step
        progress. ``backend`` replicate, fal, veo or runway sends the prompt to that hosted
        provider instead (``model`` in its naming, ``params`` its own inputs): only with
        ``yes`` true, after the user agreed to what will be sent."""
        gen = GenerateParams.of(prompt=prompt, model=model, model_path=model_path,
                                frames=frames, width=width, height=height, steps=steps,
                                seed=seed, backend=backend, params=params, yes=yes)

        def on_progress(event: dict[str, Any]) -> None:
            if event.get("steps"):
                anyio.from_thread.run(ctx.report_progress, float(event.get("step") or 0),
                                      float(event["steps"]), str(event.get("stage") or ""))
            elif event.get("phase") == "hosted" and event.get("progress") is not None:
                anyio.from_thread.run(ctx.report_progress, 100 * float(event["progress"]),
                                      100.0, f"{event.get('provider')} {event.get('state')}")

        clip = await _call(svc.synth.generate_confined, gen, on_progress=on_progress)
        return clip.public()

    return server


def run_stdio(data_dir: str | Path | None = None, since: str | None = None,
              until: str | None = None, apps: list[str] | None = None) -> None:
    svc = Service.open(data_dir)
    try:
        limits = svc.privacy.limits(since, until, apps or [])
        build_server(svc, limits).run("stdio")
    finally:
        svc.close()
