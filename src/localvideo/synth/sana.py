"""Sana Video (NVIDIA): a 2B linear-attention transformer, text and image to video.

The 480p model decodes through Wan 2.1's VAE (8× in space, 4× in time) under a 2×2 patch; the
pipeline also takes LTX-2's VAE or a DC-AE, and the decode normalises by whichever the folder
holds, as the pipeline does. The pipelines check height/width % 32 and call the frame count
``frames``. Prompts go through Gemma-2-2B with Sana's "complex human instruction" prefix.

By default the pipeline snaps the size to its aspect-ratio bins and resizes the decoded video
back; here the size asked for is the size generated (``use_resolution_binning=False``), so
the saved latents decode straight to the clip. One folder serves text and image to video
(``SanaImageToVideoPipeline`` takes the same components).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .family import Family, Request, read_config
from .presets import ResolvedModel


class Sana(Family):
    name = "sana"
    t2v_pipeline = "SanaVideoPipeline"
    i2v_pipeline = "SanaImageToVideoPipeline"
    defaults = {"height": 480, "width": 832, "frames": 81, "fps": 16, "steps": 50,
                "guidance": 6.0}
    frames_arg = "frames"

    def vae_factors(self, vae_cfg: dict[str, Any]) -> tuple[int, int]:
        # Wan / DC-AE name them scale_factor_*, LTX-2 *_compression_ratio.
        spatial = vae_cfg.get("scale_factor_spatial") or vae_cfg.get("spatial_compression_ratio")
        temporal = (vae_cfg.get("scale_factor_temporal")
                    or vae_cfg.get("temporal_compression_ratio"))
        return int(spatial or 8), int(temporal or 4)

    def multiples(self, model_dir: Path | None) -> tuple[int, int]:
        _, temporal = self.vae_factors(read_config(model_dir, "vae") if model_dir else {})
        return 32, temporal

    def pipeline_class(self, model: ResolvedModel, *, with_image: bool) -> str:
        if with_image:
            return self.i2v_pipeline
        return super().pipeline_class(model, with_image=False)

    def needs_image(self, model: ResolvedModel) -> bool:
        return model.pipeline == self.i2v_pipeline

    def extra_kwargs(self, pipe: Any, req: Request) -> dict[str, Any]:
        # The pipelines want a string for the negative prompt ("" is their default).
        return {"use_resolution_binning": False, "negative_prompt": req.negative or ""}

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        import torch

        latents = latents.to(device=device, dtype=vae.dtype)
        kind = type(vae).__name__
        if kind == "AutoencoderKLLTX2Video":
            mean, std, z = vae.latents_mean, vae.latents_std, vae.config.latent_channels
        elif kind == "AutoencoderKLWan":
            mean = torch.tensor(vae.config.latents_mean)
            std = torch.tensor(vae.config.latents_std)
            z = vae.config.z_dim
        else:   # DC-AE: no per-channel statistics
            z = latents.shape[1]
            mean, std = torch.zeros(z), torch.ones(z)
        mean = mean.view(1, z, 1, 1, 1).to(latents)
        inv_std = 1.0 / std.view(1, z, 1, 1, 1).to(latents)
        return vae.decode(latents / inv_std + mean, return_dict=False)[0]
