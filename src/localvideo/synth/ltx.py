"""LTX-Video (Lightricks): text-to-video, image-to-video and the condition pipeline.

Its VAE compresses 32× in space and 8× in time, and the transformer works on 1×1×1 patches
of that, so sizes are multiples of 32 and frame counts 8k+1 (read from the VAE config: a
checkpoint with a different VAE is checked by its own numbers). LTX-Video is fast enough to
run at 24-30 fps output; its frame rate is an input of the model (rope scaling), so --fps is
passed through as ``frame_rate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .family import Family, Request, read_config
from .presets import ResolvedModel

# LTX's VAEs with timestep conditioning (0.9.1+) decode at a small noise level; these are
# the values Lightricks' model cards use.
DECODE_TIMESTEP = 0.05
DECODE_NOISE_SCALE = 0.025


class LTX(Family):
    name = "ltx"
    t2v_pipeline = "LTXPipeline"
    i2v_pipeline = "LTXImageToVideoPipeline"
    defaults = {"height": 480, "width": 704, "frames": 161, "fps": 25, "steps": 50,
                "guidance": 3.0}

    def vae_factors(self, vae_cfg: dict[str, Any]) -> tuple[int, int]:
        if not vae_cfg:
            return 32, 8
        scale = 2 ** sum(bool(s) for s in vae_cfg.get("spatio_temporal_scaling", ()))
        spatial = vae_cfg.get("spatial_compression_ratio") or vae_cfg.get("patch_size", 1) * scale
        temporal = (vae_cfg.get("temporal_compression_ratio")
                    or vae_cfg.get("patch_size_t", 1) * scale)
        return int(spatial), int(temporal)

    def multiples(self, model_dir: Path | None) -> tuple[int, int]:
        _, temporal = self.vae_factors(read_config(model_dir, "vae") if model_dir else {})
        # The pipelines check height/width % 32 whatever the VAE.
        return 32, temporal

    def pipeline_class(self, model: ResolvedModel, *, with_image: bool) -> str:
        # The text and image pipelines share every component: one folder serves both.
        if model.pipeline == "LTXConditionPipeline":
            return model.pipeline
        if with_image:
            return self.i2v_pipeline
        return super().pipeline_class(model, with_image=False)

    def needs_image(self, model: ResolvedModel) -> bool:
        return model.pipeline == "LTXImageToVideoPipeline"

    def extra_kwargs(self, pipe: Any, req: Request) -> dict[str, Any]:
        return {"frame_rate": int(round(req.fps))}

    def latent_meta(self, pipe: Any, req: Request) -> dict[str, Any]:
        vae = pipe.vae
        return {
            "packed": type(pipe).__name__ != "LTXConditionPipeline",
            "latent_frames": (req.frames - 1) // vae.temporal_compression_ratio + 1,
            "latent_height": req.height // vae.spatial_compression_ratio,
            "latent_width": req.width // vae.spatial_compression_ratio,
            "patch_size": pipe.transformer_spatial_patch_size,
            "patch_size_t": pipe.transformer_temporal_patch_size,
            "decode_timestep": DECODE_TIMESTEP,
            "decode_noise_scale": DECODE_NOISE_SCALE,
        }

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        import torch
        from diffusers import LTXPipeline

        if meta["packed"]:
            latents = LTXPipeline._unpack_latents(
                latents, meta["latent_frames"], meta["latent_height"], meta["latent_width"],
                meta["patch_size"], meta["patch_size_t"])
        latents = LTXPipeline._denormalize_latents(
            latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
        latents = latents.to(device=device, dtype=vae.dtype)
        timestep = None
        if vae.config.timestep_conditioning:
            noise = torch.randn(latents.shape, generator=generator, device=latents.device,
                                dtype=latents.dtype)
            scale = meta["decode_noise_scale"]
            latents = (1 - scale) * latents + scale * noise
            timestep = torch.tensor([meta["decode_timestep"]] * latents.shape[0],
                                    device=latents.device, dtype=latents.dtype)
        return vae.decode(latents, timestep, return_dict=False)[0]
