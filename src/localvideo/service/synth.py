"""Service operations for the synth area."""

from __future__ import annotations

from .base import ServiceBase


class SynthOps(ServiceBase):
    pass
