"""`localvideo doctor`: every check tries the real thing on this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localvideo.service import Service
from localvideo.service.models import GenerateRequest


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


@pytest.mark.x11
def test_with_a_display_every_observe_part_is_checked_for_real(data_dir: Path,
                                                                desktop: Any) -> None:
    desktop.xterm("Doctor window", "hello doctor")
    report = Service.open(data_dir).doctor.run().model_dump()
    checks = _checks(report)
    assert checks["display"]["ok"] and os.environ["DISPLAY"] in checks["display"]["detail"]
    # A real grab of the Xvfb screen (1920×1080 in the test session).
    assert checks["capture"]["ok"], checks["capture"]
    assert checks["capture"]["data"]["width"] == 1920
    enc = checks["encoders"]
    assert enc["ok"] and "libx264" in enc["data"]["working"]
    by_name = {e["name"]: e for e in enc["data"]["encoders"]}
    # Hardware encoders that cannot open here say why instead of claiming to work.
    assert all(e["works"] or e["error"] for e in by_name.values())
    assert checks["tesseract"]["ok"] == (shutil.which("tesseract") is not None)
    assert "eng" in checks["tesseract"]["data"]["languages"]
    assert checks["disk"]["ok"] and checks["disk"]["data"]["free_bytes"] > 0
    observe = report["jobs"]["observe"]
    assert observe["suited"] and observe["command"] == "localvideo observe"
    assert observe["settings"]["encoder"] == enc["data"]["chain"][0]


@pytest.mark.skipif(sys.platform != "linux", reason="DISPLAY is how Linux finds its screen")
def test_without_a_display_it_says_so_and_what_to_run(data_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    report = Service.open(data_dir).doctor.run().model_dump()
    checks = _checks(report)
    assert not checks["display"]["ok"] and not checks["capture"]["ok"]
    assert "--virtual-display" in checks["display"]["fix"]
    observe = report["jobs"]["observe"]
    assert not observe["suited"] and "display" in observe["reason"]
    assert observe["command"] == "localvideo observe --virtual-display"
    assert any("--virtual-display" in cmd for cmd in report["install"])


def test_gpu_verdict_matches_what_torch_sees(data_dir: Path) -> None:
    report = Service.open(data_dir).doctor.run().model_dump()
    gpu = _checks(report)["gpu"]
    synth = report["jobs"]["synthesize"]
    try:
        import torch
    except ImportError:
        assert not gpu["ok"] and "localvideo[synth]" in (gpu["fix"] or "")
        return
    if torch.cuda.is_available():
        assert gpu["ok"] and gpu["data"]["kind"] == "cuda" and synth["suited"]
        assert gpu["data"]["free_bytes"] <= gpu["data"]["total_bytes"]
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        assert gpu["ok"] and synth["settings"]["device"] == "mps"
    else:
        # No GPU: it says so and points at a hosted provider (a GPU elsewhere among the
        # alternatives), with a command that runs as printed.
        assert not gpu["ok"] and not synth["suited"]
        assert "--backend veo --model veo-3.0-fast-generate-001" in synth["command"]
        assert synth["command"].startswith("localvideo keys set veo && ")
        assert any("--backend comfyui" in c for c in synth["settings"]["alternatives"])


def test_missing_tesseract_gives_the_install_command(data_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    # A PATH with the package manager but no tesseract: what a fresh machine looks like.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("needs apt-get to name the install command (Debian/Ubuntu)")
    (bindir / "apt-get").symlink_to(apt)
    monkeypatch.setenv("PATH", str(bindir))
    from localvideo.doctor import check_tesseract

    check = check_tesseract()
    assert not check.ok and check.fix == "sudo apt-get install -y tesseract-ocr"


def test_cli_json_and_text(data_dir: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "localvideo", "doctor", "--json"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    report = json.loads(out)
    assert {"platform", "checks", "jobs", "install", "seconds"} <= set(report)
    assert report["seconds"] < 60  # "pick the right stack in 60 seconds"
    text = subprocess.run([sys.executable, "-m", "localvideo", "doctor"], capture_output=True,
                          text=True, check=True, timeout=120).stdout
    assert "observe:" in text and "synthesize:" in text and "encoders" in text


@pytest.mark.synth
@pytest.mark.parametrize("gib", [24, 6, 0.25])
def test_synth_verdict_asks_the_real_planner(data_dir: Path, gib: float) -> None:
    # No GPU here, so the GPU check's finding is given; the planner and presets are real.
    from localvideo.doctor import GIB, Check, _synth_verdict

    svc = Service.open(data_dir)
    gpu = Check("gpu", True, "test GPU", data={"kind": "cuda", "free_bytes": int(gib * GIB),
                                                "total_bytes": int(gib * GIB)})
    def plan(**kwargs: Any) -> dict[str, Any]:
        return svc.synth.plan(GenerateRequest.of(prompt="plan", **kwargs)).model_dump()

    def models() -> list[dict[str, Any]]:
        return [m.model_dump() for m in svc.synth.models()]

    verdict = _synth_verdict({"gpu": gpu}, plan, models)
    for f in verdict["fits"]:
        p = svc.synth.plan(GenerateRequest(prompt="plan", model=f["model"], device="cuda",
                                           max_vram=int(gib * GIB)))
        assert p.fits and p.offload == f["offload"]
    if gib == 0.25:
        assert not verdict["suited"] and verdict["fits"] == []
        return
    assert verdict["suited"] and verdict["fits"]
    assert all(not m.endswith("i2v") for m in (f["model"] for f in verdict["fits"]))
    best = verdict["settings"]
    assert verdict["command"].endswith(f"--model {best['model']}")
    if gib == 24:
        # Something runs fully resident on a 24 GiB card; that is what gets recommended.
        assert best["offload"] == "none"
