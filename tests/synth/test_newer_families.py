"""The newer families (SkyReels-V2, …) on tiny real pipelines, compared with plain diffusers.

Each tiny folder is found through ``--model-path``'s own detection (model_index.json), planned,
denoised to latents that are saved, decoded by the family file and encoded to H.264 — the
engine the service runs. The frames must equal what the same call straight through the
diffusers pipeline decodes, and a later ``localvideo decode`` of the saved latents must give
them again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.timeout(120), pytest.mark.synth]
pytest.importorskip("diffusers", reason="the synth extra is not installed")

import tiny_newer  # noqa: E402  (needs diffusers)

PROMPT = "a red fox running through snow"


@pytest.fixture(scope="module")
def newer_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    root = tmp_path_factory.mktemp("tiny-newer")
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = tiny_newer.build(kind, root / kind)
        return built[kind]

    return get


def run_ours(kind: str, model_dir: Path, out: Path, *, image: Path | None = None,
             frames: int | None = None, seed: int = 7,
             on_progress: Callable[[dict[str, Any]], None] | None = None,
             ) -> tuple[dict[str, Any], Any]:
    """Detection → plan → denoise → latents → decode → MP4, as `generate --model-path` runs."""
    from localvideo.synth.engine import Speed, generate
    from localvideo.synth.family import Request
    from localvideo.synth.family import get as get_family
    from localvideo.synth.planner import make_plan
    from localvideo.synth.presets import resolve

    model = resolve(out.parent, model_path=model_dir)
    family = get_family(model.family)
    s = tiny_newer.size(kind)
    req = Request(prompt=PROMPT, negative=None, image=image, frames=frames or s["frames"],
                  height=s["height"], width=s["width"], fps=24.0, steps=2,
                  guidance=float(family.defaults["guidance"]), seed=seed)
    family.check_inputs(req, model.path, i2v=image is not None)
    plan = make_plan(model.profile, device="cpu", vram_bytes=None, height=req.height,
                     width=req.width, frames=req.frames, guidance=req.guidance)
    result = generate(model, req, plan, device="cpu", out=out, speed=Speed(),
                      on_progress=on_progress)
    return result, req


def plain_frames(pipeline: str, model_dir: Path, req: Any, *, image: Path | None = None,
                 **extra: Any) -> Any:
    """The same call straight through diffusers, decoded by the pipeline itself (with the
    family's own extra arguments, e.g. frame rate, as the engine passes them)."""
    import diffusers
    import torch
    from PIL import Image

    from localvideo.synth.family import get as get_family
    from localvideo.synth.presets import detect_family
    from localvideo.synth.video import to_uint8

    pipe = getattr(diffusers, pipeline).from_pretrained(str(model_dir))
    pipe.set_progress_bar_config(disable=True)
    kwargs = get_family(detect_family(model_dir)[0]).extra_kwargs(pipe, req)
    kwargs.update(extra)
    if image is not None:
        with Image.open(image) as im:
            kwargs["image"] = im.convert("RGB").resize((req.width, req.height))
    # Pass what the pipeline takes: HunyuanVideo 1.5 has no guidance_scale (its folder's guider
    # holds it) and its image pipeline no height/width (they come from the image); Sana calls
    # the frame count ``frames`` (passed by the caller).
    takes = inspect.signature(pipe.__call__).parameters
    for name, value in (("guidance_scale", req.guidance), ("height", req.height),
                        ("width", req.width), ("num_frames", req.frames)):
        if name in takes:
            kwargs[name] = value
    video = pipe(prompt=req.prompt, num_inference_steps=req.steps,
                 output_type="pt", generator=torch.Generator("cpu").manual_seed(req.seed),
                 **kwargs).frames
    # output_type="pt" is (B, F, C, H, W) in [0, 1]; ours goes (B, C, F, H, W) in [-1, 1].
    return to_uint8(video.permute(0, 2, 1, 3, 4) * 2 - 1)


def read_mp4(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def check_same(kind: str, ours: np.ndarray, plain: np.ndarray, frames: int) -> int:
    s = tiny_newer.size(kind)
    assert ours.shape == plain.shape == (frames, s["height"], s["width"], 3), (ours.shape,
                                                                                plain.shape)
    # Random weights give noise, but real noise: the frames are not blank.
    assert float(np.std(ours)) > 1.0
    diff = int(np.abs(ours.astype(int) - plain.astype(int)).max())
    print(f"{kind}: max frame difference against plain diffusers {diff}")
    assert diff <= 1, diff
    return diff


def decode_again(latents: str, out: Path) -> np.ndarray:
    from localvideo.synth.engine import decode_file

    return decode_file(Path(latents), out, device="cpu", tiling=False)["frames_array"]


@pytest.mark.parametrize("kind,pipeline,with_image", [
    ("skyreels", "SkyReelsV2Pipeline", False),
    ("skyreels-df", "SkyReelsV2DiffusionForcingPipeline", False),
    ("skyreels-df", "SkyReelsV2DiffusionForcingImageToVideoPipeline", True),   # same folder
    ("skyreels-i2v", "SkyReelsV2ImageToVideoPipeline", True),
])
def test_skyreels_frames_are_the_plain_pipeline_frames(
        kind: str, pipeline: str, with_image: bool, newer_model: Callable[[str], Path],
        first_frame: Path, tmp_path: Path) -> None:
    model_dir = newer_model(kind)
    out = tmp_path / "ours.mp4"
    image = first_frame if with_image else None
    r, req = run_ours(kind, model_dir, out, image=image)
    assert r["pipeline"] == pipeline
    plain = plain_frames(pipeline, model_dir, req, image=image)
    check_same(kind, r["frames_array"], plain, req.frames)
    assert len(read_mp4(out)) == req.frames
    again = decode_again(r["latents"], tmp_path / "again.mp4")
    assert int(np.abs(again.astype(int) - r["frames_array"].astype(int)).max()) <= 2


def test_skyreels_df_goes_past_its_window(newer_model: Callable[[str], Path],
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the trained window the DF pipeline runs overlapping windows; the family passes
    the overlap, and the saved latents still decode to the pipeline's own frames."""
    from localvideo.synth import skyreels

    # A 9-frame window (3 latent frames) with a 5-frame overlap: 17 frames take 3 windows.
    monkeypatch.setattr(skyreels, "BASE_FRAMES_540P", 9)
    monkeypatch.setattr(skyreels, "OVERLAP_HISTORY", 5)
    r, req = run_ours("skyreels-df", newer_model("skyreels-df"), tmp_path / "long.mp4",
                      frames=17)
    kwargs = skyreels.SkyReels().extra_kwargs(
        type(skyreels.DF_T2V, (), {})(), req)    # keyed on the pipeline's class name
    assert kwargs["overlap_history"] == 5 and kwargs["base_num_frames"] == 9
    plain = plain_frames(skyreels.DF_T2V, newer_model("skyreels-df"), req)
    check_same("skyreels-df", r["frames_array"], plain, 17)


@pytest.mark.parametrize("kind,pipeline,with_image", [
    ("hunyuan15", "HunyuanVideo15Pipeline", False),
    ("hunyuan15-i2v", "HunyuanVideo15ImageToVideoPipeline", True),
])
def test_hunyuan15_frames_are_the_plain_pipeline_frames(
        kind: str, pipeline: str, with_image: bool, newer_model: Callable[[str], Path],
        first_frame: Path, tmp_path: Path) -> None:
    """Guidance is set through the guider (6.0 here, as the folder's own); the plain call
    uses the folder's guider untouched, so equal frames mean the two agree."""
    model_dir = newer_model(kind)
    image = first_frame if with_image else None
    steps: list[tuple[int, int]] = []
    r, req = run_ours(kind, model_dir, tmp_path / "ours.mp4", image=image,
                      on_progress=steps.append)
    assert r["pipeline"] == pipeline
    # Progress without a callback argument: one event per scheduler step.
    assert [e["step"] for e in steps if e.get("phase") == "denoise"] == [0, 1, 2]
    plain = plain_frames(pipeline, model_dir, req, image=image)
    check_same(kind, r["frames_array"], plain, req.frames)
    again = decode_again(r["latents"], tmp_path / "again.mp4")
    assert int(np.abs(again.astype(int) - r["frames_array"].astype(int)).max()) <= 2


def test_hunyuan15_image_sizes_are_its_buckets(newer_model: Callable[[str], Path],
                                               first_frame: Path) -> None:
    from localvideo.errors import UsageError
    from localvideo.synth.family import Request
    from localvideo.synth.family import get as get_family
    from localvideo.synth.hunyuan15 import bucket

    fam = get_family("hunyuan15")
    # The real 480p model (target 640, VAE 16×): 16:9 → 480×848, as the pipeline computes.
    assert bucket(480, 854, 640, 16) == (480, 848)
    req = Request(PROMPT, None, first_frame, frames=9, height=16, width=32, fps=24, steps=2,
                  guidance=6.0, seed=0)
    with pytest.raises(UsageError) as err:
        fam.check_inputs(req, newer_model("hunyuan15-i2v"), i2v=True)
    assert "--width" in (err.value.hint or "") and "bucket" in err.value.message


@pytest.mark.parametrize("kind,pipeline,with_image", [
    ("kandinsky5", "Kandinsky5T2VPipeline", False),
    ("kandinsky5-i2v", "Kandinsky5I2VPipeline", True),
])
def test_kandinsky5_frames_are_the_plain_pipeline_frames(
        kind: str, pipeline: str, with_image: bool, newer_model: Callable[[str], Path],
        first_frame: Path, tmp_path: Path) -> None:
    """Latents come back channel-last (B, F, H, W, C); the family's decode permutes them as
    the pipeline does, with guidance 5.0 (the unconditional pass on the default negative)."""
    model_dir = newer_model(kind)
    image = first_frame if with_image else None
    r, req = run_ours(kind, model_dir, tmp_path / "ours.mp4", image=image)
    assert r["pipeline"] == pipeline and req.guidance == 5.0
    import torch

    saved = torch.load(r["latents"], weights_only=True)["latents"]
    assert saved.shape[-1] == 4 and saved.shape[1] == (req.frames - 1) // 4 + 1
    plain = plain_frames(pipeline, model_dir, req, image=image)
    check_same(kind, r["frames_array"], plain, req.frames)
    assert len(read_mp4(tmp_path / "ours.mp4")) == req.frames
    again = decode_again(r["latents"], tmp_path / "again.mp4")
    assert int(np.abs(again.astype(int) - r["frames_array"].astype(int)).max()) <= 2


def test_kandinsky5_image_needs_frames_after_the_first_four(
        newer_model: Callable[[str], Path], first_frame: Path) -> None:
    from localvideo.errors import UsageError
    from localvideo.synth.family import Request
    from localvideo.synth.family import get as get_family

    req = Request(PROMPT, None, first_frame, frames=9, height=32, width=32, fps=24, steps=2,
                  guidance=5.0, seed=0)
    with pytest.raises(UsageError, match="at least 17 frames"):
        get_family("kandinsky5").check_inputs(req, newer_model("kandinsky5-i2v"), i2v=True)


def test_kandinsky5_profile_from_its_folder(newer_model: Callable[[str], Path]) -> None:
    """Its config names width and depth its own way (model_dim, num_visual_blocks)."""
    from localvideo.synth.presets import profile_from_dir

    prof = profile_from_dir(newer_model("kandinsky5"), "kandinsky5")
    assert prof.hidden == 48 and prof.blocks["transformer"] == 2 and prof.patch == 2
    assert (prof.vae_spatial, prof.vae_temporal) == (8, 4)


@pytest.mark.parametrize("pipeline,with_image", [
    ("SanaVideoPipeline", False),
    ("SanaImageToVideoPipeline", True),          # the same folder animates an image
])
def test_sana_frames_are_the_plain_pipeline_frames(pipeline: str, with_image: bool,
                                                   newer_model: Callable[[str], Path],
                                                   first_frame: Path, tmp_path: Path) -> None:
    """Generated at the size asked (no resolution bins), frames passed as ``frames``; the plain
    call gets the same through the family's extra arguments."""
    model_dir = newer_model("sana")
    image = first_frame if with_image else None
    r, req = run_ours("sana", model_dir, tmp_path / "ours.mp4", image=image)
    assert r["pipeline"] == pipeline
    plain = plain_frames(pipeline, model_dir, req, image=image, frames=req.frames)
    check_same("sana", r["frames_array"], plain, req.frames)
    again = decode_again(r["latents"], tmp_path / "again.mp4")
    assert int(np.abs(again.astype(int) - r["frames_array"].astype(int)).max()) <= 2


@pytest.mark.parametrize("pipeline,with_image", [
    ("LTX2Pipeline", False),
    ("LTX2ImageToVideoPipeline", True),          # the same folder animates an image
])
def test_ltx2_frames_and_sound_are_the_plain_pipeline_output(
        pipeline: str, with_image: bool, newer_model: Callable[[str], Path], first_frame: Path,
        tmp_path: Path) -> None:
    """The video frames equal the plain pipeline's, the sound track decoded from the saved
    audio latents equals the plain pipeline's waveform, and the MP4 carries it as AAC."""
    import av
    import diffusers
    import torch
    from PIL import Image

    from localvideo.synth.family import get as get_family

    model_dir = newer_model("ltx2")
    image = first_frame if with_image else None
    r, req = run_ours("ltx2", model_dir, tmp_path / "ours.mp4", image=image)
    assert r["pipeline"] == pipeline
    plain = plain_frames(pipeline, model_dir, req, image=image)
    check_same("ltx2", r["frames_array"], plain, req.frames)

    # The plain pipeline's own sound, same call.
    pipe = getattr(diffusers, pipeline).from_pretrained(str(model_dir))
    pipe.set_progress_bar_config(disable=True)
    kwargs = get_family("ltx2").extra_kwargs(pipe, req)
    if image is not None:
        with Image.open(image) as im:
            kwargs["image"] = im.convert("RGB").resize((req.width, req.height))
    out = pipe(prompt=req.prompt, height=req.height, width=req.width, num_frames=req.frames,
               num_inference_steps=req.steps, guidance_scale=req.guidance, output_type="pt",
               generator=torch.Generator("cpu").manual_seed(req.seed), **kwargs)
    want = out.audio[0].float().numpy()
    fam = get_family("ltx2")
    meta = torch.load(r["latents"], weights_only=True)["meta"]
    with torch.no_grad():
        got, rate = fam.decode_audio(fam.load_audio(model_dir, torch.float32), meta,
                                     device="cpu")
    assert rate == 16000 and got.shape == want.shape and got.shape[0] == 2
    assert float(np.abs(got - want).max()) < 1e-4 and float(np.abs(got).max()) > 1e-3
    print(f"ltx2 audio: max sample difference against plain diffusers "
          f"{float(np.abs(got - want).max()):.2e}")

    # The clip carries it: H.264 + stereo AAC at the vocoder's rate, as long as the sound.
    assert r["video"]["audio"] == {"codec": "aac", "sample_rate": 16000, "channels": 2,
                                   "seconds": round(want.shape[1] / 16000, 3)}
    with av.open(r["video"]["path"]) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        a = c.streams.audio[0]
        assert (a.codec_context.name, a.sample_rate, a.channels) == ("aac", 16000, 2)
        decoded = np.concatenate([f.to_ndarray() for f in c.decode(a)], axis=1)
    assert decoded.shape[1] >= want.shape[1]     # AAC pads to whole 1024-sample frames
    # And `localvideo decode` rebuilds both from the latents file.
    again = decode_file_result(r["latents"], tmp_path / "again.mp4")
    assert again["video"]["audio"] == r["video"]["audio"]
    assert int(np.abs(again["frames_array"].astype(int)
                      - r["frames_array"].astype(int)).max()) <= 2


def test_sound_track_is_a_deterministic_stereo_aac(tmp_path: Path) -> None:
    """The writer's audio option on its own: a 440 Hz mono tone comes back from the MP4 as
    stereo AAC whose strongest frequency is 440 Hz, and the same input gives the same bytes."""
    import av

    from localvideo.errors import EncoderError
    from localvideo.synth.video import write_mp4

    frames = np.zeros((24, 32, 32, 3), np.uint8)
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(24000) / 24000)).astype(np.float32)
    info = write_mp4(frames, 24.0, tmp_path / "a.mp4", audio=(tone, 24000))
    write_mp4(frames, 24.0, tmp_path / "b.mp4", audio=(tone, 24000))
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert info["audio"] == {"codec": "aac", "sample_rate": 24000, "channels": 1,
                             "seconds": 1.0}
    with av.open(str(tmp_path / "a.mp4")) as c:
        a = c.streams.audio[0]
        assert (a.codec_context.name, a.channels) == ("aac", 2)
        pcm = np.concatenate([f.to_ndarray() for f in c.decode(a)], axis=1)
    spectrum = np.abs(np.fft.rfft(pcm[0, 2048:2048 + 16384]))
    assert abs(np.argmax(spectrum) * 24000 / 16384 - 440) < 3
    with pytest.raises(EncoderError, match="1 or 2 channels"):
        write_mp4(frames, 24.0, tmp_path / "c.mp4", audio=(np.zeros((3, 100), np.float32), 8000))
    assert not (tmp_path / "c.mp4").exists() and not (tmp_path / "c.mp4.part").exists()


def decode_file_result(latents: str, out: Path) -> dict[str, Any]:
    from localvideo.synth.engine import decode_file

    return decode_file(Path(latents), out, device="cpu", tiling=False)


def test_skyreels_presets_detection_and_inputs(tmp_path: Path) -> None:
    import json

    from localvideo.errors import UsageError
    from localvideo.synth.family import Request
    from localvideo.synth.family import get as get_family
    from localvideo.synth.presets import PRESETS, detect_family

    for cls in ("SkyReelsV2Pipeline", "SkyReelsV2DiffusionForcingPipeline"):
        (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": cls}))
        assert detect_family(tmp_path)[0] == "skyreels"
    names = {n for n, p in PRESETS.items() if p.family == "skyreels"}
    assert {"skyreels-v2-df-1.3b-540p", "skyreels-v2-t2v-14b-720p",
            "skyreels-v2-i2v-14b-720p"} <= names
    fam = get_family("skyreels")
    bad = Request(PROMPT, None, None, frames=96, height=544, width=960, fps=24, steps=30,
                  guidance=6.0, seed=0)
    with pytest.raises(UsageError, match="4k\\+1"):
        fam.check_inputs(bad, None, i2v=False)
