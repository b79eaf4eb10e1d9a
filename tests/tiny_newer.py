"""Tiny random-weight pipelines of the newer families, built offline and saved in diffusers
format (SkyReels-V2 so far; HunyuanVideo 1.5, Kandinsky 5, Sana Video and LTX-2 as they land).

Same rules as the older families' builders (tiny.py): every model from a small config, the
tokenizer a ``tokenizers`` WordLevel model, nothing fetched. Sizes follow diffusers' own
pipeline tests for each class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:    # helper A2 is moving the older builders from the package into tests/
    from tiny import _eval, _t5, _tokenizer  # type: ignore[import-not-found]
except ImportError:
    from localvideo.synth.tiny import _eval, _t5, _tokenizer

# kind → (family, a valid tiny size)
KINDS: dict[str, dict[str, Any]] = {
    "skyreels": {"family": "skyreels", "height": 16, "width": 16, "frames": 9},
    "skyreels-df": {"family": "skyreels", "height": 16, "width": 16, "frames": 9},
    "skyreels-i2v": {"family": "skyreels", "height": 16, "width": 16, "frames": 9},
}


def size(kind: str) -> dict[str, int]:
    return {k: v for k, v in KINDS[kind].items() if k != "family"}


def build(kind: str, out_dir: Path, *, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    family, _, variant = kind.partition("-")
    pipe = {"skyreels": _skyreels}[family](variant=variant)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out_dir)
    return out_dir


def _skyreels(*, variant: str) -> Any:
    """variant: "" (SkyReelsV2Pipeline), "df" (diffusion forcing, fps embedding on like the
    1.3B DF checkpoint), "i2v" (SkyReelsV2ImageToVideoPipeline, CLIP image branch)."""
    import diffusers
    from diffusers import AutoencoderKLWan, SkyReelsV2Transformer3DModel, UniPCMultistepScheduler

    def transformer(channels_in: int, **extra: Any) -> Any:
        return _eval(SkyReelsV2Transformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
            in_channels=channels_in, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
            num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
            rope_max_seq_len=32, **extra))

    # The scheduler Skywork's Diffusers folders ship: UniPC on flow-matching sigmas.
    common: dict[str, Any] = {
        "tokenizer": _tokenizer(), "text_encoder": _t5(32, umt5=True),
        "scheduler": UniPCMultistepScheduler(prediction_type="flow_prediction",
                                             use_flow_sigmas=True, flow_shift=8.0),
        "vae": _eval(AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1],
                                      num_res_blocks=1, temperal_downsample=[False, True, True])),
    }
    if variant == "df":
        return diffusers.SkyReelsV2DiffusionForcingPipeline(
            transformer=transformer(16, inject_sample_info=True), **common)
    if variant != "i2v":
        return diffusers.SkyReelsV2Pipeline(transformer=transformer(16), **common)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, intermediate_size=16, patch_size=1)).eval()
    return diffusers.SkyReelsV2ImageToVideoPipeline(
        image_encoder=encoder, image_processor=CLIPImageProcessor(crop_size=32, size=32),
        transformer=transformer(36, image_dim=4), **common)
