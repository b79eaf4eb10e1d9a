"""Replicate through its official client (``pip install replicate``).

Protocol (https://replicate.com/docs/reference/http), as the client speaks it:

* ``owner/name`` → ``POST /v1/models/{owner}/{name}/predictions {"input": {...}}`` (official
  models, latest version); ``owner/name:version`` → ``POST /v1/predictions {"version", "input"}``;
* ``GET /v1/predictions/{id}`` until ``status`` is ``succeeded`` / ``failed`` / ``canceled``
  (``starting`` means queued or booting, ``processing`` running; progress is only in the
  ``logs``, as tqdm lines the client parses);
* ``POST /v1/predictions/{id}/cancel``;
* an input image goes up first through ``POST /v1/files`` (multipart) and the model gets its
  ``urls.get`` — the client's default ``url`` file encoding.

Key: ``Authorization: Bearer`` from ``localvideo keys set replicate`` or REPLICATE_API_TOKEN.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import LocalVideoError, UsageError
from .base import Estimate, HostedProvider, HostedRequest, Status

_MODEL = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[0-9a-f]{8,})?$")


class ReplicateProvider(HostedProvider):
    name = "replicate"
    title = "Replicate"
    sdk_module = "replicate"
    key_envs = ("REPLICATE_API_TOKEN",)
    default_host = "https://api.replicate.com"
    model_hint = ("name a model as owner/name or owner/name:version, as on its page "
                  "(https://replicate.com/collections/text-to-video)")

    def check_model(self, model: str) -> str:
        model = (model or "").strip()
        if not _MODEL.match(model):
            raise UsageError(f"{model!r} is not a Replicate model name", self.model_hint)
        return model

    def estimate(self, model: str, req: HostedRequest) -> Estimate:
        # Replicate prices each model on its own page (per second of output or of GPU time)
        # and its API does not publish it before a run: nothing to quote here.
        base = model.split(":")[0]
        return Estimate(price=None, time=None,
                        source=f"https://replicate.com/{base} (pricing is on the model's page)")

    def image_transport(self) -> str:
        return "uploaded to Replicate's file store (POST /v1/files), the model gets its URL"

    def _client(self) -> Any:
        try:
            import replicate
        except ImportError as exc:
            raise self.missing_sdk(exc) from exc
        return replicate.Client(api_token=self.api_key(), base_url=self.base_url)

    def _submit(self, client: Any, model: str, req: HostedRequest) -> tuple[str, Any]:
        inputs: dict[str, Any] = {"prompt": req.prompt, **self.native_params(model, req)}
        fh = None
        try:
            if req.image is not None:
                # Most Replicate image-to-video models call their first frame "image";
                # others ("first_frame_image", "start_image") are named with
                # params={"image_field": ...}.
                field = str(req.params.get("image_field") or "image")
                fh = open(Path(req.image).expanduser(), "rb")  # noqa: SIM115 (closed below)
                inputs[field] = fh
            if ":" in model:
                pred = client.predictions.create(version=model.split(":", 1)[1], input=inputs)
            else:
                pred = client.models.predictions.create(model=model, input=inputs)
        finally:
            if fh is not None:
                fh.close()
        return pred.id, pred.id

    def _status(self, client: Any, handle: Any) -> Status:
        pred = client.predictions.get(handle)
        info: dict[str, Any] = {}
        if pred.metrics:
            info["metrics"] = pred.metrics
        if pred.status == "starting":
            return Status("queued", info=info)
        if pred.status == "processing":
            prog = pred.progress  # parsed by the client from tqdm lines in the logs
            return Status("running", progress=(prog.percentage / 100.0) if prog else None,
                          info=info)
        if pred.status == "succeeded":
            out = pred.output
            urls = [out] if isinstance(out, str) else [u for u in (out or [])
                                                       if isinstance(u, str)]
            return Status("succeeded", outputs=urls, info=info)
        if pred.status == "canceled":
            return Status("canceled", info=info)
        return Status("failed", error=str(pred.error or "failed"), info=info)

    def _cancel(self, client: Any, handle: Any) -> None:
        client.predictions.cancel(handle)

    def _map_error(self, exc: Exception, *, model: str,
                   request_id: str | None) -> LocalVideoError | None:
        from replicate.exceptions import ReplicateError

        if isinstance(exc, ReplicateError):
            detail = exc.detail or exc.title or "no detail"
            return self.http_error(exc.status, detail, model=model, request_id=request_id)
        if isinstance(exc, ValueError | TypeError) and "pydantic" in type(exc).__module__:
            return self.http_error(None, f"unexpected answer: {exc}", model=model,
                                   request_id=request_id)
        return None
