"""SkyReels-V2 (Skywork): Wan 2.1's architecture, retrained, plus "diffusion forcing" models.

The VAE is Wan 2.1's (8× in space, 4× in time) and the transformer patches 2×2, so sizes are
multiples of 16 and frame counts 4k+1, and the decode is Wan's. Three kinds of folder:

- ``SkyReelsV2Pipeline`` / ``SkyReelsV2ImageToVideoPipeline``: plain text or image to video,
  classifier-free guidance run as two passes like Wan;
- ``SkyReelsV2DiffusionForcingPipeline`` (the "DF" checkpoints): every latent frame gets its
  own noise level, which lets the model extend a clip past the length it was trained on
  (97 frames at 540P, 121 at 720P) window by window. The same folder animates an image
  through ``SkyReelsV2DiffusionForcingImageToVideoPipeline`` (same components). The 1.3B DF
  model embeds the frame rate (16 or 24 fps), so --fps is passed through.

Beyond the trained length the pipeline needs an overlap between windows; the values are the
ones Skywork's README recommends for long videos (overlap 17 frames, condition noise 20).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DependencyError
from .family import Family, Request, read_config
from .presets import ResolvedModel

DF_T2V = "SkyReelsV2DiffusionForcingPipeline"
DF_I2V = "SkyReelsV2DiffusionForcingImageToVideoPipeline"
# Frames per window the DF models were trained on (SkyReels-V2 README: 540P → 97, 720P → 121)
# and the README's long-video settings.
BASE_FRAMES_540P = 97
BASE_FRAMES_720P = 121
OVERLAP_HISTORY = 17
ADDNOISE_CONDITION = 20


class SkyReels(Family):
    name = "skyreels"
    t2v_pipeline = "SkyReelsV2Pipeline"
    i2v_pipeline = "SkyReelsV2ImageToVideoPipeline"
    defaults = {"height": 544, "width": 960, "frames": 97, "fps": 24, "steps": 30,
                "guidance": 6.0}

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
        # A DF folder serves both: its image pipeline takes the same components.
        if model.pipeline in (DF_T2V, DF_I2V):
            return DF_I2V if with_image else DF_T2V
        return super().pipeline_class(model, with_image=with_image)

    def needs_image(self, model: ResolvedModel) -> bool:
        return model.pipeline == self.i2v_pipeline

    def load(self, model: ResolvedModel, cls_name: str, dtype: Any) -> Any:
        try:
            import ftfy  # noqa: F401  (the pipelines clean every prompt with it, as Wan's do)
        except ImportError as exc:
            raise DependencyError("SkyReels-V2's prompt cleaning needs ftfy, which is not "
                                  "installed", "pip install ftfy") from exc
        return super().load(model, cls_name, dtype)

    def extra_kwargs(self, pipe: Any, req: Request) -> dict[str, Any]:
        if type(pipe).__name__ not in (DF_T2V, DF_I2V):
            return {}
        base = BASE_FRAMES_720P if min(req.height, req.width) >= 720 else BASE_FRAMES_540P
        kwargs: dict[str, Any] = {"fps": int(round(req.fps))}
        if req.frames <= base:
            kwargs["base_num_frames"] = req.frames
        else:
            kwargs.update(base_num_frames=base, overlap_history=OVERLAP_HISTORY,
                          addnoise_condition=ADDNOISE_CONDITION)
        return kwargs

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        import torch

        # Wan's VAE, normalised as every SkyReels-V2 pipeline does before decoding.
        latents = latents.to(device=device, dtype=vae.dtype)
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents)
        return vae.decode(latents / inv_std + mean, return_dict=False)[0]
