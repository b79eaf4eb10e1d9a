"""Hosted video providers behind one flow (see base.py); one file per provider.

``get_provider("replicate", base_url=..., key_store=KeyStore(data_dir))`` returns a
:class:`~.base.HostedProvider`; its ``describe(model, request)`` says what will be sent and
``run(model, request, out, on_progress=..., cancel=...)`` does it. The SDKs are imported only
when a provider makes its client, so nothing here needs the ``[hosted]`` extra to import.
"""

from __future__ import annotations

from typing import Any

from ...errors import UsageError
from .base import (
    Estimate,
    HostedProvider,
    HostedRequest,
    HostedResult,
    ImageInfo,
    Status,
    Submission,
)

PROVIDERS = ("replicate", "fal", "veo", "runway")


def provider_class(name: str) -> type[HostedProvider]:
    if name == "replicate":
        from .replicate import ReplicateProvider

        return ReplicateProvider
    if name == "fal":
        from .fal import FalProvider

        return FalProvider
    if name == "veo":
        from .veo import VeoProvider

        return VeoProvider
    if name == "runway":
        from .runway import RunwayProvider

        return RunwayProvider
    raise UsageError(f"unknown hosted provider {name!r}", f"use one of: {', '.join(PROVIDERS)}")


def get_provider(name: str, **kwargs: Any) -> HostedProvider:
    return provider_class(name)(**kwargs)


__all__ = ["PROVIDERS", "Estimate", "HostedProvider", "HostedRequest", "HostedResult",
           "ImageInfo", "Status", "Submission", "get_provider", "provider_class"]
