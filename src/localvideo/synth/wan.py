"""Wan 2.1 / 2.2 (Wan-AI): text-to-video, image-to-video, the TI2V-5B and the A14B MoE.

The VAE compresses 8× in space (16× for Wan 2.2's TI2V-5B VAE) and 4× in time, and the
transformer patches 2×2 on top, so sizes are multiples of 16 (32 for TI2V-5B) and frame
counts 4k+1. A14B has two transformer experts (high noise, low noise); both are loaded and
the planner counts only one as active at a time. Wan's prompt cleaning needs ``ftfy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DependencyError
from .family import Family, model_index, read_config
from .presets import ResolvedModel


class Wan(Family):
    name = "wan"
    t2v_pipeline = "WanPipeline"
    i2v_pipeline = "WanImageToVideoPipeline"
    defaults = {"height": 480, "width": 832, "frames": 81, "fps": 16, "steps": 50,
                "guidance": 5.0}

    def vae_factors(self, vae_cfg: dict[str, Any]) -> tuple[int, int]:
        return (int(vae_cfg.get("scale_factor_spatial") or 8),
                int(vae_cfg.get("scale_factor_temporal") or 4))

    def multiples(self, model_dir: Path | None) -> tuple[int, int]:
        if model_dir is None:
            return 16, 4
        spatial, temporal = self.vae_factors(read_config(model_dir, "vae"))
        patch = read_config(model_dir, "transformer").get("patch_size") or [1, 2, 2]
        return spatial * int(patch[-1]), temporal

    def pipeline_class(self, model: ResolvedModel, *, with_image: bool) -> str:
        # Wan 2.2 TI2V-5B is published as a WanPipeline folder but also animates an image:
        # its transformer conditions on the first frame through expanded timesteps.
        if with_image and not model.i2v and model_index(model.path).get("expand_timesteps"):
            return self.i2v_pipeline
        return super().pipeline_class(model, with_image=with_image)

    def load(self, model: ResolvedModel, cls_name: str, dtype: Any) -> Any:
        try:
            import ftfy  # noqa: F401  (Wan's pipelines call it on every prompt)
        except ImportError as exc:
            raise DependencyError("Wan's prompt cleaning needs ftfy, which is not installed",
                                  "pip install ftfy") from exc
        return super().load(model, cls_name, dtype)

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        import torch

        latents = latents.to(device=device, dtype=vae.dtype)
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents)
        return vae.decode(latents / inv_std + mean, return_dict=False)[0]
