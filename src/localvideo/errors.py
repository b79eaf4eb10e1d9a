"""One exception tree for localvideo.

Every error a user can see derives from :class:`LocalVideoError`. Third-party errors are
mapped at the boundary (``raise XError(...) from exc``) so front ends only catch ours::

    LocalVideoError                 (message + optional hint naming the command that fixes it)
    ├── UsageError                  bad argument: a path, URL, number, duration, model name
    ├── ConfigError                 unreadable or invalid config file / env var
    ├── DependencyError             a missing optional library or system program
    ├── CaptureError                the screen cannot be captured
    │   ├── NoDisplayError          no display server (no DISPLAY / Wayland-only)
    │   └── ScreenLockedError       the screen is locked: a state to record, not a failure
    ├── EncoderError                no working encoder / encoder failed
    ├── StoreError                  index or chunk files unreadable
    │   ├── DiskFullError           not enough free space to keep recording
    │   └── MediaError              a video file cannot be opened or decoded (media.py)
    ├── NotFoundError               a chunk / frame / observation / clip that is not there
    ├── LockedError                 the history is locked (`localvideo lock`): reads refused
    ├── ScopeError                  an API token's scope does not cover the request
    ├── ReasonerError               a reasoning endpoint failed
    │   ├── MissingKeyError         no API key found for a reasoner
    │   └── EndpointError           endpoint down / 429 / 5xx / malformed answer (retryable)
    ├── SynthError                  video synthesis failed
    │   ├── ModelNotFoundError      weights not present locally
    │   └── OutOfMemoryError        the plan did not fit the device
    ├── ComfyUIError                the ComfyUI server refused or failed a job
    └── HostedError                 a hosted provider (Replicate, fal, Veo, Runway) refused
        │                           or failed a request; ``reason`` says which kind
        └── HostedCancelled         the user cancelled (Ctrl-C): cancelled on the provider
"""

from __future__ import annotations


class LocalVideoError(Exception):
    """Base of every error localvideo raises on purpose.

    ``hint`` is one line that tells the user what to do next, ideally a command.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  → {self.hint}"

    def to_dict(self) -> dict[str, str]:
        d = {"type": type(self).__name__, "message": self.message}
        if self.hint:
            d["hint"] = self.hint
        return d


class UsageError(LocalVideoError, ValueError):
    exit_code = 2


class ConfigError(LocalVideoError):
    exit_code = 2


class DependencyError(LocalVideoError):
    pass


class CaptureError(LocalVideoError):
    pass


class NoDisplayError(CaptureError):
    pass


class ScreenLockedError(CaptureError):
    """The screen is locked (or on the secure desktop): the recorder notes it and waits."""


class EncoderError(LocalVideoError):
    pass


class StoreError(LocalVideoError):
    pass


class DiskFullError(StoreError):
    pass


class MediaError(StoreError):
    pass


class NotFoundError(LocalVideoError):
    pass


class LockedError(LocalVideoError):
    """Reads of the screen history are refused until `localvideo unlock` (REST: 423)."""

    exit_code = 3


class ScopeError(LocalVideoError):
    """A scoped API token (read, search) or a limited MCP server asked for more (REST: 403)."""

    exit_code = 2


class ReasonerError(LocalVideoError):
    pass


class MissingKeyError(ReasonerError):
    pass


class EndpointError(ReasonerError):
    """A failure that may pass: retry later, keep the work pending."""

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None,
                 retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.retryable = retryable
        # Seconds the server asked us to wait (HTTP Retry-After on 429/503), when it said.
        self.retry_after = retry_after


class SynthError(LocalVideoError):
    pass


class ModelNotFoundError(SynthError):
    pass


class OutOfMemoryError(SynthError):
    pass


class ComfyUIError(SynthError):
    pass


class HostedError(SynthError):
    """A hosted provider refused or failed a request.

    ``reason`` is one of: ``auth`` (bad or missing key), ``model`` (unknown model),
    ``quota`` (rate limit / credit / billing), ``refused`` (content refused by the provider's
    safety filter), ``input`` (parameters the model does not take), ``failed`` (the job
    failed on the provider), ``timeout``, ``network``, ``canceled``.
    """

    def __init__(self, message: str, hint: str | None = None, *, reason: str = "failed",
                 provider: str | None = None, request_id: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, hint)
        self.reason = reason
        self.provider = provider
        self.request_id = request_id
        self.status = status

    def to_dict(self) -> dict[str, str]:
        d = super().to_dict()
        d["reason"] = self.reason
        if self.provider:
            d["provider"] = self.provider
        if self.request_id:
            d["request_id"] = self.request_id
        return d


class HostedCancelled(HostedError):
    # The shell's convention for a run stopped by Ctrl-C.
    exit_code = 130
