"""The one place that imports the synth extra, so its absence is one clear error.

torch, diffusers and transformers are optional (``pip install 'localvideo[synth]'``); every
synth module imports them lazily through :func:`require_synth` so ``localvideo models`` or
``--plan`` keep working, and ``generate`` says exactly what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from ..errors import DependencyError

SYNTH_HINT = "install the synth extra: pip install 'localvideo[synth]'"
_MODULES = ("torch", "diffusers", "transformers")


def require_synth() -> dict[str, ModuleType]:
    """Import torch, diffusers and transformers, or raise DependencyError naming the extra."""
    mods: dict[str, ModuleType] = {}
    for name in _MODULES:
        try:
            mods[name] = importlib.import_module(name)
        except ImportError as exc:
            raise DependencyError(
                f"video synthesis needs {name}, which is not installed ({exc})", SYNTH_HINT,
            ) from exc
    return mods


def dtype_kwargs(dtype: Any) -> dict[str, Any]:
    """``from_pretrained``'s dtype argument: ``dtype`` where diffusers has renamed it (it then
    warns on ``torch_dtype``), ``torch_dtype`` on the older releases the extra allows."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return {"torch_dtype": dtype}
    renamed = hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE")
    return {"dtype": dtype} if renamed else {"torch_dtype": dtype}


def versions() -> dict[str, str]:
    """Versions of the libraries that shape the output, for the sidecar."""
    out: dict[str, str] = {}
    for name in (*_MODULES, "accelerate", "av"):
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            continue
    return out
