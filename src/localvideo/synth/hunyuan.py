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
        prefix = str(template["template"]).split("{}")[0]
        template["crop_start"] = len(pipe.tokenizer(prefix)["input_ids"])
        return {"prompt_template": template}

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        latents = latents.to(device=device, dtype=vae.dtype) / vae.config.scaling_factor
        return vae.decode(latents, return_dict=False)[0]
