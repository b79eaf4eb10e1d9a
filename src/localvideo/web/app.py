"""REST API and web UI, thin over :class:`localvideo.service.Service`.

Security model (a screen history is the most private data a machine has):

- bind 127.0.0.1 by default;
- every route except ``GET /health`` needs the API token: ``Authorization: Bearer``, or the
  HttpOnly SameSite=Strict cookie that ``?token=`` sets once (then redirects without it);
- the Host header must be a loopback name, which defeats DNS rebinding (a foreign page
  whose name resolves to 127.0.0.1 still sends its own Host); a cross-origin ``Origin`` on a
  state-changing request is refused too;
- files are addressed by ids, never paths, and every file served is checked to be inside
  the store (``store.layout.inside``), which also refuses symlinks that lead out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors
from ..service import Service
from ..service.context import OutsideStoreError
from ..service.encryption import sealed_body
from ..service.models import (
    Action,
    Answer,
    AskQuestion,
    Chunk,
    Clip,
    Deleted,
    EncryptionStatus,
    EndpointTest,
    FrameInfo,
    GenerateParams,
    GenerateRequest,
    HostedPreview,
    Job,
    LocalModelServer,
    ModelPreset,
    Observation,
    PauseState,
    PrefsUpdate,
    ReasonerPrefs,
    ReasonerUpdate,
    RecordPrefs,
    SearchHit,
    Segment,
    Status,
)
from ..service.privacy import AuditEntry, Client, LockState, action_for, gated

log = logging.getLogger("localvideo.web")

COOKIE = "localvideo_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
STATIC_DIR = Path(__file__).parent / "static"
# Ids and counts bound where they enter: SQLite integers stop at 2**63 - 1, and a bigger one
# (40 digits in a URL) would otherwise reach the query and fail as a 500.
MAX_ID = 2**63 - 1
Id = Annotated[int, PathParam(ge=1, le=MAX_ID)]

# Most specific first: the first class in the exception's MRO that is listed wins.
STATUS_BY_ERROR: dict[type[errors.LocalVideoError], int] = {
    errors.NotFoundError: 404,
    errors.LockedError: 423,
    errors.ScopeError: 403,
    errors.ModelNotFoundError: 404,
    errors.UsageError: 400,
    errors.ConfigError: 409,
    errors.MissingKeyError: 424,
    errors.EndpointError: 502,
    errors.ReasonerError: 502,
    errors.DependencyError: 503,
    errors.NoDisplayError: 503,
    errors.CaptureError: 503,
    errors.DiskFullError: 507,
    errors.OutOfMemoryError: 507,
    errors.ComfyUIError: 502,
    errors.SynthError: 500,
    errors.EncoderError: 500,
    errors.StoreError: 500,
}


def status_for(exc: errors.LocalVideoError) -> int:
    if isinstance(exc, OutsideStoreError):
        return 403
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(type_: str, message: str, hint: str | None = None) -> dict[str, str]:
    body = {"type": type_, "message": message}
    if hint:
        body["hint"] = hint
    return body


def host_name(host_header: str) -> str:
    """'127.0.0.1:8765' → '127.0.0.1'; '[::1]:8765' → '::1'."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    if h.count(":") == 1:
        name, port = h.split(":")
        # Only a port may follow the colon: 'localhost:1@evil' is no loopback name.
        return name if port.isdigit() else h
    return h


def _origin_host(origin: str) -> str:
    m = re.match(r"^[a-z][a-z0-9+.-]*://([^/]+)", origin.strip().lower())
    return host_name(m.group(1)) if m else ""


def _request_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(COOKIE)


def _wants_html(request: Request) -> bool:
    return (not request.url.path.startswith("/api/")
            and "text/html" in request.headers.get("accept", ""))


def create_app(svc: Service, *, extra_hosts: set[str] | None = None) -> FastAPI:
    """The FastAPI app for one opened service. ``extra_hosts``: names besides loopback that
    may appear in Host (only when the user binds a non-loopback address on purpose)."""
    allowed_hosts = LOOPBACK_NAMES | {h.lower() for h in (extra_hosts or set())}
    # No Swagger UI or ReDoc: both load their scripts from a CDN, so opening them would reach
    # off the machine. /docs is our own page, rendered from the same OpenAPI schema.
    app = FastAPI(title="localvideo", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Your screen history and generated clips, on this machine. "
                              "Every route except /health needs the API token "
                              "(`localvideo token`).")
    app.state.service = svc

    # -- guard: Host, token, Origin --------------------------------------------------------
    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        host = host_name(request.headers.get("host", ""))
        if host not in allowed_hosts:
            return JSONResponse(error_body(
                "ForbiddenHost", f"Host {request.headers.get('host', '')!r} is not this "
                "server's loopback name", "open http://127.0.0.1:<port>/ or "
                "http://localhost:<port>/"), status_code=403)
        if request.url.path == "/health":
            return await call_next(request)
        query_token = request.query_params.get("token")
        path = request.url.path
        # The browser UI signs in with the cookie; API clients send the bearer header.
        bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
        channel = "api" if bearer else "ui"
        if query_token is not None:
            if await run_in_threadpool(svc.privacy.authenticate, query_token, channel) is None:
                return _unauthorized(request, "the token in the URL is wrong")
            # Swap the URL token for a cookie so it leaves the address bar and history.
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            resp = RedirectResponse(target, status_code=303)
            resp.set_cookie(COOKIE, query_token, httponly=True, samesite="strict",
                            path="/", max_age=400 * 86400)
            return resp
        client = await run_in_threadpool(svc.privacy.authenticate, _request_token(request),
                                         channel)
        if client is None:
            return _unauthorized(request, "missing or wrong API token")
        request.state.client = client   # who changes settings (audit log)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            if origin and origin != "null" and _origin_host(origin) not in allowed_hosts:
                return JSONResponse(error_body("ForbiddenOrigin",
                                               f"cross-origin request from {origin} refused"),
                                    status_code=403)
        # Scope, lock and audit (service/privacy.py): a read of the history is refused while
        # locked and appended to the audit log with who asked and how it ended.
        read = gated(path)
        target = path + (f"?{request.url.query}" if request.url.query else "")
        try:
            svc.privacy.check_scope(client, request.method, path)
            if read:
                await run_in_threadpool(svc.privacy.check_unlocked)
        except (errors.ScopeError, errors.LockedError) as exc:
            code = status_for(exc)
            if read:
                await run_in_threadpool(_audit, client, path, target, code)
            if _wants_html(request):
                from .ui import error_page

                return error_page(request, code, exc.message, exc.hint)
            return JSONResponse(exc.to_dict(), status_code=code)
        response = await call_next(request)
        if read:
            await run_in_threadpool(_audit, client, path, target, response.status_code)
        return response

    def _audit(client: Client, path: str, target: str, code: int) -> None:
        try:
            svc.privacy.record_read(client, action_for(path), target, code)
        except errors.LocalVideoError as exc:
            # A full disk must not take the API down with it; the failure is logged.
            log.error("audit log not written for %s %s: %s", client.name, target, exc)

    def _unauthorized(request: Request, why: str) -> Response:
        hint = ("run `localvideo token` and send it as 'Authorization: Bearer <token>', or "
                "open the address `localvideo observe` prints")
        if _wants_html(request):
            from .ui import unauthorized_page

            return unauthorized_page(why, hint)
        return JSONResponse(error_body("Unauthorized", why, hint), status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    # -- errors as JSON {"type", "message"} ------------------------------------------------
    @app.exception_handler(errors.LocalVideoError)
    async def on_lv_error(request: Request, exc: errors.LocalVideoError) -> Response:
        code = status_for(exc)
        if _wants_html(request):
            from .ui import error_page

            return error_page(request, code, exc.message, exc.hint)
        return JSONResponse(exc.to_dict(), status_code=code)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query",
                                                                          "path"))
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse(error_body("UsageError", "; ".join(parts) or "invalid request",
                                       "see the API schema at /docs"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        name = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return JSONResponse(error_body(name, str(exc.detail)), status_code=exc.status_code)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, Any]:
        """Liveness only; says nothing about the screen history (no token needed)."""
        return {"ok": True}

    app.include_router(_api_router(svc))
    from .ui import ui_router

    app.include_router(ui_router(svc))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def media(path: Path, media_type: str) -> Response:
    """A file the service has already confined to the store (see service.context.confine);
    a sealed one (encryption at rest) is sent from memory, never decrypted to disk."""
    body = sealed_body(path)
    if body is not None:
        return Response(body, media_type=media_type)
    return FileResponse(path, media_type=media_type)


def _api_router(svc: Service) -> APIRouter:
    """JSON routes, thin over the service: its models are the request and response models.

    Times are passed through as typed (the service parses them); a response model that is
    a public subclass drops what only this machine should see (``abs_path``)."""
    r = APIRouter(prefix="/api")

    @r.get("/status", tags=["record"])
    def status() -> Status:
        return svc.status()

    @r.post("/pause", tags=["record"])
    def pause() -> PauseState:
        return svc.record.pause()

    @r.post("/resume", tags=["record"])
    def resume() -> PauseState:
        return svc.record.resume()

    @r.get("/chunks", tags=["record"])
    def chunks(since: str | None = None, until: str | None = None,
               limit: int | None = Query(default=None, ge=1, le=1_000_000)) -> Sequence[Chunk]:
        return svc.record.chunks(since=since, until=until, limit=limit)

    @r.get("/chunks/{chunk_id}/media", tags=["record"], response_class=FileResponse)
    def chunk_media(chunk_id: Id) -> Response:
        """The chunk as H.264 MP4 a browser can play (HEVC chunks are transcoded once)."""
        path, mime = svc.record.chunk_media(chunk_id)
        return media(path, mime)

    @r.get("/encryption", tags=["record"])
    def encryption() -> EncryptionStatus:
        """Whether the store is encrypted at rest, where its key is, chunks sealed/plain."""
        return svc.encryption.status()

    @r.get("/frame", tags=["record"], response_class=Response,
           responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
    def frame(at: str, fmt: str = Query(default="png", pattern="^(png|jpeg|jpg)$"),
              crop: bool = False, max_side: int | None = Query(default=None, ge=16, le=8192),
              ) -> Response:
        """The screen at a moment (unix seconds, ISO time, HH:MM:SS or an age like 5m)."""
        pic = svc.record.frame_bytes(at, fmt=fmt, crop=crop, max_side=max_side)
        # A moment's pixels never change: let the browser keep them.
        return Response(pic.data, media_type=pic.media_type,
                        headers={"Cache-Control": "private, max-age=86400"})

    @r.get("/frame/info", tags=["record"])
    def frame_info(at: str) -> FrameInfo:
        return svc.record.frame_info(at)

    @r.delete("/range", tags=["record"])
    def delete_range(start: str, end: str) -> Deleted:
        """Remove every chunk overlapping [start, end] with its frames, text, observations."""
        return svc.record.delete_range(start, end)

    @r.get("/search", tags=["analyze"])
    def search(q: str = Query(min_length=1), app: str | None = None, since: str | None = None,
               until: str | None = None, limit: int = Query(default=50, ge=1, le=500),
               mode: Literal["keyword", "semantic", "hybrid"] | None = Query(
                   default=None, description="keyword, semantic or hybrid (default: hybrid "
                                             "once anything is embedded, else keyword)"),
               ) -> list[SearchHit]:
        """Moments something was on screen, by its words, its meaning or both; each hit's
        ``matched`` says which."""
        return svc.analyze.search(q, app=app, since=since, until=until, limit=limit, mode=mode)

    @r.get("/timeline", tags=["analyze"])
    def timeline(since: str | None = None, until: str | None = None) -> list[Segment]:
        return svc.analyze.timeline(since=since, until=until)

    @r.get("/observations", tags=["analyze"])
    def observations(since: str | None = None, limit: int = Query(default=50, ge=1, le=500),
                     status: str | None = Query(default=None,
                                                pattern="^(pending|done|failed)$"),
                     ) -> list[Observation]:
        return svc.analyze.observations(since=since, limit=limit, status=status)

    @r.get("/observations/{obs_id}", tags=["analyze"])
    def observation(obs_id: Id) -> Observation:
        return svc.analyze.observation(obs_id)

    @r.post("/observations/{obs_id}/act", tags=["analyze"], status_code=202)
    def act(obs_id: Id) -> Action:
        """Hand the suggested task to the configured agent command (runs in the background)."""
        return svc.act.run(obs_id, background=True)

    @r.get("/actions", tags=["analyze"])
    def actions(limit: int = Query(default=50, ge=1, le=500)) -> list[Action]:
        return svc.act.list(limit)

    @r.get("/actions/{action_id}", tags=["analyze"])
    def action(action_id: Id) -> Action:
        return svc.act.get(action_id)

    @r.post("/ask", tags=["analyze"])
    def ask(body: AskQuestion) -> Answer:
        return svc.analyze.ask(body)

    @r.get("/clips", tags=["synth"])
    def clips(limit: int | None = Query(default=None, ge=1, le=1_000_000)) -> Sequence[Clip]:
        return svc.synth.clips(limit=limit)

    @r.get("/clips/{clip_id}", tags=["synth"])
    def clip(clip_id: Id) -> Clip:
        return svc.synth.clip(clip_id)

    @r.get("/clips/{clip_id}/media", tags=["synth"], response_class=FileResponse)
    def clip_media(clip_id: Id) -> Response:
        return media(svc.synth.clip_media(clip_id), "video/mp4")

    @r.get("/models", tags=["synth"])
    def models() -> list[ModelPreset]:
        return svc.synth.models()

    @r.post("/generate", tags=["synth"], status_code=202)
    def generate(body: GenerateParams) -> Job:
        """Queue a generation; poll GET /api/jobs/{id} for progress. ``model_path`` must be
        a folder inside the models directory."""
        return svc.jobs.submit(body)

    @r.post("/generate/preview", tags=["synth"])
    def generate_preview(body: GenerateParams) -> HostedPreview:
        """For a hosted backend (replicate, fal, veo, runway): what will be sent, to which
        host, and the provider's published price/time — sends nothing. Show it, then POST
        /api/generate with ``yes: true``."""
        return svc.synth.hosted_preview(GenerateRequest.of(**body.model_dump(exclude_none=True)))

    @r.get("/jobs", tags=["synth"])
    def jobs(limit: int = Query(default=50, ge=1, le=500)) -> list[Job]:
        return svc.jobs.list(limit)

    @r.get("/jobs/{job_id}", tags=["synth"])
    def job(job_id: Id) -> Job:
        return svc.jobs.get(job_id)

    @r.get("/audit", tags=["privacy"])
    def audit(since: str | None = None, until: str | None = None, client: str | None = None,
              limit: int = Query(default=100, ge=1, le=10_000)) -> list[AuditEntry]:
        """Who read the history through the API, the UI and MCP, newest first."""
        return svc.privacy.audit(since=since, until=until, client=client, limit=limit)

    @r.get("/lock", tags=["privacy"])
    def lock_state() -> LockState:
        return svc.privacy.lock_state()

    @r.post("/lock", tags=["privacy"])
    def lock() -> LockState:
        """Lock the history: reads through the API, UI and MCP are refused (423) until
        `localvideo unlock` at the owner's terminal; there is no unlock route."""
        return svc.privacy.lock("api")

    @r.get("/settings", tags=["settings"])
    def get_settings() -> RecordPrefs:
        return svc.prefs.get()

    @r.post("/settings", tags=["settings"])
    def post_settings(body: PrefsUpdate) -> RecordPrefs:
        """Exclusions and retention; saved to config.toml (the recorder reloads on restart,
        and `localvideo observe` restarts it when the file changes)."""
        return svc.prefs.update(body)

    @r.get("/reasoner", tags=["settings"])
    def get_reasoner() -> ReasonerPrefs:
        """The reasoning endpoint: reasoner, base URL, model, window, the key masked, and
        what is sent where."""
        return svc.reasoner.get()

    @r.post("/reasoner", tags=["settings"])
    def post_reasoner(body: ReasonerUpdate, request: Request) -> ReasonerPrefs:
        """Change where screen text goes (logged to the audit log); a key is stored, never
        answered back."""
        return svc.reasoner.update(body, by=getattr(request.state, "client", None))

    @r.post("/reasoner/test", tags=["settings"])
    def test_reasoner(body: ReasonerUpdate) -> EndpointTest:
        """One small request (no screen content) with these settings, not saved; the reply
        or the error."""
        return svc.reasoner.test(body)

    @r.get("/reasoner/local", tags=["settings"])
    def local_reasoners() -> list[LocalModelServer]:
        """OpenAI-compatible servers found on 127.0.0.1 (Ollama, LM Studio, llama.cpp)."""
        return svc.reasoner.local()

    @r.post("/reasoner/local/{which}", tags=["settings"])
    def use_local_reasoner(which: str, request: Request) -> ReasonerPrefs:
        """Use a found local server: reasoner=openai, its base URL and first model."""
        return svc.reasoner.use_local(which, by=getattr(request.state, "client", None))

    return r


def run_server(svc: Service, host: str = "127.0.0.1", port: int = 8765,
               log_level: str = "warning") -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    import uvicorn

    extra = set() if host in LOOPBACK_NAMES or host in ("", "0.0.0.0", "::") else {host}
    uvicorn.run(create_app(svc, extra_hosts=extra), host=host, port=port,
                log_level=log_level, server_header=False)
