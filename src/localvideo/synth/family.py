"""What every model family file provides, and the steps they share.

Each family (ltx.py, wan.py, hunyuan.py, cogvideox.py) is one self-contained file: it knows
its pipelines, its defaults, which frame counts and sizes it accepts, and how to turn saved
latents into pixels. The entry point is the same for all: :meth:`Family.denoise` takes the
same argument names whatever the family, and always returns latents, because the decode is
a separate, planned step (see planner.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import UsageError
from .presets import PRESETS, ResolvedModel
from .torchdeps import dtype_kwargs


@dataclass
class Request:
    """One generation, with every parameter resolved (defaults filled in)."""

    prompt: str
    negative: str | None
    image: Path | None
    frames: int
    height: int
    width: int
    fps: float
    steps: int
    guidance: float
    seed: int


def read_config(model_dir: Path, component: str) -> dict[str, Any]:
    path = model_dir / component / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def model_index(model_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((model_dir / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


class Family:
    name = ""
    t2v_pipeline = ""
    i2v_pipeline = ""
    # Used with --model-path when neither the flag nor a preset says otherwise.
    defaults: dict[str, float] = {}
    # The pipelines' name for the frame count (Sana Video calls it ``frames``).
    frames_arg = "num_frames"

    # -- shape rules ---------------------------------------------------------------------
    def vae_factors(self, vae_cfg: dict[str, Any]) -> tuple[int, int]:
        """(spatial, temporal) compression of this family's VAE, from its config."""
        raise NotImplementedError

    def multiples(self, model_dir: Path | None) -> tuple[int, int]:
        """(size multiple, frame step): height/width must divide by the first, frames be
        ``k × step + 1``. Read from the model's configs so a non-standard checkpoint is
        checked by its own rules."""
        raise NotImplementedError

    def check_inputs(self, req: Request, model_dir: Path | None, *, i2v: bool) -> None:
        """Raise UsageError naming the valid values for anything this family cannot take."""
        size, step = self.multiples(model_dir)
        if req.frames < 1 or (req.frames - 1) % step:
            lo = (req.frames - 1) // step * step + 1 if req.frames > 1 else 1
            raise UsageError(
                f"{self.name} takes {step}k+1 frames; {req.frames} is not one",
                f"use --frames {lo} or {lo + step} (e.g. {', '.join(str(step * k + 1) for k in (2, 4, 8, 16))})")
        for label, v in (("height", req.height), ("width", req.width)):
            if v < size or v % size:
                lo = max(size, v // size * size)
                raise UsageError(
                    f"{self.name} needs a {label} divisible by {size}; {v} is not",
                    f"use --{label} {lo} or {lo + size}")
        if req.steps < 1:
            raise UsageError(f"--steps must be at least 1 (got {req.steps})")
        if req.fps <= 0:
            raise UsageError(f"--fps must be positive (got {req.fps})")
        if req.image is not None and not req.image.is_file():
            raise UsageError(f"image {req.image} does not exist",
                             "pass --image with a PNG or JPEG file")

    # -- loading -------------------------------------------------------------------------
    def pipeline_class(self, model: ResolvedModel, *, with_image: bool) -> str:
        """Which pipeline class to load: the folder's own, or its image-to-video sibling."""
        if with_image and not model.i2v:
            raise UsageError(
                f"{model.label} is a text-to-video model ({model.pipeline}); it takes no --image",
                f"drop --image, or use an image-to-video model: {self.i2v_presets()}")
        if model.i2v and not with_image and self.needs_image(model):
            raise UsageError(f"{model.label} is an image-to-video model: it needs --image",
                             "pass --image first.png (the first frame)")
        return model.pipeline

    def needs_image(self, model: ResolvedModel) -> bool:
        return model.i2v

    def i2v_presets(self) -> str:
        names = [p.name for p in PRESETS.values() if p.family == self.name and p.i2v]
        return ", ".join(names) or "none in this family"

    def load(self, model: ResolvedModel, cls_name: str, dtype: Any) -> Any:
        import diffusers  # seconds to import: only a run that loads a pipeline pays

        cls = getattr(diffusers, cls_name)
        return cls.from_pretrained(str(model.path), **dtype_kwargs(dtype))

    def load_vae(self, model_dir: Path, dtype: Any) -> Any:
        import diffusers

        cls_name = model_index(model_dir).get("vae", [None, None])[1]
        cls = getattr(diffusers, str(cls_name))
        return cls.from_pretrained(str(model_dir), subfolder="vae", **dtype_kwargs(dtype))

    # -- running -------------------------------------------------------------------------
    def extra_kwargs(self, pipe: Any, req: Request) -> dict[str, Any]:
        """Family-specific pipeline arguments (frame rate, templates, sequence length)."""
        return {}

    def denoise(self, pipe: Any, req: Request, *, generator: Any,
                on_step: Callable[[int, int], None] | None = None) -> Any:
        """Run the pipeline up to (not including) the decode; return the latents."""
        kwargs: dict[str, Any] = {
            "prompt": req.prompt, "negative_prompt": req.negative, "height": req.height,
            "width": req.width, self.frames_arg: req.frames, "num_inference_steps": req.steps,
            "guidance_scale": req.guidance, "generator": generator, "output_type": "latent",
        }
        if req.image is not None:
            with Image.open(req.image) as im:
                kwargs["image"] = im.convert("RGB").resize((req.width, req.height))
        last: dict[str, Any] = {}

        def callback(_pipe: Any, i: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            last["latents"] = tensors.get("latents")
            if on_step is not None:
                on_step(i + 1, req.steps)
            return tensors

        kwargs["callback_on_step_end"] = callback
        kwargs.update(self.extra_kwargs(pipe, req))
        return self.final_latents(pipe, pipe(**kwargs).frames, last.get("latents"))

    def final_latents(self, pipe: Any, output: Any, last_step: Any) -> Any:
        """The latents to save: what the pipeline returned, unless a family needs what its
        loop held at the last step (``last_step``) to decode like the pipeline does."""
        return output

    def latent_meta(self, pipe: Any, req: Request) -> dict[str, Any]:
        """What decode() needs besides the VAE: saved with the latents."""
        return {}

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        """Latents → float video tensor (B, C, F, H, W) in [-1, 1], computed on ``device``."""
        raise NotImplementedError

    # -- sound (families whose models generate it: LTX-2) ---------------------------------
    def load_audio(self, model_dir: Path, dtype: Any) -> Any:
        """What decode_audio needs from the model folder when the pipeline is not loaded
        (``localvideo decode``); None for silent families."""
        return None

    def decode_audio(self, source: Any, meta: dict[str, Any], *,
                     device: str) -> tuple[Any, int] | None:
        """The sound track saved in ``meta`` decoded by ``source`` (the pipeline, or what
        load_audio returned): (float samples shaped (channels, n) in [-1, 1], sample rate),
        or None for a silent clip."""
        return None


_FAMILIES: dict[str, Family] = {}


def get(name: str) -> Family:
    if not _FAMILIES:
        # Each family module imports this one (a cycle at the top).
        from .cogvideox import CogVideoX
        from .hunyuan import Hunyuan
        from .hunyuan15 import Hunyuan15
        from .kandinsky5 import Kandinsky5
        from .ltx import LTX
        from .ltx2 import LTX2
        from .sana import Sana
        from .skyreels import SkyReels
        from .wan import Wan

        for fam in (LTX(), Wan(), Hunyuan(), CogVideoX(), SkyReels(), Hunyuan15(),
                    Kandinsky5(), Sana(), LTX2()):
            _FAMILIES[fam.name] = fam
    try:
        return _FAMILIES[name]
    except KeyError:
        raise UsageError(f"unknown model family {name!r}",
                         f"families: {', '.join(sorted(_FAMILIES))}") from None
