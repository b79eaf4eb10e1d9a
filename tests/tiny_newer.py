"""Tiny random-weight pipelines of the newer families, built offline and saved in diffusers
format (SkyReels-V2 so far; HunyuanVideo 1.5, Kandinsky 5, Sana Video and LTX-2 as they land).

Same rules as the older families' builders (tinymodels.py): every model from a small config, the
tokenizer a ``tokenizers`` WordLevel model, nothing fetched. Sizes follow diffusers' own
pipeline tests for each class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinymodels import _eval, _t5, _tokenizer

# kind → (family, a valid tiny size)
KINDS: dict[str, dict[str, Any]] = {
    "skyreels": {"family": "skyreels", "height": 16, "width": 16, "frames": 9},
    "skyreels-df": {"family": "skyreels", "height": 16, "width": 16, "frames": 9},
    "skyreels-i2v": {"family": "skyreels", "height": 16, "width": 16, "frames": 9},
    # HunyuanVideo 1.5's tiny VAE compresses 4× in space, 2× in time; image to video takes
    # the bucket of target_size 16 closest to the image's shape (square: 16×16).
    "hunyuan15": {"family": "hunyuan15", "height": 16, "width": 16, "frames": 9},
    "hunyuan15-i2v": {"family": "hunyuan15", "height": 16, "width": 16, "frames": 9},
    # Kandinsky 5: HunyuanVideo's VAE (8×, 4×) under a transformer patching 2×2.
    "kandinsky5": {"family": "kandinsky5", "height": 32, "width": 32, "frames": 5},
    # Image to video renormalises the first 4 latent frames against the next ones: 5+ needed.
    "kandinsky5-i2v": {"family": "kandinsky5", "height": 32, "width": 32, "frames": 17},
    # Sana Video: Wan 2.1's VAE layout; its pipelines want sizes in 32-multiples.
    "sana": {"family": "sana", "height": 32, "width": 32, "frames": 9},
    # LTX-2: the tiny video VAE compresses 2× in space and time; sound from a tiny vocoder.
    "ltx2": {"family": "ltx2", "height": 32, "width": 32, "frames": 9},
}


def size(kind: str) -> dict[str, int]:
    return {k: v for k, v in KINDS[kind].items() if k != "family"}


def build(kind: str, out_dir: Path, *, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    family, _, variant = kind.partition("-")
    pipe = {"skyreels": _skyreels, "hunyuan15": _hunyuan15,
            "kandinsky5": _kandinsky5, "sana": _sana,
            "ltx2": _ltx2}[family](variant=variant)
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


def _hunyuan15(*, variant: str) -> Any:
    """variant: "" (HunyuanVideo15Pipeline), "i2v" (SigLIP image encoder, i2v transformer).
    Shapes from diffusers' own HunyuanVideo 1.5 test; guidance 6.0 as the released
    (undistilled) checkpoints ship it in their guider."""
    import diffusers
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import (
        ByT5Tokenizer,
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        T5Config,
        T5EncoderModel,
    )

    i2v = variant == "i2v"
    transformer = diffusers.HunyuanVideo15Transformer3DModel(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
        text_embed_2_dim=32, image_embed_dim=12, rope_axes_dim=(2, 2, 4), target_size=16,
        task_type="i2v" if i2v else "t2v")
    vae = diffusers.AutoencoderKLHunyuanVideo15(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16),
        layers_per_block=1, spatial_compression_ratio=4, temporal_compression_ratio=2,
        downsample_match_channel=False, upsample_match_channel=False)
    qwen = Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(
        vocab_size=64, hidden_size=16, intermediate_size=16, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, rope_theta=1000000.0, bos_token_id=3,
        eos_token_id=1, pad_token_id=0,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}))
    tokenizer = _tokenizer()
    # The pipeline formats the prompt as a chat (system message + user prompt).
    tokenizer.chat_template = ("{% for m in messages %}{{ m['content'] }} {% endfor %}"
                               "{% if add_generation_prompt %}the {% endif %}")
    # ByT5 ids run to 384 (bytes + specials + extra ids): the glyph encoder's vocabulary.
    byt5 = T5EncoderModel(T5Config(vocab_size=384, d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                   num_heads=4, relative_attention_num_buckets=8))
    common: dict[str, Any] = {
        "transformer": _eval(transformer), "vae": _eval(vae), "text_encoder": _eval(qwen),
        "tokenizer": tokenizer, "text_encoder_2": _eval(byt5), "tokenizer_2": ByT5Tokenizer(),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0),
        "guider": ClassifierFreeGuidance(guidance_scale=6.0)}
    if not i2v:
        return diffusers.HunyuanVideo15Pipeline(**common)
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    encoder = SiglipVisionModel(SiglipVisionConfig(
        hidden_size=12, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, patch_size=8))
    return diffusers.HunyuanVideo15ImageToVideoPipeline(
        image_encoder=_eval(encoder),
        feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}), **common)


def _kandinsky5(*, variant: str) -> Any:
    """Kandinsky5T2VPipeline, or with variant "i2v" Kandinsky5I2VPipeline (its transformer
    takes the first frame's latents and a mask as extra channels: visual_cond), with the
    shapes of diffusers' own test: a Qwen2.5-VL (the real
    text encoder's class, tiny), a CLIP text model for the pooled embedding, HunyuanVideo's
    VAE. The pipeline crops the first 128 tokens (its system prompt) off the Qwen embeddings;
    the WordLevel tokenizer splits that prompt into more than 128 tokens, so the user's
    words survive the crop as they do with the real tokenizer."""
    import diffusers
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

    vae = diffusers.AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, spatial_compression_ratio=8, temporal_compression_ratio=4,
        latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4)
    qwen = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 64,
                     "rope_theta": 1000000.0, "bos_token_id": 3, "eos_token_id": 1,
                     "pad_token_id": 0,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default",
                                      "type": "default"}},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
                       "out_hidden_size": 16},
        hidden_size=16, vocab_size=64, image_token_id=61, video_token_id=62,
        vision_start_token_id=60, vision_end_token_id=63))
    clip = CLIPTextModel(CLIPTextConfig(
        bos_token_id=3, eos_token_id=1, hidden_size=32, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=0, vocab_size=64,
        hidden_act="gelu", projection_dim=32, max_position_embeddings=77))
    transformer = diffusers.Kandinsky5Transformer3DModel(
        in_visual_dim=4, in_text_dim=16, in_text_dim2=32, time_dim=32, out_visual_dim=4,
        patch_size=(1, 2, 2), model_dim=48, ff_dim=128, num_text_blocks=1,
        num_visual_blocks=2, axes_dims=(8, 8, 8), visual_cond=variant == "i2v")
    cls = diffusers.Kandinsky5I2VPipeline if variant == "i2v" else diffusers.Kandinsky5T2VPipeline
    return cls(
        transformer=_eval(transformer), vae=_eval(vae), text_encoder=_eval(qwen),
        tokenizer=_tokenizer(), text_encoder_2=_eval(clip), tokenizer_2=_tokenizer(bos=True),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0))


def _sana(*, variant: str) -> Any:
    """SanaVideoPipeline (its folder also serves SanaImageToVideoPipeline) with the shapes of
    diffusers' own test: Gemma-2 (tiny), Wan's VAE, DPM-Solver on flow sigmas as Sana ships."""
    import diffusers
    from transformers import Gemma2Config, Gemma2Model

    gemma = Gemma2Model(Gemma2Config(
        head_dim=16, hidden_size=8, intermediate_size=64, max_position_embeddings=8192,
        num_attention_heads=2, num_hidden_layers=1, num_key_value_heads=2, vocab_size=64,
        pad_token_id=0, bos_token_id=3, eos_token_id=1, attn_implementation="eager"))
    transformer = diffusers.SanaVideoTransformer3DModel(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=12,
        num_layers=2, num_cross_attention_heads=2, cross_attention_head_dim=12,
        cross_attention_dim=24, caption_channels=8, mlp_ratio=2.5, dropout=0.0,
        attention_bias=False, sample_size=8, patch_size=(1, 2, 2), norm_elementwise_affine=False,
        norm_eps=1e-6, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    vae = diffusers.AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1],
                                     num_res_blocks=1, temperal_downsample=[False, True, True])
    scheduler = diffusers.DPMSolverMultistepScheduler(flow_shift=8.0, use_flow_sigmas=True,
                                                      prediction_type="flow_prediction")
    return diffusers.SanaVideoPipeline(tokenizer=_tokenizer(bos=True), text_encoder=_eval(gemma),
                                       vae=_eval(vae), transformer=_eval(transformer),
                                       scheduler=scheduler)


def _ltx2(*, variant: str) -> Any:
    """LTX2Pipeline (its folder also serves LTX2ImageToVideoPipeline) with the shapes of
    diffusers' own LTX-2 tests: a tiny Gemma 3 (the real encoder's class), text connectors as
    wide as its hidden size, the tiny video VAE, an audio VAE over 8 mel bins and a vocoder
    making 16 kHz stereo."""
    import diffusers
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    gemma = Gemma3ForConditionalGeneration(Gemma3Config(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
                     "vocab_size": 64, "pad_token_id": 0, "bos_token_id": 3, "eos_token_id": 1,
                     "sliding_window": 16, "max_position_embeddings": 512},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        mm_tokens_per_image=4, image_token_index=63, boi_token_index=61, eoi_token_index=62))
    hidden, layers = 16, 2
    transformer = diffusers.LTX2VideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2,
        attention_head_dim=8, cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4,
        audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8,
        num_layers=2, qk_norm="rms_norm_across_heads", caption_channels=hidden,
        rope_double_precision=False, rope_type="split")
    # Without per-modality projections the connector blocks run at the caption width.
    connectors = LTX2TextConnectors(
        caption_channels=hidden, text_proj_in_factor=layers + 1,
        video_connector_num_attention_heads=2, video_connector_attention_head_dim=8,
        video_connector_num_layers=1, video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=2, audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1, audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32, rope_theta=10000.0, rope_double_precision=False,
        causal_temporal_positioning=False, rope_type="split")
    vae = diffusers.AutoencoderKLLTX2Video(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,),
        decoder_block_out_channels=(8,), layers_per_block=(1,), decoder_layers_per_block=(1, 1),
        spatio_temporal_scaling=(True,), decoder_spatio_temporal_scaling=(True,),
        decoder_inject_noise=(False, False), downsample_type=("spatial",),
        upsample_residual=(False,), upsample_factor=(1,), timestep_conditioning=False,
        patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False)
    audio_vae = diffusers.AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1,
        attn_resolutions=None, in_channels=2, resolution=32, latent_channels=2,
        norm_type="pixel", causality_axis="height", dropout=0.0, mid_block_add_attention=False,
        sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=8)
    vocoder = LTX2Vocoder(
        in_channels=2 * 8, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1, output_sampling_rate=16000)
    return diffusers.LTX2Pipeline(
        transformer=_eval(transformer), vae=_eval(vae), audio_vae=_eval(audio_vae),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(), text_encoder=_eval(gemma),
        tokenizer=_tokenizer(bos=True), connectors=_eval(connectors), vocoder=_eval(vocoder))
