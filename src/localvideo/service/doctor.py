"""`localvideo doctor` as a service call: check this machine and say which job it suits.

The checks live in localvideo/doctor.py (no service there); this area hands them the synth
area's planner and model list, so the doctor's advice is what `generate` would do.
"""

from __future__ import annotations

from typing import Any

from ..doctor import run_checks
from .context import Context
from .models import DoctorReport, GenerateRequest
from .synth import SynthArea


class DoctorArea:
    def __init__(self, ctx: Context, synth: SynthArea) -> None:
        self._ctx = ctx
        self._synth = synth

    def run(self) -> DoctorReport:
        """Check display, capture, encoders, OCR, GPU and disk; which job suits; what to install."""

        def plan(**kwargs: Any) -> dict[str, Any]:
            return self._synth.plan(GenerateRequest.of(prompt="plan", **kwargs)).model_dump()

        def models() -> list[dict[str, Any]]:
            return [m.model_dump() for m in self._synth.models()]

        return DoctorReport.model_validate(run_checks(self._ctx.settings, plan=plan,
                                                      models=models))
