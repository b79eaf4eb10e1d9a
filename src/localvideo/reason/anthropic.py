"""Anthropic Messages API through the official SDK.

Honours ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` (or ``--base-url`` / ``--key``), so
any Anthropic-compatible proxy or local shim works. Key frames go as base64 image blocks,
each after a short text block naming its moment. JSON comes from instructions plus parsing:
the Messages API has no JSON mode, and ``execute()`` validates the answer against the schema.
"""

from __future__ import annotations

import base64
from typing import Any

from ..errors import DependencyError
from .base import Reasoner, ReasonRequest, ReasonResponse, is_local


class AnthropicReasoner(Reasoner):
    name = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_model = "claude-sonnet-4-6"
    default_base_url = "https://api.anthropic.com"
    takes_images = True

    def content(self, req: ReasonRequest) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        for im in req.images:
            if im.label:
                blocks.append({"type": "text", "text": f"Key frame {im.label}"})
            blocks.append({"type": "image", "source": {
                "type": "base64", "media_type": im.media_type,
                "data": base64.b64encode(im.data).decode("ascii")}})
        blocks.append({"type": "text", "text": req.text})
        return blocks

    def _send(self, req: ReasonRequest) -> ReasonResponse:
        try:
            import anthropic
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise DependencyError("the anthropic SDK is not installed",
                                  "pip install anthropic") from exc
        # The SDK's own retries are off: execute() retries, logging every attempt.
        client = anthropic.Anthropic(
            api_key=self.key or ("local-no-key" if is_local(self.base_url) else None),
            base_url=self.base_url, timeout=self.timeout, max_retries=0)
        try:
            msg = client.messages.create(
                model=self.model, max_tokens=req.max_tokens, system=self.system(req),
                messages=[{"role": "user", "content": self.content(req)}])  # type: ignore[list-item,misc]
        except (anthropic.APIError, ValueError) as exc:
            raise self.sdk_failure(anthropic, exc) from exc
        text = "".join(getattr(b, "text", "") for b in msg.content
                       if getattr(b, "type", "") == "text")
        usage = {"input_tokens": msg.usage.input_tokens,
                 "output_tokens": msg.usage.output_tokens} if msg.usage else {}
        return ReasonResponse(text=text, data=None, model=msg.model or self.model, usage=usage)

    def payload(self, req: ReasonRequest) -> dict[str, Any]:
        return {**super().payload(req), "system": self.system(req)}
