"""Real HTTP servers on 127.0.0.1 that speak the reasoning endpoints' protocols.

Each server records what it receives (method, path, headers, body) and answers from a
script: a model answer, an HTTP failure (429, 500, 401 ...), a malformed body, or a hang
longer than the client's timeout. Other test folders reuse them::

    from reason.servers import AnthropicServer      # tests/ is on sys.path via conftest

    with AnthropicServer() as srv:
        srv.answer = json.dumps({...})
        srv.fail(429, times=2)
        ... ANTHROPIC_BASE_URL=srv.url ...
        srv.requests[-1].json["messages"]

Protocols spoken: Anthropic Messages (``POST /v1/messages``), OpenAI chat completions
(``POST /v1/chat/completions``), Gemini ``POST /v1beta/models/{m}:generateContent`` and the
resumable File API upload (``POST /upload/v1beta/files`` start, then upload+finalize, then
``GET /v1beta/files/{id}`` until ACTIVE); ``v1`` paths are accepted too, as newer SDKs use them.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_OBSERVATION = {
    "summary": "Reading a failed build in Firefox, then running the tests in a terminal.",
    "activities": ["Read the Jenkins build log", "Ran make test"],
    "task": {"verdict": "TASK_FOUND", "category": "FIX", "title": "Fix test_login",
             "description": "test_login fails with an AssertionError in build #42."},
}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def api_key(self) -> str | None:
        """The key however the SDK sent it (x-api-key, x-goog-api-key or a Bearer token)."""
        for h in ("x-api-key", "x-goog-api-key"):
            if h in self.headers:
                return self.headers[h]
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class _Action:
    kind: str                     # status | garbage | hang | text
    status: int = 200
    message: str = ""
    seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Script:
    actions: deque[_Action] = field(default_factory=deque)


class FakeEndpoint:
    """Base: one threaded HTTP server; subclasses map paths to protocol answers."""

    error_types = {400: "invalid_request_error", 401: "authentication_error",
                   403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
                   500: "api_error", 503: "overloaded_error"}

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Recorded] = []
        self.answer: str = json.dumps(DEFAULT_OBSERVATION)
        self.usage = (120, 40)
        self._script = _Script()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(self.command, self.path,
                               {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.requests.append(rec)
                status, headers, payload = outer.route(rec)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = _handle  # noqa: N815

        # port 0: the OS picks a free one; a fixed port only where the port is the subject.
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> FakeEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeEndpoint:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripting -----------------------------------------------------------------------
    def fail(self, status: int, times: int = 1, message: str = "scripted failure",
             headers: dict[str, str] | None = None) -> None:
        for _ in range(times):
            self._script.actions.append(_Action("status", status=status, message=message,
                                                headers=dict(headers or {})))

    def garbage(self, times: int = 1) -> None:
        """Answer 200 with a body that is not JSON at all."""
        for _ in range(times):
            self._script.actions.append(_Action("garbage"))

    def say(self, text: str, times: int = 1) -> None:
        """Answer once with this model text (e.g. malformed JSON), then the default again."""
        for _ in range(times):
            self._script.actions.append(_Action("text", message=text))

    def hang(self, seconds: float, times: int = 1) -> None:
        for _ in range(times):
            self._script.actions.append(_Action("hang", seconds=seconds))

    def _next(self) -> _Action:
        with self._lock:
            return self._script.actions.popleft() if self._script.actions else _Action("text")

    def model_calls(self) -> list[Recorded]:
        return [r for r in self.requests if self.is_model_call(r)]

    # -- protocol ------------------------------------------------------------------------
    def is_model_call(self, rec: Recorded) -> bool:
        raise NotImplementedError

    def route(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        if not self.is_model_call(rec):
            return self.other(rec)
        action = self._next()
        if action.kind == "hang":
            time.sleep(action.seconds)
            action = _Action("text")
        if action.kind == "status":
            return action.status, {"Content-Type": "application/json", **action.headers}, \
                json.dumps(self.error_body(action.status, action.message)).encode()
        if action.kind == "garbage":
            return 200, {"Content-Type": "application/json"}, b"<html>proxy error</html>"
        text = action.message or self.answer
        return 200, {"Content-Type": "application/json"}, \
            json.dumps(self.success(rec, text)).encode()

    def other(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        return 404, {"Content-Type": "application/json"}, \
            json.dumps(self.error_body(404, f"no route {rec.method} {rec.path}")).encode()

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def success(self, rec: Recorded, text: str) -> dict[str, Any]:
        raise NotImplementedError


class AnthropicServer(FakeEndpoint):
    """Anthropic Messages API: ``POST /v1/messages``."""

    def is_model_call(self, rec: Recorded) -> bool:
        return rec.method == "POST" and rec.path.split("?")[0] == "/v1/messages"

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"type": "error",
                "error": {"type": self.error_types.get(status, "api_error"), "message": message}}

    def success(self, rec: Recorded, text: str) -> dict[str, Any]:
        body = rec.json or {}
        return {"id": f"msg_{uuid.uuid4().hex[:12]}", "type": "message", "role": "assistant",
                "model": body.get("model", "unknown"),
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": self.usage[0], "output_tokens": self.usage[1]}}


class OpenAIServer(FakeEndpoint):
    """OpenAI chat completions: ``POST /v1/chat/completions``.

    ``text_only_models``: models that answer 400 when a message carries an image part, as
    Ollama and vLLM do for a model without a vision tower. ``no_json_mode``: answer 400 to
    ``response_format`` like a server that lacks JSON mode.
    """

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.text_only_models: set[str] = set()
        self.no_json_mode = False
        # What ``GET /v1/models`` lists, as Ollama, LM Studio and llama.cpp answer it.
        self.models: list[str] = ["llama3.2:latest", "nomic-embed-text:latest"]

    def is_model_call(self, rec: Recorded) -> bool:
        return rec.method == "POST" and rec.path.split("?")[0] == "/v1/chat/completions"

    def route(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        body = rec.json or {}
        if self.is_model_call(rec):
            has_image = any(isinstance(m.get("content"), list)
                            and any(p.get("type") == "image_url" for p in m["content"])
                            for m in body.get("messages", []))
            if has_image and body.get("model") in self.text_only_models:
                return 400, {"Content-Type": "application/json"}, json.dumps(self.error_body(
                    400, f"model {body.get('model')} does not support image input")).encode()
            if self.no_json_mode and "response_format" in body:
                return 400, {"Content-Type": "application/json"}, json.dumps(self.error_body(
                    400, "response_format is not supported by this server")).encode()
        return super().route(rec)

    def other(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        if rec.method == "GET" and rec.path.split("?")[0] == "/v1/models":
            return 200, {"Content-Type": "application/json"}, json.dumps({
                "object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                            "owned_by": "library"} for m in self.models]
            }).encode()
        return super().other(rec)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": self.error_types.get(status, "api_error"),
                          "code": status}}

    def success(self, rec: Recorded, text: str) -> dict[str, Any]:
        body = rec.json or {}
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                "created": int(time.time()), "model": body.get("model", "unknown"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1],
                          "total_tokens": sum(self.usage)}}


# The SDK picks the API version (v1beta in the docs, v1 in newer SDKs): accept any.
_GEN = re.compile(r"^/v1(beta|alpha)?/models/[^/:]+:generateContent$")
_UPLOAD = re.compile(r"^/upload/v1(beta|alpha)?/files$")
_FILE = re.compile(r"^/v1(beta|alpha)?/files/[^/]+$")


class GeminiServer(FakeEndpoint):
    """Gemini API: generateContent plus the resumable File API upload.

    ``processing_polls``: how many ``GET /v1beta/files/{id}`` answer PROCESSING before ACTIVE.
    ``uploads`` maps file names to the bytes received.
    """

    def __init__(self) -> None:
        super().__init__()
        self.processing_polls = 1
        self.uploads: dict[str, bytes] = {}
        self._sessions: dict[str, dict[str, Any]] = {}
        self._polls: dict[str, int] = {}

    def is_model_call(self, rec: Recorded) -> bool:
        return rec.method == "POST" and bool(_GEN.match(rec.path.split("?")[0]))

    def _file(self, name: str, state: str) -> dict[str, Any]:
        data = self.uploads.get(name, b"")
        return {"name": name, "mimeType": "video/mp4", "sizeBytes": str(len(data)),
                "uri": f"{self.url}/v1beta/{name}", "state": state}

    def other(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        path, _, query = rec.path.partition("?")
        js = {"Content-Type": "application/json"}
        if rec.method == "POST" and _UPLOAD.match(path):
            command = rec.headers.get("x-goog-upload-command", "")
            if command == "start":
                upload_id = uuid.uuid4().hex[:10]
                meta = (rec.json or {}).get("file", {})
                self._sessions[upload_id] = {"meta": meta, "data": b""}
                headers = {**js, "X-Goog-Upload-Status": "active",
                           "X-Goog-Upload-URL": f"{self.url}{path}?upload_id={upload_id}"}
                return 200, headers, b"{}"
            upload_id = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv) \
                .get("upload_id", "")
            sess = self._sessions.get(upload_id)
            if sess is None:
                return 404, js, json.dumps(self.error_body(404, "no such upload")).encode()
            sess["data"] += rec.body
            if "finalize" in command:
                name = f"files/{upload_id}"
                self.uploads[name] = sess["data"]
                self._polls[name] = 0
                return 200, {**js, "X-Goog-Upload-Status": "final"}, \
                    json.dumps({"file": self._file(name, "PROCESSING")}).encode()
            return 200, {**js, "X-Goog-Upload-Status": "active"}, b"{}"
        if rec.method == "GET" and _FILE.match(path):
            name = path.split("/", 2)[2]
            if name not in self.uploads:
                return 404, js, json.dumps(self.error_body(404, f"{name} not found")).encode()
            self._polls[name] += 1
            state = "ACTIVE" if self._polls[name] > self.processing_polls else "PROCESSING"
            return 200, js, json.dumps(self._file(name, state)).encode()
        return super().other(rec)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 503: "UNAVAILABLE"}
        return {"error": {"code": status, "message": message,
                          "status": names.get(status, "UNKNOWN")}}

    def success(self, rec: Recorded, text: str) -> dict[str, Any]:
        model = rec.path.split("?")[0].split("/models/")[1].split(":")[0]
        return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": self.usage[0],
                                  "candidatesTokenCount": self.usage[1],
                                  "totalTokenCount": sum(self.usage)},
                "modelVersion": model}
