"""HunyuanVideo 1.5 (Tencent, diffusers port by hunyuanvideo-community): text and image to video.

An 8.3B transformer over a VAE that compresses 16× in space and 4× in time (patch 1), so sizes
are multiples of 16 and frame counts 4k+1. Prompts go through Qwen2.5-VL-7B's text model plus a
ByT5 glyph encoder for quoted text. Guidance is not an argument of the pipeline: it is the
folder's ``guider`` component (classifier-free guidance, 6.0 in the released checkpoints, 1.0
in the distilled ones), run as two passes one after the other, so it costs time, not
activation memory. The pipeline takes no step callback either; progress is read off the
scheduler's steps.

Image to video takes no height/width: the pipeline picks the bucket of its ``target_size``
closest to the image's aspect ratio (480p: 480×848 for 16:9). The engine hands it the image
at the requested size, so a request must name a bucket; check_inputs says which.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .family import Family, Request, read_config

I2V = "HunyuanVideo15ImageToVideoPipeline"


def bucket(height: int, width: int, target_size: int, spatial: int) -> tuple[int, int]:
    """The (height, width) HunyuanVideo 1.5 generates for an image of this shape."""
    import numpy as np
    from diffusers.pipelines.hunyuan_video1_5.image_processor import (
        generate_crop_size_list,
        get_closest_ratio,
    )

    sizes = generate_crop_size_list(base_size=target_size, patch_size=spatial)
    # An array, as the pipeline passes it (the function subtracts from it).
    ratios: Any = np.array([round(float(h) / float(w), 5) for h, w in sizes])
    (h, w), _ = get_closest_ratio(height, width, ratios, sizes)
    return int(h), int(w)


class Hunyuan15(Family):
    name = "hunyuan15"
    t2v_pipeline = "HunyuanVideo15Pipeline"
    i2v_pipeline = I2V
    defaults = {"height": 480, "width": 848, "frames": 121, "fps": 24, "steps": 50,
                "guidance": 6.0}

    def vae_factors(self, vae_cfg: dict[str, Any]) -> tuple[int, int]:
        return (int(vae_cfg.get("spatial_compression_ratio") or 16),
                int(vae_cfg.get("temporal_compression_ratio") or 4))

    def multiples(self, model_dir: Path | None) -> tuple[int, int]:
        spatial, temporal = self.vae_factors(read_config(model_dir, "vae") if model_dir else {})
        patch = int(read_config(model_dir, "transformer").get("patch_size") or 1
                    ) if model_dir else 1
        return spatial * patch, temporal

    def check_inputs(self, req: Request, model_dir: Path | None, *, i2v: bool) -> None:
        super().check_inputs(req, model_dir, i2v=i2v)
        if not i2v or model_dir is None:
            return
        target = int(read_config(model_dir, "transformer").get("target_size") or 640)
        spatial, _ = self.vae_factors(read_config(model_dir, "vae"))
        h, w = bucket(req.height, req.width, target, spatial)
        if (h, w) != (req.height, req.width):
            raise UsageError(
                f"HunyuanVideo 1.5 image-to-video generates at fixed sizes for its {target}-px "
                f"buckets; {req.width}×{req.height} is not one",
                f"use --width {w} --height {h} (the bucket closest to that shape)")

    def denoise(self, pipe: Any, req: Request, *, generator: Any,
                on_step: Callable[[int, int], None] | None = None) -> Any:
        # 1. Guidance lives in the guider component: replace it with one at this scale.
        pipe.guider = pipe.guider.new(guidance_scale=req.guidance)
        kwargs: dict[str, Any] = {
            "prompt": req.prompt, "negative_prompt": req.negative, "num_frames": req.frames,
            "num_inference_steps": req.steps, "generator": generator, "output_type": "latent",
        }
        # 2. Image to video: the image at the requested size (a bucket: see check_inputs);
        #    text to video takes the size itself.
        if req.image is not None:
            from PIL import Image

            with Image.open(req.image) as im:
                kwargs["image"] = im.convert("RGB").resize((req.width, req.height))
        else:
            kwargs.update(height=req.height, width=req.width)
        # 3. No callback argument: count the scheduler's steps for progress.
        step = pipe.scheduler.step
        done = [0]

        def counted(*args: Any, **kw: Any) -> Any:
            out = step(*args, **kw)
            done[0] += 1
            if on_step is not None:
                on_step(done[0], req.steps)
            return out

        pipe.scheduler.step = counted
        try:
            return pipe(**kwargs).frames
        finally:
            del pipe.scheduler.step      # back to the class's method

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        latents = latents.to(device=device, dtype=vae.dtype) / vae.config.scaling_factor
        return vae.decode(latents, return_dict=False)[0]
