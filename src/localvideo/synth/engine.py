"""Running a diffusers generation end to end: load → plan → denoise → save latents → decode.

The latents are written to disk before the decode starts, so a decode that runs out of
memory (the classic way to lose an hour of denoising) costs nothing but the decode itself:
``localvideo decode clip.latents.pt`` finishes it, with a tiled VAE.
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutOfMemoryError, SynthError, UsageError
from .family import Family, Request
from .family import get as get_family
from .planner import Plan, apply_plan, apply_vae_plan, dtype_for
from .presets import ResolvedModel
from .torchdeps import require_synth
from .video import to_uint8, write_mp4

LATENTS_FORMAT = "localvideo-latents/1"
Progress = Callable[[dict[str, Any]], None]


@dataclass
class Speed:
    cache: bool = False
    compile: bool = False
    attention: str | None = None
    cache_threshold: float = 0.05


def resolve_device(device: str | None) -> str:
    """cuda > mps > cpu unless asked; an unavailable device is a usage error."""
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    assert device is not None
    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here",
                         "drop --device (uses the CPU) or install a CUDA build of torch")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: Metal is not available here", "drop --device")
    if kind not in ("cuda", "mps", "cpu"):
        raise UsageError(f"unknown device {device!r}", "use --device cuda, mps or cpu")
    return device


def latents_path_for(out: Path) -> Path:
    return out.with_name(out.stem + ".latents.pt")


def peak_memory(device: str) -> dict[str, Any]:
    import torch

    if device.startswith("cuda"):
        return {"kind": "vram", "bytes": int(torch.cuda.max_memory_allocated())}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes. It is the process's lifetime peak, not this run's alone.
    return {"kind": "rss", "bytes": int(rss if sys.platform == "darwin" else rss * 1024)}


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def apply_speed(pipe: Any, speed: Speed) -> dict[str, Any]:
    """Switch on the requested speed options; return what was actually used."""
    used: dict[str, Any] = {"cache": None, "compile": False, "attention": None}
    denoisers = [m for m in (getattr(pipe, "transformer", None),
                             getattr(pipe, "transformer_2", None)) if m is not None]
    if speed.attention:
        for model in denoisers:
            if not hasattr(model, "set_attention_backend"):
                raise UsageError("this diffusers version cannot switch attention backends",
                                 "upgrade diffusers, or drop --attention")
            try:
                model.set_attention_backend(speed.attention)
            except (ValueError, ImportError, RuntimeError) as exc:
                from diffusers.models.attention_dispatch import AttentionBackendName

                names = ", ".join(b.value for b in AttentionBackendName
                                  if not b.value.startswith("_"))
                raise UsageError(f"attention backend {speed.attention!r} is unusable: {exc}",
                                 f"backends: {names} (native works everywhere)") from exc
        used["attention"] = speed.attention
    if speed.cache:
        from diffusers import FirstBlockCacheConfig

        for model in denoisers:
            if not hasattr(model, "enable_cache"):
                raise UsageError(f"{type(model).__name__} does not support caching",
                                 "drop --cache for this model")
            blocks = sum(len(getattr(model, a, ())) for a in
                         ("transformer_blocks", "single_transformer_blocks", "blocks"))
            if blocks == 1:
                # The cache compares the first block's output and skips the rest: with
                # nothing after the first block there is nothing to skip.
                raise UsageError(f"{type(model).__name__} has a single block: FirstBlockCache "
                                 "has nothing to skip", "drop --cache for this model")
            try:
                model.enable_cache(FirstBlockCacheConfig(threshold=speed.cache_threshold))
            except (ValueError, NotImplementedError) as exc:
                raise UsageError(f"{type(model).__name__} cannot use FirstBlockCache: {exc}",
                                 "drop --cache for this model") from exc
        used["cache"] = {"kind": "FirstBlockCache", "threshold": speed.cache_threshold}
    if speed.compile:
        for model in denoisers:
            # In place, so offload hooks and the pipeline keep pointing at the same module.
            model.compile()
        used["compile"] = True
    return used


def load_pipeline(family: Family, model: ResolvedModel, req: Request, plan: Plan,
                  device: str, speed: Speed) -> tuple[Any, str, dict[str, Any]]:
    import torch

    cls_name = family.pipeline_class(model, with_image=req.image is not None)
    try:
        pipe = family.load(model, cls_name, getattr(torch, plan.dtype))
    except (OSError, ValueError, KeyError) as exc:
        raise SynthError(f"cannot load {cls_name} from {model.path}: {exc}",
                         "check the folder is a complete diffusers snapshot; "
                         "`localvideo models pull NAME` fetches one") from exc
    apply_plan(pipe, plan, device)
    pipe.set_progress_bar_config(disable=True)
    return pipe, cls_name, apply_speed(pipe, speed)


Loader = Callable[[Family, ResolvedModel, Request, Plan, str, Speed],
                  tuple[Any, str, dict[str, Any]]]


def generate(model: ResolvedModel, req: Request, plan: Plan, *, device: str, out: Path,
             speed: Speed, on_progress: Progress | None = None,
             loader: Loader | None = None) -> dict[str, Any]:
    """Run one generation; returns timings, files, the speed options used and peak memory.

    ``loader`` replaces :func:`load_pipeline`: a batch worker passes one that keeps the
    pipeline loaded from one job to the next (synth/batch.py)."""
    require_synth()
    import torch

    emit = on_progress or (lambda _e: None)
    family = get_family(model.family)
    timings: dict[str, float] = {}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    emit({"phase": "load", "model": model.label})
    pipe, cls_name, used = (loader or load_pipeline)(family, model, req, plan, device, speed)
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    emit({"phase": "denoise", "step": 0, "steps": req.steps})
    generator = torch.Generator(device=device).manual_seed(req.seed)
    try:
        latents = family.denoise(
            pipe, req, generator=generator,
            on_step=lambda i, n: emit({"phase": "denoise", "step": i, "steps": n}))
    except Exception as exc:
        if _is_oom(exc):
            raise OutOfMemoryError(
                f"out of memory while denoising with offload={plan.offload}: {exc}",
                "pass a smaller --max-vram so the planner offloads more, or lower "
                "--height/--width/--frames") from exc
        raise
    timings["denoise"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    meta = family.latent_meta(pipe, req)
    lpath = latents_path_for(out)
    save_latents(lpath, latents, model=model, req=req, plan=plan, meta=meta,
                 pipeline=cls_name)
    timings["save_latents"] = time.perf_counter() - t0
    emit({"phase": "latents", "path": str(lpath)})

    if hasattr(pipe, "maybe_free_model_hooks"):
        pipe.maybe_free_model_hooks()
    t0 = time.perf_counter()
    emit({"phase": "decode", "state": "start"})
    vae = pipe.vae
    if plan.offload == "model":
        vae.to(device)
    try:
        with torch.no_grad():
            video = family.decode(vae, latents, meta,
                                  generator=_decode_generator(device, req.seed), device=device)
            # Families that generate sound (LTX-2) decode it from the same pipeline.
            audio = family.decode_audio(pipe, meta, device=device)
    except Exception as exc:
        if _is_oom(exc):
            raise OutOfMemoryError(
                f"out of memory in the VAE decode (tiling={'on' if plan.vae_tiling else 'off'}); "
                f"the denoised latents are safe in {lpath}",
                f"finish it with `localvideo decode {lpath}` (tiled)") from exc
        raise
    frames = to_uint8(video)
    timings["decode"] = time.perf_counter() - t0
    emit({"phase": "decode", "state": "done"})

    t0 = time.perf_counter()
    info = write_mp4(frames, req.fps, out, audio=audio)
    timings["encode"] = time.perf_counter() - t0
    emit({"phase": "encode", "path": str(out)})
    return {"video": info, "latents": str(lpath), "pipeline": cls_name, "speed": used,
            "timings": timings, "peak_memory": peak_memory(device), "device": device,
            "frames_array": frames}


def _decode_generator(device: str, seed: int) -> Any:
    import torch

    # A fresh generator, so the decode noise (LTX) is the same whether the decode runs right
    # after denoising or later from the saved latents.
    return torch.Generator(device=device).manual_seed(seed + 1)


def save_latents(path: Path, latents: Any, *, model: ResolvedModel, req: Request, plan: Plan,
                 meta: dict[str, Any], pipeline: str) -> None:
    import torch

    payload = {
        "format": LATENTS_FORMAT, "latents": latents.detach().to("cpu"),
        "family": model.family, "model": model.describe(), "pipeline": pipeline,
        "request": {k: (str(v) if isinstance(v, Path) else v)
                    for k, v in dataclasses.asdict(req).items()},
        "plan": plan.to_dict(), "meta": meta, "created_ts": time.time(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_latents(path: Path) -> dict[str, Any]:
    require_synth()
    import torch

    if not path.is_file():
        raise UsageError(f"latents file {path} does not exist",
                         "pass the .latents.pt written next to the clip")
    try:
        # weights_only: a latents file is tensors and plain data; never run pickled code.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"{path} is not a readable latents file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != LATENTS_FORMAT:
        raise UsageError(f"{path} is not a localvideo latents file",
                         "pass the .latents.pt that `localvideo generate` wrote")
    return payload


def decode_file(path: Path, out: Path, *, device: str, tiling: bool = True,
                on_progress: Progress | None = None) -> dict[str, Any]:
    """Finish a run from its saved latents: load only the VAE, decode (tiled), encode."""
    import torch

    emit = on_progress or (lambda _e: None)
    payload = load_latents(path)
    model_dir = Path(payload["model"]["path"])
    if not (model_dir / "vae").is_dir():
        raise UsageError(f"the model folder {model_dir} (its VAE decodes these latents) is gone",
                         "restore the model folder, or `localvideo models pull NAME`")
    family = get_family(payload["family"])
    dtype = getattr(torch, dtype_for(device.split(":")[0]))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    vae = family.load_vae(model_dir, dtype).to(device)
    if tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    emit({"phase": "decode", "state": "start"})
    req = payload["request"]
    try:
        with torch.no_grad():
            video = family.decode(vae, payload["latents"], payload["meta"],
                                  generator=_decode_generator(device, int(req["seed"])),
                                  device=device)
            audio = family.decode_audio(family.load_audio(model_dir, dtype), payload["meta"],
                                        device=device)
    except Exception as exc:
        if _is_oom(exc):
            raise OutOfMemoryError(f"out of memory decoding {path}: {exc}",
                                   "free the GPU (close other jobs) or pass --device cpu") from exc
        raise
    frames = to_uint8(video)
    decode_s = time.perf_counter() - t0
    emit({"phase": "decode", "state": "done"})
    t0 = time.perf_counter()
    info = write_mp4(frames, float(req["fps"]), out, audio=audio)
    return {"video": info, "payload": payload, "frames_array": frames,
            "timings": {"decode": decode_s, "encode": time.perf_counter() - t0},
            "peak_memory": peak_memory(device), "device": device, "tiling": tiling}


# Re-exported for callers that only need the VAE side of a plan.
__all__ = ["Speed", "apply_vae_plan", "decode_file", "generate", "latents_path_for",
           "load_latents", "resolve_device"]
