"""The flow every hosted provider shares: describe → submit → follow → download → H.264.

A provider file (replicate.py, fal.py, veo.py, runway.py) drives its provider's official SDK
and implements five small steps — make a client, submit, read the status, cancel, fetch the
output — and maps the SDK's errors; this file does everything else the same way for all:

1. :meth:`HostedProvider.describe` says, before anything is sent, what will leave the machine
   (the prompt, the image's bytes and size, the parameters, the host) and the provider's
   published price/time estimate where there is one (``ESTIMATES`` in each provider file,
   with its source; ``None`` rather than a guess);
2. :meth:`HostedProvider.run` submits, then polls, emitting progress events shaped like the
   diffusers engine's (``{"phase": "hosted", "state": "queued" | "running" | ...}``);
3. a set ``cancel`` event, or Ctrl-C (KeyboardInterrupt), cancels the request *on the
   provider* before :class:`HostedCancelled` is raised — a hosted job keeps billing otherwise;
4. the output is downloaded beside ``out`` and re-encoded with the project's one H.264 writer,
   so a hosted clip plays wherever a local one does.

Nothing here runs unless the user chose a hosted backend: the SDKs are imported lazily.
"""

from __future__ import annotations

import base64
import contextlib
import mimetypes
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
from PIL import Image, UnidentifiedImageError

from ...errors import (
    DependencyError,
    HostedCancelled,
    HostedError,
    LocalVideoError,
    MediaError,
    UsageError,
)

Progress = Callable[[dict[str, Any]], None]
State = Literal["queued", "running", "succeeded", "failed", "canceled"]
INSTALL_HINT = "pip install 'localvideo[hosted]'"
# Words providers use when their safety filter refused a prompt, an image or an output.
_REFUSAL = re.compile(r"\b(nsfw|safety|flagged|content[ _]policy|moderation|"
                      r"responsible ai|rai)\b", re.IGNORECASE)


@dataclass
class HostedRequest:
    """What the user asked for, in the project's terms; each provider maps it to its own."""

    prompt: str
    image: Path | None = None
    negative: str | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    # Provider-native input fields, sent as given (duration, aspect ratio, resolution, ...).
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Estimate:
    """A provider's published figure, with where it was published; ``None`` = not published."""

    price: str | None = None
    time: str | None = None
    source: str | None = None


@dataclass
class ImageInfo:
    path: str
    bytes: int
    width: int
    height: int
    mime: str


@dataclass
class Submission:
    """Everything that will leave the machine for one request, said before it is sent."""

    provider: str
    model: str
    host: str
    mode: str                       # "text-to-video" | "image-to-video"
    prompt: str
    negative: str | None
    image: ImageInfo | None
    image_transport: str | None     # how the image travels (inline base64, file upload, ...)
    params: dict[str, Any]
    estimate: Estimate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The text a front end shows before asking."""
        out = [f"Send to {self.provider} ({self.host}), model {self.model}, {self.mode}:",
               f"  prompt: {self.prompt!r}"]
        if self.negative:
            out.append(f"  negative prompt: {self.negative!r}")
        if self.image:
            im = self.image
            out.append(f"  image: {im.path} ({im.bytes:,} bytes, {im.width}×{im.height}, "
                       f"{im.mime}; {self.image_transport})")
        if self.params:
            out.append("  parameters: " + ", ".join(f"{k}={v!r}" for k, v in
                                                    sorted(self.params.items())))
        est = self.estimate
        out.append(f"  price: {est.price or 'not published for this model'}")
        if est.time:
            out.append(f"  time: {est.time}")
        if est.source:
            out.append(f"  (source: {est.source})")
        return out


@dataclass
class Status:
    """One look at a request on the provider."""

    state: State
    position: int | None = None      # place in the queue, when the provider says
    progress: float | None = None    # 0..1, when the provider says
    error: str | None = None
    error_code: str | None = None
    refused: bool = False            # the provider's safety filter refused it
    outputs: list[str] = field(default_factory=list)  # output URLs
    video_bytes: bytes | None = None  # an output delivered inline instead of by URL
    info: dict[str, Any] = field(default_factory=dict)  # cost/metrics for the sidecar


@dataclass
class HostedResult:
    provider: str
    model: str
    request_id: str
    path: Path
    video: dict[str, Any]
    params: dict[str, Any]
    submission: dict[str, Any]
    output_url: str | None
    timings: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)
    cancel_supported: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


class _Cancelled(Exception):
    pass


class HostedProvider(ABC):
    """One hosted provider behind its official SDK."""

    name: ClassVar[str]
    title: ClassVar[str]
    sdk_module: ClassVar[str]              # import name, for the missing-SDK message
    key_envs: ClassVar[tuple[str, ...]]    # the SDK's own environment variables
    default_host: ClassVar[str]
    can_cancel: ClassVar[bool] = True
    model_hint: ClassVar[str] = ""         # how the provider names models, and where to look
    key_optional: ClassVar[bool] = False   # whether the SDK has another way to authenticate

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None,
                 key_store: Any = None, poll_interval: float = 2.0,
                 timeout: float | None = 1800.0) -> None:
        self._explicit_key = api_key
        self.base_url = base_url.rstrip("/") if base_url else None
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise UsageError(f"--base-url {base_url!r} is not an http(s) URL",
                             "e.g. --base-url http://127.0.0.1:8080")
        self.key_store = key_store
        self.poll_interval = float(poll_interval)
        self.timeout = timeout

    # -- keys ------------------------------------------------------------------------------
    def key_hint(self) -> str:
        envs = " or ".join(self.key_envs)
        return f"run `localvideo keys set {self.name}` (or set {envs})"

    def api_key(self, required: bool = True) -> str | None:
        """The explicit key > ``localvideo keys set NAME`` > the SDK's own env variable."""
        if self._explicit_key:
            return self._explicit_key
        if self.key_store is not None:
            stored = self.key_store.get(self.name)
            if stored:
                return str(stored)
        for env in self.key_envs:
            if os.environ.get(env):
                return os.environ[env]
        if required and not self.key_optional:
            raise HostedError(f"No key found for {self.title}", self.key_hint(),
                              reason="auth", provider=self.name)
        return None

    @property
    def host(self) -> str:
        return self.base_url or self.default_host

    # -- what each provider implements -----------------------------------------------------
    @abstractmethod
    def check_model(self, model: str) -> str:
        """The model name normalized, or a UsageError naming the provider's format."""

    @abstractmethod
    def estimate(self, model: str, req: HostedRequest) -> Estimate: ...

    def native_params(self, model: str, req: HostedRequest) -> dict[str, Any]:
        """The provider-native parameters that will be sent besides prompt and image.

        Replicate's and fal's models mostly name these ``seed`` and ``negative_prompt``;
        providers with other names or required fields override this."""
        params: dict[str, Any] = {}
        if req.seed is not None:
            params["seed"] = int(req.seed)
        if req.negative:
            params["negative_prompt"] = req.negative
        params.update(req.params)
        params.pop("image_field", None)    # ours: which input field takes the image
        return params

    @abstractmethod
    def image_transport(self) -> str: ...

    @abstractmethod
    def _client(self) -> Any: ...

    @abstractmethod
    def _submit(self, client: Any, model: str, req: HostedRequest) -> tuple[str, Any]:
        """Send the request; return (request id, handle for the next calls)."""

    @abstractmethod
    def _status(self, client: Any, handle: Any) -> Status: ...

    @abstractmethod
    def _cancel(self, client: Any, handle: Any) -> None: ...

    @abstractmethod
    def _map_error(self, exc: Exception, *, model: str,
                   request_id: str | None) -> LocalVideoError | None:
        """The project's error for an SDK exception, or None when it is not the SDK's."""

    def _download(self, client: Any, handle: Any, status: Status, dest: Path) -> str | None:
        """Write the output to ``dest``; return its URL when it came from one."""
        if status.video_bytes is not None:
            dest.write_bytes(status.video_bytes)
            return None
        if not status.outputs:
            raise HostedError(f"{self.title} reported success but returned no video",
                              "look the request up on the provider's dashboard",
                              reason="failed", provider=self.name)
        url = status.outputs[0]
        try:
            with httpx.stream("GET", url, timeout=httpx.Timeout(60.0, connect=15.0),
                              follow_redirects=True) as resp:
                resp.raise_for_status()
                with open(dest, "wb") as fh:
                    for chunk in resp.iter_bytes(1 << 20):
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise HostedError(f"cannot download the output of {self.title} from {url}: {exc}",
                              "the link may have expired; run the request again",
                              reason="network", provider=self.name) from exc
        return url

    # -- the shared flow -------------------------------------------------------------------
    def describe(self, model: str, req: HostedRequest) -> Submission:
        """What will be sent, without sending anything (no network, no SDK needed)."""
        model = self.check_model(model)
        if not isinstance(req.prompt, str) or not req.prompt.strip():
            raise UsageError("the prompt is empty",
                             'pass a prompt: localvideo generate "a red fox running through snow"')
        image = describe_image(req.image) if req.image else None
        return Submission(provider=self.name, model=model, host=self.host,
                          mode="image-to-video" if image else "text-to-video",
                          prompt=req.prompt, negative=req.negative, image=image,
                          image_transport=self.image_transport() if image else None,
                          params=self.native_params(model, req),
                          estimate=self.estimate(model, req))

    def run(self, model: str, req: HostedRequest, out: Path, *,
            on_progress: Progress | None = None,
            cancel: threading.Event | None = None) -> HostedResult:
        """Submit, follow, download and convert to H.264 at ``out``; see the module doc."""
        emit = on_progress or (lambda _e: None)
        sub = self.describe(model, req)
        model = sub.model
        client = self._client()
        timings: dict[str, float] = {}
        base = {"phase": "hosted", "provider": self.name, "model": model}
        t0 = time.perf_counter()
        emit({**base, "state": "submit", "host": self.host})
        try:
            with self._mapped(model, None):
                rid, handle = self._submit(client, model, req)
        except KeyboardInterrupt as exc:
            # No id yet, so nothing to cancel: the request may or may not exist there.
            raise HostedCancelled(
                f"interrupted while submitting to {self.title}: the request may have been "
                "created", "look for it on the provider's dashboard and cancel it there",
                reason="canceled", provider=self.name) from exc
        timings["submit"] = time.perf_counter() - t0
        emit({**base, "state": "submitted", "request_id": rid})

        t0 = time.perf_counter()
        try:
            status = self._follow(client, handle, model, rid, emit, base, cancel, t0)
        except (KeyboardInterrupt, _Cancelled) as exc:
            reached = self._try_cancel(client, handle, model, rid)
            emit({**base, "state": "canceled", "request_id": rid, "provider_cancel": reached})
            if self.can_cancel:
                msg = (f"cancelled {self.title} request {rid}" if reached else
                       f"stopped following {self.title} request {rid}, but cancelling it on "
                       f"the provider failed: {reached!r}")
                hint = None if reached else "cancel it on the provider's dashboard"
            else:
                msg = (f"stopped following {self.title} request {rid}: {self.title} has no "
                       "cancel call, so the job runs (and bills) to its end on the provider")
                hint = None
            raise HostedCancelled(msg, hint, reason="canceled", provider=self.name,
                                  request_id=rid) from (exc if isinstance(exc, _Cancelled)
                                                        else None)
        timings["wait"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        emit({**base, "state": "download", "request_id": rid})
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        raw = out.with_name(out.name + ".download")
        try:
            with self._mapped(model, rid):
                url = self._download(client, handle, status, raw)
            timings["download"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            emit({**base, "state": "convert", "request_id": rid})
            source = probe_source(raw)
            video = to_h264(raw, out)
        finally:
            raw.unlink(missing_ok=True)
        timings["convert"] = time.perf_counter() - t0
        video["source"] = source
        emit({**base, "state": "done", "request_id": rid, "path": str(out)})
        return HostedResult(provider=self.name, model=model, request_id=rid, path=out,
                            video=video, params=sub.params, submission=sub.to_dict(),
                            output_url=url, timings=timings, info=status.info,
                            cancel_supported=self.can_cancel)

    def _follow(self, client: Any, handle: Any, model: str, rid: str, emit: Progress,
                base: dict[str, Any], cancel: threading.Event | None,
                started: float) -> Status:
        last: tuple[Any, ...] | None = None
        while True:
            if cancel is not None and cancel.is_set():
                raise _Cancelled()
            with self._mapped(model, rid):
                st = self._status(client, handle)
            if st.state == "succeeded":
                return st
            if st.state == "failed":
                raise self._failure(st, model, rid)
            if st.state == "canceled":
                raise HostedError(f"{self.title} request {rid} was cancelled on the provider",
                                  "run it again", reason="canceled", provider=self.name,
                                  request_id=rid)
            now = (st.state, st.position, st.progress)
            if now != last:
                emit({**base, "state": st.state, "request_id": rid, "position": st.position,
                      "progress": st.progress, **({"info": st.info} if st.info else {})})
                last = now
            if self.timeout is not None and time.perf_counter() - started > self.timeout:
                reached = self._try_cancel(client, handle, model, rid)
                raise HostedError(
                    f"{self.title} request {rid} did not finish in {self.timeout:.0f} s "
                    f"({'cancelled on the provider' if reached is True else 'still running there'})",
                    "pass a longer timeout, or look the request up on the provider's dashboard",
                    reason="timeout", provider=self.name, request_id=rid)
            if cancel is not None:
                if cancel.wait(self.poll_interval):
                    raise _Cancelled()
            else:
                time.sleep(self.poll_interval)

    def _try_cancel(self, client: Any, handle: Any, model: str, rid: str) -> bool | str:
        """Cancel on the provider; True, or the reason it did not happen."""
        if not self.can_cancel:
            return "not supported"
        try:
            with self._mapped(model, rid):
                self._cancel(client, handle)
        except LocalVideoError as exc:
            return exc.message
        return True

    def _failure(self, st: Status, model: str, rid: str) -> HostedError:
        text = st.error or "no reason given"
        code = f" [{st.error_code}]" if st.error_code else ""
        if st.refused or looks_refused(f"{st.error_code or ''} {text}"):
            return HostedError(
                f"{self.title} refused request {rid}: {text}{code}",
                "the provider's safety filter refused the prompt, the image or the output: "
                "rephrase the prompt or use another image", reason="refused",
                provider=self.name, request_id=rid)
        return HostedError(f"{self.title} request {rid} failed: {text}{code}",
                           "check the model's parameters on its page, then run it again",
                           reason="failed", provider=self.name, request_id=rid)

    @contextlib.contextmanager
    def _mapped(self, model: str, rid: str | None) -> Iterator[None]:
        """Map the SDK's exceptions (and plain transport errors) into the project's tree."""
        try:
            yield
        except (LocalVideoError, KeyboardInterrupt, _Cancelled):
            raise
        except httpx.TransportError as exc:
            raise self._network(exc, rid) from exc
        except Exception as exc:
            mapped = self._map_error(exc, model=model, request_id=rid)
            if mapped is None:
                raise
            raise mapped from exc

    def _network(self, exc: BaseException, rid: str | None) -> HostedError:
        return HostedError(f"cannot reach {self.title} at {self.host}: {exc}",
                           "check the connection, or the --base-url", reason="network",
                           provider=self.name, request_id=rid)

    # -- helpers for the provider files ----------------------------------------------------
    def http_error(self, status: int | None, detail: str, *, model: str,
                   request_id: str | None) -> HostedError:
        """The error for an HTTP status the provider answered with."""
        def err(message: str, hint: str, reason: str) -> HostedError:
            return HostedError(message, hint, reason=reason, provider=self.name,
                               request_id=request_id, status=status)

        # A provider may answer an empty balance with 403 ("User is locked. Reason:
        # Exhausted balance."): that is a quota, not a bad key.
        if status in (402, 403, 429) and _QUOTA.search(detail):
            return err(f"{self.title} quota or credit exhausted ({status}): {detail}",
                       "top up the account's credit or wait for the quota to reset, on the "
                       "provider's dashboard", "quota")
        if status in (401, 403) or (status == 400 and "api key" in detail.lower()):
            return err(f"{self.title} refused the key ({status}): {detail}",
                       self.key_hint(), "auth")
        if status == 404:
            return err(f"{self.title} has no model {model!r} ({detail})", self.model_hint,
                       "model")
        if status in (402, 429):
            return err(f"{self.title} quota or rate limit ({status}): {detail}",
                       "wait a minute and retry, or check the account's plan and credit on "
                       "the provider's dashboard", "quota")
        if looks_refused(detail):
            return err(f"{self.title} refused the request ({status}): {detail}",
                       "the provider's safety filter refused the prompt or image: rephrase "
                       "the prompt or use another image", "refused")
        if status in (400, 422):
            return err(f"{self.title} rejected the request ({status}): {detail}",
                       "check the parameters the model takes on its page", "input")
        return err(f"{self.title} answered {status}: {detail}",
                   "retry later; the provider may be having trouble", "failed")

    def missing_sdk(self, exc: ImportError) -> DependencyError:
        return DependencyError(f"the {self.title} backend needs the {self.sdk_module!r} "
                               f"package ({exc})", INSTALL_HINT)


_QUOTA = re.compile(r"balance|quota|credit|billing|rate.?limit|exhausted|throttl",
                    re.IGNORECASE)


def looks_refused(text: str) -> bool:
    return bool(_REFUSAL.search(text.replace(".", " ").replace("_", " ")))


def describe_image(path: Path) -> ImageInfo:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UsageError(f"image {p} does not exist", "pass --image with a PNG or JPEG")
    try:
        with Image.open(p) as im:
            width, height = im.size
            fmt = (im.format or "").lower()
    except (OSError, UnidentifiedImageError) as exc:
        raise UsageError(f"{p} is not an image: {exc}", "pass --image with a PNG or JPEG") from exc
    mime = Image.MIME.get(fmt.upper()) or mimetypes.guess_type(p.name)[0] or "image/png"
    return ImageInfo(path=str(p), bytes=p.stat().st_size, width=width, height=height, mime=mime)


def data_uri(path: Path) -> str:
    info = describe_image(path)
    return f"data:{info.mime};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


def probe_source(path: Path) -> dict[str, Any]:
    """Codec and size of what the provider sent, for the sidecar."""
    # PyAV here, not at the top: a preview (`generate --backend ...` before --yes) never
    # decodes, and PyAV with numpy is half a second.
    from ...media import probe

    try:
        info = probe(path)
    except MediaError as exc:
        raise HostedError(f"the provider's output is not a readable video: {exc.message}",
                          "look the request up on the provider's dashboard",
                          reason="failed") from exc
    return {"codec": info.codec, "width": info.width, "height": info.height, "fps": info.fps,
            "frames": info.frames, "bytes": info.bytes}


def to_h264(src: Path, dst: Path) -> dict[str, Any]:
    """Re-encode the provider's file with the project's H.264 writer (same settings as a
    locally generated clip: crf 18, preset medium), keeping its frame timing."""
    from ...media import transcode_h264  # PyAV: see probe_source

    return transcode_h264(src, dst, crf=18, preset="medium").to_dict()
