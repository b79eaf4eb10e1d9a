"""The typed service called with keyword arguments, answering plain JSON-like data.

Tests written against the service's data (``res["keyframes"]``, ``chunk["abs_path"]``) call
it through these: each builds the request model, calls the area method and dumps the
response model, so the assertions read the same fields the CLI's ``--json`` prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from localvideo.service import Service
from localvideo.service.models import AnalyzeRequest, AskRequest, GenerateRequest


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [v.model_dump() for v in value]
    return value.model_dump()


# -- record ---------------------------------------------------------------------------------
def chunks(svc: Service, **kw: Any) -> list[dict[str, Any]]:
    return _dump(svc.record.chunks(**kw))


def status(svc: Service) -> dict[str, Any]:
    return _dump(svc.status())


def delete_range(svc: Service, start: Any, end: Any) -> dict[str, Any]:
    return _dump(svc.record.delete_range(start, end))


def enforce_retention(svc: Service) -> dict[str, Any]:
    return _dump(svc.record.enforce_retention())


def frame_info(svc: Service, at: Any) -> dict[str, Any]:
    return _dump(svc.record.frame_info(at))


def frame_bytes(svc: Service, at: Any, **kw: Any) -> bytes:
    return svc.record.frame_bytes(at, **kw).data


# -- analyze --------------------------------------------------------------------------------
def analyze(svc: Service, *, stop: threading.Event | None = None,
            on_progress: Callable[[dict[str, Any]], None] | None = None,
            **req: Any) -> dict[str, Any]:
    return _dump(svc.analyze.run(AnalyzeRequest.of(**req), stop=stop, on_progress=on_progress))


def analysis_status(svc: Service) -> dict[str, Any]:
    return _dump(svc.analyze.status())


def search(svc: Service, query: str, **kw: Any) -> list[dict[str, Any]]:
    return _dump(svc.analyze.search(query, **kw))


def timeline(svc: Service, **kw: Any) -> list[dict[str, Any]]:
    return _dump(svc.analyze.timeline(**kw))


def observations(svc: Service, **kw: Any) -> list[dict[str, Any]]:
    return _dump(svc.analyze.observations(**kw))


def observation(svc: Service, obs_id: int) -> dict[str, Any]:
    return _dump(svc.analyze.observation(obs_id))


def ask(svc: Service, question: str, *, dry_run: bool = False, **kw: Any) -> dict[str, Any]:
    req = AskRequest.of(question=question, **kw)
    return _dump(svc.analyze.preview_ask(req) if dry_run else svc.analyze.ask(req))


def keys_list(svc: Service) -> list[dict[str, Any]]:
    return _dump(svc.keys.list())


# -- synth ----------------------------------------------------------------------------------
def generate(svc: Service, prompt: str, *,
             on_progress: Callable[[dict[str, Any]], None] | None = None,
             **kw: Any) -> dict[str, Any]:
    return _dump(svc.synth.generate(GenerateRequest.of(prompt=prompt, **kw),
                                    on_progress=on_progress))


def plan(svc: Service, prompt: str = "plan", **kw: Any) -> dict[str, Any]:
    return _dump(svc.synth.plan(GenerateRequest.of(prompt=prompt, **kw)))


def clips(svc: Service, **kw: Any) -> list[dict[str, Any]]:
    return _dump(svc.synth.clips(**kw))


def clip(svc: Service, clip_id: int) -> dict[str, Any]:
    return _dump(svc.synth.clip(clip_id))


def decode(svc: Service, latents: Any, out: Any = None, **kw: Any) -> dict[str, Any]:
    return _dump(svc.synth.decode(latents, out, **kw))


def models(svc: Service) -> list[dict[str, Any]]:
    return _dump(svc.synth.models())
