"""HunyuanVideo (Tencent, diffusers port by hunyuanvideo-community): text and image to video.

The VAE compresses 8× in space and 4× in time and the transformer patches 2×2, so sizes are
multiples of 16 and frame counts 4k+1. Guidance is distilled into the model (an embedded
guidance scale, no second batch), which is why the planner counts one batch. Its text
encoder is a Llama; the prompt template's system prefix is cropped from the embeddings by
token count.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .family import Family, Request, read_config

# The I2V pipeline's default prompt length (tokens, before the image tokens are added).
LLAVA_SEQUENCE = 256


class Hunyuan(Family):
    name = "hunyuan"
    t2v_pipeline = "HunyuanVideoPipeline"
    i2v_pipeline = "HunyuanVideoImageToVideoPipeline"
    defaults = {"height": 720, "width": 1280, "frames": 129, "fps": 24, "steps": 50,
                "guidance": 6.0}

    def vae_factors(self, vae_cfg: dict[str, Any]) -> tuple[int, int]:
        return (int(vae_cfg.get("spatial_compression_ratio") or 8),
                int(vae_cfg.get("temporal_compression_ratio") or 4))

    def multiples(self, model_dir: Path | None) -> tuple[int, int]:
        _, temporal = self.vae_factors(read_config(model_dir, "vae") if model_dir else {})
        # The pipelines check height/width % 16.
        return 16, temporal

    def extra_kwargs(self, pipe: Any, req: Request) -> dict[str, Any]:
        # diffusers hard-codes the template's crop_start (95 for text-to-video): the length
        # of its system prefix under the Llama-3 tokenizer the model ships with. Under any
        # other tokenizer (a local fine-tune, a test model) that number crops the wrong
        # tokens, so measure it; with the shipped tokenizer keep the pipeline's default.
        if "<|start_header_id|>" in pipe.tokenizer.get_vocab():
            return {}
        module = sys.modules[type(pipe).__module__]
        template = dict(module.DEFAULT_PROMPT_TEMPLATE)
        if "image_emb_len" in template:
            return {"prompt_template": self._llava_template(pipe),
                    "max_sequence_length": LLAVA_SEQUENCE}
        prefix = str(template["template"]).split("{}")[0]
        template["crop_start"] = len(pipe.tokenizer(prefix)["input_ids"])
        return {"prompt_template": template}

    @staticmethod
    def _llava_template(pipe: Any) -> dict[str, Any]:
        """Image-to-video under a tokenizer without Llama-3's header tokens (a test model).

        The shipped template finds its crop points by those tokens and assumes 576 image
        tokens (336 px in 14 px patches). Without them: crop nothing, and let the image
        tokens (their count from the LLaVA vision config) take the last padding positions,
        as diffusers' own tiny I2V test does, so no prompt token is overwritten.
        """
        cfg = pipe.text_encoder.config
        vision = cfg.vision_config
        count = (vision.image_size // vision.patch_size) ** 2
        if getattr(cfg, "vision_feature_select_strategy", "default") == "full":
            count += 1           # the CLS token is kept too
        start = LLAVA_SEQUENCE - count
        return {"template": "{}", "crop_start": 0, "image_emb_start": start,
                "image_emb_end": LLAVA_SEQUENCE, "image_emb_len": count}

    @staticmethod
    def _concat_image(pipe: Any) -> bool:
        transformer = getattr(pipe, "transformer", None)
        return getattr(getattr(transformer, "config", None), "image_condition_type",
                       None) == "latent_concat"

    def final_latents(self, pipe: Any, output: Any, last_step: Any) -> Any:
        # I2V ("latent_concat") returns its latents without the first (image) frame, but
        # decodes them with it and then drops the first 4 video frames: keep the whole
        # latents so a decode, now or from the saved file, gives the pipeline's frames.
        if self._concat_image(pipe) and last_step is not None:
            return last_step
        return output

    def latent_meta(self, pipe: Any, req: Request) -> dict[str, Any]:
        if self._concat_image(pipe):
            return {"drop_frames": self.vae_factors(dict(pipe.vae.config))[1]}
        return {}

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        latents = latents.to(device=device, dtype=vae.dtype) / vae.config.scaling_factor
        video = vae.decode(latents, return_dict=False)[0]
        drop = int(meta.get("drop_frames") or 0)
        return video[:, :, drop:] if drop else video
