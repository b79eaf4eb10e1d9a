"""Tiny random-weight pipelines of every family, built offline and saved in diffusers format.

They exist so the real ``--model-path`` code path (model_index.json detection, planner,
loading, denoising, saving latents, decoding, encoding) can run on a CPU in seconds: the
tests and the CPU mode of ``bench/synth.py`` use them (test fixtures, so not in the
installed package: bench/synth.py puts tests/ on its path). Sizes follow the tiny configurations
diffusers' own pipeline tests use; the weights are random, so the video is noise.

Nothing here touches the network: the tokenizer is a ``tokenizers`` WordLevel model wrapped
in ``PreTrainedTokenizerFast`` and every model is built from a config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localvideo.synth.torchdeps import require_synth

# Valid tiny sizes per family (the tiny VAEs compress less than the real ones, but the
# pipelines' own divisibility checks still apply). Transformers get two blocks, not one:
# FirstBlockCache needs a first block and at least one after it.
TINY_SIZES: dict[str, dict[str, int]] = {
    "wan-ti2v": {"height": 32, "width": 32, "frames": 9},   # its VAE patches: 32-multiples
    "ltx": {"height": 32, "width": 32, "frames": 9},
    "wan": {"height": 16, "width": 16, "frames": 9},
    "hunyuan": {"height": 16, "width": 16, "frames": 9},
    "cogvideox": {"height": 16, "width": 16, "frames": 9},
}

TINY_KINDS = ("ltx", "ltx-i2v", "ltx-condition", "wan", "wan-i2v", "wan-ti2v", "wan-a14b",
              "hunyuan", "hunyuan-i2v", "cogvideox", "cogvideox-i2v")

_WORDS = ("a red fox running through snow cat dog sea sky the of in on at with blue green "
          "white black city night day forest river mountain car bird flying walking").split()


IMAGE_TOKEN = "<image>"


def tiny_size(kind: str) -> dict[str, int]:
    """A valid (height, width, frames) for a tiny kind."""
    return dict(TINY_SIZES.get(kind) or TINY_SIZES[kind.partition("-")[0]])


def _tokenizer(*, bos: bool = False) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    # "<image>" last, so the other ids stay what they were: LLaVA's image placeholder.
    vocab = {w: i for i, w in enumerate(specials + list(_WORDS) + [IMAGE_TOKEN])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([IMAGE_TOKEN])      # one token, not "<", "image", ">"
    kwargs: dict[str, Any] = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    if bos:
        kwargs["bos_token"] = "<s>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **kwargs)


def _eval(module: Any) -> Any:
    # Freshly built modules are in training mode: dropout would make runs differ.
    return module.eval()


def _t5(d_model: int, *, umt5: bool = False) -> Any:
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    common: dict[str, Any] = {"vocab_size": 64, "d_model": d_model, "d_kv": 8, "d_ff": 37, "num_layers": 2,
              "num_heads": 4, "relative_attention_num_buckets": 8, "pad_token_id": 0,
              "eos_token_id": 1, "decoder_start_token_id": 0}
    if umt5:
        return UMT5EncoderModel(UMT5Config(**common)).eval()
    return T5EncoderModel(T5Config(**common)).eval()


def build_tiny(kind: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Build the tiny ``kind`` pipeline (see TINY_KINDS) and save it to ``out_dir``."""
    require_synth()
    import torch

    if kind not in TINY_KINDS:
        raise ValueError(f"unknown tiny kind {kind!r}; one of {', '.join(TINY_KINDS)}")
    torch.manual_seed(seed)
    family, _, variant = kind.partition("-")
    builder = {"ltx": _ltx, "wan": _wan, "hunyuan": _hunyuan, "cogvideox": _cogvideox}[family]
    pipe = builder(variant=variant)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out_dir)
    return out_dir


def _ltx(*, variant: str) -> Any:
    """variant: "" (text), "i2v" (image pipeline), "condition" (LTXConditionPipeline)."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXImageToVideoPipeline,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4,
        attention_head_dim=8, cross_attention_dim=32, num_layers=2, caption_channels=32)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False, patch_size=1, patch_size_t=1, encoder_causal=True,
        decoder_causal=False)
    cls = {"": LTXPipeline, "i2v": LTXImageToVideoPipeline,
           "condition": LTXConditionPipeline}[variant]
    return cls(scheduler=FlowMatchEulerDiscreteScheduler(), vae=_eval(vae),
               text_encoder=_t5(32), tokenizer=_tokenizer(), transformer=_eval(transformer))


def _wan(*, variant: str) -> Any:
    """variant: "" (2.1 text), "i2v" (2.1 image, CLIP image encoder), "ti2v" (2.2 TI2V-5B
    layout: 48-channel VAE that patches 2×2 itself, expanded timesteps), "a14b" (2.2 A14B
    layout: two transformer experts and a boundary)."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
    )

    def transformer(channels_in: int, channels_out: int = 16, **extra: Any) -> Any:
        return _eval(WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
            in_channels=channels_in, out_channels=channels_out, text_dim=32, freq_dim=256,
            ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
            rope_max_seq_len=32, **extra))

    common: dict[str, Any] = {"tokenizer": _tokenizer(), "text_encoder": _t5(32, umt5=True),
                              "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0)}
    if variant == "ti2v":
        vae = AutoencoderKLWan(base_dim=3, z_dim=48, in_channels=12, out_channels=12,
                               is_residual=True, patch_size=2, latents_mean=[0.0] * 48,
                               latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               scale_factor_spatial=16, scale_factor_temporal=4,
                               temperal_downsample=[False, True, True])
        return WanPipeline(vae=_eval(vae), transformer=transformer(48, 48),
                           expand_timesteps=True, **common)
    common["vae"] = _eval(AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1],
                                           num_res_blocks=1,
                                           temperal_downsample=[False, True, True]))
    if variant == "a14b":
        return WanPipeline(transformer=transformer(16), transformer_2=transformer(16),
                           boundary_ratio=0.875, **common)
    if variant != "i2v":
        return WanPipeline(transformer=transformer(16), **common)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, intermediate_size=16, patch_size=1)).eval()
    return WanImageToVideoPipeline(
        image_encoder=encoder, image_processor=CLIPImageProcessor(crop_size=32, size=32),
        transformer=transformer(36, image_dim=4), **common)


def _hunyuan(*, variant: str) -> Any:
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    i2v = variant == "i2v"
    # I2V: the first frame's latents are concatenated to the noise (+ a mask channel), and
    # the text encoder is a LLaVA that also sees the image.
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=2 * 4 + 1 if i2v else 4, out_channels=4, num_attention_heads=2,
        attention_head_dim=10, num_layers=1, num_single_layers=1, num_refiner_layers=1,
        patch_size=1, patch_size_t=1, guidance_embeds=not i2v, text_embed_dim=16,
        pooled_projection_dim=8, rope_axes_dim=(2, 4, 4),
        **({"image_condition_type": "latent_concat"} if i2v else {}))
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
        layers_per_block=1, act_fn="silu", norm_num_groups=4, scaling_factor=0.476986,
        spatial_compression_ratio=8, temporal_compression_ratio=4,
        mid_block_add_attention=True)
    llama_cfg = LlamaConfig(
        bos_token_id=3, eos_token_id=1, hidden_size=16, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=0, vocab_size=64,
        hidden_act="gelu", max_position_embeddings=512)
    clip = CLIPTextModel(CLIPTextConfig(
        bos_token_id=3, eos_token_id=1, hidden_size=8, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=0, vocab_size=64,
        hidden_act="gelu", projection_dim=32, max_position_embeddings=77)).eval()
    common = {"tokenizer": _tokenizer(bos=True), "transformer": _eval(transformer),
              "vae": _eval(vae), "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
              "text_encoder_2": clip, "tokenizer_2": _tokenizer(bos=True)}
    if not i2v:
        return HunyuanVideoPipeline(text_encoder=LlamaModel(llama_cfg).eval(), **common)
    from diffusers import HunyuanVideoImageToVideoPipeline
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    # 32 px images in 8 px patches: 16 image tokens (the real model: 336/14 → 576).
    vision = CLIPVisionConfig(hidden_size=8, intermediate_size=37, projection_dim=32,
                              num_attention_heads=4, num_hidden_layers=2, image_size=32,
                              patch_size=8)
    image_token = common["tokenizer"].convert_tokens_to_ids(IMAGE_TOKEN)
    llava_cfg = LlavaConfig(vision_config=vision, text_config=llama_cfg,
                            image_token_index=image_token)
    llava_cfg.pad_token_id = 0       # the pipeline pads the expanded ids with it
    llava = LlavaForConditionalGeneration(llava_cfg).eval()
    return HunyuanVideoImageToVideoPipeline(
        text_encoder=llava, image_processor=CLIPImageProcessor(crop_size=32, size=32),
        **common)


def _cogvideox(*, variant: str) -> Any:
    i2v = variant == "i2v"
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    extra: dict[str, Any] = ({"use_rotary_positional_embeddings": True,
                              "use_learned_positional_embeddings": True} if i2v else {})
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4, attention_head_dim=16 if i2v else 8, in_channels=8 if i2v else 4,
        out_channels=4, time_embed_dim=2, text_embed_dim=32, num_layers=2, sample_width=2,
        sample_height=2, sample_frames=9, patch_size=2, temporal_compression_ratio=4,
        max_text_seq_length=16, **extra)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
        latent_channels=4, layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    cls = CogVideoXImageToVideoPipeline if i2v else CogVideoXPipeline
    return cls(tokenizer=_tokenizer(), text_encoder=_t5(32), vae=_eval(vae),
               transformer=_eval(transformer), scheduler=CogVideoXDDIMScheduler())
