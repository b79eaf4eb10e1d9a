"""The synth area: generate clips, plan memory, list models and clips.

Thin over ``localvideo.synth``: this file resolves defaults and paths, confines the paths a
remote caller may name, writes the JSON sidecar beside every MP4 and records the clip in the
index, for both backends.
"""

from __future__ import annotations

import json
import platform
import random
import re
import threading
import time
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Settings
from ..errors import (
    ComfyUIError,
    MediaError,
    ModelNotFoundError,
    NotFoundError,
    OutOfMemoryError,
    UsageError,
)
from ..reason.keys import KeyStore
from ..store import clips as clips_db
from ..synth.family import Request
from ..synth.family import get as get_family
from ..synth.planner import make_plan, query_vram
from ..synth.presets import (
    Profile,
    ResolvedModel,
    get_preset,
    list_models,
    pull,
    resolve,
)
from ..synth.torchdeps import require_synth, versions
from ..units import parse_size
from .context import Context, OutsideStoreError, Progress, check_limit, confine
from .models import (
    BatchReport,
    BatchRequest,
    GenerateParams,
    GenerateRequest,
    HostedPreview,
    LocalClip,
    ModelPreset,
    Plan,
    PulledModel,
)

HOSTED = ("replicate", "fal", "veo", "runway")
BACKENDS = ("diffusers", "comfyui", *HOSTED)
_PARAMS = ("frames", "height", "width", "fps", "steps", "guidance")

# Imported where used, not above, because every CLI command imports this module: torch,
# synth.engine (numpy and PyAV, through synth/video.py and media.py), synth.comfyui and
# synth.hosted (HTTP clients and provider SDKs, ~0.3 s each) and synth.batch (Ray glue) are
# paid for only by the commands that generate, decode or probe.


def check_prompt(prompt: object) -> None:
    """The one rule for a generation's prompt, whichever backend or front end it came from."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise UsageError("the prompt is empty",
                         'pass a prompt: localvideo generate "a red fox running through snow"')


def _slug(text: str, n: int = 32) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:n].rstrip("-") or "clip"


def _torch_device(device: str | None, *, for_plan: bool, max_vram: int | None) -> tuple[str, bool]:
    """(device, hypothetical). ``--plan --max-vram`` on a machine without a GPU plans for a
    CUDA GPU of that size: that is the question the user is asking."""
    try:
        import torch
    except ImportError:
        torch = None  # type: ignore[assignment]
    if device not in (None, "", "auto"):
        assert device is not None
        if device.split(":")[0] == "cuda" and for_plan and (torch is None
                                                             or not torch.cuda.is_available()):
            return device, True
        if torch is None:
            return device, for_plan
        from ..synth.engine import resolve_device  # numpy + PyAV: see the note at the top

        return resolve_device(device), False
    if torch is not None and torch.cuda.is_available():
        return "cuda", False
    if torch is not None and torch.backends.mps.is_available():
        return "mps", False
    if for_plan and max_vram is not None:
        return "cuda", True
    return "cpu", False


class SynthArea:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    # -- models ----------------------------------------------------------------------------
    def models(self) -> list[ModelPreset]:
        """The model presets and whether their weights are here."""
        return [ModelPreset.model_validate(m) for m in list_models(self.settings.models_dir)]

    def pull(self, name: str) -> PulledModel:
        """Download a preset's weights from the Hugging Face hub into the models folder.

        An embedding model for search by meaning (analyze/embed.py's registry) is pulled into
        ``models/embed/NAME`` the same way; the default one ships with the package."""
        from ..analyze import embed

        spec = embed.REGISTRY.get(name)
        if spec is not None:
            if spec.repo is None:
                raise UsageError(f"the embedding model {name} ships with localvideo: nothing "
                                 "to pull", "set it with analyze.embed_model, then "
                                            "`localvideo analyze --reindex`")
            got = embed.pull(name, self.settings.models_dir)
            return PulledModel(name=name, repo_id=spec.repo, revision=None, path=got["path"])
        return PulledModel.model_validate(pull(self.settings.models_dir, name))

    def confine(self, req: GenerateParams) -> None:
        """The one rule for a generation that arrives from outside (REST, MCP): weights are
        read from the store's models folder only (``model_path`` relative to it, or inside
        it), so a path parameter cannot reach files elsewhere on the machine. A hosted
        backend needs ``yes`` (the caller showed the preview), refused here, before queueing."""
        backend = req.backend or self.settings.synth.backend
        if backend in HOSTED and not req.yes:
            raise UsageError(f"{backend} is a hosted backend: the prompt goes to the provider; "
                             "confirm first",
                             "show POST /api/generate/preview to the user, then send the "
                             "request again with yes=true")
        if req.model_path:
            models_dir = self.settings.models_dir
            try:
                req.model_path = str(confine(models_dir, req.model_path, "model_path"))
            except OutsideStoreError as exc:
                raise OutsideStoreError(
                    f"model_path {req.model_path} is outside the store: it must be inside "
                    f"{models_dir}",
                    "put the weights there (localvideo models pull) or use the CLI for "
                    "other paths") from exc

    # -- planning --------------------------------------------------------------------------
    def _request(self, prompt: str, family: str, preset_defaults: dict[str, Any],
                 model_dir: Path | None, i2v: bool, **given: Any) -> Request:
        fam = get_family(family)
        values: dict[str, Any] = {k: given.get(k) if given.get(k) is not None else
                  preset_defaults.get(k, fam.defaults[k]) for k in _PARAMS}
        image = Path(given["image"]).expanduser() if given.get("image") else None
        seed = given.get("seed")
        if seed is None:
            # Recorded in the sidecar, so a lucky clip can be made again.
            seed = random.SystemRandom().randrange(2**31)
        check_prompt(prompt)
        try:
            req = Request(prompt=prompt, negative=given.get("negative"), image=image,
                          frames=int(values["frames"]), height=int(values["height"]),
                          width=int(values["width"]), fps=float(values["fps"]),
                          steps=int(values["steps"]), guidance=float(values["guidance"]),
                          seed=int(seed))
        except (TypeError, ValueError) as exc:
            raise UsageError(f"invalid generation parameter: {exc}") from exc
        if req.seed < 0:
            raise UsageError(f"--seed must not be negative (got {req.seed})")
        fam.check_inputs(req, model_dir, i2v=i2v)
        return req

    def _model_for_plan(self, model: str | None, model_path: str | Path | None
                        ) -> tuple[ResolvedModel | None, Profile, str, dict[str, Any], str]:
        """(resolved model if present, profile, family, preset defaults, label)."""
        try:
            res = resolve(self.settings.models_dir, model=model, model_path=model_path)
        except ModelNotFoundError:
            # Planning needs only the preset's numbers, not its weights.
            preset = get_preset(str(model))
            return None, preset.profile, preset.family, _preset_defaults(preset), preset.name
        defaults = _preset_defaults(res.preset) if res.preset else {}
        return res, res.profile, res.family, defaults, res.label

    def plan(self, gen: GenerateRequest) -> Plan:
        """The memory plan for a generation, without loading anything."""
        res, profile, family, defaults, label = self._model_for_plan(gen.model, gen.model_path)
        req = self._request(gen.prompt, family, defaults, res.path if res else None,
                            bool(res and res.i2v), **{**_given(gen), "seed": gen.seed or 0})
        vram = (parse_size(gen.max_vram, what="--max-vram")
                if gen.max_vram not in (None, "") else None)
        dev, hypothetical = _torch_device(gen.device, for_plan=True, max_vram=vram)
        kind = dev.split(":")[0]
        if vram is None and kind == "cuda" and not hypothetical:
            vram = query_vram("cuda")
        plan = make_plan(profile, device=kind, vram_bytes=vram, height=req.height,
                         width=req.width, frames=req.frames, guidance=req.guidance,
                         hypothetical=hypothetical)
        if hypothetical:
            plan.reasons.insert(0, f"no {kind} device here: planned for a {kind} GPU with "
                                   "the memory given by --max-vram")
        return Plan.model_validate({**plan.to_dict(), "model": label, "family": family,
                                    "params": {k: getattr(req, k) for k in _PARAMS}})

    # -- generation ------------------------------------------------------------------------
    def _default_out(self, prompt: str) -> Path:
        now = datetime.now()
        folder = self.settings.clips_dir / f"{now:%Y-%m-%d}"
        stem = f"clip_{now:%H%M%S}_{_slug(prompt)}"
        path, n = folder / f"{stem}.mp4", 1
        while path.exists() or path.with_suffix(".json").exists():
            n += 1
            path = folder / f"{stem}-{n}.mp4"
        return path

    def _out_path(self, out: str | Path | None, prompt: str) -> Path:
        if out in (None, ""):
            return self._default_out(prompt)
        p = Path(str(out)).expanduser().resolve()
        if p.suffix.lower() != ".mp4":
            raise UsageError(f"--out {out} must end in .mp4", "e.g. --out clip.mp4")
        if p.exists():
            # A clip already there may be in the clips table: never replace it silently.
            raise UsageError(f"--out {p} already exists",
                             "pass another --out, or delete the old clip first")
        return p

    def generate_confined(self, params: GenerateParams,
                          on_progress: Progress | None = None) -> LocalClip:
        """:meth:`generate` for a caller from outside (MCP): the paths it names are confined
        to the store first (see :meth:`confine`)."""
        req = GenerateRequest.of(**params.model_dump(exclude_none=True))
        self.confine(req)
        return self.generate(req, on_progress=on_progress)

    def generate(self, gen: GenerateRequest, on_progress: Progress | None = None,
                 cancel: threading.Event | None = None) -> LocalClip:
        """Generate one clip: MP4 + JSON sidecar beside it + a row in the clips table.

        Progress events: diffusers runs send a ``phase`` key (load, denoise, decode, encode),
        ComfyUI runs a ``stage`` key, hosted runs ``{"phase": "hosted", "state": ...}``.
        A hosted backend sends the prompt (and image) to the provider only with
        ``gen.yes`` — the caller showed :meth:`hosted_preview` and the user agreed; a set
        ``cancel`` event (or Ctrl-C) cancels the request on the provider."""
        prompt, model, model_path, image = gen.prompt, gen.model, gen.model_path, gen.image
        frames, height, width, fps = gen.frames, gen.height, gen.width, gen.fps
        steps, guidance, seed, negative = gen.steps, gen.guidance, gen.seed, gen.negative
        out, comfy_url, workflow, max_vram = gen.out, gen.comfy_url, gen.workflow, gen.max_vram
        cache, compile, attention, device = gen.cache, gen.compile, gen.attention, gen.device
        backend = gen.backend or self.settings.synth.backend
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}", f"use one of: {', '.join(BACKENDS)}")
        if backend in HOSTED:
            provider, hreq = self._hosted(gen, backend)
            if not gen.yes:
                sub = provider.describe(gen.model or "", hreq)
                raise UsageError(
                    f"{backend} is a hosted backend: the prompt"
                    f"{' and image' if hreq.image else ''} go to {sub.host}; confirm first",
                    "pass --yes (CLI) or yes=true (API, MCP) once the user has seen "
                    "what will be sent (`localvideo generate ... --backend "
                    f"{backend}` asks; POST /api/generate/preview shows it)")
        out_path = self._out_path(out, prompt if isinstance(prompt, str) else "clip")
        started = time.time()
        if backend in HOSTED:
            return self._generate_hosted(gen, backend, provider, hreq, out_path,
                                         on_progress, cancel, started)
        if backend == "comfyui":
            return self._generate_comfyui(
                prompt, image=image, frames=frames, height=height, width=width, fps=fps,
                steps=steps, guidance=guidance, seed=seed, negative=negative, out=out_path,
                comfy_url=comfy_url, workflow=workflow, on_progress=on_progress,
                started=started)
        from ..synth import engine

        res = resolve(self.settings.models_dir, model=model, model_path=model_path)
        defaults = _preset_defaults(res.preset) if res.preset else {}
        req = self._request(prompt, res.family, defaults, res.path, res.i2v, frames=frames,
                            height=height, width=width, fps=fps, steps=steps,
                            guidance=guidance, seed=seed, negative=negative, image=image)
        require_synth()
        dev = engine.resolve_device(device)
        kind = dev.split(":")[0]
        vram = parse_size(max_vram, what="--max-vram") if max_vram not in (None, "") else None
        if kind == "cuda":
            free = query_vram("cuda")
            vram = min(vram, free) if (vram and free) else (vram or free)
        plan = make_plan(res.profile, device=kind, vram_bytes=vram if kind == "cuda" else None,
                         height=req.height, width=req.width, frames=req.frames,
                         guidance=req.guidance)
        if max_vram not in (None, "") and kind != "cuda":
            plan.reasons.append(f"--max-vram ignored: running on {kind}")
        if not plan.fits:
            raise OutOfMemoryError(
                f"{res.label} at {req.width}×{req.height}×{req.frames} does not fit in "
                f"{(vram or 0) / 1e9:.1f} GB even with the smallest plan "
                f"(estimated {plan.estimate['peak'] / 1e9:.1f} GB)",
                "lower --height/--width/--frames; `localvideo generate ... --plan` shows "
                "the estimate")
        result = engine.generate(
            res, req, plan, device=dev, out=out_path,
            speed=engine.Speed(cache=cache, compile=compile, attention=attention),
            on_progress=on_progress)
        sidecar: dict[str, Any] = {
            "backend": "diffusers", "prompt": req.prompt, "negative": req.negative,
            "seed": req.seed, "model": res.describe(), "family": res.family,
            "pipeline": result["pipeline"],
            "params": {**{k: getattr(req, k) for k in _PARAMS},
                       "image": str(req.image) if req.image else None},
            "plan": plan.to_dict(), "speed": result["speed"], "timings": result["timings"],
            "peak_memory": result["peak_memory"], "device": _device_info(dev),
            "versions": versions(), "video": result["video"], "latents": result["latents"],
        }
        return self._record_clip(out_path, sidecar, started)

    def _generate_comfyui(self, prompt: str, *, image: str | Path | None, frames: int | None,
                          height: int | None, width: int | None, fps: float | None,
                          steps: int | None, guidance: float | None, seed: int | None,
                          negative: str | None, out: Path, comfy_url: str | None,
                          workflow: str | Path | dict[str, Any] | None,
                          on_progress: Progress | None, started: float) -> LocalClip:
        if workflow in (None, ""):
            raise UsageError("--backend comfyui needs --workflow graph.json",
                             "export the graph from ComfyUI with 'Save (API format)'")
        assert workflow is not None
        wf: Path | dict[str, Any] = (workflow if isinstance(workflow, dict)
                                     else Path(str(workflow)).expanduser())
        if isinstance(wf, Path) and not wf.is_file():
            raise UsageError(f"workflow {wf} does not exist",
                             "pass --workflow with a graph saved in ComfyUI's API format")
        check_prompt(prompt)
        img = Path(str(image)).expanduser() if image else None
        if img is not None and not img.is_file():
            raise UsageError(f"image {img} does not exist", "pass --image with a PNG or JPEG")
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        url = comfy_url or self.settings.synth.comfy_url
        from ..synth.comfyui import ComfyUIBackend

        backend = ComfyUIBackend(url)
        try:
            res = backend.run(wf, prompt=prompt, negative=negative, seed=int(seed), width=width,
                              height=height, frames=frames, fps=fps, steps=steps,
                              guidance=guidance, image=img, out=out, on_progress=on_progress)
        finally:
            backend.close()
        video = _probe(Path(res.path))
        sidecar = {
            "backend": "comfyui", "prompt": prompt, "negative": negative, "seed": int(seed),
            "model": {"name": None, "workflow": str(wf) if isinstance(wf, Path) else "inline",
                      "comfy_url": url},
            "family": None, "pipeline": "ComfyUI",
            "params": {"frames": frames, "height": height, "width": width, "fps": fps,
                       "steps": steps, "guidance": guidance,
                       "image": str(img) if img else None},
            "comfy": {"prompt_id": res.prompt_id, "outputs": res.outputs,
                      "substituted": res.substituted, "skipped": res.skipped,
                      "transport": res.transport},
            "plan": None, "speed": None, "timings": res.timings, "peak_memory": None,
            "device": {"kind": "comfyui", "url": url}, "versions": _light_versions(),
            "video": video, "latents": None,
        }
        return self._record_clip(Path(res.path), sidecar, started)

    # -- hosted providers ------------------------------------------------------------------
    def _hosted(self, gen: GenerateRequest, backend: str) -> tuple[Any, Any]:
        """The provider object and the request it gets, from a generation request."""
        from ..synth.hosted import HostedRequest, get_provider

        provider = get_provider(backend, base_url=gen.base_url,
                                key_store=KeyStore(self.settings.data_dir),
                                poll_interval=self.settings.synth.hosted_poll,
                                **({"timeout": gen.timeout} if gen.timeout else {}))
        if not gen.model:
            raise UsageError(f"--backend {backend} needs --model", provider.model_hint)
        if gen.model_path:
            raise UsageError(f"--model-path is for local weights, not --backend {backend}",
                             "drop --model-path and name the provider's model with --model")
        check_prompt(gen.prompt)
        hreq = HostedRequest(prompt=gen.prompt, image=gen.image, negative=gen.negative,
                             seed=gen.seed, width=gen.width, height=gen.height,
                             params=dict(gen.params or {}))
        return provider, hreq

    def hosted_preview(self, gen: GenerateRequest) -> HostedPreview:
        """What a hosted generation will send, where, and the provider's published price and
        time — without sending anything (the question before ``generate``)."""
        backend = gen.backend or self.settings.synth.backend
        if backend not in HOSTED:
            raise UsageError(f"{backend!r} is not a hosted backend",
                             f"use one of: {', '.join(HOSTED)}")
        provider, hreq = self._hosted(gen, backend)
        sub = provider.describe(gen.model or "", hreq)
        d = sub.to_dict()
        d["lines"] = sub.lines()
        return HostedPreview.model_validate(d)

    def _generate_hosted(self, gen: GenerateRequest, backend: str, provider: Any, hreq: Any,
                         out: Path, on_progress: Progress | None,
                         cancel: threading.Event | None, started: float) -> LocalClip:
        res = provider.run(gen.model or "", hreq, out, on_progress=on_progress, cancel=cancel)
        sidecar: dict[str, Any] = {
            "backend": backend, "prompt": hreq.prompt, "negative": hreq.negative,
            "seed": hreq.seed,
            "model": {"name": res.model, "provider": backend, "host": provider.host},
            "family": None, "pipeline": f"hosted:{backend}",
            "params": {"frames": None, "height": gen.height, "width": gen.width,
                       "fps": None, "steps": None, "guidance": None,
                       "image": str(hreq.image) if hreq.image else None, "sent": res.params},
            "hosted": {"provider": backend, "request_id": res.request_id,
                       "host": provider.host, "output_url": res.output_url,
                       "submission": res.submission, "info": res.info,
                       "cancel_supported": res.cancel_supported},
            "plan": None, "speed": None, "timings": res.timings, "peak_memory": None,
            "device": {"kind": "hosted", "provider": backend, "host": provider.host},
            "versions": {**_light_versions(), **_sdk_version(backend)},
            "video": res.video, "latents": None,
        }
        return self._record_clip(out, sidecar, started)

    def _record_clip(self, out: Path, sidecar: dict[str, Any], started: float) -> LocalClip:
        sidecar["path"] = str(out)
        sidecar["created_ts"] = time.time()
        sidecar["seconds"] = sidecar["created_ts"] - started
        side = out.with_suffix(".json")
        tmp = side.with_name(side.name + ".part")
        tmp.write_text(json.dumps(sidecar, indent=2, default=str, ensure_ascii=False))
        tmp.replace(side)
        sidecar["sidecar"] = str(side)
        params = sidecar.get("params") or {}
        video = sidecar.get("video") or {}
        model = sidecar.get("model") or {}
        row = clips_db.NewClip(
            path=str(out), created_ts=sidecar["created_ts"], backend=sidecar["backend"],
            model=model.get("name") or model.get("path") or model.get("workflow"),
            family=sidecar.get("family"), prompt=sidecar["prompt"],
            negative=sidecar.get("negative"), seed=sidecar.get("seed"),
            frames=video.get("frames", params.get("frames")),
            width=video.get("width", params.get("width")),
            height=video.get("height", params.get("height")),
            fps=video.get("fps", params.get("fps")), steps=params.get("steps"),
            guidance=params.get("guidance"), device=(sidecar.get("device") or {}).get("kind"),
            peak_bytes=(sidecar.get("peak_memory") or {}).get("bytes"),
            seconds=sidecar["seconds"])
        return self.clip(clips_db.add_clip(self._ctx.db, row, sidecar))

    # -- batches ---------------------------------------------------------------------------
    def generate_batch(self, req: BatchRequest, on_event: Progress | None = None
                       ) -> BatchReport:
        """Run a JSONL file of generations (one job per line, ``req``'s fields as defaults)
        in this process, or on Ray actors with ``req.ray`` (local, auto or an address).

        Every line is checked and resolved before anything runs. Workers return the MP4,
        latents and sidecar; this process writes them into the clips folder (or the job's
        ``out``) and records the clip rows. Events: ``{"event": "batch" | "worker" |
        "start" | "progress" | "retry" | "done" | "failed" | "cancelled" | "cancel" |
        "end", "line": n, ...}``; Ctrl-C kills the actors and leaves the finished clips."""
        from ..synth import batch

        backend = req.backend or self.settings.synth.backend
        if backend != "diffusers":
            raise UsageError(f"--batch runs local diffusers models, not --backend {backend}",
                             "drop --backend (hosted and ComfyUI runs take one prompt at a "
                             "time)")
        if req.out is not None:
            raise UsageError("--out names one clip; a batch makes many",
                             'give each job its own "out" in the jobs file, or none (the '
                             "clips folder gets a fresh name per clip)")
        batch.check_runner(req.ray, req.workers)
        jobs_path = Path(req.jobs).expanduser().resolve()
        jobs = batch.read_jobs(jobs_path)
        defaults = {k: getattr(req, k) for k in (
            "prompt", "negative", "image", "seed", "model", "model_path", *_PARAMS)}
        items = batch.resolve_jobs(jobs, defaults, models_dir=self.settings.models_dir,
                                   source=jobs_path.name)
        vram = (parse_size(req.max_vram, what="--max-vram")
                if req.max_vram not in (None, "") else None)
        config = batch.WorkerConfig(device=req.device, max_vram=vram, cache=req.cache,
                                    compile=req.compile, attention=req.attention)
        runner = "ray" if req.ray else "in-process"

        def record(item: batch.WorkItem, result: dict[str, Any]) -> LocalClip:
            out = item.out or self._default_out(item.request.prompt)
            sidecar = batch.save_files(result, out)
            sidecar["batch"] = {"jobs": str(jobs_path), "line": item.line,
                                "attempt": result.get("attempt"), "runner": runner,
                                "address": req.ray, "worker": result.get("worker")}
            return self._record_clip(out, sidecar, time.time() - float(result["seconds"]))

        res = batch.run_batch(items, config, ray=req.ray, workers=req.workers,
                              record=record, on_event=on_event)
        return BatchReport.model_validate(res.to_dict())

    # -- decode ----------------------------------------------------------------------------
    def decode(self, latents: str | Path, out: str | Path | None = None, *,
               device: str | None = None, tiling: bool = True,
               on_progress: Progress | None = None) -> LocalClip:
        """Finish a generation from its saved latents (after a failed or skipped decode)."""
        from ..synth import engine

        require_synth()
        lpath = Path(str(latents)).expanduser().resolve()
        if out in (None, ""):
            stem = lpath.name.removesuffix(".pt").removesuffix(".latents")
            out_path, n = lpath.with_name(stem + ".mp4"), 1
            # After a successful run the clip is already there: decode beside it, not over it.
            while out_path.exists() or out_path.with_suffix(".json").exists():
                n += 1
                out_path = lpath.with_name(f"{stem}-{n}.mp4")
        else:
            out_path = self._out_path(out, "decode")
        started = time.time()
        dev = engine.resolve_device(device)
        result = engine.decode_file(lpath, out_path, device=dev, tiling=tiling,
                                    on_progress=on_progress)
        payload = result["payload"]
        req = payload["request"]
        sidecar = {
            "backend": "diffusers", "prompt": req["prompt"], "negative": req.get("negative"),
            "seed": req["seed"], "model": payload["model"], "family": payload["family"],
            "pipeline": payload["pipeline"],
            "params": {**{k: req[k] for k in _PARAMS}, "image": req.get("image")},
            "plan": payload["plan"], "speed": None,
            "timings": result["timings"], "peak_memory": result["peak_memory"],
            "device": _device_info(dev), "versions": versions(), "video": result["video"],
            "latents": str(lpath), "decoded_from_latents": True,
            "decode_tiling": result["tiling"],
        }
        return self._record_clip(out_path, sidecar, started)

    # -- clips -----------------------------------------------------------------------------
    def _clip_row(self, row: clips_db.Clip) -> LocalClip:
        data = dict(row.sidecar)
        data["clip_id"] = data["id"] = row.id
        p = Path(row.path)
        data["abs_path"] = str(p)
        try:
            data["path"] = str(p.relative_to(self.settings.data_dir))
        except ValueError:
            data["path"] = str(p)
        data["exists"] = p.is_file()
        return LocalClip.model_validate(data)

    def clips(self, limit: int | None = None) -> list[LocalClip]:
        """Generated clips, newest last."""
        check_limit(limit)
        return [self._clip_row(r) for r in clips_db.list_clips(self._ctx.db, limit)]

    def clip(self, clip_id: int) -> LocalClip:
        row = clips_db.get_clip(self._ctx.db, int(clip_id))
        if row is None:
            raise NotFoundError(f"no clip with id {clip_id}", "list them with `localvideo clips`")
        return self._clip_row(row)

    def clip_file(self, clip_id: int) -> Path:
        """The clip's MP4, wherever ``--out`` put it (for this machine's user)."""
        p = Path(self.clip(clip_id).abs_path)
        if not p.is_file():
            raise NotFoundError(f"clip {clip_id}'s file {p} is gone",
                                "it was moved or deleted outside localvideo")
        return p

    def clip_media(self, clip_id: int) -> Path:
        """The clip's MP4 for a caller from outside: only when it is inside the store."""
        return confine(self.settings.data_dir, self.clip_file(clip_id), f"clip {clip_id}")


def _given(gen: GenerateRequest) -> dict[str, Any]:
    """The generation parameters a request sets (None: the preset's or family's default)."""
    return {"frames": gen.frames, "height": gen.height, "width": gen.width, "fps": gen.fps,
            "steps": gen.steps, "guidance": gen.guidance, "seed": gen.seed,
            "negative": gen.negative, "image": gen.image}


def _preset_defaults(preset: Any) -> dict[str, Any]:
    return {k: getattr(preset, k) for k in _PARAMS}


def _device_info(device: str) -> dict[str, Any]:
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


def _light_versions() -> dict[str, str]:
    from .. import media  # PyAV: see the note at the top

    return {"localvideo": str(__version__), "av": media.pyav_version()}


def _sdk_version(backend: str) -> dict[str, str]:
    dist = {"replicate": "replicate", "fal": "fal-client", "veo": "google-genai",
            "runway": "runwayml"}[backend]
    try:
        return {dist: version(dist)}
    except PackageNotFoundError:
        return {}


def _probe(path: Path) -> dict[str, Any]:
    """Frames, size and rate of a file a ComfyUI server produced."""
    from .. import media  # PyAV: see the note at the top

    try:
        info = media.probe(path)
    except MediaError as exc:
        raise ComfyUIError(f"cannot read the clip ComfyUI produced ({path}): {exc.message}"
                           ) from exc
    return {"path": str(path), "frames": info.frames, "width": info.width,
            "height": info.height, "fps": info.fps, "codec": info.codec, "bytes": info.bytes}


__all__ = ["SynthArea", "check_prompt"]
