"""The reasoner contract: one request in, one structured answer out.

A reasoner is one endpoint family (``anthropic``, ``openai``, ``gemini``, ``offline``). Each
backend implements only ``_send(req) -> ReasonResponse``; :meth:`Reasoner.execute` wraps it
with the parts every backend shares: schema validation, retries with backoff for passing
failures, and one ``reason_log`` row per attempt (images by sha256, never bytes).

A request carries structure, not prose: the windows used (``timeline``), the text read from
key frames (``screen``), and for ``ask`` the question, the times it names (``asked``) and
earlier observations, every time a unix timestamp. The offline reasoner reads the
structure; the model reasoners send :func:`render_text` of it (``ReasonRequest.text``),
which is also what the request log keeps::

    Local date: 2026-11-25           (the local day of the earliest time in the request)
    Window: 14:03:00–14:08:00        (task "observe": the window observed)

    ## Times asked about             (task "ask" only, when the question names times)
    2026-11-25 13:55:00–2026-11-25 14:05:00  (14:00)

    ## Timeline
    14:03:12–14:05:40  firefox — Build #42 failed - Jenkins (2m28s)
    14:05:40–14:06:10  xterm — ~/src/app (30s)

    ## Screen text
    [14:03:12] firefox — Build #42 failed - Jenkins: error: test_login failed | exit 1
    [14:05:41] xterm — ~/src/app: $ make test

    ## Earlier observations          (task "ask", when there are some)
    13:50:00–13:55:00: Reading mail.

    ## Question                      (task "ask" only)
    what was I doing when the build broke?

Times are local ``HH:MM:SS``; every time carries its day (``2026-11-25 14:03:12``) when the
request spans more than one day, and screen lines always do in an ``ask``. App and title are
separated by `` — `` (em dash); the OCR lines of one key frame are joined by `` | ``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlparse

from ..errors import EndpointError, LocalVideoError, ReasonerError, UsageError
from ..units import format_duration
from .keys import KeyStore
from .log import log_request

if TYPE_CHECKING:
    from ..config import Settings
    from ..store.db import Database


@dataclass
class ImagePart:
    """A key frame, already cropped, redacted and blurred by the caller."""

    data: bytes                 # PNG or JPEG bytes
    media_type: str             # "image/png" | "image/jpeg"
    ts: float                   # unix seconds of the moment
    label: str = ""             # e.g. "14:03:12 — Firefox — Build failed"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def describe(self) -> dict[str, Any]:
        """What the log and --dry-run show instead of the pixels."""
        return {"sha256": self.sha256, "media_type": self.media_type, "bytes": len(self.data),
                "ts": self.ts, "label": self.label}


@dataclass(frozen=True)
class WindowSession:
    """A run of one window in the timeline."""

    app: str
    title: str
    start_ts: float             # unix seconds
    end_ts: float

    @property
    def duration(self) -> float:
        return max(0.0, self.end_ts - self.start_ts)


@dataclass(frozen=True)
class ScreenText:
    """The text read from one key frame, already redacted: its OCR lines in reading order."""

    ts: float                   # unix seconds of the frame
    app: str
    title: str
    lines: tuple[str, ...]
    matched: str = ""           # "ask": why the search found it (words | meaning | both)

    @property
    def text(self) -> str:
        return " | ".join(self.lines)


@dataclass(frozen=True)
class AskedTime:
    """A time the question names ("at 14:00", "yesterday"), as a span."""

    start_ts: float
    end_ts: float
    label: str = ""             # how the question said it, e.g. "14:00"


@dataclass(frozen=True)
class EarlierObservation:
    start_ts: float
    end_ts: float
    summary: str


@dataclass
class ReasonRequest:
    task: str                           # "observe" | "ask"
    system: str                         # system prompt
    timeline: list[WindowSession] = field(default_factory=list)   # in time order
    screen: list[ScreenText] = field(default_factory=list)        # in time order
    screen_left_out: bool = False       # more screen text than fits was left out
    span: tuple[float, float] | None = None   # "observe": the window [start, end)
    asked: list[AskedTime] = field(default_factory=list)          # "ask": times named
    earlier: list[EarlierObservation] = field(default_factory=list)
    question: str = ""                  # "ask"
    images: list[ImagePart] = field(default_factory=list)
    video: Path | None = None           # chunk file, for reasoners that take video (gemini)
    schema: dict[str, Any] | None = None  # JSON schema the answer must follow
    max_tokens: int = 1024

    @property
    def text(self) -> str:
        """The prompt text a model reads (format in the module docstring)."""
        return render_text(self)


@dataclass
class ReasonResponse:
    text: str                           # raw text answer
    data: dict[str, Any] | None         # parsed JSON when a schema was given (validated)
    model: str
    usage: dict[str, Any]               # tokens in/out when the endpoint says
    request_id: int | None = None       # row id in reason_log


OBSERVATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "activities": {"type": "array", "items": {"type": "string"}},
        "task": {
            "type": "object",
            "properties": {
                "verdict": {"type": "string", "enum": ["NO_TASK", "TASK_FOUND"]},
                "category": {"type": "string",
                             "enum": ["AUTOMATE", "FIX", "REMIND", "LEARN", "OTHER"]},
                "title": {"type": "string"},
                "description": {"type": "string"},
            },
            "required": ["verdict", "category", "title", "description"],
        },
    },
    "required": ["summary", "activities", "task"],
}

ASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "timestamps": {"type": "array", "items": {"type": "number"}},
    },
    "required": ["answer", "timestamps"],
}


# -- JSON answers -------------------------------------------------------------------------

# Longest Retry-After honoured by sleeping inside one request; longer waits are kept as the
# observation's next try time instead, so a run is never stuck behind a rate limit.
MAX_INLINE_WAIT = 30.0

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def parse_json_answer(text: str) -> dict[str, Any]:
    """Pull the JSON object out of a model's answer (bare, fenced, or wrapped in prose)."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for cand in candidates:
        try:
            value = json.loads(cand.strip())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    # Malformed output usually passes on a second try, so the work stays pending.
    raise EndpointError(f"the answer is not a JSON object: {text[:200]!r}",
                        "the observation stays pending and is retried on the next run",
                        retryable=True)


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "array": (list,), "object": (dict,), "number": (int, float),
    "integer": (int,), "boolean": (bool,),
}


def validate(value: Any, schema: dict[str, Any], where: str = "answer") -> None:
    """Check the subset of JSON schema the reasoners use: type, required, enum, items."""
    tp = schema.get("type")
    # bool is an int in Python but not a number in JSON.
    wrong_type = tp is not None and (not isinstance(value, _TYPES[tp]) or (
        tp in ("number", "integer") and isinstance(value, bool)))
    if wrong_type:
        raise EndpointError(f"{where} should be a {tp}, got {type(value).__name__}",
                            "the observation stays pending and is retried on the next run")
    if "enum" in schema and value not in schema["enum"]:
        raise EndpointError(f"{where} is {value!r}; expected one of {schema['enum']}",
                            "the observation stays pending and is retried on the next run")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise EndpointError(f"{where} lacks the key {key!r}",
                                    "the observation stays pending and is retried on the next run")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                validate(value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{i}]")


def schema_instruction(schema: dict[str, Any]) -> str:
    """The instruction appended to the system prompt where the endpoint has no JSON mode."""
    return ("Answer with one JSON object only, no prose, following this JSON schema:\n"
            + json.dumps(schema, indent=1))


# A duration as the request text writes it: ``45s``, ``3m05s``, ``1h02m`` (units.py's one
# formatter; the name stays for the modules that import it from here).
fmt_duration = format_duration


# -- the one renderer of a request's context ------------------------------------------------

def clock(ts: float, dated: bool = False) -> str:
    """A unix time as the request text writes it: local ``HH:MM:SS``, with its day if asked."""
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S" if dated else "%H:%M:%S")


def _times(req: ReasonRequest) -> list[float]:
    out = [t for s in req.timeline for t in (s.start_ts, s.end_ts)]
    out += [t.ts for t in req.screen]
    out += [t for a in req.asked for t in (a.start_ts, a.end_ts)]
    out += [t for o in req.earlier for t in (o.start_ts, o.end_ts)]
    if req.span is not None:
        out += list(req.span)
    return out


def spans_days(req: ReasonRequest) -> bool:
    """Whether the request's times fall on more than one local day (then each carries it)."""
    return len({datetime.fromtimestamp(t).date() for t in _times(req)}) > 1


def timeline_line(s: WindowSession, dated: bool = False) -> str:
    return (f"{clock(s.start_ts, dated)}–{clock(s.end_ts, dated)}  {s.app or 'unknown'} — "
            f"{s.title} ({fmt_duration(s.duration)})")


def screen_line(t: ScreenText, dated: bool = False) -> str:
    return f"[{clock(t.ts, dated)}] {t.app or 'unknown'} — {t.title}: {t.text}"


def render_text(req: ReasonRequest) -> str:
    """The request's context as the text every model reasoner sends (module docstring)."""
    times = _times(req)
    dated = spans_days(req)
    parts: list[str] = []
    if times:
        parts.append(f"Local date: {datetime.fromtimestamp(min(times)).strftime('%Y-%m-%d')}")
    if req.span is not None:
        parts.append(f"Window: {clock(req.span[0], dated)}–{clock(req.span[1], dated)}")
    if parts:
        parts.append("")
    if req.asked:
        parts += ["## Times asked about",
                  *[f"{clock(a.start_ts, True)}–{clock(a.end_ts, True)}  ({a.label})"
                    for a in req.asked], ""]
    parts += ["## Timeline", *[timeline_line(s, dated) for s in req.timeline], "",
              "## Screen text",
              *[screen_line(t, dated or req.task == "ask") for t in req.screen]]
    if req.screen_left_out:
        parts.append("[…] (more screen text left out)")
    parts.append("")
    if req.earlier:
        parts += ["## Earlier observations",
                  *[f"{clock(o.start_ts, dated)}–{clock(o.end_ts, dated)}: {o.summary}"
                    for o in req.earlier], ""]
    if req.question:
        parts += ["## Question", req.question.strip()]
    return "\n".join(parts).rstrip("\n") + "\n"


# -- endpoint failures, shared by the SDK backends ----------------------------------------

def is_local(url: str | None) -> bool:
    """A loopback endpoint (Ollama, LM Studio, a local shim) needs no real key."""
    if not url:
        return False
    host = (urlparse(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_retry_after(value: str | None) -> float | None:
    """An HTTP Retry-After header (seconds or an HTTP date) → seconds to wait, or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def http_failure(reasoner: str, status: int, detail: str, *, url: str | None,
                 key_hint: str, retry_after: float | None = None) -> ReasonerError:
    """Map an HTTP status from an endpoint to the error kind the analysis loop acts on."""
    detail = " ".join(detail.split())[:300]
    where = url or reasoner
    if status in (401, 403):
        # A wrong key does not fix itself: not retryable, say how to change it.
        return ReasonerError(f"{reasoner} refused the key ({status}) at {where}: {detail}",
                             key_hint)
    if status == 429 or status >= 500 or status in (408, 409):
        return EndpointError(f"{reasoner} endpoint {where} answered {status}: {detail}",
                             "the work stays pending and is retried on the next run",
                             status=status, retryable=True, retry_after=retry_after)
    if status == 404:
        return EndpointError(f"{reasoner} endpoint {where} answered 404: {detail}",
                             "check the model name (--model) and the base URL (--base-url)",
                             status=status, retryable=False)
    return EndpointError(f"{reasoner} endpoint {where} refused the request ({status}): {detail}",
                         "run with --dry-run to see what is sent", status=status,
                         retryable=False)


def unreachable(reasoner: str, url: str | None, exc: BaseException, *, timeout: float | None,
                url_env: str | None) -> EndpointError:
    if timeout is not None:
        return EndpointError(f"{reasoner} endpoint {url or ''} did not answer within {timeout:g}s",
                             "the work stays pending; check the server or raise the timeout",
                             retryable=True)
    fix = f"--base-url or {url_env}" if url_env else "--base-url"
    return EndpointError(f"cannot reach the {reasoner} endpoint {url or ''}: {exc}",
                         f"start the server or fix {fix}; the work stays pending",
                         retryable=True)


def key_hint(reasoner: str, envs: tuple[str, ...]) -> str:
    env = " or ".join(envs)
    return f"check the key: run `localvideo keys set {reasoner}`" + (f" or set {env}" if env
                                                                      else "")


# -- the reasoner ---------------------------------------------------------------------------

class Reasoner(ABC):
    name: ClassVar[str]
    key_env: ClassVar[str | None] = None          # e.g. "ANTHROPIC_API_KEY"
    extra_key_envs: ClassVar[tuple[str, ...]] = ()  # accepted too, after key_env
    base_url_env: ClassVar[str | None] = None     # e.g. "ANTHROPIC_BASE_URL"
    default_model: ClassVar[str]
    default_base_url: ClassVar[str | None] = None
    takes_images: bool = True
    takes_video: bool = False

    def __init__(self, *, model: str | None = None, base_url: str | None = None,
                 key: str | None = None, db: Database | None = None, retries: int = 2,
                 backoff: float = 0.5, timeout: float = 120.0, **options: Any) -> None:
        self.model = model or self.default_model
        env_url = os.environ.get(self.base_url_env) if self.base_url_env else None
        self.base_url = (base_url or env_url or self.default_base_url or "").rstrip("/") or None
        self.key = key
        self.db = db
        self.retries = retries          # extra attempts after the first
        self.backoff = backoff          # seconds before the first retry, doubled each time
        self.timeout = timeout
        self.options = options          # backend-specific (e.g. openai images=True/False)

    @classmethod
    def key_envs(cls) -> tuple[str, ...]:
        return ((cls.key_env,) if cls.key_env else ()) + cls.extra_key_envs

    @classmethod
    def key_required(cls, base_url: str | None) -> bool:
        """Whether a key must be found; a loopback server (Ollama, a local shim) needs none."""
        return cls.key_env is not None and not is_local(base_url)

    @classmethod
    def build(cls, *, model: str | None, base_url: str | None, key: str | None,
              store: KeyStore, db: Database | None, retries: int = 2, backoff: float = 0.5,
              timeout: float = 120.0, **options: Any) -> Reasoner:
        """Resolve the key (flag > stored > env) and construct."""
        envs = cls.key_envs()
        url = base_url or (os.environ.get(cls.base_url_env) if cls.base_url_env else None)
        resolved = store.resolve(cls.name, key, envs, required=cls.key_required(url))
        return cls(model=model, base_url=base_url, key=resolved, db=db, retries=retries,
                   backoff=backoff, timeout=timeout, **options)

    def system(self, req: ReasonRequest) -> str:
        """The system prompt, with the schema spelled out for endpoints without a schema mode."""
        if req.schema is None:
            return req.system
        return f"{req.system}\n\n{schema_instruction(req.schema)}".strip()

    def sdk_failure(self, sdk: Any, exc: Exception) -> LocalVideoError:
        """Map an error of the anthropic or openai SDK (they share one generated error tree,
        passed in as the ``sdk`` module) to the error kind the analysis loop acts on."""
        if isinstance(exc, sdk.APITimeoutError):
            return unreachable(self.name, self.base_url, exc, timeout=self.timeout,
                               url_env=self.base_url_env)
        if isinstance(exc, sdk.APIConnectionError):
            return unreachable(self.name, self.base_url, exc, timeout=None,
                               url_env=self.base_url_env)
        hint = key_hint(self.name, self.key_envs())
        if isinstance(exc, sdk.APIStatusError):
            headers = getattr(getattr(exc, "response", None), "headers", None) or {}
            return http_failure(self.name, exc.status_code, str(exc.message), url=self.base_url,
                                key_hint=hint,
                                retry_after=parse_retry_after(headers.get("retry-after")))
        if isinstance(exc, sdk.APIError):
            # e.g. a body that is not the expected response: passing, like a malformed answer.
            return http_failure(self.name, 502, str(exc), url=self.base_url, key_hint=hint)
        # A ValueError: a proxy's HTML error page or a truncated body; passing, like a 502.
        return EndpointError(f"{self.name} endpoint {self.base_url} answered something that "
                             f"is not JSON: {exc}",
                             "the work stays pending and is retried on the next run",
                             retryable=True)

    @abstractmethod
    def _send(self, req: ReasonRequest) -> ReasonResponse:
        """One attempt against the endpoint; SDK errors mapped to ReasonerError kinds."""

    def payload(self, req: ReasonRequest) -> dict[str, Any]:
        """What this backend sends, for --dry-run and the log (images described, not sent)."""
        return {"system": req.system, "text": req.text,
                "images": [im.describe() for im in req.images] if self.takes_images else [],
                "images_withheld": 0 if self.takes_images else len(req.images),
                "video": str(req.video) if req.video and self.takes_video else None,
                "schema": req.schema, "max_tokens": req.max_tokens}

    def execute(self, req: ReasonRequest) -> ReasonResponse:
        """Send with retries; every attempt is logged. Raises the last error when all fail."""
        if req.task not in ("observe", "ask"):
            raise UsageError(f"unknown reasoning task {req.task!r}", "use 'observe' or 'ask'")
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                resp = self._send(req)
                if req.schema is not None:
                    resp.data = parse_json_answer(resp.text) if resp.data is None else resp.data
                    validate(resp.data, req.schema)
            except ReasonerError as exc:
                self._log(req, None, exc, started)
                retryable = isinstance(exc, EndpointError) and exc.retryable
                wait = self.backoff * (2 ** attempt)
                asked = exc.retry_after if isinstance(exc, EndpointError) else None
                if asked is not None:
                    wait = max(wait, asked)
                # A server that asks for a long pause gets it between runs, not in a sleep
                # here: the work stays pending with that wait (see analyze.observations).
                if not retryable or attempt >= self.retries or wait > MAX_INLINE_WAIT:
                    raise
                time.sleep(wait)
                attempt += 1
                continue
            resp.request_id = self._log(req, resp, None, started)
            return resp

    def _log(self, req: ReasonRequest, resp: ReasonResponse | None,
             error: ReasonerError | None, started: float) -> int | None:
        if self.db is None:
            return None
        return log_request(self.db, reasoner=self.name, model=self.model,
                           base_url=self.base_url, request=req, payload=self.payload(req),
                           response=resp, error=error,
                           duration_ms=(time.monotonic() - started) * 1000)


def describe_request(req: ReasonRequest, reasoner: Reasoner) -> dict[str, Any]:
    """Exactly what would be sent, without sending: for ``--dry-run``."""
    return {"reasoner": reasoner.name, "model": reasoner.model, "base_url": reasoner.base_url,
            "task": req.task, **reasoner.payload(req)}


REASONERS = ("offline", "anthropic", "openai", "gemini")


def resolve_name(name: str | None, settings: Settings) -> str:
    """The reasoner a name picks: ``None``/``"auto"`` → anthropic when ANTHROPIC_BASE_URL or
    an anthropic key (stored or env) is there; openai when OPENAI_BASE_URL is set; else
    offline. Gemini needs the network, so it is only used when named."""
    name = (name or settings.analyze.reasoner or "auto").lower()
    if name != "auto":
        return name
    if os.environ.get("ANTHROPIC_BASE_URL") or KeyStore(settings.data_dir).get("anthropic") \
            or os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic"
    if os.environ.get("OPENAI_BASE_URL"):
        return "openai"
    return "offline"


def reasoner_class(name: str) -> type[Reasoner]:
    """The class of one endpoint family (``offline``, ``anthropic``, ``openai``, ``gemini``)."""
    # Imported here: each reasoner module imports this one (a cycle at the top), and each
    # endpoint's SDK is loaded only when that endpoint is used.
    if name == "offline":
        from .offline import OfflineReasoner
        return OfflineReasoner
    if name == "anthropic":
        from .anthropic import AnthropicReasoner
        return AnthropicReasoner
    if name == "openai":
        from .openai import OpenAIReasoner
        return OpenAIReasoner
    if name == "gemini":
        from .gemini import GeminiReasoner
        return GeminiReasoner
    raise UsageError(f"unknown reasoner {name!r}",
                     f"choose one of: auto, {', '.join(REASONERS)} (--reasoner)")


def get_reasoner(name: str | None, *, settings: Settings, db: Database | None,
                 model: str | None = None, base_url: str | None = None,
                 key: str | None = None, retries: int = 2, backoff: float = 0.5,
                 timeout: float = 120.0, **options: Any) -> Reasoner:
    """Pick (:func:`resolve_name`) and build a reasoner."""
    cls = reasoner_class(resolve_name(name, settings))
    return cls.build(model=model or settings.analyze.model,
                     base_url=base_url or settings.analyze.base_url, key=key,
                     store=KeyStore(settings.data_dir), db=db, retries=retries,
                     backoff=backoff, timeout=timeout, **options)
