"""CogVideoX (Zhipu / THUDM): 2B and 5B text-to-video, 5B image-to-video.

The VAE compresses 8× in space and 4× in time; the transformer patches 2×2, so sizes are
multiples of 16 and frame counts 4k+1. CogVideoX 1.0 was trained on 49 frames at 720×480:
frames beyond the transformer's ``sample_frames`` are refused, and the I2V model's learned
positional embeddings only exist for that one size, so it is refused at any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from .family import Family, Request, read_config


class CogVideoX(Family):
    name = "cogvideox"
    t2v_pipeline = "CogVideoXPipeline"
    i2v_pipeline = "CogVideoXImageToVideoPipeline"
    defaults = {"height": 480, "width": 720, "frames": 49, "fps": 8, "steps": 50,
                "guidance": 6.0}

    def vae_factors(self, vae_cfg: dict[str, Any]) -> tuple[int, int]:
        blocks = vae_cfg.get("block_out_channels") or [0, 0, 0, 0]
        return 2 ** (len(blocks) - 1), int(vae_cfg.get("temporal_compression_ratio") or 4)

    def multiples(self, model_dir: Path | None) -> tuple[int, int]:
        if model_dir is None:
            return 16, 4
        spatial, temporal = self.vae_factors(read_config(model_dir, "vae"))
        patch = int(read_config(model_dir, "transformer").get("patch_size") or 2)
        return spatial * patch, temporal

    def check_inputs(self, req: Request, model_dir: Path | None, *, i2v: bool) -> None:
        super().check_inputs(req, model_dir, i2v=i2v)
        if model_dir is None:
            return
        tcfg = read_config(model_dir, "transformer")
        spatial, _ = self.vae_factors(read_config(model_dir, "vae"))
        max_frames = int(tcfg.get("sample_frames") or 49)
        if req.frames > max_frames:
            raise UsageError(f"this CogVideoX model generates at most {max_frames} frames "
                             f"(got {req.frames})", f"use --frames {max_frames} or fewer")
        if tcfg.get("use_learned_positional_embeddings"):
            h = int(tcfg.get("sample_height", 60)) * spatial
            w = int(tcfg.get("sample_width", 90)) * spatial
            if (req.height, req.width) != (h, w):
                raise UsageError(
                    f"this CogVideoX model only generates {w}×{h} (learned positional "
                    f"embeddings); got {req.width}×{req.height}",
                    f"use --width {w} --height {h}")

    def extra_kwargs(self, pipe: Any, req: Request) -> dict[str, Any]:
        # The transformer's text positions are fixed at max_text_seq_length.
        return {"max_sequence_length": int(pipe.transformer.config.max_text_seq_length)}

    def latent_meta(self, pipe: Any, req: Request) -> dict[str, Any]:
        # CogVideoX 1.5 pads the latent frames to its temporal patch; the padding is dropped
        # before decoding, as the pipeline does.
        pt = pipe.transformer.config.patch_size_t
        lf = (req.frames - 1) // pipe.vae_scale_factor_temporal + 1
        extra = (pt - lf % pt) if pt and lf % pt else 0
        return {"additional_frames": extra}

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        latents = latents[:, meta.get("additional_frames", 0):]
        latents = latents.permute(0, 2, 1, 3, 4)  # (B, F, C, H, W) → (B, C, F, H, W)
        latents = latents.to(device=device, dtype=vae.dtype) / vae.config.scaling_factor
        return vae.decode(latents).sample
