"""The web UI: server-rendered pages (Jinja2) over the same service the API uses.

Pages only read; every change (pause, act, generate, settings) goes through the JSON API from
a little vanilla JS, so the UI has no second write path to keep secure.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from .. import errors
from ..service import Service
from ..service.models import FrameInfo, Segment
from ..units import format_bytes, format_duration

P = ParamSpec("P")
T = TypeVar("T")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else "—"


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%a %d %b, %H:%M") if ts else "—"


def _duration(seconds: float | None) -> str:
    return format_duration(seconds, spaced=True)


def _when_s(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%a %d %b, %H:%M:%S") if ts else "—"


def _marked(snippet: str | None) -> Markup:
    """The search index marks matches as [word]; show them as <mark>, everything escaped."""
    safe = html.escape(snippet or "")
    return Markup(re.sub(r"\[([^\[\]]+)\]", r"<mark>\1</mark>", safe))


def _app_color(app: str | None) -> str:
    # Stable colour per app so the same app looks the same on every day's bar.
    hue = int(hashlib.sha1((app or "").encode()).hexdigest()[:4], 16) % 360
    return f"hsl({hue} 55% 55%)"


TEMPLATES.env.filters.update(clock=_clock, when=_when, when_s=_when_s, duration=_duration,
                             app_color=_app_color, bytes=format_bytes, marked=_marked)


def unauthorized_page(why: str, hint: str) -> HTMLResponse:
    # Self-contained: the stylesheet itself is behind the token.
    body = (
        "<!doctype html><meta charset=utf-8><title>localvideo — sign in</title>"
        "<body style='font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;"
        "color:#1f2328'><h1 style='font-size:1.4rem'>localvideo needs its token</h1>"
        f"<p>{_esc(why)}.</p><p>Open the address <code>localvideo observe</code> printed "
        "(it ends in <code>?token=…</code>), or run <code>localvideo token --url</code> and "
        "open what it prints.</p></body>")
    return HTMLResponse(body, status_code=401)


def _esc(s: str) -> str:
    return html.escape(s)


def error_page(request: Request, code: int, message: str, hint: str | None) -> Response:
    return TEMPLATES.TemplateResponse(request, "error.html",
                                      {"code": code, "message": message, "hint": hint,
                                       "status": None, "page": ""}, status_code=code)


def _safe(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> tuple[T | None, str | None]:
    """Call a service method for one section of a page; a failure shows in that section only."""
    try:
        return fn(*args, **kwargs), None
    except errors.LocalVideoError as exc:
        return None, exc.message + (f" — {exc.hint}" if exc.hint else "")


def _day_bounds(day: str | None) -> tuple[datetime, float, float]:
    if day:
        try:
            d = datetime.strptime(day, "%Y-%m-%d")
        except ValueError as exc:
            raise errors.UsageError(f"invalid day {day!r}", "use YYYY-MM-DD") from exc
    else:
        d = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    start = d.timestamp()
    return d, start, (d + timedelta(days=1)).timestamp()


def _timeline_view(segments: list[Segment]) -> dict[str, Any]:
    """Place segments on a bar spanning the day's activity (not 24 h: most of it is empty)."""
    if not segments:
        return {"bars": [], "start": None, "end": None, "apps": []}
    start = min(s.start_ts for s in segments)
    end = max(s.end_ts for s in segments)
    span = max(end - start, 1.0)
    bars = []
    totals: dict[str, float] = {}
    for s in segments:
        left = (s.start_ts - start) / span * 100
        width = max((s.end_ts - s.start_ts) / span * 100, 0.4)
        bars.append({**s.model_dump(), "left": round(left, 3), "width": round(width, 3),
                     "mid": (s.start_ts + s.end_ts) / 2})
        totals[s.app or "?"] = totals.get(s.app or "?", 0.0) + float(s.duration or 0)
    apps = sorted(totals.items(), key=lambda kv: -kv[1])
    return {"bars": bars, "start": start, "end": end, "apps": apps}


def _schema_type(schema: dict[str, Any]) -> str:
    """A short readable type for an OpenAPI schema: "integer", "string | null", "Body"."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_schema_type(s) for s in schema[key])
    if schema.get("type") == "array":
        return f"list of {_schema_type(schema.get('items') or {})}"
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    return str(schema.get("type") or "any")


def _constraints(schema: dict[str, Any]) -> str:
    # Optional fields (`int | None = Field(ge=1)`) carry their bounds inside anyOf.
    for member in schema.get("anyOf", []):
        schema = {**member, **schema}
    bounds = [f"{word} {schema[key]}" for key, word in
              (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
               ("exclusiveMaximum", "<"), ("minLength", "length ≥"), ("maxLength", "length ≤"),
               ("pattern", "matches"))
              if key in schema]
    if "default" in schema and schema["default"] is not None:
        bounds.append(f"default {schema['default']!r}")
    return ", ".join(bounds)


def api_reference(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAPI schema as rows the /docs page shows: one per method and route."""
    components = spec.get("components", {}).get("schemas", {})
    routes = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                       "type": _schema_type(p.get("schema") or {}),
                       "notes": _constraints(p.get("schema") or {})}
                      for p in op.get("parameters", [])]
            body = None
            content = (op.get("requestBody") or {}).get("content", {})
            ref = (content.get("application/json") or {}).get("schema", {})
            if "$ref" in ref:
                name = _schema_type(ref)
                model = components.get(name, {})
                required = set(model.get("required", []))
                body = {"name": name, "fields": [
                    {"name": k, "required": k in required, "type": _schema_type(v),
                     "notes": _constraints(v)}
                    for k, v in model.get("properties", {}).items()]}
            routes.append({"tag": (op.get("tags") or ["other"])[0],
                           "method": method.upper(), "path": path,
                           "summary": op.get("summary") or op.get("operationId", ""),
                           "description": op.get("description") or "", "params": params,
                           "body": body, "responses": sorted(op.get("responses", {}))})
    return routes


def ui_router(svc: Service) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    def render(request: Request, name: str, page: str, **ctx: Any) -> Response:
        status, status_err = _safe(svc.status)
        return TEMPLATES.TemplateResponse(request, name, {
            "page": page, "status": status or {}, "status_error": status_err,
            "can_act": bool(svc.settings.serve.agent_command), **ctx})

    @r.get("/", response_class=HTMLResponse)
    def today(request: Request, day: str | None = None) -> Response:
        d, start, end = _day_bounds(day)
        segments, tl_err = _safe(svc.analyze.timeline, since=start, until=end)
        observations, obs_err = _safe(svc.analyze.observations, since=start, limit=12)
        recent = list(reversed((segments or [])[-24:]))
        return render(request, "today.html", "today", day=d,
                      prev_day=(d - timedelta(days=1)).strftime("%Y-%m-%d"),
                      next_day=(d + timedelta(days=1)).strftime("%Y-%m-%d")
                      if end < time.time() else None,
                      timeline=_timeline_view(segments or []), recent=recent,
                      timeline_error=tl_err, observations=observations or [],
                      observations_error=obs_err)

    @r.get("/search", response_class=HTMLResponse)
    def search(request: Request, q: str = "", app: str | None = None,
               mode: str = "") -> Response:
        hits, err = (_safe(svc.analyze.search, q, app=app or None, limit=60,
                           mode=mode or None) if q.strip() else ([], None))
        return render(request, "search.html", "search", q=q, hits=hits or [], error=err,
                      mode=mode)

    @r.get("/moment", response_class=HTMLResponse)
    def moment(request: Request, at: str = Query(...)) -> Response:
        ts = svc.time(at, "at")
        info: FrameInfo
        try:
            info = svc.record.frame_info(ts)
        except errors.NotFoundError:
            # A moment a little before recording started (a rounded timestamp from an answer,
            # a click at the left edge): show the first frame after it rather than nothing.
            later = [c for c in svc.record.chunks(since=ts, until=ts + 60) if c.start_ts >= ts]
            if not later:
                raise
            info = svc.record.frame_info(later[0].start_ts)
        chunk = None
        for c in svc.record.chunks(since=info.ts - 1, until=info.ts + 1):
            if c.id == info.chunk_id:
                chunk = c.public()
        offset = max(0.0, float(info.pts or (info.ts - (chunk.start_ts if chunk else info.ts))))
        return render(request, "moment.html", "search", at=ts, info=info, chunk=chunk,
                      offset=round(offset, 3))

    @r.get("/observations", response_class=HTMLResponse)
    def observations(request: Request) -> Response:
        obs, err = _safe(svc.analyze.observations, limit=100)
        return render(request, "observations.html", "observations", observations=obs or [],
                      error=err)

    @r.get("/clips", response_class=HTMLResponse)
    def clips(request: Request) -> Response:
        clip_list, err = _safe(svc.synth.clips, limit=60)
        models, models_err = _safe(svc.synth.models)
        jobs, _ = _safe(svc.jobs.list, 10)
        return render(request, "clips.html", "clips", clips=clip_list or [], error=err,
                      models=models or [], models_error=models_err, jobs=jobs or [])

    @r.get("/settings", response_class=HTMLResponse)
    def settings(request: Request) -> Response:
        return render(request, "settings.html", "settings", s=svc.prefs.get(),
                      r=svc.reasoner.get(), config_path=str(svc.settings.config_path))

    @r.get("/audit", response_class=HTMLResponse)
    def audit(request: Request) -> Response:
        entries, err = _safe(svc.privacy.audit, limit=300)
        return render(request, "audit.html", "audit", entries=entries or [], error=err,
                      lock=svc.privacy.lock_state(), tokens=svc.privacy.tokens())

    @r.get("/docs", response_class=HTMLResponse)
    def api_docs(request: Request) -> Response:
        spec = request.app.openapi()
        return render(request, "api.html", "api", routes=api_reference(spec),
                      title=spec["info"]["title"], version=spec["info"]["version"],
                      openapi_version=spec.get("openapi", ""))

    return r
