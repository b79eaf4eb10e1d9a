"""Real-size pipelines with random weights, for the GPU benchmark.

Time per step and memory depend on the shapes, not on the weight values, so a pipeline built
from the published configurations measures what the real model would. The configurations
here are the published ones (transformer, VAE, text and image encoders); building any of
them on PyTorch's ``meta`` device costs nothing, which is how the tests check that the
parameter counts the planner uses (synth/presets.py) are the true ones. A test and bench
fixture: not in the installed package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localvideo.synth.torchdeps import require_synth

_WAN = {"patch_size": (1, 2, 2), "freq_dim": 256, "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads", "text_dim": 4096, "eps": 1e-6}
_WAN13 = {**_WAN, "num_attention_heads": 12, "attention_head_dim": 128, "ffn_dim": 8960,
          "num_layers": 30, "in_channels": 16, "out_channels": 16}
_WAN14 = {**_WAN, "num_attention_heads": 40, "attention_head_dim": 128, "ffn_dim": 13824,
          "num_layers": 40, "in_channels": 16, "out_channels": 16}
_T5XXL = ("T5EncoderModel", "T5Config",
          {"vocab_size": 32128, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24,
           "num_heads": 64, "feed_forward_proj": "gated-gelu"})
_UMT5XXL = ("UMT5EncoderModel", "UMT5Config",
            {"vocab_size": 256384, "d_model": 4096, "d_kv": 64, "d_ff": 10240,
             "num_layers": 24, "num_heads": 64, "feed_forward_proj": "gated-gelu"})
_LLAMA8B = ("LlamaModel", "LlamaConfig",
            {"vocab_size": 128320, "hidden_size": 4096, "intermediate_size": 14336,
             "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
             "max_position_embeddings": 8192})
_CLIP_L = ("CLIPTextModel", "CLIPTextConfig",
           {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
            "num_hidden_layers": 12, "num_attention_heads": 12, "projection_dim": 768})
_CLIP_H_VISION = ("CLIPVisionModel", "CLIPVisionConfig",
                  {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                   "num_attention_heads": 16, "patch_size": 14, "image_size": 224,
                   "projection_dim": 1024})

# HunyuanVideo 1.5's transformer (conversion script, 480p_t2v) and encoders: Qwen2.5-VL-7B's
# language model (its config.json: 28 layers, 3584 wide, 28 heads / 4 KV, MLP 18944, 152064
# tokens), google/byt5-small's encoder (12 layers, 1472 wide, 6 heads, gated-GELU 3584), and
# SigLIP so400m/14 at 384 px for image to video (27 layers, 1152 wide; 27² = the 729 image
# tokens the pipeline expects).
_HY15 = {"in_channels": 65, "out_channels": 32, "num_attention_heads": 16,
         "attention_head_dim": 128, "num_layers": 54, "num_refiner_layers": 2, "mlp_ratio": 4.0,
         "patch_size": 1, "patch_size_t": 1, "qk_norm": "rms_norm", "text_embed_dim": 3584,
         "text_embed_2_dim": 1472, "image_embed_dim": 1152, "rope_theta": 256.0,
         "rope_axes_dim": (16, 56, 56), "target_size": 640, "task_type": "t2v"}
_QWEN25VL7B = ("Qwen2_5_VLTextModel", "Qwen2_5_VLTextConfig",
               {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
                "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
                "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default",
                                 "type": "default"}})
_BYT5_SMALL = ("T5EncoderModel", "T5Config",
               {"vocab_size": 384, "d_model": 1472, "d_kv": 64, "d_ff": 3584, "num_layers": 12,
                "num_heads": 6, "feed_forward_proj": "gated-gelu"})
_SIGLIP_SO400M = ("SiglipVisionModel", "SiglipVisionConfig",
                  {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                   "num_attention_heads": 16, "image_size": 384, "patch_size": 14})

# Kandinsky 5.0 Lite's transformer, and Qwen2.5-VL-7B whole (Qwen's config.json: the vision
# tower is 32 blocks, 1280 wide, merged to 3584; untied LM head) as the Kandinsky pipelines load it.
_K5LITE = {"in_visual_dim": 16, "out_visual_dim": 16, "in_text_dim": 3584, "in_text_dim2": 768,
           "time_dim": 512, "patch_size": (1, 2, 2), "model_dim": 1792, "ff_dim": 7168,
           "num_text_blocks": 2, "num_visual_blocks": 32, "axes_dims": (16, 24, 24),
           "visual_cond": True}
_QWEN25VL7B_FULL = ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLConfig",
                    {"text_config": _QWEN25VL7B[2],
                     "vision_config": {"depth": 32, "hidden_size": 1280,
                                       "intermediate_size": 3420, "num_heads": 16,
                                       "out_hidden_size": 3584}})

_LTX2_TRANSFORMER = {
    "in_channels": 128, "out_channels": 128, "patch_size": 1, "patch_size_t": 1,
    "num_attention_heads": 32, "attention_head_dim": 128, "cross_attention_dim": 4096,
    "vae_scale_factors": (8, 32, 32), "pos_embed_max_pos": 20, "base_height": 2048,
    "base_width": 2048, "gated_attn": False, "cross_attn_mod": False, "audio_in_channels": 128,
    "audio_out_channels": 128, "audio_patch_size": 1, "audio_patch_size_t": 1,
    "audio_num_attention_heads": 32, "audio_attention_head_dim": 64,
    "audio_cross_attention_dim": 2048, "audio_scale_factor": 4, "audio_pos_embed_max_pos": 20,
    "audio_sampling_rate": 16000, "audio_hop_length": 160, "audio_gated_attn": False,
    "audio_cross_attn_mod": False, "num_layers": 48, "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads", "norm_elementwise_affine": False, "norm_eps": 1e-6,
    "caption_channels": 3840, "attention_bias": True, "attention_out_bias": True,
    "rope_theta": 10000.0, "rope_double_precision": True, "causal_offset": 1,
    "timestep_scale_multiplier": 1000, "cross_attn_timestep_scale_multiplier": 1000,
    "rope_type": "split", "use_prompt_embeddings": True, "perturbed_attn": False}
_LTX2_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 128,
    "block_out_channels": (256, 512, 1024, 2048), "down_block_types": ("LTX2VideoDownBlock3D",) * 4,
    "decoder_block_out_channels": (256, 512, 1024), "layers_per_block": (4, 6, 6, 2, 2),
    "decoder_layers_per_block": (5, 5, 5, 5), "spatio_temporal_scaling": (True,) * 4,
    "decoder_spatio_temporal_scaling": (True,) * 3, "decoder_inject_noise": (False,) * 4,
    "downsample_type": ("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    "upsample_type": ("spatiotemporal",) * 3, "upsample_residual": (True,) * 3,
    "upsample_factor": (2, 2, 2), "timestep_conditioning": False, "patch_size": 4,
    "patch_size_t": 1, "resnet_norm_eps": 1e-6, "encoder_causal": True, "decoder_causal": False,
    "encoder_spatial_padding_mode": "zeros", "decoder_spatial_padding_mode": "reflect",
    "spatial_compression_ratio": 32, "temporal_compression_ratio": 8}
_LTX2_CONNECTORS = {
    "caption_channels": 3840, "text_proj_in_factor": 49, "video_connector_num_attention_heads": 30,
    "video_connector_attention_head_dim": 128, "video_connector_num_layers": 2,
    "video_connector_num_learnable_registers": 128, "video_gated_attn": False,
    "audio_connector_num_attention_heads": 30, "audio_connector_attention_head_dim": 128,
    "audio_connector_num_layers": 2, "audio_connector_num_learnable_registers": 128,
    "audio_gated_attn": False, "connector_rope_base_seq_len": 4096, "rope_theta": 10000.0,
    "rope_double_precision": True, "causal_temporal_positioning": False, "rope_type": "split",
    "per_modality_projections": False, "proj_bias": False}
_LTX2_AUDIO_VAE = {
    "base_channels": 128, "output_channels": 2, "ch_mult": (1, 2, 4), "num_res_blocks": 2,
    "attn_resolutions": None, "in_channels": 2, "resolution": 256, "latent_channels": 8,
    "norm_type": "pixel", "causality_axis": "height", "dropout": 0.0,
    "mid_block_add_attention": False, "sample_rate": 16000, "mel_hop_length": 160,
    "is_causal": True, "mel_bins": 64, "double_z": True}
_LTX2_VOCODER = {
    "in_channels": 128, "hidden_channels": 1024, "out_channels": 2,
    "upsample_kernel_sizes": [16, 15, 8, 4, 4], "upsample_factors": [6, 5, 2, 2, 2],
    "resnet_kernel_sizes": [3, 7, 11], "resnet_dilations": [[1, 3, 5]] * 3,
    "act_fn": "leaky_relu", "leaky_relu_negative_slope": 0.1, "antialias": False,
    "final_act_fn": "tanh", "final_bias": True, "output_sampling_rate": 24000}
_GEMMA3_12B = {
    "text_config": {"hidden_size": 3840, "intermediate_size": 15360, "num_hidden_layers": 48,
                    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256,
                    "vocab_size": 262208},
    "vision_config": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                      "num_attention_heads": 16, "image_size": 896, "patch_size": 14},
    "mm_tokens_per_image": 256}


@dataclass(frozen=True)
class RealSpec:
    """diffusers class names + kwargs (transformer, VAE) and transformers (model, config,
    kwargs) triples for the text / image encoders."""

    pipeline: str
    transformer: tuple[str, dict[str, Any]]
    vae: tuple[str, dict[str, Any]]
    encoders: dict[str, tuple[str, str, dict[str, Any]]]
    scheduler: str = "FlowMatchEulerDiscreteScheduler"
    extra: dict[str, Any] = field(default_factory=dict)   # pipeline config (boundary_ratio…)
    second_transformer: bool = False
    # Further diffusers components by name → (class, kwargs), looked up in diffusers or in
    # diffusers.pipelines.ltx2 (LTX-2's text connectors, audio VAE and vocoder).
    others: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


REAL: dict[str, RealSpec] = {
    "ltx-video": RealSpec("LTXPipeline", ("LTXVideoTransformer3DModel", {}),
                          ("AutoencoderKLLTXVideo", {}), {"text_encoder": _T5XXL}),
    "wan2.1-t2v-1.3b": RealSpec("WanPipeline", ("WanTransformer3DModel", _WAN13),
                                ("AutoencoderKLWan", {}), {"text_encoder": _UMT5XXL}),
    "wan2.1-t2v-14b": RealSpec("WanPipeline", ("WanTransformer3DModel", _WAN14),
                               ("AutoencoderKLWan", {}), {"text_encoder": _UMT5XXL}),
    "wan2.1-i2v-14b-480p": RealSpec(
        "WanImageToVideoPipeline",
        ("WanTransformer3DModel", {**_WAN14, "in_channels": 36, "image_dim": 1280,
                                   "added_kv_proj_dim": 5120}),
        ("AutoencoderKLWan", {}), {"text_encoder": _UMT5XXL, "image_encoder": _CLIP_H_VISION}),
    "wan2.2-ti2v-5b": RealSpec(
        "WanPipeline",
        ("WanTransformer3DModel", {**_WAN, "num_attention_heads": 24, "attention_head_dim": 128,
                                   "ffn_dim": 14336, "num_layers": 30, "in_channels": 48,
                                   "out_channels": 48}),
        ("AutoencoderKLWan", {"base_dim": 160, "decoder_base_dim": 256, "z_dim": 48,
                              "in_channels": 12, "out_channels": 12, "is_residual": True,
                              "patch_size": 2, "scale_factor_spatial": 16,
                              "latents_mean": [0.0] * 48, "latents_std": [1.0] * 48}),
        {"text_encoder": _UMT5XXL}, extra={"expand_timesteps": True}),
    "wan2.2-t2v-a14b": RealSpec("WanPipeline", ("WanTransformer3DModel", _WAN14),
                                ("AutoencoderKLWan", {}), {"text_encoder": _UMT5XXL},
                                extra={"boundary_ratio": 0.875}, second_transformer=True),
    "hunyuanvideo": RealSpec("HunyuanVideoPipeline", ("HunyuanVideoTransformer3DModel", {}),
                             ("AutoencoderKLHunyuanVideo", {}),
                             {"text_encoder": _LLAMA8B, "text_encoder_2": _CLIP_L}),
    "cogvideox-2b": RealSpec("CogVideoXPipeline", ("CogVideoXTransformer3DModel", {}),
                             ("AutoencoderKLCogVideoX", {}), {"text_encoder": _T5XXL},
                             scheduler="CogVideoXDDIMScheduler"),
    "cogvideox-5b": RealSpec(
        "CogVideoXPipeline",
        ("CogVideoXTransformer3DModel", {"num_attention_heads": 48, "attention_head_dim": 64,
                                         "num_layers": 42,
                                         "use_rotary_positional_embeddings": True}),
        ("AutoencoderKLCogVideoX", {}), {"text_encoder": _T5XXL},
        scheduler="CogVideoXDDIMScheduler"),
    "cogvideox-5b-i2v": RealSpec(
        "CogVideoXImageToVideoPipeline",
        ("CogVideoXTransformer3DModel", {"num_attention_heads": 48, "attention_head_dim": 64,
                                         "num_layers": 42, "in_channels": 32,
                                         "use_rotary_positional_embeddings": True,
                                         "use_learned_positional_embeddings": True}),
        ("AutoencoderKLCogVideoX", {}), {"text_encoder": _T5XXL},
        scheduler="CogVideoXDDIMScheduler"),
    # SkyReels-V2: diffusers' scripts/convert_skyreelsv2_to_diffusers.py (get_transformer_config).
    "skyreels-v2-df-1.3b-540p": RealSpec(
        "SkyReelsV2DiffusionForcingPipeline",
        ("SkyReelsV2Transformer3DModel", {**_WAN13, "inject_sample_info": True}),
        ("AutoencoderKLWan", {}), {"text_encoder": _UMT5XXL},
        scheduler="UniPCMultistepScheduler"),
    "skyreels-v2-df-14b-540p": RealSpec(
        "SkyReelsV2DiffusionForcingPipeline", ("SkyReelsV2Transformer3DModel", _WAN14),
        ("AutoencoderKLWan", {}), {"text_encoder": _UMT5XXL},
        scheduler="UniPCMultistepScheduler"),
    "skyreels-v2-t2v-14b-720p": RealSpec(
        "SkyReelsV2Pipeline", ("SkyReelsV2Transformer3DModel", _WAN14),
        ("AutoencoderKLWan", {}), {"text_encoder": _UMT5XXL},
        scheduler="UniPCMultistepScheduler"),
    "skyreels-v2-i2v-14b-720p": RealSpec(
        "SkyReelsV2ImageToVideoPipeline",
        ("SkyReelsV2Transformer3DModel", {**_WAN14, "in_channels": 36, "image_dim": 1280,
                                          "added_kv_proj_dim": 5120}),
        ("AutoencoderKLWan", {}), {"text_encoder": _UMT5XXL, "image_encoder": _CLIP_H_VISION},
        scheduler="UniPCMultistepScheduler"),
    # HunyuanVideo 1.5: transformer from diffusers' scripts/convert_hunyuan_video1_5_to_diffusers.py
    # (TRANSFORMER_CONFIGS), the VAE at its defaults (the script builds AutoencoderKLHunyuanVideo15()),
    # Qwen2.5-VL-7B-Instruct's text model and the ByT5-small glyph encoder it loads.
    "hunyuanvideo-1.5-480p-t2v": RealSpec(
        "HunyuanVideo15Pipeline", ("HunyuanVideo15Transformer3DModel", _HY15),
        ("AutoencoderKLHunyuanVideo15", {}),
        {"text_encoder": _QWEN25VL7B, "text_encoder_2": _BYT5_SMALL}),
    "hunyuanvideo-1.5-480p-i2v": RealSpec(
        "HunyuanVideo15ImageToVideoPipeline",
        ("HunyuanVideo15Transformer3DModel", {**_HY15, "task_type": "i2v"}),
        ("AutoencoderKLHunyuanVideo15", {}),
        {"text_encoder": _QWEN25VL7B, "text_encoder_2": _BYT5_SMALL,
         "image_encoder": _SIGLIP_SO400M}),
    # Kandinsky 5.0 Lite: transformer/config.json of the Lite checkpoints (diffusers docs,
    # Kandinsky's README), HunyuanVideo's VAE, the whole Qwen2.5-VL-7B, CLIP-L text.
    "kandinsky5-t2v-lite-5s": RealSpec(
        "Kandinsky5T2VPipeline", ("Kandinsky5Transformer3DModel", _K5LITE),
        ("AutoencoderKLHunyuanVideo", {}), {"text_encoder": _QWEN25VL7B_FULL,
                                            "text_encoder_2": _CLIP_L}),
    "kandinsky5-t2v-lite-distilled-5s": RealSpec(
        "Kandinsky5T2VPipeline", ("Kandinsky5Transformer3DModel", _K5LITE),
        ("AutoencoderKLHunyuanVideo", {}), {"text_encoder": _QWEN25VL7B_FULL,
                                            "text_encoder_2": _CLIP_L}),
    # Sana Video 2B 480p: diffusers' scripts/convert_sana_video_to_diffusers.py (transformer_kwargs,
    # sample_size 30 and patch 1×2×2 at 480p), Wan 2.1's VAE, Gemma-2-2B-it's decoder.
    "sana-video-2b-480p": RealSpec(
        "SanaVideoPipeline",
        ("SanaVideoTransformer3DModel",
         {"in_channels": 16, "out_channels": 16, "num_attention_heads": 20,
          "attention_head_dim": 112, "num_layers": 20, "num_cross_attention_heads": 20,
          "cross_attention_head_dim": 112, "cross_attention_dim": 2240, "caption_channels": 2304,
          "mlp_ratio": 3.0, "attention_bias": False, "sample_size": 30, "patch_size": (1, 2, 2),
          "norm_elementwise_affine": False, "norm_eps": 1e-6,
          "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 1024}),
        ("AutoencoderKLWan", {}),
        {"text_encoder": ("Gemma2Model", "Gemma2Config",
                          {"vocab_size": 256000, "hidden_size": 2304, "intermediate_size": 9216,
                           "num_hidden_layers": 26, "num_attention_heads": 8,
                           "num_key_value_heads": 4, "head_dim": 256})},
        scheduler="DPMSolverMultistepScheduler"),
    # LTX-2 (2.0): diffusers' scripts/convert_ltx2_to_diffusers.py, version "2.0" (transformer,
    # connectors, video VAE, audio VAE, vocoder) and Gemma 3 12B (google/gemma-3-12b-it's config:
    # 48 layers, 3840 wide, 16 heads / 8 KV of 256, MLP 15360, 262208 tokens; SigLIP at 896 px).
    "ltx-2": RealSpec(
        "LTX2Pipeline", ("LTX2VideoTransformer3DModel", _LTX2_TRANSFORMER),
        ("AutoencoderKLLTX2Video", _LTX2_VAE),
        {"text_encoder": ("Gemma3ForConditionalGeneration", "Gemma3Config", _GEMMA3_12B)},
        others={"connectors": ("LTX2TextConnectors", _LTX2_CONNECTORS),
                "audio_vae": ("AutoencoderKLLTX2Audio", _LTX2_AUDIO_VAE),
                "vocoder": ("LTX2Vocoder", _LTX2_VOCODER)}),
    "kandinsky5-t2v-lite-10s": RealSpec(
        "Kandinsky5T2VPipeline", ("Kandinsky5Transformer3DModel", _K5LITE),
        ("AutoencoderKLHunyuanVideo", {}), {"text_encoder": _QWEN25VL7B_FULL,
                                            "text_encoder_2": _CLIP_L}),
}


def build_components(name: str, device: str = "meta", dtype: Any = None) -> dict[str, Any]:
    """The real-size models of preset ``name``, constructed on ``device`` (no weights)."""
    mods = require_synth()
    torch, diffusers, transformers = mods["torch"], mods["diffusers"], mods["transformers"]
    spec = REAL[name]
    out: dict[str, Any] = {}
    previous = torch.get_default_dtype()
    if dtype is not None:
        # Parameters are created in this dtype: no float32 copy of 20B parameters first.
        torch.set_default_dtype(dtype)
    try:
        _construct(spec, out, torch, diffusers, transformers, device)
    finally:
        torch.set_default_dtype(previous)
    return out


def _construct(spec: RealSpec, out: dict[str, Any], torch: Any, diffusers: Any,
               transformers: Any, device: str) -> None:
    with torch.device(device):
        tcls, tkw = spec.transformer
        out["transformer"] = getattr(diffusers, tcls)(**tkw)
        if spec.second_transformer:
            out["transformer_2"] = getattr(diffusers, tcls)(**tkw)
        vcls, vkw = spec.vae
        out["vae"] = getattr(diffusers, vcls)(**vkw)
        for comp, (mcls, ccls, ckw) in spec.encoders.items():
            out[comp] = getattr(transformers, mcls)(getattr(transformers, ccls)(**ckw))
        if spec.others:
            import diffusers.pipelines.ltx2 as ltx2_pipelines

            for comp, (cls, kw) in spec.others.items():
                out[comp] = (getattr(diffusers, cls, None) or getattr(ltx2_pipelines, cls))(**kw)


def count_params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def build_real(name: str, out_dir: Path) -> Path:
    """Random-weight real-size pipeline of preset ``name``, saved in diffusers format.

    Built on the meta device and then filled with N(0, 0.02) in bf16 on the CPU: the default
    initialisers take far longer at billions of parameters and the values do not matter.
    """
    mods = require_synth()
    torch, diffusers = mods["torch"], mods["diffusers"]
    from tinymodels import _tokenizer

    spec = REAL[name]
    comps = build_components(name, "meta", torch.bfloat16)
    with torch.no_grad():
        for key, m in list(comps.items()):
            m = m.to_empty(device="cpu").to(torch.bfloat16)
            for p in m.parameters():
                p.normal_(0.0, 0.02)
            for b in m.buffers():
                if b.is_floating_point():
                    # Ones, not zeros: some buffers are divided by (latents_std).
                    b.fill_(1.0)
            comps[key] = m.eval()
    if "image_encoder" in comps:
        from transformers import CLIPImageProcessor

        comps["image_processor"] = CLIPImageProcessor()
    comps["tokenizer"] = _tokenizer(bos=spec.pipeline.startswith("Hunyuan"))
    if "text_encoder_2" in comps:
        comps["tokenizer_2"] = _tokenizer(bos=True)
    comps["scheduler"] = getattr(diffusers, spec.scheduler)()
    pipe = getattr(diffusers, spec.pipeline)(**comps, **spec.extra)
    pipe.save_pretrained(out_dir)
    return out_dir
