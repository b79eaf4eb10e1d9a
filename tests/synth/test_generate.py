"""`localvideo generate --model-path DIR` end to end on tiny real pipelines of every family.

Real diffusers pipelines (random weights, built offline by conftest), real denoising on the
CPU, real VAE decode, a real H.264 MP4 decoded back with PyAV, the sidecar and the clips row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import plain
import pytest
from tinymodels import tiny_size
from typer.testing import CliRunner

from localvideo.cli import app
from localvideo.errors import UsageError
from localvideo.service import Service
from localvideo.synth.family import Request

pytestmark = [pytest.mark.timeout(120), pytest.mark.synth]
pytest.importorskip("diffusers", reason="the synth extra is not installed")


def read_mp4(path: Path) -> tuple[str, str, int, int, list[np.ndarray]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return s.codec_context.name, s.codec_context.pix_fmt, s.width, s.height, frames


def gen_args(kind: str, model: Path, out: Path, *extra: str, seed: int = 7) -> list[str]:
    s = tiny_size(kind)
    return ["generate", "a red fox running through snow", "--model-path", str(model),
            "--frames", str(s["frames"]), "--height", str(s["height"]), "--width",
            str(s["width"]), "--steps", "2", "--seed", str(seed), "--fps", "8",
            "--out", str(out), "--json", *extra]


def run_cli(args: list[str]) -> dict[str, Any]:
    res = CliRunner().invoke(app, args)
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind,pipeline", [
    ("ltx", "LTXPipeline"), ("wan", "WanPipeline"), ("hunyuan", "HunyuanVideoPipeline"),
    ("cogvideox", "CogVideoXPipeline"),
    ("ltx-condition", "LTXConditionPipeline"),   # latents come back unpacked
    ("wan-ti2v", "WanPipeline"),                  # Wan 2.2 TI2V layout: 48-ch patching VAE
    ("wan-a14b", "WanPipeline"),                  # Wan 2.2 A14B layout: two experts
])
def test_text_to_video_every_family(kind: str, pipeline: str, tiny_model: Callable[[str], Path],
                                    data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / f"{kind}.mp4"
    r = run_cli([*gen_args(kind, tiny_model(kind), out), "--data-dir", str(data_dir)])
    size = tiny_size(kind)

    codec, pix_fmt, w, h, frames = read_mp4(out)
    assert (codec, pix_fmt) == ("h264", "yuv420p")
    assert (w, h, len(frames)) == (size["width"], size["height"], size["frames"])
    # Random weights give noise, but real noise: the frames are not blank.
    assert float(np.std(np.stack(frames))) > 1.0

    sidecar = json.loads(out.with_suffix(".json").read_text())
    # The CLI prints the clip record: the sidecar plus its ids, its file and where it is.
    assert sidecar == {k: v for k, v in r.items()
                       if k not in ("clip_id", "id", "sidecar", "exists", "abs_path")}
    assert r["abs_path"] == str(out) and r["exists"]
    assert sidecar["prompt"] == "a red fox running through snow" and sidecar["seed"] == 7
    assert sidecar["family"] == kind.split("-")[0] and sidecar["pipeline"] == pipeline
    assert sidecar["model"]["path"] == str(tiny_model(kind))
    assert sidecar["params"] == {"frames": size["frames"], "height": size["height"],
                                 "width": size["width"], "fps": 8.0, "steps": 2,
                                 "guidance": sidecar["params"]["guidance"], "image": None}
    assert sidecar["plan"]["device"] == "cpu" and sidecar["plan"]["dtype"] == "float32"
    assert set(sidecar["timings"]) == {"load", "denoise", "save_latents", "decode", "encode"}
    assert sidecar["peak_memory"]["kind"] == "rss" and sidecar["peak_memory"]["bytes"] > 0
    assert {"torch", "diffusers", "transformers"} <= set(sidecar["versions"])
    assert sidecar["device"]["kind"] == "cpu"
    assert sidecar["speed"] == {"cache": None, "compile": False, "attention": None}
    assert Path(sidecar["latents"]).is_file()

    clips = run_cli(["clips", "--json", "--data-dir", str(data_dir)])
    assert [c["id"] for c in clips] == [r["clip_id"]]
    assert clips[0]["abs_path"] == str(out) and clips[0]["exists"]


@pytest.mark.parametrize("kind,pipeline", [
    ("ltx", "LTXImageToVideoPipeline"),          # a text-to-video folder animates an image
    ("ltx-i2v", "LTXImageToVideoPipeline"),
    ("wan-i2v", "WanImageToVideoPipeline"),
    ("wan-ti2v", "WanImageToVideoPipeline"),      # a WanPipeline folder with expanded timesteps
    ("ltx-condition", "LTXConditionPipeline"),
    ("cogvideox-i2v", "CogVideoXImageToVideoPipeline"),
    ("hunyuan-i2v", "HunyuanVideoImageToVideoPipeline"),   # LLaVA encoder sees the image
])
def test_image_to_video(kind: str, pipeline: str, tiny_model: Callable[[str], Path],
                        first_frame: Path, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "i2v.mp4"
    r = run_cli([*gen_args(kind, tiny_model(kind), out, "--image", str(first_frame)),
                 "--data-dir", str(data_dir)])
    assert r["pipeline"] == pipeline
    assert r["params"]["image"] == str(first_frame)
    size = tiny_size(kind)
    _, _, w, h, frames = read_mp4(out)
    # HunyuanVideo I2V drops the first 4 decoded frames, as its pipeline does.
    dropped = 4 if kind == "hunyuan-i2v" else 0
    assert (w, h, len(frames)) == (size["width"], size["height"], size["frames"] - dropped)


@pytest.mark.parametrize("kind,with_image", [
    ("ltx", False), ("ltx-i2v", True), ("ltx-condition", False), ("wan", False),
    ("wan-i2v", True), ("wan-ti2v", True), ("wan-a14b", False), ("hunyuan", False),
    ("hunyuan-i2v", True),       # latents returned without the image frame, decoded with it
    ("cogvideox", False), ("cogvideox-i2v", True),
])
def test_frames_are_the_plain_pipeline_frames(kind: str, with_image: bool,
                                              tiny_model: Callable[[str], Path],
                                              first_frame: Path, data_dir: Path,
                                              tmp_path: Path) -> None:
    """Stopping at the latents, saving them and decoding ourselves changes nothing: the
    frames equal what the same call straight through diffusers decodes."""
    import diffusers
    import torch
    from PIL import Image

    from localvideo.synth.engine import get_family
    from localvideo.synth.video import to_uint8

    model = tiny_model(kind)
    size = tiny_size(kind)
    image = ["--image", str(first_frame)] if with_image else []
    r = run_cli([*gen_args(kind, model, tmp_path / "ours.mp4", *image),
                 "--data-dir", str(data_dir)])
    pipe = getattr(diffusers, r["pipeline"]).from_pretrained(str(model))
    pipe.set_progress_bar_config(disable=True)
    family = get_family(r["family"])
    req = Request(prompt=r["prompt"], negative=None, image=None, frames=size["frames"],
                  height=size["height"], width=size["width"], fps=8.0, steps=2,
                  guidance=r["params"]["guidance"], seed=7)
    kwargs: dict[str, Any] = family.extra_kwargs(pipe, req)
    if with_image:
        with Image.open(first_frame) as im:
            kwargs["image"] = im.convert("RGB").resize((size["width"], size["height"]))
    video = pipe(prompt=r["prompt"], height=size["height"], width=size["width"],
                 num_frames=size["frames"], num_inference_steps=2,
                 guidance_scale=r["params"]["guidance"], output_type="pt",
                 generator=torch.Generator("cpu").manual_seed(7), **kwargs).frames
    # output_type="pt" is (B, F, C, H, W) in [0, 1]; ours goes (B, C, F, H, W) in [-1, 1].
    plain = to_uint8(video.permute(0, 2, 1, 3, 4) * 2 - 1)
    saved = torch.load(tmp_path / "ours.latents.pt", weights_only=True)
    with torch.no_grad():
        ours = to_uint8(family.decode(pipe.vae, saved["latents"], saved["meta"],
                                      generator=torch.Generator("cpu").manual_seed(8),
                                      device="cpu"))
    # HunyuanVideo I2V drops the first 4 decoded frames, as its pipeline does.
    frames = size["frames"] - (4 if kind == "hunyuan-i2v" else 0)
    assert ours.shape == plain.shape == (frames, size["height"], size["width"], 3)
    assert np.abs(ours.astype(int) - plain.astype(int)).max() <= 1


def test_same_seed_same_frames_other_seed_other_frames(tiny_model: Callable[[str], Path],
                                                        data_dir: Path, tmp_path: Path) -> None:
    model = tiny_model("wan")
    base = ["--data-dir", str(data_dir)]
    run_cli([*gen_args("wan", model, tmp_path / "a.mp4", seed=11), *base])
    run_cli([*gen_args("wan", model, tmp_path / "b.mp4", seed=11), *base])
    run_cli([*gen_args("wan", model, tmp_path / "c.mp4", seed=12), *base])
    a, b, c = (np.stack(read_mp4(tmp_path / f"{n}.mp4")[4]) for n in "abc")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # Down to the file: the encoder is deterministic too (one x264 thread, explicit yuv420p).
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    # The latents themselves, before any lossy encoding, are bit-identical too.
    import torch

    la = torch.load(tmp_path / "a.latents.pt", weights_only=True)["latents"]
    lb = torch.load(tmp_path / "b.latents.pt", weights_only=True)["latents"]
    assert torch.equal(la, lb)


def test_decode_from_saved_latents_reproduces_the_clip(tiny_model: Callable[[str], Path],
                                                       data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    first = run_cli([*gen_args("ltx", tiny_model("ltx"), out), "--data-dir", str(data_dir)])
    latents = Path(first["latents"])
    assert latents == tmp_path / "clip.latents.pt"
    again = tmp_path / "again.mp4"
    r = run_cli(["decode", str(latents), "--out", str(again), "--no-tiling", "--json",
                 "--data-dir", str(data_dir)])
    assert r["decoded_from_latents"] and r["prompt"] == first["prompt"]
    assert r["plan"] == first["plan"] and r["seed"] == first["seed"]
    a = np.stack(read_mp4(out)[4]).astype(np.int16)
    b = np.stack(read_mp4(again)[4]).astype(np.int16)
    # Usually bit-identical. Under a loaded machine the CPU VAE's float reductions have been
    # seen to move a pixel by a level, and x264 then takes other decisions on these 32x32
    # noise frames: measured here, a +-1 nudge to 1 % of the pixels moves the encoded clip by
    # 0.3 levels on average and up to 12 at a pixel (CI once saw 1.2 and 23). So judge the
    # whole clip by PSNR: re-encodes of clips nudged by +-1 to +-2 anywhere measured 39-48 dB,
    # while a wrong latent or seed (the seed-8 clip) measured 18.5 dB.
    diff = np.abs(a - b)
    mse = float((diff.astype(np.float64) ** 2).mean())
    psnr = 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)
    assert a.shape == b.shape and psnr >= 30, (psnr, diff.mean(), diff.max())
    # Default output: beside the latents, named after them — but never over the clip that
    # is already there.
    before = out.read_bytes()
    r2 = run_cli(["decode", str(latents), "--json", "--data-dir", str(data_dir)])
    assert r2["abs_path"] == str(tmp_path / "clip-2.mp4") and out.read_bytes() == before
    assert len(run_cli(["clips", "--json", "--data-dir", str(data_dir)])) == 3


def test_decode_refuses_a_file_that_is_not_latents(data_dir: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "x.latents.pt"
    bogus.write_bytes(b"not a torch file")
    svc = Service.open(data_dir)
    with pytest.raises(UsageError, match="not a readable latents file"):
        plain.decode(svc, bogus)
    with pytest.raises(UsageError, match="does not exist"):
        plain.decode(svc, tmp_path / "missing.latents.pt")


def test_speed_options_are_used_and_recorded(tiny_model: Callable[[str], Path],
                                             data_dir: Path, tmp_path: Path) -> None:
    plain = run_cli([*gen_args("hunyuan", tiny_model("hunyuan"), tmp_path / "p.mp4"),
                     "--data-dir", str(data_dir)])
    cached = run_cli([*gen_args("hunyuan", tiny_model("hunyuan"), tmp_path / "c.mp4",
                                "--cache", "--attention", "native"),
                      "--data-dir", str(data_dir)])
    # Both experts of an A14B-style model get the cache.
    moe = run_cli([*gen_args("wan-a14b", tiny_model("wan-a14b"), tmp_path / "m.mp4", "--cache"),
                   "--data-dir", str(data_dir)])
    assert moe["speed"]["cache"]["kind"] == "FirstBlockCache"
    assert plain["speed"]["cache"] is None
    assert cached["speed"]["cache"] == {"kind": "FirstBlockCache", "threshold": 0.05}
    assert cached["speed"]["attention"] == "native"
    _, _, w, h, frames = read_mp4(tmp_path / "c.mp4")
    assert (w, h, len(frames)) == (16, 16, 9)


def test_unknown_attention_backend_names_the_valid_ones(tiny_model: Callable[[str], Path],
                                                        data_dir: Path, tmp_path: Path) -> None:
    svc = Service.open(data_dir)
    with pytest.raises(UsageError) as err:
        plain.generate(svc, "a fox", model_path=tiny_model("ltx"), frames=9, height=32, width=32,
                     steps=1, attention="warp-drive", out=tmp_path / "x.mp4")
    assert "warp-drive" in err.value.message and "native" in (err.value.hint or "")
    assert plain.clips(svc) == []


def test_default_output_goes_under_clips_dir(tiny_model: Callable[[str], Path],
                                             data_dir: Path) -> None:
    svc = Service.open(data_dir)
    events: list[dict[str, Any]] = []
    r = plain.generate(svc, "A Red Fox!", model_path=tiny_model("cogvideox"), frames=9, height=16,
                     width=16, steps=3, on_progress=events.append)
    path = Path(r["abs_path"])
    assert path.is_file() and svc.settings.clips_dir in path.parents
    assert path.name.endswith("_a-red-fox.mp4") and path.with_suffix(".json").is_file()
    assert isinstance(r["seed"], int)    # a random seed, recorded
    steps = [e["step"] for e in events if e["phase"] == "denoise"]
    assert steps == [0, 1, 2, 3]
    phases = [e["phase"] for e in events]
    assert phases.index("latents") < phases.index("decode") < phases.index("encode")
    assert plain.clip(svc, r["clip_id"])["prompt"] == "A Red Fox!"
    assert svc.synth.clip_file(r["clip_id"]) == path



def test_default_names_never_reuse_a_clip(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    import localvideo.service.synth as synth_service

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls(2026, 11, 25, 14, 3, 7)

    monkeypatch.setattr(synth_service, "datetime", Frozen)
    svc = Service.open(data_dir)
    first = svc.synth._out_path(None, "A Red Fox!")
    assert first.name == "clip_140307_a-red-fox.mp4"
    first.parent.mkdir(parents=True)
    first.write_bytes(b"clip")
    second = svc.synth._out_path(None, "A Red Fox!")
    assert second.name == "clip_140307_a-red-fox-2.mp4"


def test_human_output_shows_progress_and_the_clip(tiny_model: Callable[[str], Path],
                                                  data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fox.mp4"
    args = [a for a in gen_args("wan", tiny_model("wan"), out) if a != "--json"]
    res = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "denoising" in text and "2/2" in text and "VAE decode" in text
    assert "clip 1" in text and "seed 7" in text and out.is_file()
    listing = CliRunner().invoke(app, ["clips", "--data-dir", str(data_dir)])
    assert listing.exit_code == 0 and "a red fox" in listing.stdout
