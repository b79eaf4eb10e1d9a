"""Any OpenAI-compatible chat-completions server through the official SDK.

Ollama, LM Studio, vLLM, llama.cpp and OpenAI itself: ``OPENAI_BASE_URL`` / ``--base-url``
and ``OPENAI_API_KEY`` / ``--key``. A loopback server needs no real key, so a placeholder is
sent there.

Images go as ``image_url`` parts with ``data:`` URLs only when the model takes images:
``images=True/False`` (an option of :func:`get_reasoner`) decides; otherwise known vision
model names say yes and anything else is text-only. When a server answers 400 about images
anyway, the request is repeated text-only and that model is remembered as text-only (in the
index's kv table, so the next run does not pay the failed request again).
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

from ..errors import DependencyError, EndpointError
from .base import Reasoner, ReasonRequest, ReasonResponse, is_local

# Families that accept image input on the servers people run them on.
VISION_MODELS = re.compile(
    r"(gpt-4o|gpt-4\.1|gpt-4-turbo|gpt-4-vision|gpt-5|\bo[134]\b|o[34]-mini|chatgpt-4o|"
    r"llava|bakllava|vision|-vl|vl-|\bvl\b|qwen2\.5vl|qwen3-vl|gemma3|gemma-3|minicpm-v|"
    r"moondream|pixtral|mistral-small3\.[12]|llama4|internvl|smolvlm|phi-?3\.5-vision|"
    r"phi-?4-multimodal|granite3\.2-vision|claude|gemini)", re.I)

_IMAGE_COMPLAINT = re.compile(r"image|vision|multimodal|image_url|content.*(type|part)", re.I)
_FORMAT_COMPLAINT = re.compile(r"response_format|json_object|json mode", re.I)


class OpenAIReasoner(Reasoner):
    name = "openai"
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_model = "gpt-4o-mini"
    default_base_url = "https://api.openai.com/v1"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        forced = self.options.get("images")
        if forced is not None:
            self.takes_images = bool(forced)
        elif self._remembered("text_only"):
            self.takes_images = False
        else:
            self.takes_images = bool(VISION_MODELS.search(self.model))
        self.json_mode = not self._remembered("no_json_mode")

    # -- what a server taught us, kept across runs ---------------------------------------
    def _kv_key(self, what: str) -> str:
        return f"reason.openai.{what}.{self.base_url}|{self.model}"

    def _remembered(self, what: str) -> bool:
        return bool(self.db.get_kv(self._kv_key(what), False)) if self.db else False

    def _remember(self, what: str) -> None:
        if self.db:
            self.db.set_kv(self._kv_key(what), True)

    # -- request -------------------------------------------------------------------------
    def messages(self, req: ReasonRequest) -> list[dict[str, Any]]:
        system = self.system(req)
        if not (self.takes_images and req.images):
            user: Any = req.text
        else:
            parts: list[dict[str, Any]] = []
            for im in req.images:
                if im.label:
                    parts.append({"type": "text", "text": f"Key frame {im.label}"})
                url = f"data:{im.media_type};base64,{base64.b64encode(im.data).decode('ascii')}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            parts.append({"type": "text", "text": req.text})
            user = parts
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def payload(self, req: ReasonRequest) -> dict[str, Any]:
        return {**super().payload(req), "system": self.system(req),
                "response_format": "json_object" if req.schema and self.json_mode else None}

    def _send(self, req: ReasonRequest) -> ReasonResponse:
        started = time.monotonic()
        try:
            return self._create(req)
        except EndpointError as exc:
            # The refused attempt is logged too; the retry below is logged by execute().
            self._log(req, None, exc, started)
            # A text-only model behind a server that says so: drop the images, remember.
            if exc.status == 400 and self.takes_images and req.images \
                    and _IMAGE_COMPLAINT.search(exc.message):
                self.takes_images = False
                self._remember("text_only")
                return self._create(req)
            if exc.status == 400 and req.schema and self.json_mode \
                    and _FORMAT_COMPLAINT.search(exc.message):
                self.json_mode = False
                self._remember("no_json_mode")
                return self._create(req)
            raise

    def _create(self, req: ReasonRequest) -> ReasonResponse:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise DependencyError("the openai SDK is not installed", "pip install openai") from exc
        key = self.key or ("local-no-key" if is_local(self.base_url) else None)
        client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout,
                               max_retries=0)
        extra: dict[str, Any] = {}
        if req.schema is not None and self.json_mode:
            extra["response_format"] = {"type": "json_object"}
        try:
            out = client.chat.completions.create(
                model=self.model, messages=self.messages(req),  # type: ignore[arg-type]
                max_tokens=req.max_tokens, **extra)
        except (openai.APIError, ValueError) as exc:
            raise self.sdk_failure(openai, exc) from exc
        if not getattr(out, "choices", None):
            raise EndpointError(f"{self.name} endpoint {self.base_url} answered without choices",
                                "the work stays pending and is retried on the next run",
                                retryable=True)
        text = out.choices[0].message.content or ""
        usage = {"input_tokens": out.usage.prompt_tokens,
                 "output_tokens": out.usage.completion_tokens} if out.usage else {}
        return ReasonResponse(text=text, data=None, model=out.model or self.model, usage=usage)
