"""Service operations for the analyze area."""

from __future__ import annotations

from .base import ServiceBase


class AnalyzeOps(ServiceBase):
    pass
