"""Input checks: each family's valid frame counts and sizes, images, and what nothing loses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import plain
import pytest

from localvideo.errors import UsageError
from localvideo.service import Service

pytestmark = pytest.mark.synth


def attempt(svc: Service, model: Path, **kw: Any) -> UsageError:
    args: dict[str, Any] = {"frames": 9, "height": 32, "width": 32, "steps": 1}
    args.update(kw)
    with pytest.raises(UsageError) as err:
        plain.generate(svc, "a fox", model_path=model, **args)
    return err.value


@pytest.mark.parametrize("kind,frames,valid", [
    ("ltx", 10, "--frames 9 or 13"),          # tiny LTX VAE: 4× in time (real LTX: 8k+1)
    ("wan", 8, "--frames 5 or 9"),
    ("hunyuan", 12, "--frames 9 or 13"),
    ("cogvideox", 7, "--frames 5 or 9"),
])
def test_frame_counts(kind: str, frames: int, valid: str, tiny_model: Callable[[str], Path],
                      data_dir: Path) -> None:
    err = attempt(Service.open(data_dir), tiny_model(kind), frames=frames, height=16 if
                  kind != "ltx" else 32, width=16 if kind != "ltx" else 32)
    assert f"{frames} is not one" in err.message and valid in (err.hint or "")


@pytest.mark.parametrize("kind,size,multiple", [
    ("ltx", 48, 32), ("wan", 24, 16), ("hunyuan", 40, 16), ("cogvideox", 20, 16),
    ("wan-ti2v", 48, 32),        # its VAE compresses 16×, the transformer patches 2×2
])
def test_sizes(kind: str, size: int, multiple: int, tiny_model: Callable[[str], Path],
               data_dir: Path) -> None:
    err = attempt(Service.open(data_dir), tiny_model(kind), height=size, width=multiple * 2)
    assert f"height divisible by {multiple}" in err.message
    lo = size // multiple * multiple
    assert f"--height {lo} or {lo + multiple}" in (err.hint or "")


def test_real_ltx_rule_is_8k_plus_1() -> None:
    from localvideo.synth.family import get

    assert get("ltx").multiples(None) == (32, 8)
    assert get("wan").multiples(None) == (16, 4)
    assert get("hunyuan").multiples(None) == (16, 4)
    assert get("cogvideox").multiples(None) == (16, 4)


def test_cogvideox_limits(tiny_model: Callable[[str], Path], data_dir: Path,
                          first_frame: Path) -> None:
    svc = Service.open(data_dir)
    err = attempt(svc, tiny_model("cogvideox"), frames=13, height=16, width=16)
    assert "at most 9 frames" in err.message
    err = attempt(svc, tiny_model("cogvideox-i2v"), height=32, width=32, image=first_frame)
    assert "only generates 16×16" in err.message and "--width 16 --height 16" in (err.hint or "")


def test_images(tiny_model: Callable[[str], Path], data_dir: Path, first_frame: Path,
                tmp_path: Path) -> None:
    svc = Service.open(data_dir)
    err = attempt(svc, tiny_model("ltx"), image=tmp_path / "missing.png")
    assert "does not exist" in err.message
    err = attempt(svc, tiny_model("wan"), height=16, width=16, image=first_frame)
    assert "text-to-video model" in err.message and "takes no --image" in err.message
    err = attempt(svc, tiny_model("wan-i2v"), height=16, width=16)
    assert "needs --image" in err.message
    err = attempt(svc, tiny_model("cogvideox"), height=16, width=16, image=first_frame)
    assert "cogvideox-5b-i2v" in (err.hint or "")


def test_other_bad_values(tiny_model: Callable[[str], Path], data_dir: Path,
                          tmp_path: Path) -> None:
    svc = Service.open(data_dir)
    model = tiny_model("ltx")
    assert "at least 1" in attempt(svc, model, steps=0).message
    assert "positive" in attempt(svc, model, fps=0).message
    with pytest.raises(UsageError, match="prompt is empty"):
        plain.generate(svc, "  ", model_path=model)
    with pytest.raises(UsageError, match="must end in .mp4"):
        plain.generate(svc, "a fox", model_path=model, out=tmp_path / "clip.webm")
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"an earlier clip")
    with pytest.raises(UsageError, match="already exists"):
        plain.generate(svc, "a fox", model_path=model, out=taken)
    assert taken.read_bytes() == b"an earlier clip"
    with pytest.raises(UsageError, match="unknown backend"):
        plain.generate(svc, "a fox", model_path=model, backend="sdwebui")
    with pytest.raises(UsageError, match="invalid --max-vram"):
        plain.plan(svc, "a fox", model="ltx-video", max_vram="lots")
    # Nothing was written for any of them.
    assert plain.clips(svc) == [] and not svc.settings.clips_dir.exists()
