"""Kandinsky 5.0 Video (Kandinsky Lab): the 2B "Lite" text-to-video models and the 19B "Pro"
text and image to video.

The VAE is HunyuanVideo's (8× in space, 4× in time) and the transformer patches 2×2, so sizes
are multiples of 16 and frame counts 4k+1. Prompts go through Qwen2.5-VL-7B (hidden states,
its system prompt cropped) plus CLIP-L's pooled embedding. Guidance runs the unconditional pass
after the conditional one (time, not activation memory); the "nocfg" and "distilled16steps"
checkpoints are meant to run at guidance 1.0.

The pipelines keep latents channel-last, (B, F, H, W, C), and return them that way with
``output_type="latent"``: the decode permutes them to the VAE's (B, C, F, H, W) first, as the
pipelines do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from .family import Family, Request, read_config

# Image to video renormalises the first 4 latent frames against the ones after them
# (Kandinsky5I2VPipeline.normalize_first_frame): with nothing after them the statistics are
# NaN and the clip comes out black, so it needs at least this many latent frames.
I2V_MIN_LATENT_FRAMES = 5


class Kandinsky5(Family):
    name = "kandinsky5"
    t2v_pipeline = "Kandinsky5T2VPipeline"
    i2v_pipeline = "Kandinsky5I2VPipeline"
    defaults = {"height": 512, "width": 768, "frames": 121, "fps": 24, "steps": 50,
                "guidance": 5.0}

    def vae_factors(self, vae_cfg: dict[str, Any]) -> tuple[int, int]:
        return (int(vae_cfg.get("spatial_compression_ratio") or 8),
                int(vae_cfg.get("temporal_compression_ratio") or 4))

    def multiples(self, model_dir: Path | None) -> tuple[int, int]:
        _, temporal = self.vae_factors(read_config(model_dir, "vae") if model_dir else {})
        # The pipelines check height/width % 16 whatever the VAE.
        return 16, temporal

    def check_inputs(self, req: Request, model_dir: Path | None, *, i2v: bool) -> None:
        super().check_inputs(req, model_dir, i2v=i2v)
        if not i2v:
            return
        _, temporal = self.multiples(model_dir)
        if (req.frames - 1) // temporal + 1 < I2V_MIN_LATENT_FRAMES:
            least = (I2V_MIN_LATENT_FRAMES - 1) * temporal + 1
            raise UsageError(f"Kandinsky 5 image-to-video needs at least {least} frames "
                             f"(got {req.frames})", f"use --frames {least} or more")

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        latents = latents.permute(0, 4, 1, 2, 3)   # (B, F, H, W, C) → (B, C, F, H, W)
        latents = latents.to(device=device, dtype=vae.dtype) / vae.config.scaling_factor
        return vae.decode(latents).sample
