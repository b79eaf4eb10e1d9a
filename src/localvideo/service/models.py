"""The service's typed contract: what every operation takes and returns.

Front ends (CLI, REST/web, MCP) build the request models and read the response models; the
REST API uses them as its request and response models, so ``/openapi.json`` shows these
types. JSON of a response model is what ``--json`` prints and what the API returns.

Two rules live here once:

- **What a response exposes.** A field that only makes sense on this machine (``abs_path``,
  a file's place in this machine's filesystem) is declared on a ``Local…`` subclass; the
  public model without it is what the REST API and MCP return. An agent (MCP) gets no file
  path of the store at all: :class:`ScreenHit` is a search hit without one.
- **Request validation.** Request models forbid unknown fields; :meth:`Request.of` turns a
  pydantic error into a :class:`UsageError` naming the field, so a bad argument reads the
  same from every front end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UsageError

# Times the service parses itself: unix seconds, ISO 8601, HH:MM, today, yesterday, 2h (ago).
# Front ends pass what the user typed; see Service.time() and units.parse_time.
When = str | float


class Model(BaseModel):
    """Base of every response model."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


class Request(BaseModel):
    """Base of every request model: unknown fields are refused, not dropped."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    #: the word used in error messages ("unknown generation argument(s)")
    noun: ClassVar[str] = "request"

    @classmethod
    def of(cls, **data: Any) -> Self:
        """Build the request, raising :class:`UsageError` (not a pydantic error) when bad."""
        try:
            return cls(**data)
        except ValidationError as exc:
            raise usage_error(exc, cls) from None


def usage_error(exc: ValidationError, cls: type[Request]) -> UsageError:
    """A pydantic error as the one error type front ends know, naming the bad fields."""
    unknown = [str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden"]
    noun = cls.noun
    if unknown:
        known = sorted(cls.model_fields)
        return UsageError(f"unknown {noun} argument(s): {', '.join(sorted(unknown))}",
                          f"known: {', '.join(known)}")
    return UsageError("; ".join(_say(e) for e in exc.errors()),
                      f"check the {noun} arguments (--help lists them)")


def _say(err: Any) -> str:
    """One pydantic error in the words the CLI uses: ``--steps must be at least 1 (got 0)``."""
    name = ".".join(str(p) for p in err["loc"])
    flag = f"--{name.replace('_', '-')}" if name else "the value"
    ctx, got = err.get("ctx") or {}, err.get("input")
    kind = err["type"]
    if kind == "greater_than_equal":
        return f"{flag} must be at least {ctx['ge']} (got {got})"
    if kind == "greater_than":
        return (f"{flag} must be positive (got {got})" if ctx["gt"] == 0
                else f"{flag} must be more than {ctx['gt']} (got {got})")
    if kind == "less_than_equal":
        return f"{flag} must be at most {ctx['le']} (got {got})"
    return f"invalid {flag} {got!r}: {str(err['msg']).lower()}"


# -- record ---------------------------------------------------------------------------------
class AppFrames(Model):
    app: str
    titles: list[str]
    frames: int


class Chunk(Model):
    """A recorded chunk file and what was on screen in it."""

    id: int
    path: str = Field(description="relative to the data dir")
    start_ts: float
    end_ts: float | None
    codec: str | None
    encoder: str | None
    width: int | None
    height: int | None
    frames: int
    bytes: int
    state: str = Field(description="recording | closed | recovered | damaged")
    apps: list[AppFrames]


class LocalChunk(Chunk):
    abs_path: str = Field(description="the file on this machine (CLI only, never served)")

    def public(self) -> Chunk:
        return Chunk.model_validate(self.model_dump())


class FrameInfo(Model):
    """The indexed frame nearest at or before a moment."""

    id: int
    ts: float
    chunk_id: int | None
    pts: float | None = Field(description="seconds into the chunk")
    app: str | None
    title: str | None
    x: int | None
    y: int | None
    w: int | None
    h: int | None
    changed: int
    excluded: int
    chunk_path: str | None


class Picture(Model):
    """The pixels of one moment, encoded."""

    data: bytes
    media_type: str = Field(description="image/png or image/jpeg")


class CaptureHealthState(Model):
    """Is the capture really seeing the screen? (capture/health.py)"""

    state: Literal["starting", "ok", "blank", "stalled", "failing", "locked"] = Field(
        description="blank: one colour while a window is on screen; stalled: nothing "
                    "visible and nothing encoded for a minute; failing: grabs keep raising; "
                    "locked: the screen is locked (recorded in the index as such)")
    message: str = Field(default="", description="what is wrong and the likely fix")
    since: float | None = Field(default=None, description="unix seconds the state began")
    backend: str = Field(default="", description="x11 | wayland | macos | windows")
    path: str = Field(default="", description="how pixels are read (xshm, portal, ...)")
    why: str = Field(default="", description="why this backend and path were chosen")

    @property
    def seeing(self) -> bool:
        """The capture sees the screen, or is about to: nothing to warn about."""
        return self.state in ("ok", "starting")


class RecordProgress(Model):
    """What a running recorder reports about once a second."""

    elapsed: float
    app: str | None
    title: str | None
    frames_seen: int
    frames_encoded: int
    frames_skipped: int
    frames_excluded: int
    chunk: str | None
    bytes: int
    encoder: str | None
    paused: bool
    disk_paused: bool
    message: str | None = None
    last_error: str | None = None
    health: CaptureHealthState | None = None


class RecordSummary(RecordProgress):
    chunks: list[str] = Field(description="chunk paths written")


class PauseState(Model):
    paused: bool
    recorder_pid: int | None


class Deleted(Model):
    chunks: int
    frames: int
    bytes: int
    observations: int
    start: float = Field(description="the range actually removed")
    end: float


class Evicted(Model):
    id: int
    path: str
    reason: str


class RetentionResult(Model):
    evicted: list[Evicted]
    bytes_freed: int
    frames_removed: int
    total_bytes: int


class RecordStatus(Model):
    """The recorder's side of :class:`Status`."""

    data_dir: str
    recorder: RecorderState
    paused: bool
    disk_free: int
    min_free_bytes: int
    totals: Totals


class RecorderState(Model):
    running: bool
    pid: int | None
    heartbeat: float | None
    chunk: str | None
    encoder: str | None
    disk_paused: bool
    message: str | None
    last_error: str | None
    health: CaptureHealthState | None = Field(
        default=None, description="the running recorder's capture health (from its heartbeat)")


class Totals(Model):
    chunks: int
    bytes: int
    frames_encoded: int
    frames_seen: int
    first_ts: float | None
    last_ts: float | None


# -- analyze --------------------------------------------------------------------------------
class AnalysisStatus(Model):
    chunks_total: int
    chunks_analysed: int
    chunks_pending: int
    frames_read: int
    ocr_ms_avg: float | None
    analysed_until: float | None
    lag_seconds: float
    observations_done: int
    observations_pending: int
    observations_failed: int
    last_endpoint_error: dict[str, Any] | None
    next_retry_ts: float | None
    line: str = Field(description="one human line saying all of the above")


class ServeInfo(Model):
    agent_command: bool = Field(description="whether [serve] agent_command is set")


class Status(RecordStatus):
    analysis: AnalysisStatus
    serve: ServeInfo


class AnalyzeRequest(Request):
    """An analysis run."""

    noun: ClassVar[str] = "analyze"
    follow: bool = False
    dry_run: bool = False
    window: str | float | None = Field(default=None, description="30s, 5m, 1h")
    reasoner: str | None = None
    model: str | None = None
    base_url: str | None = None
    key: str | None = None
    poll: float = Field(default=2.0, gt=0, description="seconds between --follow passes")


class AnalyzeSummary(Model):
    chunks: int
    chunks_done: int
    frames: int
    keyframes: int
    ocr_ms: float
    ocr_ms_per_keyframe: float | None
    titles: int
    embedded: int = Field(default=0, description="key frames embedded for search by meaning")
    errors: list[str]
    reasoner: str
    model: str | None
    seconds: float
    stopped: bool
    observations: list[dict[str, Any]]
    status: AnalysisStatus
    requests: list[dict[str, Any]] | None = Field(
        default=None, description="--dry-run: what would have been sent")


class ScreenHit(Model):
    """A moment something was on screen, as an agent gets it (MCP ``search_screen``): no
    file path of the store goes into a model's context."""

    ts: float
    app: str
    title: str
    snippet: str = Field(description="matches marked as [word]; a match by meaning shows the "
                                     "text block that matched")
    matched: Literal["words", "meaning", "both"] = Field(
        default="words", description="why it matched: its words, its meaning, or both")
    chunk_id: int | None
    offset: float | None = Field(description="seconds into the chunk")


class SearchHit(ScreenHit):
    """A search hit as the CLI, REST API and web UI get it."""

    frame_id: int
    similarity: float | None = Field(default=None,
                                     description="cosine similarity of the block that matched")
    chunk_path: str | None = Field(description="the chunk's file, relative to the data dir")

    def for_agent(self) -> ScreenHit:
        return ScreenHit.model_validate(self.model_dump())


class ReindexSummary(Model):
    """What ``analyze --reindex`` did: the model now searched and the vectors it made."""

    model: str
    frames: int = Field(description="key frames embedded")
    blocks: int = Field(description="text blocks they hold")
    vectors: int = Field(description="new vectors (a block seen before is linked, not redone)")
    finished: bool = Field(description="false when stopped early; the old model stays active")
    dropped_vectors: int = Field(description="vectors of the previous model deleted")
    stats: dict[str, Any]


# The titles the recorder gives the index rows of a screen it kept no picture of
# (store.frames.SCREEN_TITLES): a timeline span with one of them is that screen state.
_SCREEN_OF_TITLE = {"[screen blank]": "blank", "[screen locked]": "locked"}


class Segment(Model):
    """Time in front of one app and window."""

    app: str
    title: str
    start_ts: float
    end_ts: float
    duration: float
    frames: int
    excluded: bool | int = False
    screen: Literal["blank", "locked"] | None = Field(
        default=None, description="no picture was kept: the screen was one colour while a "
                                  "window was on it (blank) or locked")

    def model_post_init(self, _context: Any) -> None:
        if self.screen is None and self.title in _SCREEN_OF_TITLE:
            self.screen = _SCREEN_OF_TITLE[self.title]  # type: ignore[assignment]


class Task(Model):
    model_config = ConfigDict(extra="allow")
    verdict: str = Field(description="NO_TASK | TASK_FOUND")
    category: str | None = None
    title: str | None = None
    description: str | None = None


class Observation(Model):
    id: int
    start_ts: float
    end_ts: float
    status: str = Field(description="pending | done | failed")
    attempts: int | None = None
    next_try_ts: float | None = None
    reasoner: str | None
    model: str | None
    summary: str | None
    activities: list[str]
    task: Task | None
    error: str | None
    created_ts: float | None
    done_ts: float | None = None
    request_ids: list[int] = []


class AskQuestion(Request):
    """A question about the screen history (what the REST API accepts)."""

    noun: ClassVar[str] = "ask"
    # Bounded: a question is a sentence or a paragraph, and a 6 MB one tied a server up for
    # seconds (bench/chaos.py).
    question: str = Field(min_length=1, max_length=20_000)
    since: When | None = None
    until: When | None = None


class AskRequest(AskQuestion):
    """A question plus the reasoner to answer it (CLI: may point at any endpoint)."""

    reasoner: str | None = None
    model: str | None = None
    base_url: str | None = None
    key: str | None = None


class TimeSpan(Model):
    start_ts: float
    end_ts: float
    label: str


class Answer(Model):
    answer: str
    timestamps: list[float]
    sources: list[SearchHit] = Field(description="the moments found by the question's words "
                                                 "or meaning")
    times: list[TimeSpan] = Field(description="the spans the question was placed in")
    reasoner: str
    model: str | None
    request_id: int | None = None


class AskPreview(Model):
    """``ask --dry-run``: what would be sent, and from which moments."""

    request: dict[str, Any]
    sources: list[SearchHit]
    times: list[TimeSpan]


class KeyInfo(Model):
    name: str
    stored: bool
    preview: str
    env: str


class KeyChange(Model):
    name: str
    stored: bool = False
    deleted: bool = False


# -- synth ----------------------------------------------------------------------------------
class GenerateParams(Request):
    """A generation as the REST API and MCP take it (weights only from the models folder)."""

    noun: ClassVar[str] = "generation"
    prompt: str
    model: str | None = None
    model_path: str | Path | None = Field(default=None,
                                          description="a folder under the models directory")
    frames: int | None = Field(default=None, ge=1, le=1000)
    height: int | None = Field(default=None, ge=16, le=4096)
    width: int | None = Field(default=None, ge=16, le=4096)
    fps: float | None = Field(default=None, gt=0, le=120)
    steps: int | None = Field(default=None, ge=1, le=500)
    guidance: float | None = None
    seed: int | None = None
    negative: str | None = None
    backend: str | None = Field(
        default=None, description="diffusers (default), or a hosted provider: replicate, "
                                  "fal, veo, runway (then model is in the provider's naming)")
    params: dict[str, Any] | None = Field(
        default=None, description="hosted backends: provider-native inputs sent as given "
                                  "(e.g. duration, resolution)")
    yes: bool = Field(
        default=False, description="hosted backends: the user saw what will be sent "
                                   "(POST /api/generate/preview) and agreed")


class GenerateRequest(GenerateParams):
    """Everything ``localvideo generate`` takes (local files, backends, speed options)."""

    image: Path | None = None
    out: Path | None = None
    # Hosted backends: another host for the provider (proxy, tests). CLI only: a remote
    # caller must not send the user's key to a host of its choosing.
    base_url: str | None = None
    timeout: float | None = None
    comfy_url: str | None = None
    workflow: Path | dict[str, Any] | None = None
    max_vram: str | int | None = None
    cache: bool = False
    compile: bool = False
    attention: str | None = None
    device: str | None = None


class Plan(Model):
    """The memory plan for a generation (estimates in bytes)."""

    model: str
    family: str
    params: dict[str, Any]
    device: str
    dtype: str
    offload: str
    fp8: bool
    fp8_components: list[str]
    vae_tiling: bool
    vae_slicing: bool
    fits: bool
    vram_bytes: int | None
    budget_bytes: int | None
    estimate: dict[str, int]
    latent: dict[str, int]
    reasons: list[str]
    save_latents: bool
    hypothetical: bool


class ModelPreset(Model):
    name: str
    family: str
    repo_id: str
    revision: str | None
    pipeline: str
    i2v: bool
    params: str
    height: int
    width: int
    frames: int
    fps: float
    steps: int
    guidance: float
    present: bool
    path: str | None
    note: str | None
    profile: dict[str, Any]


class PulledModel(Model):
    name: str
    repo_id: str
    revision: str | None
    path: str


class Clip(Model):
    """A generated clip: the JSON sidecar written beside the MP4, plus its id."""

    id: int
    clip_id: int
    path: str = Field(description="relative to the data dir when inside it")
    exists: bool
    backend: str
    prompt: str
    negative: str | None = None
    seed: int | None = None
    model: dict[str, Any]
    family: str | None = None
    pipeline: str | None = None
    params: dict[str, Any]
    plan: dict[str, Any] | None = None
    speed: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    peak_memory: dict[str, Any] | None = None
    device: dict[str, Any] | None = None
    versions: dict[str, Any] | None = None
    video: dict[str, Any] | None = None
    latents: str | None = None
    created_ts: float
    seconds: float
    sidecar: str
    comfy: dict[str, Any] | None = None
    hosted: dict[str, Any] | None = Field(
        default=None, description="hosted backends: provider, request_id, host, what was sent")
    decoded_from_latents: bool | None = None
    decode_tiling: bool | None = None
    batch: dict[str, Any] | None = Field(
        default=None, description="batch runs: jobs file, line, attempt, runner, worker")


class HostedPreview(Model):
    """What a hosted generation will send, and the provider's published estimate."""

    provider: str
    model: str
    host: str
    mode: str = Field(description="text-to-video | image-to-video")
    prompt: str
    negative: str | None
    image: dict[str, Any] | None = Field(description="path, bytes, width, height, mime")
    image_transport: str | None
    params: dict[str, Any]
    estimate: dict[str, Any] = Field(description="price, time, source (None: not published)")
    lines: list[str] = Field(description="the text to show before asking")


class LocalClip(Clip):
    abs_path: str = Field(description="the MP4 on this machine (CLI only, never served)")

    def public(self) -> Clip:
        return Clip.model_validate(self.model_dump())


class BatchRequest(GenerateRequest):
    """``localvideo generate --batch jobs.jsonl``: the command's flags are every job's
    defaults (a prompt too, when given); ``ray`` None runs the jobs in this process."""

    noun: ClassVar[str] = "batch"
    prompt: str | None = None  # type: ignore[assignment]
    jobs: Path = Field(description="a JSONL file, one job per line")
    ray: str | None = Field(default=None, description="local | auto | HOST:PORT | ray://...")
    workers: int | None = Field(default=None, ge=1, description="Ray actors (default: one "
                                                                "per GPU, or 1 CPU actor)")


class BatchJob(Model):
    """One job of a batch: where it is in the file, how it ended, the clip it made."""

    index: int
    line: int
    prompt: str
    seed: int
    status: Literal["done", "failed", "cancelled", "pending"]
    attempts: int
    clip: LocalClip | None = None
    error: dict[str, Any] | None = Field(default=None, description="type, message, hint")
    worker: dict[str, Any] | None = Field(default=None, description="slot, host, pid, device")
    seconds: float


class BatchReport(Model):
    runner: Literal["in-process", "ray"]
    address: str | None = None
    done: int
    failed: int
    seconds: float
    workers: list[dict[str, Any]]
    jobs: list[BatchJob]


class Job(Model):
    id: int
    kind: str
    params: dict[str, Any]
    state: str = Field(description="queued | running | done | failed")
    progress: dict[str, Any] | None
    result: dict[str, Any] | None = Field(description="the clip, when done")
    error: dict[str, Any] | None
    created_ts: float
    started_ts: float | None
    finished_ts: float | None
    waiting: str | None = Field(default=None, description="why a queued job is not running")


# -- act, doctor, autostart, settings ---------------------------------------------------------
class Action(Model):
    """One hand-off of a suggested task to the agent command."""

    id: int
    ts: float
    observation_id: int
    command: str
    task: str
    state: str = Field(description="running | done | failed")
    exit_code: int | None
    output_tail: str | None
    finished_ts: float | None


class Check(Model):
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    data: dict[str, Any] | None = None


class Verdict(Model):
    suited: bool
    reason: str
    settings: dict[str, Any]
    fits: list[dict[str, Any]] = []
    command: str | None = None


class DoctorReport(Model):
    platform: dict[str, str]
    checks: list[Check]
    jobs: dict[str, Verdict]
    install: list[str]
    seconds: float


class AutostartInstalled(Model):
    system: str
    path: str
    enable_command: str


class AutostartRemoved(Model):
    system: str
    path: str
    removed: list[str]
    stop_command: str


class RecordPrefs(Model):
    """The settings the UI shows and changes (exclusions, retention, the agent command)."""

    exclude_apps: list[str]
    exclude_titles: list[str]
    excluded_action: str
    max_bytes: int
    max_age: float
    agent_command: str | None


class PrefsUpdate(Request):
    """A change to :class:`RecordPrefs`; fields left out stay as they are."""

    noun: ClassVar[str] = "settings"
    exclude_apps: list[str] | None = None
    exclude_titles: list[str] | None = None
    excluded_action: Literal["blank", "skip"] | None = None
    max_bytes: str | int | None = Field(default=None, description='"20GB" or bytes')
    max_age: str | float | None = Field(default=None, description='"30d" or seconds')


# -- privacy: tokens, audit, lock (service/privacy.py) ----------------------------------------

class AuditEntry(Model):
    """One read of the screen history through the API, the web UI or MCP."""

    id: int
    ts: float = Field(description="unix seconds of the read")
    channel: str = Field(description="api | ui | mcp")
    client: str = Field(description="token name ('owner' for the main token) or mcp:<session>")
    scope: str = Field(description="full | read | search, or the MCP server's limits")
    action: str = Field(description="frame | chunk | text | search | answer | observation | "
                                    "timeline | clip | page | ...")
    target: str = Field(description="the request: path and query, or tool and arguments")
    status: int = Field(description="HTTP status (MCP: 200 answered, 423 locked, 403 outside "
                                    "its limits, 400 failed)")


class LockState(Model):
    """Whether the API, the UI and MCP refuse reads, since when and why."""

    locked: bool
    since: float | None = Field(default=None, description="unix seconds it was locked")
    reason: str | None = Field(default=None, description="cli | idle | api")
    idle_after: float | None = Field(default=None, description="seconds without a read "
                                     "through API/UI/MCP before it locks itself; None: never")
    needs_secret: bool = Field(default=False, description="unlock asks for the passphrase")


class TokenInfo(Model):
    """A named API token (never its secret)."""

    name: str
    scope: str
    created: float
    last_used: float | None = None


class NewToken(TokenInfo):
    """A token just made: its secret, this once."""

    token: str = Field(description="shown once; only its SHA-256 is stored")


# -- encryption at rest (service/encryption.py) -----------------------------------------------

class EncryptionStatus(Model):
    enabled: bool
    source: Literal["keyring", "passphrase"] | None = Field(
        default=None, description="where the key comes from")
    key_id: str | None = None
    keyring: str | None = Field(default=None, description="the OS keyring backend, if any")
    index_encrypted: bool
    chunks_sealed: int
    chunks_plain: int


class EncryptionChange(Model):
    """What ``encrypt enable|disable`` migrated; every count checked before the swap."""

    enabled: bool
    source: str | None
    rows: dict[str, int] = Field(description="rows per table of the index, before = after")
    chunks: int = Field(description="chunk and cache files sealed (enable) or opened (disable)")
    seconds: float


class Exported(Model):
    out: str
    files: list[str]
    bytes: int


# -- the reasoning endpoint (service/reasoner.py) ------------------------------------------

ReasonerName = Literal["auto", "offline", "anthropic", "openai", "gemini"]


class ReasonerPrefs(Model):
    """The reasoning endpoint as configured, and where screen text would go."""

    reasoner: str = Field(description="as configured: auto, offline, anthropic, openai, gemini")
    resolved: str = Field(description="the reasoner that runs now (auto resolved)")
    base_url: str | None = Field(default=None, description="as configured (None: default)")
    endpoint: str | None = Field(default=None,
                                 description="the URL requests go to; None for offline")
    host: str | None = Field(default=None, description="the host screen text is sent to")
    local: bool = Field(description="nothing leaves this machine (offline or a loopback URL)")
    model: str | None = Field(default=None, description="as configured (None: default)")
    model_used: str | None = Field(default=None, description="the model that runs now")
    window: float = Field(description="seconds of activity per observation")
    key_name: str | None = Field(default=None, description="the key store entry it uses")
    key: str = Field(default="", description="the stored key, masked; empty when none")
    key_env: str = Field(default="", description="an environment variable supplying a key")
    sends: str = Field(description="what is sent, and where, in a sentence")


class ReasonerUpdate(Request):
    """A change of the reasoning endpoint; fields left out stay as they are. ``base_url`` or
    ``model`` empty: the reasoner's default. ``key``: stored in the key store under the
    reasoner's name, never answered back."""

    noun: ClassVar[str] = "reasoner"
    reasoner: ReasonerName | None = None
    base_url: str | None = Field(default=None, description="http(s) URL, or empty for the "
                                                           "default")
    model: str | None = None
    window: str | float | None = Field(default=None, description='"5m" or seconds')
    key: str | None = Field(default=None, description="an API key to store (write-only)")


class EndpointTest(Model):
    """The outcome of one small request to the endpoint."""

    ok: bool
    reasoner: str
    model: str | None = None
    endpoint: str | None = None
    answer: str | None = Field(default=None, description="the model's reply, when ok")
    error: str | None = Field(default=None, description="what went wrong, when not ok")
    hint: str | None = None
    seconds: float


class LocalModelServer(Model):
    """An OpenAI-compatible server found listening on a loopback port."""

    name: str = Field(description="Ollama, LM Studio, llama.cpp or 'local server'")
    slug: str = Field(description="how `localvideo reasoner use` names it")
    port: int
    base_url: str
    models: list[str]
    model: str | None = Field(default=None, description="the model offered")
    label: str = Field(description='the button\'s words, e.g. "Use Ollama (llama3.2)"')
    command: str = Field(description="the one command that uses it")
    configured: bool = Field(description="the reasoner already points at it")
