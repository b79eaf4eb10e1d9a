"""Every plan the planner can choose, applied for real with diffusers' offload hooks.

On a GPU the hooks move weights between the CPU and the GPU; here both sides are the CPU,
which still runs every hook (model offload, block- and leaf-level group offload, fp8
layerwise casting, VAE tiling). Offloading must not change the result: the frames are
compared with the no-offload run, bit for bit. fp8 storage rounds the weights, so it is
only required to stay close.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tinymodels import tiny_size

from localvideo.synth import engine
from localvideo.synth.family import Request
from localvideo.synth.planner import make_plan
from localvideo.synth.presets import resolve

pytestmark = [pytest.mark.timeout(120), pytest.mark.synth]
pytest.importorskip("diffusers", reason="the synth extra is not installed")


def run(kind: str, model_dir: Path, out: Path, **plan_fields: Any) -> tuple[np.ndarray, Any]:
    model = resolve(out.parent, model_path=model_dir)
    s = tiny_size(kind)
    req = Request("a red fox running through snow", None, None, s["frames"], s["height"],
                  s["width"], 8.0, 2, 5.0, 3)
    base = make_plan(model.profile, device="cpu", vram_bytes=None, height=req.height,
                     width=req.width, frames=req.frames, guidance=req.guidance)
    plan = dataclasses.replace(base, **plan_fields)
    r = engine.generate(model, req, plan, device="cpu", out=out, speed=engine.Speed())
    return r["frames_array"], r


@pytest.mark.parametrize("kind", ["wan", "hunyuan"])
def test_offload_strategies_give_the_same_frames(kind: str, tiny_model: Callable[[str], Path],
                                                 tmp_path: Path) -> None:
    model = tiny_model(kind)
    reference, _ = run(kind, model, tmp_path / "none.mp4")
    for offload in ("model", "group", "sequential"):
        frames, r = run(kind, model, tmp_path / f"{offload}.mp4", offload=offload,
                        vae_slicing=True)
        assert np.array_equal(frames, reference), offload
        assert (tmp_path / f"{offload}.mp4").is_file()


def test_fp8_layerwise_casting_and_tiling(tiny_model: Callable[[str], Path],
                                          tmp_path: Path) -> None:
    model = tiny_model("wan")
    reference, _ = run("wan", model, tmp_path / "none.mp4")
    frames, _ = run("wan", model, tmp_path / "fp8.mp4", offload="group", fp8=True,
                    fp8_components=["transformer"], vae_tiling=True)
    assert frames.shape == reference.shape
    diff = np.abs(frames.astype(int) - reference.astype(int))
    assert diff.mean() < 2.0        # weights rounded to fp8: close, not necessarily equal

    # The casting hook really stores the weights in fp8.
    import torch

    from localvideo.synth.family import get
    from localvideo.synth.planner import apply_plan

    m = resolve(tmp_path, model_path=model)
    pipe = get("wan").load(m, "WanPipeline", torch.float32)
    plan = dataclasses.replace(make_plan(m.profile, device="cpu", vram_bytes=None, height=16,
                                         width=16, frames=9, guidance=5.0),
                               fp8=True, fp8_components=["transformer"])
    apply_plan(pipe, plan, "cpu")
    dtypes = {p.dtype for p in pipe.transformer.blocks.parameters()}
    assert torch.float8_e4m3fn in dtypes


def test_a14b_experts_both_cast(tiny_model: Callable[[str], Path], tmp_path: Path) -> None:
    frames, r = run("wan-a14b", tiny_model("wan-a14b"), tmp_path / "moe.mp4", offload="group",
                    fp8=True, fp8_components=["transformer", "transformer_2"])
    assert frames.shape[0] == 9 and r["pipeline"] == "WanPipeline"
