"""Google Veo through the official ``google-genai`` SDK (already a dependency).

The SDK in use (google-genai 3.x) generates video only in its Vertex AI mode: on a Gemini
Developer API client ``models.generate_videos`` raises "only supported in Gemini Enterprise
Agent Platform mode" (its README: "Currently, only Gemini Enterprise Agent Platform supports
video generation"). So the client is made with ``vertexai=True`` and either

* an API key (Vertex AI express mode): ``localvideo keys set veo``, or GOOGLE_API_KEY /
  GEMINI_API_KEY — the variables the SDK itself reads; or
* no key and GOOGLE_CLOUD_PROJECT (+ GOOGLE_CLOUD_LOCATION) with application-default
  credentials (``gcloud auth application-default login``).

Protocol (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/veo-video-generation):

* ``POST {base}/v1beta1/publishers/google/models/{model}:predictLongRunning`` with
  ``{"instances": [{"prompt", "image": {"bytesBase64Encoded", "mimeType"}}],
  "parameters": {...}}`` → a long-running operation ``{"name": ".../operations/ID"}``;
* ``POST {base}/v1beta1/{model resource}:fetchPredictOperation {"operationName"}`` until
  ``done``; then ``response.videos[]`` holds ``bytesBase64Encoded`` (or ``gcsUri`` when
  ``storageUri`` was given), ``raiMediaFilteredCount``/``Reasons`` when the safety filter
  dropped the video; a failed operation carries ``error: {code, message}``.

Veo has no cancel call in the SDK (nor for these operations in the API it uses): Ctrl-C stops
following the operation, and the report says the job runs on (and bills) to its end.
"""

from __future__ import annotations

import os
import re
from math import gcd
from pathlib import Path
from typing import Any

from ...errors import HostedError, LocalVideoError, UsageError
from .base import Estimate, HostedProvider, HostedRequest, Status, describe_image

_MODEL = re.compile(r"^(publishers/[\w.-]+/models/)?[\w.-]+$")

# USD per second of generated video, from Google's Vertex AI pricing page
# (https://cloud.google.com/vertex-ai/generative-ai/pricing, "Veo" section; prices change —
# the page is the authority). Veo 3 figures are for video with audio, the default.
PRICES: dict[str, tuple[float, str]] = {
    "veo-2.0-generate-001": (0.50, "per second of video"),
    "veo-3.0-generate-001": (0.40, "per second of video with audio"),
    "veo-3.0-fast-generate-001": (0.15, "per second of video with audio"),
}
# "Videos are typically generated within a few minutes, but may take longer during peak
# usage." — https://cloud.google.com/vertex-ai/generative-ai/docs/video/generate-videos
TIME = "typically a few minutes, longer at peak times"
TIME_SOURCE = "https://cloud.google.com/vertex-ai/generative-ai/docs/video/generate-videos"
PRICE_SOURCE = "https://cloud.google.com/vertex-ai/generative-ai/pricing"


class VeoProvider(HostedProvider):
    name = "veo"
    title = "Google Veo"
    sdk_module = "google-genai"
    key_envs = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    default_host = "https://aiplatform.googleapis.com"
    can_cancel = False
    model_hint = ("name a Veo model as Vertex AI does, e.g. veo-3.0-generate-001 or "
                  "veo-3.0-fast-generate-001 (https://cloud.google.com/vertex-ai/"
                  "generative-ai/docs/models)")

    @property
    def key_optional(self) -> bool:  # type: ignore[override]
        # Vertex AI also authenticates with application-default credentials for a project.
        return bool(os.environ.get("GOOGLE_CLOUD_PROJECT"))

    def check_model(self, model: str) -> str:
        model = (model or "").strip()
        if not _MODEL.match(model):
            raise UsageError(f"{model!r} is not a Veo model name", self.model_hint)
        return model

    def estimate(self, model: str, req: HostedRequest) -> Estimate:
        short = model.rsplit("/", 1)[-1]
        price = None
        if short in PRICES:
            usd, unit = PRICES[short]
            price = f"${usd:.2f} {unit}"
            seconds = req.params.get("duration_seconds")
            if isinstance(seconds, int | float) and seconds > 0:
                price += f" (≈ ${usd * seconds:.2f} for {seconds:g} s)"
        return Estimate(price=price, time=TIME,
                        source=f"{PRICE_SOURCE} ; {TIME_SOURCE}" if price else TIME_SOURCE)

    def image_transport(self) -> str:
        return "inline in the request, base64 (instances[0].image.bytesBase64Encoded)"

    def native_params(self, model: str, req: HostedRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"number_of_videos": 1}
        if req.seed is not None:
            params["seed"] = int(req.seed)
        if req.negative:
            params["negative_prompt"] = req.negative
        if req.width and req.height:
            ratio = {(16, 9): "16:9", (9, 16): "9:16"}.get(_reduced(req.width, req.height))
            if ratio:
                params["aspect_ratio"] = ratio
        params.update(req.params)
        return params

    def _client(self) -> Any:
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:
            raise self.missing_sdk(exc) from exc
        key = self.api_key()
        opts = types.HttpOptions(base_url=self.base_url) if self.base_url else None
        try:
            if key:
                return genai.Client(vertexai=True, api_key=key, http_options=opts)
            return genai.Client(vertexai=True, http_options=opts)
        except ValueError as exc:
            raise HostedError(f"cannot set up the Vertex AI client: {exc}", self.key_hint(),
                              reason="auth", provider=self.name) from exc

    def key_hint(self) -> str:
        return (f"run `localvideo keys set {self.name}` with a Vertex AI API key (or set "
                "GOOGLE_API_KEY), or set GOOGLE_CLOUD_PROJECT and run "
                "`gcloud auth application-default login`")

    def _submit(self, client: Any, model: str, req: HostedRequest) -> tuple[str, Any]:
        from google.genai import types

        params = self.native_params(model, req)
        try:
            config = types.GenerateVideosConfig(**params)
        except ValueError as exc:  # pydantic: a field GenerateVideosConfig does not have
            fields = ", ".join(sorted(types.GenerateVideosConfig.model_fields))
            raise UsageError(f"Veo does not take these parameters: {exc}",
                             f"Veo's parameters: {fields}") from exc
        image = None
        if req.image is not None:
            info = describe_image(req.image)
            image = types.Image(image_bytes=Path(info.path).read_bytes(), mime_type=info.mime)
        op = client.models.generate_videos(
            model=model, source=types.GenerateVideosSource(prompt=req.prompt, image=image),
            config=config)
        if not op.name:
            raise HostedError("Veo answered without an operation name", reason="failed",
                              provider=self.name)
        # operations.get returns a new operation object: keep the newest for the next poll.
        return op.name, {"op": op}

    def _status(self, client: Any, handle: Any) -> Status:
        op = client.operations.get(handle["op"])
        handle["op"] = op
        if not op.done:
            return Status("running")
        if op.error:
            err = op.error if isinstance(op.error, dict) else {"message": str(op.error)}
            return Status("failed", error=str(err.get("message") or err),
                          error_code=str(err.get("code")) if err.get("code") is not None
                          else None)
        resp = op.response or op.result
        videos = list(resp.generated_videos or []) if resp else []
        if not videos:
            reasons = (resp.rai_media_filtered_reasons or []) if resp else []
            filtered = (resp.rai_media_filtered_count or 0) if resp else 0
            if filtered or reasons:
                return Status("failed", refused=True,
                              error="; ".join(reasons) or f"{filtered} video(s) filtered")
            return Status("failed", error="the operation finished without a video")
        video = videos[0].video
        if video is not None and video.video_bytes:
            return Status("succeeded", video_bytes=video.video_bytes)
        uri = video.uri if video is not None else None
        if uri and uri.startswith(("http://", "https://")):
            return Status("succeeded", outputs=[uri])
        raise HostedError(f"Veo stored the video at {uri}, which this backend cannot fetch",
                          "drop output_gcs_uri from the parameters so the video comes back "
                          "in the answer", reason="failed", provider=self.name)

    def _cancel(self, client: Any, handle: Any) -> None:  # pragma: no cover - can_cancel
        raise NotImplementedError

    def _map_error(self, exc: Exception, *, model: str,
                   request_id: str | None) -> LocalVideoError | None:
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            detail = f"{exc.status or ''} {exc.message or ''}".strip() or str(exc)
            status = int(exc.code) if exc.code else None
            if status == 400 and "api key" in detail.lower():
                status = 401  # Google answers a bad key with 400 API_KEY_INVALID
            return self.http_error(status, detail, model=model, request_id=request_id)
        return None


def _reduced(w: int, h: int) -> tuple[int, int]:
    g = gcd(int(w), int(h)) or 1
    return int(w) // g, int(h) // g
