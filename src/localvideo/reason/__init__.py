"""Reasoners: one endpoint family per module behind one small contract (see base.py)."""

from .base import (
    ASK_SCHEMA,
    OBSERVATION_SCHEMA,
    ImagePart,
    Reasoner,
    ReasonRequest,
    ReasonResponse,
    describe_request,
    get_reasoner,
)
from .keys import KeyStore

__all__ = [
    "ASK_SCHEMA", "OBSERVATION_SCHEMA", "ImagePart", "KeyStore", "ReasonRequest",
    "ReasonResponse", "Reasoner", "describe_request", "get_reasoner",
]
