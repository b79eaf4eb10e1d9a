"""`generate --backend comfyui` through the service: the job runs on a real ComfyUI-protocol
server on 127.0.0.1 (comfy_server.py), and the clip gets its sidecar and clips row like any."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import plain
import pytest
from typer.testing import CliRunner

from localvideo.cli import app
from localvideo.errors import ComfyUIError, UsageError
from localvideo.service import Service

sys.path.insert(0, str(Path(__file__).parent))
from comfy_server import ComfyServer, expected_colours  # noqa: E402
from netutil import free_port  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def ltx_graph() -> dict[str, Any]:
    """An LTX-Video graph as ComfyUI's "Export (API)" writes it, saving an H.264 MP4."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "ltx.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "old", "clip": ["1", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "old neg", "clip": ["1", 1]}},
        "8": {"class_type": "EmptyLTXVLatentVideo",
              "inputs": {"width": 768, "height": 512, "length": 97, "batch_size": 1}},
        "3": {"class_type": "KSampler",
              "inputs": {"model": ["1", 0], "seed": 1, "steps": 30, "cfg": 3.0,
                         "sampler_name": "euler", "scheduler": "normal", "positive": ["6", 0],
                         "negative": ["7", 0], "latent_image": ["8", 0], "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["1", 2]}},
        "10": {"class_type": "VHS_VideoCombine",
               "inputs": {"images": ["9", 0], "frame_rate": 24, "loop_count": 0,
                          "filename_prefix": "ltx", "format": "video/h264-mp4",
                          "pingpong": False, "save_output": True}},
    }


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    with ComfyServer(tmp_path / "comfy") as s:
        yield s


def test_comfyui_job_becomes_a_clip(server: ComfyServer, data_dir: Path, tmp_path: Path) -> None:
    wf = tmp_path / "graph.json"
    wf.write_text(json.dumps(ltx_graph()))
    out = tmp_path / "clips" / "fox.mp4"
    res = CliRunner().invoke(app, [
        "generate", "a red fox running through snow", "--backend", "comfyui",
        "--comfy-url", server.url, "--workflow", str(wf), "--seed", "42", "--width", "64",
        "--height", "48", "--frames", "9", "--fps", "8", "--steps", "3", "--guidance", "4.5",
        "--negative", "blurry", "--out", str(out), "--json", "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)

    # The server ran our values.
    graph = server.prompts[-1]["prompt"]
    assert graph["6"]["inputs"]["text"] == "a red fox running through snow"
    assert graph["3"]["inputs"]["seed"] == 42

    # The clip: a real MP4 whose pixels come from the seed and the prompt.
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 9 and frames[0].shape == (48, 64, 3)
    bg, _bar = expected_colours("a red fox running through snow", 42)
    assert np.all(np.abs(frames[4][4, 60].astype(int) - np.array(bg)) <= 12)

    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["backend"] == "comfyui" and sidecar["seed"] == 42
    assert sidecar["comfy"]["prompt_id"] and sidecar["model"]["comfy_url"] == server.url
    assert sidecar["video"]["frames"] == 9 and sidecar["negative"] == "blurry"
    clips = plain.clips(Service.open(data_dir))
    assert [c["id"] for c in clips] == [r["clip_id"]] and clips[0]["backend"] == "comfyui"


def test_comfyui_errors(data_dir: Path, tmp_path: Path) -> None:
    svc = Service.open(data_dir)
    with pytest.raises(UsageError, match="needs --workflow"):
        plain.generate(svc, "a fox", backend="comfyui")
    with pytest.raises(UsageError, match="does not exist"):
        plain.generate(svc, "a fox", backend="comfyui", workflow=tmp_path / "missing.json")
    wf = tmp_path / "graph.json"
    wf.write_text(json.dumps(ltx_graph()))
    port = free_port()              # a port nothing listens on
    with pytest.raises(ComfyUIError):
        plain.generate(svc, "a fox", backend="comfyui", workflow=wf, comfy_url=f"http://127.0.0.1:{port}",
                     out=tmp_path / "x.mp4")
    assert plain.clips(svc) == []
