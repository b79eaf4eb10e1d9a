"""A decode that runs out of memory loses nothing: the latents are on disk first, the error
names `localvideo decode`, and that command finishes the clip.

A GPU running out of memory cannot happen on this machine, so the one simulated part is the
exception itself: the tiny VAE's decode raises torch.OutOfMemoryError (what CUDA raises)
during the generation. Everything else — denoising, saving, the later decode — is real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest

pytest.importorskip("diffusers", reason="the synth extra is not installed")

import plain
import torch  # noqa: E402
from diffusers import AutoencoderKLWan  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from localvideo.cli import app  # noqa: E402
from localvideo.errors import OutOfMemoryError  # noqa: E402
from localvideo.service import Service  # noqa: E402

pytestmark = pytest.mark.synth


def test_decode_oom_keeps_the_latents_and_decode_finishes(
        tiny_model: Callable[[str], Path], data_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    svc = Service.open(data_dir)
    real_decode = AutoencoderKLWan.decode

    def out_of_memory(self: Any, *a: Any, **kw: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 38.00 GiB")

    monkeypatch.setattr(AutoencoderKLWan, "decode", out_of_memory)
    out = tmp_path / "long-run.mp4"
    with pytest.raises(OutOfMemoryError) as err:
        plain.generate(svc, "a fox", model_path=tiny_model("wan"), frames=9, height=16, width=16,
                     steps=3, seed=5, out=out)
    latents = tmp_path / "long-run.latents.pt"
    assert f"localvideo decode {latents}" in (err.value.hint or "")
    assert "latents are safe" in err.value.message
    assert latents.is_file() and not out.exists() and plain.clips(svc) == []

    monkeypatch.setattr(AutoencoderKLWan, "decode", real_decode)
    res = CliRunner().invoke(app, ["decode", str(latents), "--json", "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    clip = json.loads(res.stdout)
    assert clip["abs_path"] == str(out) and clip["seed"] == 5 and clip["decode_tiling"] is True
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 9
    assert [c["id"] for c in plain.clips(svc)] == [clip["clip_id"]]

    # The same generation without the failure denoises to bit-identical latents: what the
    # failed run saved is exactly what it would have decoded.
    saved = torch.load(latents, weights_only=True)["latents"]
    again = plain.generate(svc, "a fox", model_path=tiny_model("wan"), frames=9, height=16, width=16,
                         steps=3, seed=5, out=tmp_path / "again.mp4")
    redone = torch.load(again["latents"], weights_only=True)["latents"]
    assert torch.equal(saved, redone)
    # ...and the clip finished from the saved latents is the clip it would have made.
    with av.open(str(out)) as a, av.open(again["abs_path"]) as b:
        fa = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        fb = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    diffs = [int(abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(fa, fb, strict=True)]
    assert diffs == [0] * len(diffs), diffs


def test_plan_for_a_local_folder(tiny_model: Callable[[str], Path], data_dir: Path) -> None:
    plan = plain.plan(Service.open(data_dir), "a fox", model_path=tiny_model("hunyuan"),
                      frames=9, height=16, width=16)
    assert plan["family"] == "hunyuan" and plan["device"] == "cpu"
    assert plan["latent"]["frames"] == 3 and plan["fits"]
