"""Memory planner: choose how a model runs on the device at hand, before any weight is read.

:func:`make_plan` is a pure function of the model's profile, the device kind, the memory
available and the requested video size, so every decision can be tested for any GPU size on
a machine without one. :func:`apply_plan` then turns the plan into real diffusers calls.

The estimate is deliberately simple and errs high: weights are parameters × bytes per
parameter; activations during a denoising step are latent tokens × transformer width × a
constant (``ACT_FACTOR``) × batch (2 with classifier-free guidance); the VAE decode holds
``decode_bytes_per_px`` bytes per output pixel for the frames it decodes at once, or for one
spatial tile (``TILE``) when tiled. Strategies are tried fastest first:

1. everything resident on the GPU;
2. model CPU offload (each component moves to the GPU while it runs — nearly free, because
   each runs once per clip except the transformer, which stays for all steps);
3. the same with the transformer stored in fp8 (layerwise casting: computed in bf16);
4. group offload (blocks streamed to the GPU one group ahead of use);
5. group offload with fp8;
6. "sequential": leaf-level group offload of every component, VAE included (one layer at a
   time, prefetched; diffusers' faster equivalent of accelerate's sequential offload).

At each step the decode is tried untiled first and tiled second, so tiling is switched on
exactly when the untiled decode would not fit. Latents are always saved before the decode,
so even a wrong estimate loses no denoising work (``localvideo decode`` finishes it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .presets import Profile

GB = 1000**3
ACT_FACTOR = 12            # bytes of activations per token per hidden unit per dtype byte
TEXT_OVERHEAD = 0.3 * GB   # a text encoder's own activations at its max sequence length
HEADROOM = 0.9             # leave 10% of the device for the CUDA context and fragmentation
TILE = 256                 # diffusers' default tile side for video VAEs (sample pixels)
GROUP_EXTRA = 0.05         # non-block weights (embeddings, norms) kept on the GPU in group mode

STRATEGIES: tuple[tuple[str, bool], ...] = (
    ("none", False), ("model", False), ("model", True),
    ("group", False), ("group", True), ("sequential", True),
)
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass
class Plan:
    device: str
    dtype: str
    offload: str                      # none | model | group | sequential
    fp8: bool
    fp8_components: list[str]
    vae_tiling: bool
    vae_slicing: bool
    fits: bool
    vram_bytes: int | None
    budget_bytes: int | None
    estimate: dict[str, int]          # weights, activations, decode, text, peak (bytes)
    latent: dict[str, int]            # frames, height, width, tokens, batch
    reasons: list[str] = field(default_factory=list)
    save_latents: bool = True
    hypothetical: bool = False        # planned for a device this machine does not have

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dtype_for(device: str) -> str:
    if device == "cuda":
        return "bfloat16"
    if device == "mps":
        # bf16 kernels on MPS are incomplete on older macOS; fp16 is the safe half type.
        return "float16"
    return "float32"


def latent_shape(profile: Profile, *, height: int, width: int, frames: int) -> dict[str, int]:
    lf = (frames - 1) // profile.vae_temporal + 1
    lh = height // profile.vae_spatial
    lw = width // profile.vae_spatial
    tokens = lf * max(1, lh // profile.patch) * max(1, lw // profile.patch)
    return {"frames": lf, "height": lh, "width": lw, "tokens": tokens}


def _fmt(n: float) -> str:
    return f"{n / GB:.1f} GB"


def _decode_bytes(profile: Profile, *, height: int, width: int, frames: int, tiled: bool,
                  dbytes: int) -> float:
    at_once = profile.decode_frames or frames
    if tiled:
        at_once = min(at_once, 16)
        # Tiles overlap by a quarter so seams blend; count the overlap.
        px = min(height, TILE) * min(width, TILE) * 1.25
    else:
        px = height * width
    return px * min(at_once, frames) * profile.decode_bytes_per_px * dbytes / 2


def estimate(profile: Profile, *, offload: str, fp8: bool, tiled: bool, dtype: str,
             height: int, width: int, frames: int, guidance: float) -> dict[str, int]:
    """Peak device bytes for one strategy (see the module docstring for the model)."""
    db = _BYTES[dtype]
    lat = latent_shape(profile, height=height, width=width, frames=frames)
    batch = 2 if profile.cfg and guidance > 1.0 else 1
    act = lat["tokens"] * profile.hidden * ACT_FACTOR * db * batch
    denoisers = profile.active or ("transformer",)

    def wbytes(name: str) -> float:
        per = 1 if (fp8 and name in denoisers) else db
        return profile.components.get(name, 0.0) * per

    texts = [n for n in profile.components if n.startswith(("text_encoder", "image_encoder"))]
    decode = _decode_bytes(profile, height=height, width=width, frames=frames, tiled=tiled,
                           dbytes=db)
    vae = wbytes("vae")
    if offload == "none":
        weights = sum(wbytes(n) for n in profile.components)
        text = weights + TEXT_OVERHEAD
        peak = weights + max(act, decode, TEXT_OVERHEAD)
    elif offload == "model":
        weights = max(wbytes(n) for n in profile.components)
        text = max((wbytes(n) for n in texts), default=0.0) + TEXT_OVERHEAD
        peak = max(text, max(wbytes(n) for n in denoisers) + act, vae + decode)
    else:
        def resident(name: str) -> float:
            n = max(1, profile.blocks.get(name, 1))
            share = (1 / n) if offload == "sequential" else (2 / n + GROUP_EXTRA)
            return wbytes(name) * min(1.0, share)

        weights = max(resident(n) for n in profile.components if n != "vae")
        text = max((resident(n) for n in texts), default=0.0) + TEXT_OVERHEAD
        # The VAE stays whole on the GPU in group mode (it is small and runs once);
        # sequential offload streams it too.
        vae_res = resident("vae") if offload == "sequential" else vae
        peak = max(text, max(resident(n) for n in denoisers) + act, vae_res + decode)
    return {"weights": int(weights), "activations": int(act), "decode": int(decode),
            "text": int(text), "peak": int(peak), "batch": batch}


def make_plan(profile: Profile, *, device: str, vram_bytes: int | None, height: int,
              width: int, frames: int, guidance: float, hypothetical: bool = False) -> Plan:
    """Pick dtype, offload, fp8 and VAE tiling for ``profile`` at this size on this device."""
    dtype = dtype_for(device)
    lat = latent_shape(profile, height=height, width=width, frames=frames)
    common: dict[str, Any] = {"height": height, "width": width, "frames": frames,
                              "guidance": guidance, "dtype": dtype}
    reasons: list[str] = []
    if device == "cpu" or vram_bytes is None:
        est = estimate(profile, offload="none", fp8=False, tiled=False, **common)
        where = "host memory" if device == "cpu" else f"{device} (free memory unknown)"
        reasons.append(f"{device}: {dtype}, everything resident in {where}; "
                       f"estimated peak {_fmt(est['peak'])}")
        if device == "cpu":
            reasons.append("CPU runs are slow (minutes per step at real sizes) but need no GPU")
        return Plan(device, dtype, "none", False, [], False, False, True, vram_bytes, None,
                    est, {**lat, "batch": est["batch"]}, reasons, hypothetical=hypothetical)

    budget = int(vram_bytes * HEADROOM)
    reasons.append(f"{_fmt(vram_bytes)} of {device} memory, planning within {_fmt(budget)} "
                   f"({int(HEADROOM * 100)}% — the rest is CUDA context and fragmentation)")
    sizes = ", ".join(f"{n} {_fmt(p * _BYTES[dtype])}" for n, p in profile.components.items())
    reasons.append(f"weights in {dtype}: {sizes}")
    chosen: tuple[str, bool, bool, dict[str, int]] | None = None
    for offload, fp8 in STRATEGIES:
        for tiled in (False, True):
            est = estimate(profile, offload=offload, fp8=fp8, tiled=tiled, **common)
            if est["peak"] <= budget:
                chosen = (offload, fp8, tiled, est)
                break
        if chosen:
            break
        est = estimate(profile, offload=offload, fp8=fp8, tiled=True, **common)
        reasons.append(f"offload={offload}{' +fp8' if fp8 else ''}: peak "
                       f"{_fmt(est['peak'])} > {_fmt(budget)}, does not fit")
    fits = chosen is not None
    if chosen is None:
        offload, fp8, tiled = "sequential", True, True
        est = estimate(profile, offload=offload, fp8=fp8, tiled=tiled, **common)
        reasons.append(f"nothing fits: even sequential offload with fp8 needs "
                       f"{_fmt(est['peak'])}, mostly activations ({_fmt(est['activations'])} "
                       f"for {lat['tokens']} latent tokens); lower --height/--width/--frames")
    else:
        offload, fp8, tiled, est = chosen
        label = {"none": "no offload: every component stays on the GPU",
                 "model": "model CPU offload: one component on the GPU at a time",
                 "group": "group offload: transformer and text encoder blocks streamed, "
                          "one group ahead of use",
                 "sequential": "leaf-level offload of every component: one layer at a "
                               "time (slowest)"}[offload]
        reasons.append(f"chosen: {label}; estimated peak {_fmt(est['peak'])}")
        if fp8:
            reasons.append("transformer stored in fp8 (float8_e4m3fn), computed in bf16: "
                           "halves its weights for a small quality and speed cost")
    untiled = _decode_bytes(profile, height=height, width=width, frames=frames, tiled=False,
                            dbytes=_BYTES[dtype])
    if tiled:
        reasons.append(f"VAE tiling on: the untiled decode needs {_fmt(untiled)}, tiles need "
                       f"{_fmt(est['decode'])}")
    else:
        reasons.append(f"VAE decode untiled ({_fmt(untiled)} fits)")
    reasons.append("latents are saved before the decode; `localvideo decode LATENTS` "
                   "finishes a run whose decode failed")
    fp8_components = [n for n in (profile.active or ("transformer",))] if fp8 else []
    # Slicing splits a batch into single videos; only worth it when offloading anyway.
    slicing = offload != "none"
    return Plan(device, dtype, offload, fp8, fp8_components, tiled, slicing, fits, vram_bytes,
                budget, est, {**lat, "batch": est["batch"]}, reasons,
                hypothetical=hypothetical)


def apply_plan(pipe: Any, plan: Plan, device: str) -> None:
    """Turn a plan into diffusers calls on a loaded pipeline."""
    import torch

    compute = getattr(torch, plan.dtype)
    for name in plan.fp8_components:
        model = getattr(pipe, name, None)
        if model is not None:
            model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn,
                                           compute_dtype=compute)
    if plan.offload == "none":
        pipe.to(device)
    elif plan.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        from diffusers.hooks import apply_group_offloading

        sequential = plan.offload == "sequential"
        for name, component in pipe.components.items():
            if not isinstance(component, torch.nn.Module):
                continue
            if name == "vae" and not sequential:
                # Small, runs once, and its decode is planned separately: keep it whole.
                component.to(device)
                continue
            # diffusers' transformers keep their blocks in a top-level ModuleList, which
            # block-level offload streams one block at a time; transformers' text and image
            # encoders nest theirs (encoder.block, layers), where only leaf level reaches.
            # "Sequential" is leaf level for everything: diffusers' faster equivalent of
            # accelerate's sequential offload (prefetched on a CUDA stream).
            block = name.startswith("transformer") and not sequential
            apply_group_offloading(
                component, onload_device=torch.device(device),
                offload_device=torch.device("cpu"),
                offload_type="block_level" if block else "leaf_level",
                num_blocks_per_group=1 if block else None, use_stream=device == "cuda")
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        apply_vae_plan(vae, plan)


def apply_vae_plan(vae: Any, plan: Plan) -> None:
    if plan.vae_tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    if plan.vae_slicing and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()


def query_vram(device: str) -> int | None:
    """Free bytes on the device right now (CUDA), or None where it cannot be asked."""
    if device != "cuda":
        return None
    import torch

    free, _total = torch.cuda.mem_get_info()
    return int(free)
