"""Runway through its official client (``pip install runwayml``), over Runway's task API.

Protocol (https://docs.dev.runwayml.com/api/), as the client speaks it — every request with
``Authorization: Bearer KEY`` and ``X-Runway-Version: 2024-11-06``:

* ``POST /v1/text_to_video {"model", "promptText", "ratio", ...}`` or
  ``POST /v1/image_to_video {"model", "promptImage", "promptText", "ratio", ...}`` → ``{"id"}``;
* ``GET /v1/tasks/{id}`` → ``status`` PENDING / THROTTLED (queued), RUNNING (``progress``
  0..1), SUCCEEDED (``output``: URLs), FAILED (``failure``, ``failureCode`` — ``SAFETY.*``
  when moderation refused it), CANCELLED; ``estimatedCost.credits`` while it runs;
* ``DELETE /v1/tasks/{id}`` cancels a pending or running task (deletes a finished one).

Input image: inline as a base64 data URI in ``promptImage`` (documented up to 5 MB).
Key: ``localvideo keys set runway`` or RUNWAYML_API_SECRET.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from ...errors import LocalVideoError, UsageError
from .base import Estimate, HostedProvider, HostedRequest, Status, data_uri

_MODEL = re.compile(r"^[\w.-]+$")
# Credits per second of output, from Runway's API pricing page
# (https://docs.dev.runwayml.com/guides/pricing/); 1 credit = $0.01 there. Prices change —
# the page is the authority, and the task itself reports estimatedCost while it runs.
CREDITS_PER_SECOND: dict[str, int] = {"gen4_turbo": 5, "gen4.5": 12}
PRICE_SOURCE = "https://docs.dev.runwayml.com/guides/pricing/"
DEFAULT_RATIO = "1280:720"  # a ratio every Runway video model takes


class RunwayProvider(HostedProvider):
    name = "runway"
    title = "Runway"
    sdk_module = "runwayml"
    key_envs = ("RUNWAYML_API_SECRET",)
    default_host = "https://api.dev.runwayml.com"
    model_hint = ("name a Runway model as its API does, e.g. gen4_turbo (image to video) or "
                  "gen4.5 (https://docs.dev.runwayml.com/guides/models/)")

    def check_model(self, model: str) -> str:
        model = (model or "").strip()
        if not _MODEL.match(model):
            raise UsageError(f"{model!r} is not a Runway model name", self.model_hint)
        return model

    def estimate(self, model: str, req: HostedRequest) -> Estimate:
        per = CREDITS_PER_SECOND.get(model)
        if per is None:
            return Estimate(source=PRICE_SOURCE)
        price = f"{per} credits (${per / 100:.2f}) per second of video"
        seconds = req.params.get("duration")
        if isinstance(seconds, int | float) and seconds > 0:
            price += f" (≈ {per * seconds:g} credits, ${per * seconds / 100:.2f}, for {seconds:g} s)"
        return Estimate(price=price, source=PRICE_SOURCE)

    def image_transport(self) -> str:
        return "inline in the request as a base64 data URI (promptImage)"

    def native_params(self, model: str, req: HostedRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"ratio": DEFAULT_RATIO}
        if req.width and req.height:
            params["ratio"] = f"{int(req.width)}:{int(req.height)}"
        if req.seed is not None:
            params["seed"] = int(req.seed)
        if req.negative:
            params["negative_prompt"] = req.negative
        params.update(req.params)
        return params

    def _client(self) -> Any:
        try:
            import runwayml
        except ImportError as exc:
            raise self.missing_sdk(exc) from exc
        return runwayml.RunwayML(api_key=self.api_key(), base_url=self.base_url)

    def _submit(self, client: Any, model: str, req: HostedRequest) -> tuple[str, Any]:
        resource = client.image_to_video if req.image is not None else client.text_to_video
        # Fields the client's create() does not name (newer models' options) go through its
        # extra_body, so a parameter Runway added after this client still reaches Runway.
        known = set(inspect.signature(resource.create).parameters)
        given = self.native_params(model, req)
        params = {k: v for k, v in given.items() if k in known}
        extra = {k: v for k, v in given.items() if k not in known}
        if extra:
            params["extra_body"] = extra
        if req.image is not None:
            task = resource.create(model=model, prompt_image=data_uri(req.image),
                                   prompt_text=req.prompt, **params)
        else:
            task = resource.create(model=model, prompt_text=req.prompt, **params)
        return task.id, task.id

    def _status(self, client: Any, handle: Any) -> Status:
        task = client.tasks.retrieve(handle)
        info: dict[str, Any] = {}
        cost = getattr(task, "estimated_cost", None) or getattr(task, "cost", None)
        if cost is not None:
            info["credits"] = cost.credits
        if task.status in ("PENDING", "THROTTLED"):
            return Status("queued", info=info)
        if task.status == "RUNNING":
            return Status("running", progress=float(task.progress), info=info)
        if task.status == "SUCCEEDED":
            return Status("succeeded", outputs=list(task.output), info=info)
        if task.status == "CANCELLED":
            return Status("canceled", info=info)
        code = getattr(task, "failure_code", None)
        return Status("failed", error=task.failure, error_code=code,
                      refused=bool(code and code.upper().startswith("SAFETY")), info=info)

    def _cancel(self, client: Any, handle: Any) -> None:
        client.tasks.delete(handle)

    def _map_error(self, exc: Exception, *, model: str,
                   request_id: str | None) -> LocalVideoError | None:
        import runwayml

        if isinstance(exc, runwayml.APIStatusError):
            body = exc.body
            detail = (body.get("error") or body.get("message") or str(body)
                      if isinstance(body, dict) else str(body or exc.message))
            issues = body.get("issues") if isinstance(body, dict) else None
            # Runway answers an unknown model with 400 and a validation issue on "model".
            if exc.status_code == 400 and isinstance(issues, list) and any(
                    isinstance(i, dict) and "model" in (i.get("path") or []) for i in issues):
                msgs = "; ".join(str(i.get("message")) for i in issues if isinstance(i, dict))
                return self.http_error(404, f"{detail}: {msgs}", model=model,
                                       request_id=request_id)
            return self.http_error(exc.status_code, str(detail), model=model,
                                   request_id=request_id)
        if isinstance(exc, runwayml.APIConnectionError):
            return self._network(exc, request_id)
        return None
