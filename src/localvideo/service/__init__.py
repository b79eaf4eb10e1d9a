"""The service layer: one framework-free API of operations that every front end shares.

CLI, REST/web and MCP are thin over :class:`Service`. Operations are grouped by area in
mixins (one file each) so the areas can grow independently; they share ``settings``,
``db`` and ``device_id`` from :class:`ServiceBase`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from .analyze import AnalyzeOps
from .base import ServiceBase
from .record import RecordOps
from .serve import ServeOps
from .synth import SynthOps


class Service(RecordOps, AnalyzeOps, SynthOps, ServeOps, ServiceBase):
    """Everything a user can do, as plain Python calls returning plain data."""

    @classmethod
    def open(cls, data_dir: str | Path | None = None,
             overrides: dict[str, dict[str, Any]] | None = None, *,
             recover: bool = True) -> Service:
        svc = cls(load_settings(data_dir, overrides))
        if recover:
            # "The next start of any command recovers a partial chunk into the index."
            svc.startup()
        return svc


__all__ = ["Service", "Settings"]
