"""Transitional: the presets module is synth/presets.py (capture/registry.py keeps the name).

Only service/synth.py still imports this name; it switches to ``..synth.presets`` with the
service refactor, and this file goes then.
"""

from .presets import (  # noqa: F401
    PRESETS,
    Profile,
    ResolvedModel,
    detect_family,
    get_preset,
    list_models,
    pull,
    resolve,
)
