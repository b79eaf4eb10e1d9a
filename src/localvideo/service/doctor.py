"""`localvideo doctor` as a service call: check this machine and say which job it suits.

The checks live in localvideo/doctor.py (no service there); this area hands them the synth
area's planner and model list, so the doctor's advice is what `generate` would do.
"""

from __future__ import annotations

from typing import Any

from ..doctor import run_checks
from .context import Context
from .models import DoctorReport, GenerateRequest
from .reasoner import ReasonerArea
from .record import recorder_health
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

        report = run_checks(self._ctx.settings, plan=plan, models=models)
        report["checks"].append(self._recording())
        report["checks"].append(self._reasoner())
        return DoctorReport.model_validate(report)

    def _reasoner(self) -> dict[str, Any]:
        """Where the analysis reasons, and a local model server found on 127.0.0.1 but not
        used yet, with the one command that uses it (the probe: one GET /v1/models each)."""
        area = ReasonerArea(self._ctx)
        now = area.get()
        found = area.local()
        detail = f"{now.resolved}" + (f" ({now.model_used} at {now.host})" if now.host else
                                      "") + (": nothing leaves this machine" if now.local
                                             else ": screen text is sent off this machine")
        offers = [s for s in found if not s.configured and s.model]
        for s in offers:
            detail += (f"; {s.name} answers at {s.base_url} ({s.model}) — use it: "
                       f"`{s.command}`")
        return {"name": "reasoner", "ok": True, "detail": detail, "fix": None,
                "data": {"reasoner": now.model_dump(),
                         "local": [s.model_dump() for s in found]}}

    def _recording(self) -> dict[str, Any]:
        """What a running recorder sees right now: the doctor's own grab above can succeed
        while the recorder's capture is blind (a native Wayland window on the X11 path)."""
        pid, health = recorder_health(self._ctx)
        if pid is None:
            return {"name": "recording", "ok": True, "detail": "no recorder running",
                    "fix": None, "data": None}
        if health is None:
            return {"name": "recording", "ok": True,
                    "detail": f"recorder running (pid {pid}), no capture health reported yet",
                    "fix": None, "data": None}
        via = f"{health.backend} via {health.path}" if health.path else health.backend
        ok = health.state in ("ok", "starting", "locked")
        detail = f"recorder running (pid {pid}): capture {health.state}" + \
            (f" ({via})" if via else "") + (f": {health.message}" if health.message else "")
        return {"name": "recording", "ok": ok, "detail": detail, "fix": None,
                "data": health.model_dump()}
