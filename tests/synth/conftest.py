"""Fixtures for the synth tests: tiny random-weight pipelines of every family, built offline.

Each pipeline is built once per session (a few hundred ms each) into a session temp folder
and then used exactly like a downloaded model: through ``--model-path DIR``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    # Only the tests that build models need the extra; planner, registry and ComfyUI tests
    # run without it.
    pytest.importorskip("diffusers", reason="the synth extra (torch, diffusers) is not installed")
    from tinymodels import build_tiny

    root = tmp_path_factory.mktemp("tiny-models")
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = build_tiny(kind, root / kind)
        return built[kind]

    return get


@pytest.fixture
def first_frame(tmp_path: Path) -> Path:
    """A real PNG with structure (gradient + a square), for image-to-video."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:64, 0:64]
    img = np.stack([x * 4, y * 4, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    img[20:40, 20:40] = (250, 20, 20)
    path = tmp_path / "first.png"
    Image.fromarray(img).save(path)
    return path
