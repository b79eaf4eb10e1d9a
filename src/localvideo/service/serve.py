"""Service operations for the serve area."""

from __future__ import annotations

from .base import ServiceBase


class ServeOps(ServiceBase):
    pass
