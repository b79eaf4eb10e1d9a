"""Service operations for the record area."""

from __future__ import annotations

from .base import ServiceBase


class RecordOps(ServiceBase):
    pass
