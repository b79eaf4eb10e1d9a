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
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors
from ..config import save_setting
from ..store.layout import inside
from ..units import parse_duration, parse_size, parse_time

log = logging.getLogger("localvideo.web")

COOKIE = "localvideo_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
STATIC_DIR = Path(__file__).parent / "static"

# Most specific first: the first class in the exception's MRO that is listed wins.
STATUS_BY_ERROR: dict[type[errors.LocalVideoError], int] = {
    errors.NotFoundError: 404,
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


class PathRefused(errors.UsageError):
    """A file outside the store was asked for (traversal, absolute path, symlink out)."""


def status_for(exc: errors.LocalVideoError) -> int:
    if isinstance(exc, PathRefused):
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
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


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


# -- request bodies ------------------------------------------------------------------------
class AskBody(BaseModel):
    question: str = Field(min_length=1)
    since: str | None = None


class GenerateBody(BaseModel):
    prompt: str = Field(min_length=1)
    model: str | None = None
    model_path: str | None = None
    frames: int | None = Field(default=None, ge=1, le=1000)
    height: int | None = Field(default=None, ge=16, le=4096)
    width: int | None = Field(default=None, ge=16, le=4096)
    fps: int | None = Field(default=None, ge=1, le=120)
    steps: int | None = Field(default=None, ge=1, le=500)
    guidance: float | None = None
    seed: int | None = None
    negative: str | None = None


class SettingsBody(BaseModel):
    exclude_apps: list[str] | None = None
    exclude_titles: list[str] | None = None
    excluded_action: str | None = None
    max_bytes: str | int | None = None      # "20GB" or bytes
    max_age: str | float | None = None      # "30d" or seconds


def create_app(service: Any, *, extra_hosts: set[str] | None = None) -> FastAPI:
    """The FastAPI app for one opened service. ``extra_hosts``: names besides loopback that
    may appear in Host (only when the user binds a non-loopback address on purpose)."""
    svc = service
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
    async def guard(request: Request, call_next: Any) -> Response:
        host = host_name(request.headers.get("host", ""))
        if host not in allowed_hosts:
            return JSONResponse(error_body(
                "ForbiddenHost", f"Host {request.headers.get('host', '')!r} is not this "
                "server's loopback name", "open http://127.0.0.1:<port>/ or "
                "http://localhost:<port>/"), status_code=403)
        if request.url.path == "/health":
            return await call_next(request)
        query_token = request.query_params.get("token")
        if query_token is not None:
            if not svc.check_token(query_token):
                return _unauthorized(request, "the token in the URL is wrong")
            # Swap the URL token for a cookie so it leaves the address bar and history.
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            resp = RedirectResponse(target, status_code=303)
            resp.set_cookie(COOKIE, query_token, httponly=True, samesite="strict",
                            path="/", max_age=400 * 86400)
            return resp
        if not svc.check_token(_request_token(request)):
            return _unauthorized(request, "missing or wrong API token")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            if origin and origin != "null" and _origin_host(origin) not in allowed_hosts:
                return JSONResponse(error_body("ForbiddenOrigin",
                                               f"cross-origin request from {origin} refused"),
                                    status_code=403)
        return await call_next(request)

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


def serve_file(svc: Any, path: Path | str, media_type: str | None = None) -> FileResponse:
    """A file of the store, after checking it really is inside the store."""
    try:
        real = inside(svc.settings.data_dir, path)
    except errors.UsageError as exc:
        raise PathRefused(f"refused: {exc.message}") from exc
    if not real.is_file():
        raise errors.NotFoundError(f"file {path!s} is missing from the store",
                                   "run `localvideo status` to check the index")
    return FileResponse(real, media_type=media_type)


def _time(value: str | None, what: str) -> float | None:
    return None if value in (None, "") else parse_time(value, what=what)


def _api_router(svc: Any) -> APIRouter:
    r = APIRouter(prefix="/api")

    @r.get("/status", tags=["record"])
    def status() -> dict[str, Any]:
        data = dict(svc.status())
        data["serve"] = {"agent_command": bool(svc.settings.serve.agent_command)}
        return data

    @r.post("/pause", tags=["record"])
    def pause() -> dict[str, Any]:
        return svc.pause()  # type: ignore[no-any-return]

    @r.post("/resume", tags=["record"])
    def resume() -> dict[str, Any]:
        return svc.resume()  # type: ignore[no-any-return]

    @r.get("/chunks", tags=["record"])
    def chunks(since: str | None = None, until: str | None = None,
               limit: int | None = Query(default=None, ge=1)) -> list[dict[str, Any]]:
        rows = svc.chunks(since=_time(since, "since"), until=_time(until, "until"), limit=limit)
        # abs_path is this machine's filesystem layout; clients address chunks by id.
        return [{k: v for k, v in c.items() if k != "abs_path"} for c in rows]

    @r.get("/chunks/{chunk_id}/media", tags=["record"],
           response_class=FileResponse)
    def chunk_media(chunk_id: int) -> FileResponse:
        """The chunk as H.264 MP4 a browser can play (HEVC chunks are transcoded once)."""
        path, mime = svc.chunk_media(chunk_id)
        return serve_file(svc, path, mime)

    @r.get("/frame", tags=["record"],
           responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
    def frame(at: str, fmt: str = Query(default="png", pattern="^(png|jpeg|jpg)$"),
              crop: bool = False, max_side: int | None = Query(default=None, ge=16, le=8192),
              ) -> Response:
        """The screen at a moment (unix seconds, ISO time, HH:MM:SS or an age like 5m)."""
        fmt = "jpeg" if fmt == "jpg" else fmt
        data = svc.frame_bytes(parse_time(at, what="at"), fmt=fmt, crop=crop,
                               max_side=max_side)
        # A moment's pixels never change: let the browser keep them.
        return Response(data, media_type=f"image/{fmt}",
                        headers={"Cache-Control": "private, max-age=86400"})

    @r.get("/frame/info", tags=["record"])
    def frame_info(at: str) -> dict[str, Any]:
        info = dict(svc.frame_info(parse_time(at, what="at")))
        info.pop("abs_path", None)
        return info

    @r.delete("/range", tags=["record"])
    def delete_range(start: str, end: str) -> dict[str, Any]:
        """Remove every chunk overlapping [start, end] with its frames, text, observations."""
        s, e = parse_time(start, what="start"), parse_time(end, what="end")
        if e < s:
            raise errors.UsageError("end is before start", "pass start <= end")
        return svc.delete_range(s, e)  # type: ignore[no-any-return]

    @r.get("/search", tags=["analyze"])
    def search(q: str = Query(min_length=1), app: str | None = None, since: str | None = None,
               until: str | None = None, limit: int = Query(default=50, ge=1, le=500),
               ) -> list[dict[str, Any]]:
        hits = svc.search(q, app=app, since=_time(since, "since"), until=_time(until, "until"),
                          limit=limit)
        return [{k: v for k, v in h.items() if k != "abs_path"} for h in hits]

    @r.get("/timeline", tags=["analyze"])
    def timeline(since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        return svc.timeline(since=_time(since, "since"),  # type: ignore[no-any-return]
                            until=_time(until, "until"))

    @r.get("/observations", tags=["analyze"])
    def observations(since: str | None = None, limit: int = Query(default=50, ge=1, le=500),
                     status: str | None = Query(default=None,
                                                pattern="^(pending|done|failed)$"),
                     ) -> list[dict[str, Any]]:
        return svc.observations(since=_time(since, "since"),  # type: ignore[no-any-return]
                                limit=limit, status=status)

    @r.get("/observations/{obs_id}", tags=["analyze"])
    def observation(obs_id: int) -> dict[str, Any]:
        return svc.observation(obs_id)  # type: ignore[no-any-return]

    @r.post("/observations/{obs_id}/act", tags=["analyze"], status_code=202)
    def act(obs_id: int) -> dict[str, Any]:
        """Hand the suggested task to the configured agent command (runs in the background)."""
        return svc.act(obs_id, background=True)  # type: ignore[no-any-return]

    @r.get("/actions", tags=["analyze"])
    def actions(limit: int = Query(default=50, ge=1, le=500)) -> list[dict[str, Any]]:
        return svc.actions(limit)  # type: ignore[no-any-return]

    @r.get("/actions/{action_id}", tags=["analyze"])
    def action(action_id: int) -> dict[str, Any]:
        return svc.action(action_id)  # type: ignore[no-any-return]

    @r.post("/ask", tags=["analyze"])
    def ask(body: AskBody) -> dict[str, Any]:
        return svc.ask(body.question,  # type: ignore[no-any-return]
                       since=_time(body.since, "since"))

    @r.get("/clips", tags=["synth"])
    def clips(limit: int | None = Query(default=None, ge=1)) -> list[dict[str, Any]]:
        return [_public_clip(c) for c in svc.clips(limit=limit)]

    @r.get("/clips/{clip_id}", tags=["synth"])
    def clip(clip_id: int) -> dict[str, Any]:
        return _public_clip(svc.clip(clip_id))

    @r.get("/clips/{clip_id}/media", tags=["synth"], response_class=FileResponse)
    def clip_media(clip_id: int) -> FileResponse:
        return serve_file(svc, svc.clip_file(clip_id), "video/mp4")

    @r.get("/models", tags=["synth"])
    def models() -> list[dict[str, Any]]:
        return svc.models()  # type: ignore[no-any-return]

    @r.post("/generate", tags=["synth"], status_code=202)
    def generate(body: GenerateBody) -> dict[str, Any]:
        """Queue a generation; poll GET /api/jobs/{id} for progress."""
        args = body.model_dump(exclude_none=True)
        if body.model_path:
            # Weights are read from the store's models folder only: a path parameter of
            # the API must not reach files elsewhere on the machine.
            try:
                args["model_path"] = str(inside(svc.settings.models_dir, body.model_path))
            except errors.UsageError as exc:
                raise PathRefused(f"model_path must be inside {svc.settings.models_dir}",
                                  "put the weights there (localvideo models pull) or use "
                                  "the CLI for other paths") from exc
        return svc.submit_generate(**args)  # type: ignore[no-any-return]

    @r.get("/jobs", tags=["synth"])
    def jobs(limit: int = Query(default=50, ge=1, le=500)) -> list[dict[str, Any]]:
        return svc.jobs(limit)  # type: ignore[no-any-return]

    @r.get("/jobs/{job_id}", tags=["synth"])
    def job(job_id: int) -> dict[str, Any]:
        return svc.job(job_id)  # type: ignore[no-any-return]

    @r.get("/settings", tags=["settings"])
    def get_settings() -> dict[str, Any]:
        return settings_view(svc)

    @r.post("/settings", tags=["settings"])
    def post_settings(body: SettingsBody) -> dict[str, Any]:
        """Exclusions and retention; saved to config.toml (the recorder reloads on restart,
        and `localvideo observe` restarts it when the file changes)."""
        update_settings(svc, body)
        return settings_view(svc)

    return r


def _public_clip(c: dict[str, Any]) -> dict[str, Any]:
    out = dict(c)
    out.pop("abs_path", None)
    return out


def settings_view(svc: Any) -> dict[str, Any]:
    rec = svc.settings.record
    return {"exclude_apps": list(rec.exclude_apps), "exclude_titles": list(rec.exclude_titles),
            "excluded_action": rec.excluded_action, "max_bytes": rec.max_bytes,
            "max_age": rec.max_age, "agent_command": svc.settings.serve.agent_command}


def update_settings(svc: Any, body: SettingsBody) -> None:
    # Validate everything first so one bad field saves nothing.
    changes: dict[str, Any] = {}
    if body.exclude_apps is not None:
        changes["exclude_apps"] = [a.strip() for a in body.exclude_apps if a.strip()]
    if body.exclude_titles is not None:
        titles = [t.strip() for t in body.exclude_titles if t.strip()]
        for t in titles:
            try:
                re.compile(t)
            except re.error as exc:
                raise errors.UsageError(f"title pattern {t!r} is not a valid regex: {exc}",
                                        "use Python regex syntax, e.g. (?i)\\bbank\\b") from exc
        changes["exclude_titles"] = titles
    if body.excluded_action is not None:
        if body.excluded_action not in ("blank", "skip"):
            raise errors.UsageError(f"excluded_action must be blank or skip, not "
                                    f"{body.excluded_action!r}")
        changes["excluded_action"] = body.excluded_action
    if body.max_bytes not in (None, ""):
        changes["max_bytes"] = parse_size(body.max_bytes, what="max_bytes")  # type: ignore[arg-type]
    if body.max_age not in (None, ""):
        changes["max_age"] = parse_duration(body.max_age, what="max_age")  # type: ignore[arg-type]
    for key, value in changes.items():
        save_setting(svc.settings, "record", key, value)


def run_server(service: Any, host: str = "127.0.0.1", port: int = 8765,
               log_level: str = "warning") -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    import uvicorn

    extra = set() if host in LOOPBACK_NAMES or host in ("", "0.0.0.0", "::") else {host}
    uvicorn.run(create_app(service, extra_hosts=extra), host=host, port=port,
                log_level=log_level, server_header=False)
