"""Batches of generations: a JSONL file of jobs, run in this process or on a Ray cluster.

One job per line (``{"prompt": "a fox", "seed": 3, "size": "832x480"}``), the command's
flags as defaults. Three steps, each its own function:

1. :func:`parse_jobs` reads the file and checks every field (line number, field, valid
   values) before anything runs, so a typo on line 40 costs nothing.
2. :func:`resolve_jobs` resolves each job's model and parameters into a :class:`WorkItem`
   (driver side: the weights' path, the full :class:`Request`, the image's bytes).
3. :func:`run_batch` runs the items on :class:`BatchWorker` s — one in this process, or one
   long-lived Ray actor per GPU (CPU actors where there are none) that keeps its pipeline
   loaded from one job to the next and takes the next job as it frees up. A failed job is
   retried once; a Ctrl-C kills the actors. Workers return the MP4 and latents as bytes
   with the sidecar; the driver writes them and records the clips (``record``), so a
   worker on another machine never needs the store.

What goes to a worker: the job's parameters, the resolved model (its path: the weights
must be at that same path on every node) and the image's bytes. Nothing else is uploaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import gc
import json
import os
import platform
import random
import re
import socket
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DependencyError, LocalVideoError, OutOfMemoryError, SynthError, UsageError
from .family import Request
from .family import get as get_family
from .planner import apply_vae_plan, make_plan, query_vram
from .presets import ResolvedModel, resolve
from .torchdeps import require_synth, versions

# torch and synth.engine (numpy, PyAV and the diffusers pipelines) are imported inside the
# worker's methods: the driver that reads the jobs file and talks to Ray never loads them.

RAY_HINT = "install the ray extra: pip install 'localvideo[ray]'"
Event = Callable[[dict[str, Any]], None]
PARAMS = ("frames", "height", "width", "fps", "steps", "guidance")

# field → (kind, what the user reads in an error). Order is the order the docs list them.
FIELDS: dict[str, tuple[str, str]] = {
    "prompt": ("str", "a non-empty string"),
    "negative": ("str", "a string"),
    "image": ("path", "a path to a PNG or JPEG (relative to the jobs file's folder)"),
    "seed": ("int0", "an integer ≥ 0"),
    "size": ("size", 'a string "WIDTHxHEIGHT", e.g. "832x480"'),
    "height": ("int1", "an integer ≥ 1"),
    "width": ("int1", "an integer ≥ 1"),
    "frames": ("int1", "an integer ≥ 1"),
    "steps": ("int1", "an integer ≥ 1"),
    "fps": ("num", "a number > 0"),
    "guidance": ("num0", "a number ≥ 0"),
    "model": ("str", "a preset name (see `localvideo models`)"),
    "model_path": ("path", "a diffusers folder (relative to the jobs file's folder)"),
    "out": ("path", "a path ending in .mp4 (relative to the jobs file's folder)"),
}
_EXAMPLE = '{"prompt": "a red fox running through snow", "seed": 7, "size": "832x480"}'


# -- 1. parsing ----------------------------------------------------------------------------

@dataclass
class Job:
    """One line of the jobs file, checked: ``fields`` holds only known, well-typed values
    (paths already resolved against the file's folder; ``size`` split into height/width)."""

    line: int
    fields: dict[str, Any]


def _check_value(name: str, value: Any, where: str, base: Path) -> dict[str, Any]:
    kind, valid = FIELDS[name]
    bad = UsageError(f'{where}: "{name}" must be {valid}; got {json.dumps(value)}',
                     f"fix the line, e.g. {_EXAMPLE}")
    if value is None:
        return {}                      # null means "the default", as an absent field does
    if kind in ("str", "path"):
        if not isinstance(value, str) or (name == "prompt" and not value.strip()):
            raise bad
        if kind == "path":
            if not value.strip():
                raise bad
            p = Path(value).expanduser()
            p = (p if p.is_absolute() else base / p).resolve()
            if name == "out" and p.suffix.lower() != ".mp4":
                raise bad
            return {name: p}
        return {name: value}
    if kind == "size":
        m = re.fullmatch(r"\s*(\d+)\s*[x×X]\s*(\d+)\s*", value) if isinstance(value, str) else None
        if not m or int(m[1]) < 1 or int(m[2]) < 1:
            raise bad
        return {"width": int(m[1]), "height": int(m[2])}
    # JSON true/false are ints to Python; a seed of `true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad
    if kind.startswith("int"):
        if not isinstance(value, int) or value < int(kind[3]):
            raise bad
        return {name: value}
    if (kind == "num" and value <= 0) or value < 0:
        raise bad
    return {name: float(value)}


def parse_jobs(text: str, *, source: str = "jobs.jsonl", base: Path | None = None
               ) -> list[Job]:
    """Check every line of a jobs file; raise UsageError naming the line, the field and the
    values it takes. Blank lines and lines starting with ``#`` are skipped."""
    base = base or Path.cwd()
    jobs: list[Job] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})",
                             f"each line is one JSON object, e.g. {_EXAMPLE}") from None
        if not isinstance(data, dict):
            raise UsageError(f"{where}: expected a JSON object, got {type(data).__name__}",
                             f"each line is one JSON object, e.g. {_EXAMPLE}")
        fields: dict[str, Any] = {}
        for name, value in data.items():
            if name not in FIELDS:
                near = difflib.get_close_matches(str(name).replace("-", "_"), FIELDS, n=1)
                raise UsageError(
                    f'{where}: unknown field "{name}"'
                    + (f' (did you mean "{near[0]}"?)' if near else ""),
                    f"fields: {', '.join(FIELDS)}")
            fields.update(_check_value(name, value, where, base))
        if "size" in data and data["size"] is not None and (
                data.get("height") is not None or data.get("width") is not None):
            raise UsageError(f'{where}: "size" and "height"/"width" both given',
                             'give either "size": "WIDTHxHEIGHT" or "height" and "width"')
        if fields.get("model") and fields.get("model_path"):
            raise UsageError(f'{where}: "model" and "model_path" both given',
                             'name a preset ("model") or a folder ("model_path"), not both')
        jobs.append(Job(n, fields))
    if not jobs:
        raise UsageError(f"{source} has no jobs",
                         f"write one JSON object per line, e.g. {_EXAMPLE}")
    outs: dict[Path, int] = {}
    for job in jobs:
        out = job.fields.get("out")
        if out is None:
            continue
        if out in outs:
            raise UsageError(f'{source} line {job.line}: "out" {out} is also line {outs[out]}\'s',
                             "give every job its own out path, or drop out (the clips "
                             "folder gets a fresh name per clip)")
        outs[out] = job.line
    return jobs


def read_jobs(path: str | Path) -> list[Job]:
    """:func:`parse_jobs` on a file; relative paths in it are relative to its folder."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"jobs file {p} does not exist",
                         f"write one JSON object per line, e.g. {_EXAMPLE}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read jobs file {p}: {exc}") from exc
    return parse_jobs(text, source=p.name, base=p.resolve().parent)


# -- 2. resolving --------------------------------------------------------------------------

@dataclass
class WorkItem:
    """A job ready to run anywhere: everything a worker needs, nothing of the driver's."""

    index: int                     # 0-based position among the jobs
    line: int                      # line in the jobs file
    model: ResolvedModel
    request: Request               # ``image`` is the driver's path, for the sidecar
    image_bytes: bytes | None = None
    out: Path | None = None        # the job's own "out"; None: the driver picks one

    @property
    def key(self) -> tuple[str, bool]:
        """Jobs with the same key run on the same loaded pipeline."""
        return str(self.model.path), self.request.image is not None


def _job_params(job: Job, defaults: dict[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in defaults.items() if v is not None and v != ""}
    if job.fields.get("model") or job.fields.get("model_path"):
        # A job naming its model replaces the command's choice of model, whichever form.
        params.pop("model", None)
        params.pop("model_path", None)
    params.update(job.fields)
    return params


def resolve_jobs(jobs: list[Job], defaults: dict[str, Any], *, models_dir: Path,
                 source: str = "jobs.jsonl") -> list[WorkItem]:
    """Resolve every job's model and parameters (the job's fields over ``defaults``, the
    command's flags, over the preset's and family's defaults). A job without a seed gets a
    random one now, so a retry makes the same clip and the sidecar can say which."""
    models: dict[tuple[str | None, str | None], ResolvedModel] = {}
    items: list[WorkItem] = []
    for i, job in enumerate(jobs):
        where = f"{source} line {job.line}"
        params = _job_params(job, defaults)
        try:
            mkey = (params.get("model"), str(params["model_path"])
                    if params.get("model_path") else None)
            if mkey not in models:
                models[mkey] = resolve(models_dir, model=mkey[0], model_path=mkey[1])
            res = models[mkey]
            fam = get_family(res.family)
            preset = res.preset
            values = {k: params[k] if params.get(k) is not None else
                      (getattr(preset, k) if preset else fam.defaults[k]) for k in PARAMS}
            prompt = params.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise UsageError("no prompt", 'add "prompt": "..." to the line, or pass a '
                                 "prompt on the command line as every job's default")
            seed = params.get("seed")
            if seed is None:
                seed = random.SystemRandom().randrange(2**31)
            image = Path(params["image"]).expanduser() if params.get("image") else None
            req = Request(prompt=prompt, negative=params.get("negative"), image=image,
                          frames=int(values["frames"]), height=int(values["height"]),
                          width=int(values["width"]), fps=float(values["fps"]),
                          steps=int(values["steps"]), guidance=float(values["guidance"]),
                          seed=int(seed))
            if req.seed < 0:
                raise UsageError(f"the seed must not be negative (got {req.seed})")
            fam.check_inputs(req, res.path, i2v=res.i2v)
            fam.pipeline_class(res, with_image=image is not None)
            out = params.get("out")
            if out is not None and Path(out).exists():
                raise UsageError(f"out {out} already exists",
                                 "give another out path, or delete the old clip first")
        except LocalVideoError as exc:
            # Same kind of error, now saying which line it is about.
            cls = type(exc) if type(exc).__init__ is LocalVideoError.__init__ else UsageError
            raise cls(f"{where}: {exc.message}", exc.hint) from exc
        items.append(WorkItem(i, job.line, res, req,
                              image.read_bytes() if image is not None else None,
                              Path(out) if out is not None else None))
    return items


# -- 3. running ----------------------------------------------------------------------------

@dataclass
class WorkerConfig:
    """What every worker of a batch shares (the command's device and speed flags)."""

    device: str | None = None
    max_vram: int | None = None
    cache: bool = False
    compile: bool = False
    attention: str | None = None
    threads: int | None = None     # torch threads on a CPU worker (Ray: its CPUs)


def device_info(device: str) -> dict[str, Any]:
    """The sidecar's ``device``, measured where the job ran (a worker may be elsewhere)."""
    import torch

    info: dict[str, Any] = {"kind": device.split(":")[0], "name": device,
                            "machine": platform.machine(), "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(gpu=props.name, total_memory=int(props.total_memory),
                    capability=f"{props.major}.{props.minor}")
    elif device == "cpu":
        info["processor"] = platform.processor() or platform.machine()
    return info


class BatchWorker:
    """Runs jobs one after another, keeping the last pipeline loaded. In this process for
    an in-process batch; as a Ray actor (one per GPU) otherwise."""

    def __init__(self, config: WorkerConfig, slot: int = 0) -> None:
        self.config = config
        self.slot = slot
        self._key: tuple[Any, ...] | None = None
        self._loaded: tuple[Any, str, dict[str, Any]] | None = None
        self.loads = 0
        if config.threads:
            import torch

            torch.set_num_threads(config.threads)

    def info(self) -> dict[str, Any]:
        return {"slot": self.slot, "host": socket.gethostname(), "pid": os.getpid(),
                "device": self._device()}

    def _device(self) -> str:
        from .engine import resolve_device

        return resolve_device(self.config.device)

    def _loader(self, family: Any, model: ResolvedModel, req: Request, plan: Any,
                device: str, speed: Any) -> tuple[Any, str, dict[str, Any]]:
        from .engine import load_pipeline

        cls_name = family.pipeline_class(model, with_image=req.image is not None)
        key = (str(model.path), cls_name, plan.dtype, plan.offload,
               tuple(plan.fp8_components), device)
        if self._loaded is not None and key == self._key:
            vae = getattr(self._loaded[0], "vae", None)
            if vae is not None:
                # The last job's decode plan may have switched these on.
                if not plan.vae_tiling and hasattr(vae, "disable_tiling"):
                    vae.disable_tiling()
                if not plan.vae_slicing and hasattr(vae, "disable_slicing"):
                    vae.disable_slicing()
                apply_vae_plan(vae, plan)
            return self._loaded
        self.drop()
        self._loaded = load_pipeline(family, model, req, plan, device, speed)
        self._key = key
        self.loads += 1
        return self._loaded

    def drop(self) -> None:
        """Let go of the loaded pipeline (before another, or after a failure)."""
        if self._loaded is None:
            return
        self._loaded = self._key = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _plan(self, item: WorkItem, device: str) -> Any:
        req, kind = item.request, device.split(":")[0]
        vram = self.config.max_vram
        if kind == "cuda":
            free = query_vram("cuda")
            vram = min(vram, free) if (vram and free) else (vram or free)
        plan = make_plan(item.model.profile, device=kind,
                         vram_bytes=vram if kind == "cuda" else None, height=req.height,
                         width=req.width, frames=req.frames, guidance=req.guidance)
        if not plan.fits:
            raise OutOfMemoryError(
                f"{item.model.label} at {req.width}×{req.height}×{req.frames} does not fit in "
                f"{(vram or 0) / 1e9:.1f} GB even with the smallest plan "
                f"(estimated {plan.estimate['peak'] / 1e9:.1f} GB)",
                "lower the job's size or frames")
        return plan

    def run(self, item: WorkItem, on_progress: Event | None = None) -> dict[str, Any]:
        """One job → {"ok": True, "mp4": bytes, "latents": bytes, "sidecar": {...}} or
        {"ok": False, "error": {...}}. Errors come back as data, not exceptions, so they
        cross Ray's process boundary whole (type, message, hint)."""
        t0 = time.perf_counter()
        try:
            return self._run(item, on_progress, t0)
        except Exception as exc:  # noqa: BLE001 - every failure is reported per job
            # A failure may be memory: start the retry from a clean slate.
            self.drop()
            err = (exc.to_dict() if isinstance(exc, LocalVideoError)
                   else {"type": type(exc).__name__, "message": str(exc) or repr(exc)})
            err["traceback"] = "".join(traceback.format_exception(exc)[-3:])[-2000:]
            return {"ok": False, "error": err, "worker": self.info(),
                    "seconds": time.perf_counter() - t0}

    def _run(self, item: WorkItem, on_progress: Event | None, t0: float) -> dict[str, Any]:
        from . import engine

        require_synth()
        device = self._device()
        plan = self._plan(item, device)
        speed = engine.Speed(cache=self.config.cache, compile=self.config.compile,
                             attention=self.config.attention)
        with tempfile.TemporaryDirectory(prefix="localvideo-batch-") as tmp:
            req = item.request
            if item.image_bytes is not None:
                # The image travels as bytes: a worker on another machine has no such path.
                img = Path(tmp) / ("image" + (req.image.suffix if req.image else ".png"))
                img.write_bytes(item.image_bytes)
                req = dataclasses.replace(req, image=img)
            out = Path(tmp) / "clip.mp4"
            loads = self.loads
            result = engine.generate(item.model, req, plan, device=device, out=out,
                                     speed=speed, on_progress=on_progress,
                                     loader=self._loader)
            mp4 = out.read_bytes()
            latents = Path(result["latents"]).read_bytes()
        r = item.request
        sidecar: dict[str, Any] = {
            "backend": "diffusers", "prompt": r.prompt, "negative": r.negative,
            "seed": r.seed, "model": item.model.describe(), "family": item.model.family,
            "pipeline": result["pipeline"],
            "params": {**{k: getattr(r, k) for k in PARAMS},
                       "image": str(r.image) if r.image else None},
            "plan": plan.to_dict(), "speed": result["speed"], "timings": result["timings"],
            "peak_memory": result["peak_memory"], "device": device_info(device),
            "versions": versions(), "video": result["video"], "latents": None,
        }
        return {"ok": True, "mp4": mp4, "latents": latents, "sidecar": sidecar,
                "worker": self.info(), "reused_pipeline": self.loads == loads,
                "seconds": time.perf_counter() - t0}


def save_files(result: dict[str, Any], out: Path) -> dict[str, Any]:
    """Driver side: write a worker's MP4 and latents at ``out`` (atomically); return the
    sidecar pointing at them."""
    from .engine import latents_path_for

    out.parent.mkdir(parents=True, exist_ok=True)
    lpath = latents_path_for(out)
    for path, data in ((lpath, result["latents"]), (out, result["mp4"])):
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    sidecar = dict(result["sidecar"])
    sidecar["video"] = {**sidecar["video"], "path": str(out)}
    sidecar["latents"] = str(lpath)
    return sidecar


@dataclass
class JobOutcome:
    index: int
    line: int
    prompt: str
    seed: int
    status: str = "pending"        # pending | done | failed | cancelled
    attempts: int = 0
    clip: Any = None               # what ``record`` returned (the clip record)
    error: dict[str, Any] | None = None
    worker: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        clip = self.clip
        d["clip"] = clip.model_dump(mode="json") if hasattr(clip, "model_dump") else clip
        return d


@dataclass
class BatchResult:
    runner: str                    # "in-process" | "ray"
    jobs: list[JobOutcome]
    workers: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    address: str | None = None

    @property
    def done(self) -> int:
        return sum(j.status == "done" for j in self.jobs)

    @property
    def failed(self) -> int:
        return sum(j.status == "failed" for j in self.jobs)

    def to_dict(self) -> dict[str, Any]:
        return {"runner": self.runner, "address": self.address, "done": self.done,
                "failed": self.failed, "seconds": self.seconds, "workers": self.workers,
                "jobs": [j.to_dict() for j in self.jobs]}


Record = Callable[[WorkItem, dict[str, Any]], Any]


def _default_record(item: WorkItem, result: dict[str, Any]) -> Any:
    """Without a store (the service passes its own): files beside ``item.out``, a sidecar."""
    if item.out is None:
        raise UsageError("a batch without a store needs an out path per job")
    sidecar = save_files(result, item.out)
    sidecar["path"] = str(item.out)
    side = item.out.with_suffix(".json")
    side.write_text(json.dumps(sidecar, indent=2, default=str, ensure_ascii=False))
    return sidecar


class _Driver:
    """The bookkeeping both runners share: outcomes, one retry, events, recording."""

    def __init__(self, items: list[WorkItem], record: Record, on_event: Event | None) -> None:
        self.items = items
        self.record = record
        self.emit = on_event or (lambda _e: None)
        self.outcomes = [JobOutcome(it.index, it.line, it.request.prompt, it.request.seed)
                         for it in items]
        self._by_id = {id(it): o for it, o in zip(items, self.outcomes, strict=True)}

    def outcome(self, item: WorkItem) -> JobOutcome:
        return self._by_id[id(item)]

    def event(self, kind: str, item: WorkItem | None = None, **data: Any) -> None:
        e: dict[str, Any] = {"event": kind, "total": len(self.items)}
        if item is not None:
            e.update(job=item.index, line=item.line, seed=item.request.seed)
        e.update(data)
        self.emit(e)

    def finished(self, item: WorkItem, result: dict[str, Any]) -> bool:
        """Record a worker's answer; True when the job should run again."""
        o = self.outcome(item)
        o.attempts += 1
        o.worker = result.get("worker")
        o.seconds += float(result.get("seconds") or 0.0)
        if result.get("ok"):
            result["attempt"] = o.attempts
            try:
                o.clip = self.record(item, result)
            except (LocalVideoError, OSError) as exc:
                # The worker's part worked; writing it here did not (a full disk, a bad
                # out path): running it again would not help.
                o.status = "failed"
                o.error = (exc.to_dict() if isinstance(exc, LocalVideoError)
                           else {"type": type(exc).__name__, "message": str(exc)})
                self.event("failed", item, attempts=o.attempts, error=o.error)
                return False
            o.status, o.error = "done", None
            self.event("done", item, attempts=o.attempts, clip=o.clip, worker=o.worker,
                       seconds=o.seconds, reused_pipeline=result.get("reused_pipeline"))
            return False
        o.error = result.get("error") or {"type": "Error", "message": "unknown failure"}
        if o.attempts < 2:
            self.event("retry", item, attempts=o.attempts, error=o.error, worker=o.worker)
            return True
        o.status = "failed"
        self.event("failed", item, attempts=o.attempts, error=o.error, worker=o.worker)
        return False

    def cancel_rest(self) -> None:
        for item, o in zip(self.items, self.outcomes, strict=True):
            if o.status == "pending":
                o.status = "cancelled"
                self.event("cancelled", item)


def run_in_process(items: list[WorkItem], config: WorkerConfig, *, record: Record,
                   on_event: Event | None = None) -> BatchResult:
    """One worker in this process, the jobs one after another (step progress included)."""
    started = time.perf_counter()
    drv = _Driver(items, record, on_event)
    worker = BatchWorker(config)
    info = worker.info()
    drv.event("batch", runner="in-process", workers=[info])
    try:
        for item in items:
            def progress(e: dict[str, Any], it: WorkItem = item) -> None:
                drv.event("progress", it, **e)

            while True:
                drv.event("start", item, worker=info,
                          attempt=drv.outcome(item).attempts + 1)
                result = worker.run(item, on_progress=progress)
                if not drv.finished(item, result):
                    break
    except KeyboardInterrupt:
        drv.cancel_rest()
        raise
    finally:
        worker.drop()
    res = BatchResult("in-process", drv.outcomes, [info], time.perf_counter() - started)
    drv.event("end", done=res.done, failed=res.failed, seconds=res.seconds)
    return res


# -- Ray -----------------------------------------------------------------------------------

def require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise DependencyError(f"batches on Ray need ray, which is not installed ({exc})",
                              RAY_HINT) from exc
    return ray


def _probe(address: str) -> None:
    """Fail in a second, not after Ray's own minute of retries, when nothing listens there."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--ray {address!r} is not local, auto or HOST:PORT",
                         "e.g. --ray 10.0.0.5:6379 (the address `ray start --head` printed)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
    except OSError as exc:
        raise UsageError(f"no Ray cluster answers at {address} ({exc})",
                         "start one there with `ray start --head --port "
                         f"{port}`, or pass the address it printed") from exc


def _connect(ray: Any, address: str) -> bool:
    """Join or start Ray; True when this call started it (and so shuts it down after)."""
    if ray.is_initialized():
        return False
    if address not in ("local", "auto"):
        _probe(address)
    kwargs: dict[str, Any] = {"log_to_driver": False}
    if address == "local":
        # A private single-machine instance: no dashboard (faster start, no open port).
        kwargs.update(address="local", include_dashboard=False)
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(
            f"cannot reach a Ray cluster at {address!r}: {exc}",
            "start one with `ray start --head` (then --ray auto or --ray HEAD:6379), or "
            "use --ray local for this machine alone") from exc
    return True


def _actor_shape(ray: Any, device: str | None, workers: int | None
                 ) -> tuple[int, dict[str, Any], str]:
    """(workers, actor options, device kind): one GPU each where the cluster has GPUs (and
    the device flag allows them), CPUs shared out otherwise."""
    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 0))
    kind = (device or "auto").split(":")[0]
    if kind == "cuda" and not gpus:
        raise UsageError("--device cuda: the Ray cluster has no GPUs",
                         "drop --device to run CPU workers, or add GPU nodes")
    if kind in ("auto", "cuda") and gpus:
        n = workers or gpus
        if n > gpus:
            raise UsageError(f"--workers {n}: the Ray cluster has {gpus} GPU(s), one per worker",
                             f"pass --workers {gpus} or fewer, or add GPU nodes")
        return n, {"num_gpus": 1, "num_cpus": 1}, "cuda"
    n = workers or 1
    if cpus < n:
        raise UsageError(f"--workers {n}: the Ray cluster has {cpus} CPU(s), one at least "
                         "per worker", f"pass --workers {max(cpus, 1)} or fewer")
    return n, {"num_cpus": max(1, cpus // n), "num_gpus": 0}, "cpu"


def run_on_ray(items: list[WorkItem], config: WorkerConfig, *, address: str = "local",
               workers: int | None = None, record: Record,
               on_event: Event | None = None) -> BatchResult:
    """One long-lived actor per GPU (or ``workers`` CPU actors); each takes the next job
    as it frees up, preferring one for the pipeline it already holds."""
    ray = require_ray()
    started = time.perf_counter()
    drv = _Driver(items, record, on_event)
    own = _connect(ray, address)
    actors: list[Any] = []
    try:
        n, options, kind = _actor_shape(ray, config.device, workers)
        cfg = dataclasses.replace(config, device=kind if config.device in (None, "", "auto")
                                  else config.device,
                                  threads=options["num_cpus"] if kind == "cpu" else None)
        # A crashed actor is replaced by the driver (and its job retried there), not by Ray.
        remote = ray.remote(BatchWorker).options(max_restarts=0, max_task_retries=0, **options)

        def spawn(slot: int) -> tuple[Any, dict[str, Any]]:
            actor = remote.remote(cfg, slot)
            try:
                return actor, ray.get(actor.info.remote())
            except ray.exceptions.RayError as exc:
                raise SynthError(
                    f"a Ray worker could not start: {exc}",
                    "every node needs localvideo (with [synth]) installed in the Python "
                    "that ran `ray start`") from exc

        slots: dict[int, tuple[Any, dict[str, Any]]] = {}
        for slot in range(n):
            slots[slot] = spawn(slot)
            actors.append(slots[slot][0])
            drv.event("worker", **slots[slot][1])
        infos = [slots[s][1] for s in range(n)]
        drv.event("batch", runner="ray", workers=infos, address=address)

        pending: deque[WorkItem] = deque(items)
        idle = list(range(n))
        held: dict[int, tuple[str, bool] | None] = dict.fromkeys(range(n))
        running: dict[Any, tuple[int, WorkItem]] = {}
        try:
            while pending or running:
                while idle and pending:
                    slot = idle.pop(0)
                    # Affinity: a job for the pipeline this actor holds saves a reload.
                    pick = next((it for it in pending if it.key == held[slot]), pending[0])
                    pending.remove(pick)
                    held[slot] = pick.key
                    actor, info = slots[slot]
                    drv.event("start", pick, worker=info,
                              attempt=drv.outcome(pick).attempts + 1)
                    running[actor.run.remote(pick)] = (slot, pick)
                # A short wait, so a Ctrl-C reaches this loop promptly.
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in ready:
                    slot, item = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        # The actor died (a crash, a killed process, a lost node): the job
                        # gets its retry on a fresh actor in the same slot.
                        result = {"ok": False, "worker": slots[slot][1], "error": {
                            "type": type(exc).__name__, "message": str(exc)[:2000],
                            "hint": "the worker process died; see its log under "
                                    "/tmp/ray/session_latest/logs"}}
                        old = slots[slot][0]
                        ray.kill(old, no_restart=True)
                        slots[slot] = spawn(slot)
                        actors.append(slots[slot][0])
                        held[slot] = None
                        drv.event("worker", replaced=True, **slots[slot][1])
                    if drv.finished(item, result):
                        pending.appendleft(item)
                    idle.append(slot)
        except KeyboardInterrupt:
            for ref in running:
                # Queued tasks are dropped; a running one stops with its actor below.
                ray.cancel(ref)
            for actor in actors:
                ray.kill(actor, no_restart=True)
            drv.cancel_rest()
            drv.event("cancel", killed=[slots[s][1] for s in slots])
            raise
        res = BatchResult("ray", drv.outcomes, [slots[s][1] for s in sorted(slots)],
                          time.perf_counter() - started, address)
        drv.event("end", done=res.done, failed=res.failed, seconds=res.seconds)
        return res
    finally:
        for actor in actors:
            # Actors hold the GPU memory of their pipelines: free it now, not at exit.
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if own:
            ray.shutdown()


def check_runner(ray: str | None, workers: int | None) -> None:
    """The runner flags alone, checked before any job is read."""
    if ray in (None, "") and workers not in (None, 1):
        raise UsageError(f"--workers {workers} needs --ray (in this process jobs run one at "
                         "a time)", "add --ray local to use this machine's GPUs")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {workers})")


def run_batch(items: list[WorkItem], config: WorkerConfig | None = None, *,
              ray: str | None = None, workers: int | None = None,
              record: Record | None = None, on_event: Event | None = None) -> BatchResult:
    """Run resolved jobs: in this process (``ray`` None) or on Ray (``local``, ``auto`` or
    an address). ``record(item, result)`` runs here, on the driver, once per finished job:
    the service's writes the files and the clip row; the default writes files and a
    sidecar at each job's ``out``."""
    config = config or WorkerConfig()
    record = record or _default_record
    check_runner(ray, workers)
    if ray in (None, ""):
        return run_in_process(items, config, record=record, on_event=on_event)
    assert ray is not None
    return run_on_ray(items, config, address=ray, workers=workers, record=record,
                      on_event=on_event)


__all__ = ["FIELDS", "BatchResult", "BatchWorker", "Job", "JobOutcome", "WorkItem",
           "WorkerConfig", "check_runner", "parse_jobs", "read_jobs", "require_ray", "resolve_jobs",
           "run_batch", "save_files"]
