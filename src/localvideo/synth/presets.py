"""Known model presets, family detection for local folders, and fetching weights on request.

A preset names a diffusers-format repository on the Hugging Face hub plus what the planner
needs to know before any weight is read: parameter counts per component, transformer width
and depth, how much the VAE compresses, and the family's defaults. Weights are never
downloaded implicitly; ``localvideo models pull NAME`` is the one command that does it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import DependencyError, ModelNotFoundError, SynthError, UsageError

FAMILIES = ("ltx", "wan", "hunyuan", "cogvideox", "skyreels", "hunyuan15", "kandinsky5",
            "sana", "ltx2")

# model_index.json `_class_name` → (family, takes an image)
PIPELINE_CLASSES: dict[str, tuple[str, bool]] = {
    "LTXPipeline": ("ltx", False),
    "LTXImageToVideoPipeline": ("ltx", True),
    "LTXConditionPipeline": ("ltx", True),
    "WanPipeline": ("wan", False),
    "WanImageToVideoPipeline": ("wan", True),
    "HunyuanVideoPipeline": ("hunyuan", False),
    "HunyuanVideoImageToVideoPipeline": ("hunyuan", True),
    "CogVideoXPipeline": ("cogvideox", False),
    "CogVideoXImageToVideoPipeline": ("cogvideox", True),
    "SkyReelsV2Pipeline": ("skyreels", False),
    "SkyReelsV2ImageToVideoPipeline": ("skyreels", True),
    "SkyReelsV2DiffusionForcingPipeline": ("skyreels", False),
    "SkyReelsV2DiffusionForcingImageToVideoPipeline": ("skyreels", True),
    "HunyuanVideo15Pipeline": ("hunyuan15", False),
    "HunyuanVideo15ImageToVideoPipeline": ("hunyuan15", True),
    "Kandinsky5T2VPipeline": ("kandinsky5", False),
    "Kandinsky5I2VPipeline": ("kandinsky5", True),
    "SanaVideoPipeline": ("sana", False),
    "SanaImageToVideoPipeline": ("sana", True),
    "LTX2Pipeline": ("ltx2", False),
    "LTX2ImageToVideoPipeline": ("ltx2", True),
}


@dataclass(frozen=True)
class Profile:
    """What the planner knows about a model, from a preset or read from a folder.

    ``components`` are parameter counts; ``blocks`` the number of repeated blocks a
    component streams through under group offload; ``hidden`` the transformer width (it sets
    activation memory per latent token). ``vae_spatial``/``vae_temporal`` are the VAE's
    compression and ``patch`` the transformer's spatial patch, so tokens per frame are
    (H / vae_spatial / patch) × (W / vae_spatial / patch). ``cfg`` says whether the pipeline
    batches the unconditional pass with the conditional one (LTX, CogVideoX: twice the
    activations); Wan runs them one after the other (twice the time, same memory) and
    HunyuanVideo's guidance is distilled into the model. ``decode_bytes_per_px`` and
    ``decode_frames`` model the VAE decode: bytes per output pixel held at once, for how
    many frames at a time (0 = all frames together).
    """

    family: str
    components: dict[str, float]
    blocks: dict[str, int]
    hidden: int
    vae_spatial: int
    vae_temporal: int
    patch: int
    cfg: bool
    decode_bytes_per_px: float
    decode_frames: int = 0
    active: tuple[str, ...] = ()   # components that run denoising (Wan 2.2 A14B: 2 experts)


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    repo_id: str
    pipeline: str            # diffusers class in model_index.json
    i2v: bool
    height: int
    width: int
    frames: int
    fps: float
    steps: int
    guidance: float
    profile: Profile
    revision: str = "main"
    params: str = ""         # human size, e.g. "2B"
    note: str = ""

    @property
    def spatial_multiple(self) -> int:
        return self.profile.vae_spatial * self.profile.patch


_B = 1e9
# Text encoders shared by several families (parameter counts of the published checkpoints).
_T5_XXL = 4.76 * _B
_UMT5_XXL = 5.68 * _B

_LTX = Profile("ltx", {"transformer": 1.92 * _B, "text_encoder": _T5_XXL, "vae": 0.42 * _B},
               {"transformer": 28, "text_encoder": 24}, hidden=2048, vae_spatial=32,
               vae_temporal=8, patch=1, cfg=True, decode_bytes_per_px=240.0)
_LTX13 = Profile("ltx", {"transformer": 13.1 * _B, "text_encoder": _T5_XXL, "vae": 0.42 * _B},
                 {"transformer": 48, "text_encoder": 24}, hidden=4096, vae_spatial=32,
                 vae_temporal=8, patch=1, cfg=False, decode_bytes_per_px=240.0)
_WAN13 = Profile("wan", {"transformer": 1.42 * _B, "text_encoder": _UMT5_XXL, "vae": 0.127 * _B},
                 {"transformer": 30, "text_encoder": 24}, hidden=1536, vae_spatial=8,
                 vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=260.0, decode_frames=4)
_WAN14 = Profile("wan", {"transformer": 14.3 * _B, "text_encoder": _UMT5_XXL, "vae": 0.127 * _B},
                 {"transformer": 40, "text_encoder": 24}, hidden=5120, vae_spatial=8,
                 vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=260.0, decode_frames=4)
_WAN14I = Profile("wan", {"transformer": 16.4 * _B, "text_encoder": _UMT5_XXL,
                          "image_encoder": 0.63 * _B, "vae": 0.127 * _B},
                  {"transformer": 40, "text_encoder": 24, "image_encoder": 32}, hidden=5120,
                  vae_spatial=8, vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=260.0,
                  decode_frames=4)
_WAN5 = Profile("wan", {"transformer": 5.0 * _B, "text_encoder": _UMT5_XXL, "vae": 0.7 * _B},
                {"transformer": 30, "text_encoder": 24}, hidden=3072, vae_spatial=16,
                vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=300.0, decode_frames=4)
_WANA14 = Profile("wan", {"transformer": 14.3 * _B, "transformer_2": 14.3 * _B,
                          "text_encoder": _UMT5_XXL, "vae": 0.127 * _B},
                  {"transformer": 40, "transformer_2": 40, "text_encoder": 24}, hidden=5120,
                  vae_spatial=8, vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=260.0,
                  decode_frames=4, active=("transformer", "transformer_2"))
_HY = Profile("hunyuan", {"transformer": 12.8 * _B, "text_encoder": 7.5 * _B,
                          "text_encoder_2": 0.12 * _B, "vae": 0.25 * _B},
              {"transformer": 60, "text_encoder": 32, "text_encoder_2": 12}, hidden=3072,
              vae_spatial=8, vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=500.0)
_HYI = Profile("hunyuan", {"transformer": 12.8 * _B, "text_encoder": 8.4 * _B,
                           "text_encoder_2": 0.12 * _B, "vae": 0.25 * _B},
               {"transformer": 60, "text_encoder": 32, "text_encoder_2": 12}, hidden=3072,
               vae_spatial=8, vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=500.0)
_COG2 = Profile("cogvideox", {"transformer": 1.69 * _B, "text_encoder": _T5_XXL, "vae": 0.22 * _B},
                {"transformer": 30, "text_encoder": 24}, hidden=1920, vae_spatial=8,
                vae_temporal=4, patch=2, cfg=True, decode_bytes_per_px=300.0, decode_frames=8)
_COG5 = Profile("cogvideox", {"transformer": 5.57 * _B, "text_encoder": _T5_XXL, "vae": 0.22 * _B},
                {"transformer": 42, "text_encoder": 24}, hidden=3072, vae_spatial=8,
                vae_temporal=4, patch=2, cfg=True, decode_bytes_per_px=300.0, decode_frames=8)
# SkyReels-V2: Wan 2.1's transformer shapes (diffusers' scripts/convert_skyreelsv2_to_diffusers.py:
# DF-1.3B = 12 heads × 128, ffn 8960, 30 layers, plus the fps embedding; 14B = 40 × 128, ffn
# 13824, 40 layers; I2V-14B adds the CLIP image branch), Wan 2.1's VAE and UMT5-XXL. Guidance
# runs as two passes, like Wan: time, not activation memory.
_SKY13 = Profile("skyreels", {"transformer": 1.44 * _B, "text_encoder": _UMT5_XXL,
                              "vae": 0.127 * _B},
                 {"transformer": 30, "text_encoder": 24}, hidden=1536, vae_spatial=8,
                 vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=260.0, decode_frames=4)
_SKY14 = Profile("skyreels", {"transformer": 14.3 * _B, "text_encoder": _UMT5_XXL,
                              "vae": 0.127 * _B},
                 {"transformer": 40, "text_encoder": 24}, hidden=5120, vae_spatial=8,
                 vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=260.0, decode_frames=4)
_SKY14I = Profile("skyreels", {"transformer": 16.4 * _B, "text_encoder": _UMT5_XXL,
                               "image_encoder": 0.63 * _B, "vae": 0.127 * _B},
                  {"transformer": 40, "text_encoder": 24, "image_encoder": 32}, hidden=5120,
                  vae_spatial=8, vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=260.0,
                  decode_frames=4)
# HunyuanVideo 1.5: 8.3B transformer (54 double-stream blocks, 16 heads × 128, patch 1; diffusers'
# scripts/convert_hunyuan_video1_5_to_diffusers.py), a 1.26B VAE compressing 16× / 4×, Qwen2.5-VL-7B's
# text model and ByT5-small's encoder (+ SigLIP so400m for image to video). Counted on the meta
# device from those configs (tests/realsize.py). CFG runs as two guider passes: time, not memory.
_HY15 = Profile("hunyuan15", {"transformer": 8.33 * _B, "text_encoder": 7.07 * _B,
                              "text_encoder_2": 0.218 * _B, "vae": 1.26 * _B},
                {"transformer": 54, "text_encoder": 28, "text_encoder_2": 12}, hidden=2048,
                vae_spatial=16, vae_temporal=4, patch=1, cfg=False, decode_bytes_per_px=300.0)
_HY15I = Profile("hunyuan15", {"transformer": 8.33 * _B, "text_encoder": 7.07 * _B,
                               "text_encoder_2": 0.218 * _B, "image_encoder": 0.428 * _B,
                               "vae": 1.26 * _B},
                 {"transformer": 54, "text_encoder": 28, "text_encoder_2": 12,
                  "image_encoder": 27}, hidden=2048, vae_spatial=16, vae_temporal=4, patch=1,
                 cfg=False, decode_bytes_per_px=300.0)
# Kandinsky 5.0 Video Lite: a 2.0B transformer (model_dim 1792, 32 visual + 2 text blocks, patch
# 1×2×2; its transformer/config.json as the diffusers docs and Kandinsky's README give it),
# HunyuanVideo's VAE, Qwen2.5-VL-7B whole (8.29B, vision tower included: the pipeline loads
# Qwen2_5_VLForConditionalGeneration) and CLIP-L's text model. Counted in tests/realsize.py.
_K5LITE = Profile("kandinsky5", {"transformer": 2.01 * _B, "text_encoder": 8.29 * _B,
                                 "text_encoder_2": 0.123 * _B, "vae": 0.25 * _B},
                  {"transformer": 32, "text_encoder": 28, "text_encoder_2": 12}, hidden=1792,
                  vae_spatial=8, vae_temporal=4, patch=2, cfg=False, decode_bytes_per_px=500.0)
# Sana Video 2B 480p: a 2.06B linear-attention transformer (20 layers, 20 heads × 112, patch
# 1×2×2; diffusers' scripts/convert_sana_video_to_diffusers.py), Wan 2.1's VAE, Gemma-2-2B's
# decoder (2.61B). CFG batches both passes (twice the activations).
_SANA = Profile("sana", {"transformer": 2.06 * _B, "text_encoder": 2.61 * _B, "vae": 0.127 * _B},
                {"transformer": 20, "text_encoder": 26}, hidden=2240, vae_spatial=8,
                vae_temporal=4, patch=2, cfg=True, decode_bytes_per_px=260.0, decode_frames=4)
# LTX-2 (2.0): an 18.9B audio+video transformer (48 layers, video 32 heads × 128, audio 32 × 64;
# diffusers' scripts/convert_ltx2_to_diffusers.py), Gemma 3 12B (12.2B with its vision tower), 1.43B
# of text connectors, a 1.22B video VAE (32× / 8×, patch 1), a small audio VAE and vocoder.
# Counted in tests/realsize.py. CFG batches both passes. The planner counts video tokens; the
# audio stream (about one latent per 40 ms) adds few.
_LTX2 = Profile("ltx2", {"transformer": 18.88 * _B, "text_encoder": 12.2 * _B,
                         "connectors": 1.43 * _B, "vae": 1.22 * _B, "audio_vae": 0.053 * _B,
                         "vocoder": 0.056 * _B},
                {"transformer": 48, "text_encoder": 48, "connectors": 2}, hidden=4096,
                vae_spatial=32, vae_temporal=8, patch=1, cfg=True, decode_bytes_per_px=240.0)

PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("ltx-video", "ltx", "Lightricks/LTX-Video", "LTXPipeline", False, 480, 704, 161, 25,
           50, 3.0, _LTX, params="2B"),
    Preset("ltx-video-i2v", "ltx", "Lightricks/LTX-Video", "LTXImageToVideoPipeline", True,
           480, 704, 161, 25, 50, 3.0, _LTX, params="2B",
           note="same weights as ltx-video, first frame from --image"),
    Preset("ltx-video-0.9.7-distilled", "ltx", "Lightricks/LTX-Video-0.9.7-distilled",
           "LTXConditionPipeline", True, 480, 704, 161, 30, 8, 1.0, _LTX13, params="13B",
           note="distilled: few steps, no CFG; --image optional"),
    Preset("wan2.1-t2v-1.3b", "wan", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "WanPipeline", False,
           480, 832, 81, 16, 50, 5.0, _WAN13, params="1.3B"),
    Preset("wan2.1-t2v-14b", "wan", "Wan-AI/Wan2.1-T2V-14B-Diffusers", "WanPipeline", False,
           720, 1280, 81, 16, 50, 5.0, _WAN14, params="14B"),
    Preset("wan2.1-i2v-14b-480p", "wan", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
           "WanImageToVideoPipeline", True, 480, 832, 81, 16, 50, 5.0, _WAN14I, params="14B"),
    Preset("wan2.2-ti2v-5b", "wan", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "WanPipeline", False,
           704, 1280, 121, 24, 50, 5.0, _WAN5, params="5B",
           note="text or image to video; sizes are multiples of 32"),
    Preset("wan2.2-t2v-a14b", "wan", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", "WanPipeline", False,
           720, 1280, 81, 16, 40, 4.0, _WANA14, params="2×14B MoE",
           note="two 14B experts, one active per step"),
    Preset("hunyuanvideo", "hunyuan", "hunyuanvideo-community/HunyuanVideo",
           "HunyuanVideoPipeline", False, 720, 1280, 129, 24, 50, 6.0, _HY, params="13B"),
    Preset("hunyuanvideo-i2v", "hunyuan", "hunyuanvideo-community/HunyuanVideo-I2V",
           "HunyuanVideoImageToVideoPipeline", True, 720, 1280, 129, 24, 50, 1.0, _HYI,
           params="13B"),
    Preset("cogvideox-2b", "cogvideox", "THUDM/CogVideoX-2b", "CogVideoXPipeline", False,
           480, 720, 49, 8, 50, 6.0, _COG2, params="2B"),
    Preset("cogvideox-5b", "cogvideox", "THUDM/CogVideoX-5b", "CogVideoXPipeline", False,
           480, 720, 49, 8, 50, 6.0, _COG5, params="5B"),
    Preset("cogvideox-5b-i2v", "cogvideox", "THUDM/CogVideoX-5b-I2V",
           "CogVideoXImageToVideoPipeline", True, 480, 720, 49, 8, 50, 6.0, _COG5, params="5B"),
    # SkyReels-V2 sizes, frames and steps from Skywork's README (540P: 544×960 × 97 frames,
    # 720P: 720×1280 × 121, 24 fps; 30 steps, guidance 6.0 for text, 5.0 for image).
    Preset("skyreels-v2-df-1.3b-540p", "skyreels", "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers",
           "SkyReelsV2DiffusionForcingPipeline", False, 544, 960, 97, 24, 30, 6.0, _SKY13,
           params="1.3B", note="diffusion forcing: longer than 97 frames in overlapping "
           "windows; --image optional"),
    Preset("skyreels-v2-df-14b-540p", "skyreels", "Skywork/SkyReels-V2-DF-14B-540P-Diffusers",
           "SkyReelsV2DiffusionForcingPipeline", False, 544, 960, 97, 24, 30, 6.0, _SKY14,
           params="14B", note="diffusion forcing; --image optional"),
    Preset("skyreels-v2-t2v-14b-720p", "skyreels", "Skywork/SkyReels-V2-T2V-14B-720P-Diffusers",
           "SkyReelsV2Pipeline", False, 720, 1280, 121, 24, 30, 6.0, _SKY14, params="14B"),
    Preset("skyreels-v2-i2v-14b-720p", "skyreels", "Skywork/SkyReels-V2-I2V-14B-720P-Diffusers",
           "SkyReelsV2ImageToVideoPipeline", True, 720, 1280, 121, 24, 30, 5.0, _SKY14I,
           params="14B"),
    # HunyuanVideo 1.5 (repos named in diffusers' own examples): 121 frames at 24 fps, 50
    # steps, guidance 6.0 (the guider the conversion script saves); 480p is 480×848 at 16:9.
    Preset("hunyuanvideo-1.5-480p-t2v", "hunyuan15",
           "hunyuanvideo-community/HunyuanVideo-1.5-480p_t2v", "HunyuanVideo15Pipeline", False,
           480, 848, 121, 24, 50, 6.0, _HY15, params="8.3B"),
    Preset("hunyuanvideo-1.5-480p-i2v", "hunyuan15",
           "hunyuanvideo-community/HunyuanVideo-1.5-480p_i2v",
           "HunyuanVideo15ImageToVideoPipeline", True, 480, 848, 121, 24, 50, 6.0, _HY15I,
           params="8.3B", note="sizes are its 480p buckets (nearest to the image's shape)"),
    # Kandinsky 5.0 Lite (diffusers docs' model table and examples): 512×768, 121 frames (5 s at
    # 24 fps) or 241 (10 s), 50 steps at guidance 5.0; the distilled one 16 steps, no CFG.
    Preset("kandinsky5-t2v-lite-5s", "kandinsky5",
           "kandinskylab/Kandinsky-5.0-T2V-Lite-sft-5s-Diffusers", "Kandinsky5T2VPipeline",
           False, 512, 768, 121, 24, 50, 5.0, _K5LITE, params="2B"),
    Preset("kandinsky5-t2v-lite-distilled-5s", "kandinsky5",
           "kandinskylab/Kandinsky-5.0-T2V-Lite-distilled16steps-5s-Diffusers",
           "Kandinsky5T2VPipeline", False, 512, 768, 121, 24, 16, 1.0, _K5LITE, params="2B",
           note="16 steps, no CFG"),
    Preset("kandinsky5-t2v-lite-10s", "kandinsky5",
           "kandinskylab/Kandinsky-5.0-T2V-Lite-sft-10s-Diffusers", "Kandinsky5T2VPipeline",
           False, 512, 768, 241, 24, 50, 5.0, _K5LITE, params="2B",
           note="10 s; Kandinsky recommends --attention flex and --compile"),
    # Sana Video (the repo diffusers' examples load): 480×832, 81 frames at 16 fps (Wan's
    # VAE timing), 50 steps, guidance 6.0 (the pipeline's defaults).
    Preset("sana-video-2b-480p", "sana", "Efficient-Large-Model/SANA-Video_2B_480p_diffusers",
           "SanaVideoPipeline", False, 480, 832, 81, 16, 50, 6.0, _SANA, params="2B",
           note="--image optional (same folder)"),
    # LTX-2 (the repo and settings of diffusers' own example): 512×768, 121 frames at 24 fps,
    # 30 steps, guidance 3.0; the clip keeps its generated sound track (AAC).
    Preset("ltx-2", "ltx2", "Lightricks/LTX-2", "LTX2Pipeline", False, 512, 768, 121, 24, 30,
           3.0, _LTX2, params="19B", note="video with sound; --image optional (same folder)"),
]}


@dataclass
class ResolvedModel:
    """A model ready to load: where it is, which family, and where it came from."""

    path: Path
    family: str
    pipeline: str
    i2v: bool
    preset: Preset | None
    profile: Profile

    @property
    def label(self) -> str:
        return self.preset.name if self.preset else str(self.path)

    def describe(self) -> dict[str, Any]:
        return {"name": self.preset.name if self.preset else None,
                "repo_id": self.preset.repo_id if self.preset else None,
                "revision": self.preset.revision if self.preset else None,
                "path": str(self.path), "family": self.family, "pipeline": self.pipeline,
                "i2v": self.i2v}


def preset_dir(models_dir: Path, preset: Preset) -> Path:
    return models_dir / preset.repo_id.replace("/", "--")


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}",
                         f"known models: {', '.join(PRESETS)} (or pass --model-path DIR; "
                         "see `localvideo models`)") from None


def read_model_index(model_dir: Path) -> dict[str, Any]:
    index = model_dir / "model_index.json"
    if not model_dir.is_dir():
        raise UsageError(f"model folder {model_dir} does not exist",
                         "pass --model-path with a diffusers-format folder (it holds "
                         "model_index.json), or --model NAME with a preset")
    if not index.is_file():
        raise UsageError(f"{model_dir} is not a diffusers-format model: no model_index.json",
                         "point --model-path at the folder that holds model_index.json")
    try:
        data = json.loads(index.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {index}: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{index} is not a JSON object")
    return data


def detect_family(model_dir: Path) -> tuple[str, str, bool]:
    """(family, pipeline class, takes an image) from model_index.json ``_class_name``."""
    cls = str(read_model_index(model_dir).get("_class_name", ""))
    if cls not in PIPELINE_CLASSES:
        raise UsageError(
            f"{model_dir} holds a {cls or 'unnamed'} pipeline, which localvideo does not drive",
            f"supported pipelines: {', '.join(PIPELINE_CLASSES)}")
    family, i2v = PIPELINE_CLASSES[cls]
    return family, cls, i2v


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _count_params(folder: Path) -> float:
    """Parameters stored in a component folder, read from safetensors headers (no weights)."""
    total = 0.0
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        # .bin checkpoints: the file size over 2 bytes is close enough for a half-precision save.
        return sum(f.stat().st_size for f in folder.glob("*.bin")) / 2.0
    from safetensors import safe_open

    for f in files:
        with safe_open(str(f), framework="numpy") as st:
            for key in st.keys():  # noqa: SIM118 - safe_open is not a Mapping
                n = 1
                for dim in st.get_slice(key).get_shape():
                    n *= int(dim)
                total += n
    return total


def profile_from_dir(model_dir: Path, family: str) -> Profile:
    """Build a planner profile from a local folder: real parameter counts and configs."""
    index = read_model_index(model_dir)
    components: dict[str, float] = {}
    blocks: dict[str, int] = {}
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        folder = model_dir / name
        if not folder.is_dir() or name in ("tokenizer", "tokenizer_2", "scheduler"):
            continue
        n = _count_params(folder)
        if n:
            components[name] = n
            cfg = _read_config(folder / "config.json")
            # Kandinsky 5 names its depth num_visual_blocks.
            depth = (cfg.get("num_layers") or cfg.get("num_hidden_layers")
                     or cfg.get("num_visual_blocks") or 0) + (cfg.get("num_single_layers") or 0)
            if depth:
                blocks[name] = int(depth)
    tcfg = _read_config(model_dir / "transformer" / "config.json")
    vcfg = _read_config(model_dir / "vae" / "config.json")
    # Kandinsky 5 gives its width as model_dim, the others as heads × head size.
    hidden = int(tcfg.get("model_dim") or
                 tcfg.get("num_attention_heads", 1) * tcfg.get("attention_head_dim", 64))
    patch_raw = tcfg.get("patch_size", 1)
    patch = int(patch_raw[-1] if isinstance(patch_raw, list) else patch_raw or 1)
    from .family import get as get_family  # family imports this module: a cycle

    spatial, temporal = get_family(family).vae_factors(vcfg)
    base = {"ltx": _LTX, "wan": _WAN13, "hunyuan": _HY, "cogvideox": _COG2,
            "skyreels": _SKY13, "hunyuan15": _HY15,
            "kandinsky5": _K5LITE, "sana": _SANA, "ltx2": _LTX2}[family]
    active = tuple(n for n in ("transformer", "transformer_2") if n in components)
    return Profile(family, components, blocks, hidden=hidden, vae_spatial=spatial,
                   vae_temporal=temporal, patch=patch, cfg=base.cfg,
                   decode_bytes_per_px=base.decode_bytes_per_px,
                   decode_frames=base.decode_frames, active=active)


def resolve(models_dir: Path, *, model: str | None = None,
            model_path: str | Path | None = None) -> ResolvedModel:
    """Find the weights for ``--model NAME`` or ``--model-path DIR``; never download."""
    if model and model_path:
        raise UsageError("pass either --model or --model-path, not both")
    if model_path:
        path = Path(model_path).expanduser().resolve()
        family, cls, i2v = detect_family(path)
        return ResolvedModel(path, family, cls, i2v, None, profile_from_dir(path, family))
    if not model:
        raise UsageError("no model given",
                         "pass --model NAME (see `localvideo models`) or --model-path DIR")
    preset = get_preset(model)
    path = preset_dir(models_dir, preset)
    if not (path / "model_index.json").is_file():
        raise ModelNotFoundError(
            f"the weights of {preset.name} ({preset.repo_id}) are not in {path}",
            f"fetch them with `localvideo models pull {preset.name}` "
            f"(or pass --model-path DIR with a local copy)")
    family, cls, i2v = detect_family(path)
    return ResolvedModel(path, family, cls, i2v or preset.i2v, preset, preset.profile)


def list_models(models_dir: Path) -> list[dict[str, Any]]:
    out = []
    for p in PRESETS.values():
        path = preset_dir(models_dir, p)
        present = (path / "model_index.json").is_file()
        out.append({"name": p.name, "family": p.family, "repo_id": p.repo_id,
                    "revision": p.revision, "pipeline": p.pipeline, "i2v": p.i2v,
                    "params": p.params, "height": p.height, "width": p.width,
                    "frames": p.frames, "fps": p.fps, "steps": p.steps,
                    "guidance": p.guidance, "present": present,
                    "path": str(path) if present else None, "note": p.note,
                    "profile": asdict(p.profile)})
    return out


def pull(models_dir: Path, name: str) -> dict[str, Any]:
    """Download a preset's diffusers-format snapshot into the models folder."""
    preset = get_preset(name)
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:
        raise DependencyError("pulling models needs huggingface_hub",
                              "install the synth extra: pip install 'localvideo[synth]'") from exc
    target = preset_dir(models_dir, preset)
    target.mkdir(parents=True, exist_ok=True)
    try:
        snapshot_download(repo_id=preset.repo_id, revision=preset.revision,
                          local_dir=str(target))
    except LocalEntryNotFoundError as exc:
        _drop_if_empty(target)
        raise SynthError(
            f"cannot download {preset.repo_id}: the Hugging Face hub is not reachable ({exc})",
            "connect to the network (or unset HF_HUB_OFFLINE) and rerun "
            f"`localvideo models pull {name}`; or copy the folder to {target}") from exc
    except HfHubHTTPError as exc:
        _drop_if_empty(target)
        raise SynthError(f"the hub refused {preset.repo_id}: {exc}",
                         "gated models need `hf auth login` first (and the licence accepted "
                         "on the model page)") from exc
    except OSError as exc:
        _drop_if_empty(target)
        raise SynthError(f"cannot write {target}: {exc}",
                         "free disk space or set [synth] models_dir in config.toml") from exc
    return {"name": name, "repo_id": preset.repo_id, "revision": preset.revision,
            "path": str(target)}


def _drop_if_empty(folder: Path) -> None:
    # No empty folder left behind; a partial download stays, so a retry resumes it.
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
