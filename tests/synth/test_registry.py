"""Presets, family detection from model_index.json, missing weights, `models` and `models pull`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import plain
import pytest
from typer.testing import CliRunner

from localvideo.cli import app
from localvideo.errors import ModelNotFoundError, UsageError
from localvideo.service import Service
from localvideo.synth.presets import (
    PIPELINE_CLASSES,
    PRESETS,
    detect_family,
    preset_dir,
    profile_from_dir,
    resolve,
)

REQUIRED = {"ltx-video", "wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b-480p",
            "wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "hunyuanvideo", "hunyuanvideo-i2v",
            "cogvideox-2b", "cogvideox-5b", "cogvideox-5b-i2v"}


def test_presets_cover_the_families_and_their_pipelines() -> None:
    assert REQUIRED <= set(PRESETS)
    for p in PRESETS.values():
        family, i2v = PIPELINE_CLASSES[p.pipeline]
        assert family == p.family and i2v == p.i2v, p.name
        assert p.height % p.spatial_multiple == 0 and p.width % p.spatial_multiple == 0, p.name
        assert (p.frames - 1) % p.profile.vae_temporal == 0, p.name
        assert "/" in p.repo_id and p.profile.components["transformer"] > 1e8


@pytest.mark.parametrize("cls", sorted(PIPELINE_CLASSES))
def test_detect_family_from_class_name(cls: str, tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    assert detect_family(tmp_path)[:2] == (PIPELINE_CLASSES[cls][0], cls)


def test_detect_family_rejects_other_folders(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        detect_family(tmp_path / "nope")
    with pytest.raises(UsageError, match="no model_index.json"):
        detect_family(tmp_path)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(UsageError) as err:
        detect_family(tmp_path)
    assert "FluxPipeline" in err.value.message and "WanPipeline" in (err.value.hint or "")
    (tmp_path / "model_index.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read"):
        detect_family(tmp_path)


def test_profile_is_read_from_the_folder(tiny_model: Callable[[str], Path]) -> None:
    prof = profile_from_dir(tiny_model("wan"), "wan")
    import torch
    from diffusers import WanTransformer3DModel

    real = WanTransformer3DModel.from_pretrained(tiny_model("wan"), subfolder="transformer")
    assert prof.components["transformer"] == sum(p.numel() for p in real.parameters())
    assert set(prof.components) == {"transformer", "text_encoder", "vae"}
    assert prof.hidden == 2 * 12 and prof.patch == 2
    assert (prof.vae_spatial, prof.vae_temporal) == (8, 4)
    assert prof.blocks["transformer"] == 2
    del torch
    moe = profile_from_dir(tiny_model("wan-a14b"), "wan")
    assert moe.active == ("transformer", "transformer_2")
    assert moe.components["transformer"] == moe.components["transformer_2"]
    ti2v = profile_from_dir(tiny_model("wan-ti2v"), "wan")
    assert ti2v.vae_spatial == 16


def test_missing_weights_name_the_repo_and_the_pull_command(data_dir: Path) -> None:
    svc = Service.open(data_dir)
    with pytest.raises(ModelNotFoundError) as err:
        plain.generate(svc, "a fox", model="wan2.1-t2v-1.3b")
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in err.value.message
    assert "localvideo models pull wan2.1-t2v-1.3b" in (err.value.hint or "")
    assert plain.clips(svc) == []
    with pytest.raises(UsageError, match="unknown model 'sora'"):
        plain.generate(svc, "a fox", model="sora")
    with pytest.raises(UsageError, match="either --model or --model-path"):
        resolve(data_dir, model="ltx-video", model_path=data_dir)
    with pytest.raises(UsageError, match="no model given"):
        resolve(data_dir)


def test_models_lists_presets_and_what_is_present(tiny_model: Callable[[str], Path],
                                                 data_dir: Path) -> None:
    svc = Service.open(data_dir)
    # A folder in the models dir under the preset's name counts as present.
    shutil.copytree(tiny_model("ltx"), preset_dir(svc.settings.models_dir, PRESETS["ltx-video"]))
    res = CliRunner().invoke(app, ["models", "--json", "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    rows = {m["name"]: m for m in json.loads(res.stdout)}
    assert REQUIRED <= set(rows)
    assert rows["ltx-video"]["present"] and not rows["cogvideox-2b"]["present"]
    assert rows["hunyuanvideo"]["repo_id"] == "hunyuanvideo-community/HunyuanVideo"
    table = CliRunner().invoke(app, ["models", "--data-dir", str(data_dir)])
    assert table.exit_code == 0 and "wan2.1-t2v-1.3b" in table.stdout
    # And the preset then resolves to it, so --model works offline once pulled.
    model = resolve(svc.settings.models_dir, model="ltx-video")
    assert model.preset is PRESETS["ltx-video"] and model.family == "ltx"


def test_pull_without_network_is_a_clear_error(data_dir: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LOCALVIDEO_HOME": str(data_dir)}
    proc = subprocess.run([sys.executable, "-m", "localvideo", "models", "pull", "cogvideox-2b"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    err = " ".join(proc.stderr.split())
    assert "cannot download THUDM/CogVideoX-2b" in err and "not reachable" in err
    assert "localvideo models pull cogvideox-2b" in err
    assert not (data_dir / "models" / "THUDM--CogVideoX-2b").exists()
