"""Google's Gemini API through the official google-genai SDK, sending the chunk video itself.

Like the seed's recorder, the model watches the recording rather than a few stills: the
chunk goes inline (``Part.from_bytes``, ``video/mp4``) when it is small enough for one
request, otherwise through the File API (resumable upload, then polled until ACTIVE).
Key: ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY`` (or a stored key / ``--key``); base URL:
``GOOGLE_GEMINI_BASE_URL`` or ``--base-url``. It needs the network, so it is never chosen
automatically.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import DependencyError, EndpointError, LocalVideoError, UsageError
from .base import (
    Reasoner,
    ReasonRequest,
    ReasonResponse,
    http_failure,
    key_hint,
    unreachable,
)

# A generateContent request is capped at 20 MB in all; leave room for text and images.
INLINE_LIMIT = 18 * 1000 * 1000


class GeminiReasoner(Reasoner):
    name = "gemini"
    key_env = "GEMINI_API_KEY"
    extra_key_envs = ("GOOGLE_API_KEY",)
    base_url_env = "GOOGLE_GEMINI_BASE_URL"
    default_model = "gemini-2.5-flash"
    default_base_url = "https://generativelanguage.googleapis.com"
    takes_images = True
    takes_video = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inline_limit = int(self.options.get("inline_limit", INLINE_LIMIT))
        self.poll_interval = float(self.options.get("poll_interval", 2.0))
        self.upload_timeout = float(self.options.get("upload_timeout", 300.0))

    def payload(self, req: ReasonRequest) -> dict[str, Any]:
        out = {**super().payload(req), "system": self.system(req)}
        if req.video is not None:
            size = req.video.stat().st_size if req.video.exists() else None
            out["video"] = {"path": str(req.video), "bytes": size,
                            "sent_as": "inline" if size is not None and size <= self.inline_limit
                            else "file-api-upload"}
        return out

    def _client(self) -> Any:
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise DependencyError("the google-genai SDK is not installed",
                                  "pip install google-genai") from exc
        opts = types.HttpOptions(base_url=self.base_url, timeout=int(self.timeout * 1000))
        return genai.Client(api_key=self.key, http_options=opts)

    def _video_part(self, client: Any, video: Path) -> Any:
        from google.genai import types

        if not video.is_file():
            raise UsageError(f"chunk file {video} is not there",
                             "run `localvideo chunks` to list the chunks that exist")
        size = video.stat().st_size
        if size <= self.inline_limit:
            return types.Part.from_bytes(data=video.read_bytes(), mime_type="video/mp4")
        uploaded = client.files.upload(file=str(video),
                                       config=types.UploadFileConfig(mime_type="video/mp4"))
        deadline = time.monotonic() + self.upload_timeout
        # The File API processes video before a model may read it.
        while getattr(uploaded.state, "name", str(uploaded.state)) == "PROCESSING":
            if time.monotonic() > deadline:
                raise EndpointError(f"gemini kept {uploaded.name} PROCESSING for more than "
                                    f"{self.upload_timeout:g}s",
                                    "the work stays pending and is retried on the next run")
            time.sleep(self.poll_interval)
            uploaded = client.files.get(name=uploaded.name)
        state = getattr(uploaded.state, "name", str(uploaded.state))
        if state != "ACTIVE":
            raise EndpointError(f"gemini could not process {video.name}: state {state}",
                                "check that the chunk plays (`ffprobe` it); it stays pending",
                                retryable=False)
        return types.Part.from_uri(file_uri=uploaded.uri, mime_type="video/mp4")

    def _send(self, req: ReasonRequest) -> ReasonResponse:
        import httpx
        from google.genai import errors, types

        client = self._client()
        hint = key_hint(self.name, self.key_envs())
        try:
            parts: list[Any] = []
            if req.video is not None:
                parts.append(self._video_part(client, req.video))
            for im in req.images:
                if im.label:
                    parts.append(types.Part.from_text(text=f"Key frame {im.label}"))
                parts.append(types.Part.from_bytes(data=im.data, mime_type=im.media_type))
            parts.append(types.Part.from_text(text=req.text))
            config = types.GenerateContentConfig(
                system_instruction=self.system(req), max_output_tokens=req.max_tokens,
                response_mime_type="application/json" if req.schema is not None else None)
            out = client.models.generate_content(
                model=self.model, contents=[types.Content(role="user", parts=parts)],
                config=config)
        except LocalVideoError:
            raise
        except errors.APIError as exc:
            status, message = int(exc.code or 502), str(exc.message or exc)
            if status == 400 and "api key" in message.lower():
                status = 401   # Gemini answers a bad key with 400 INVALID_ARGUMENT
            raise http_failure(self.name, status, message, url=self.base_url,
                               key_hint=hint) from exc
        except httpx.TimeoutException as exc:
            raise unreachable(self.name, self.base_url, exc, timeout=self.timeout,
                              url_env=self.base_url_env) from exc
        except httpx.TransportError as exc:
            raise unreachable(self.name, self.base_url, exc, timeout=None,
                              url_env=self.base_url_env) from exc
        except ValueError as exc:
            # The SDK raises ValueError on a body it cannot read: passing, like a 502.
            raise EndpointError(f"gemini answered something unreadable: {exc}",
                                "the work stays pending and is retried on the next run") from exc
        try:
            text = out.text or ""
        except ValueError as exc:
            raise EndpointError(f"gemini answer has no text: {exc}",
                                "the work stays pending and is retried on the next run") from exc
        meta = out.usage_metadata
        usage = {"input_tokens": meta.prompt_token_count,
                 "output_tokens": meta.candidates_token_count} if meta else {}
        return ReasonResponse(text=text, data=None, model=out.model_version or self.model,
                              usage=usage)
