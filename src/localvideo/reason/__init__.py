"""Reasoners: one endpoint family per module behind one small contract (see base.py)."""

from .base import (
    ASK_SCHEMA,
    OBSERVATION_SCHEMA,
    AskedTime,
    EarlierObservation,
    ImagePart,
    Reasoner,
    ReasonRequest,
    ReasonResponse,
    ScreenText,
    WindowSession,
    describe_request,
    get_reasoner,
    render_text,
)
from .keys import KeyStore

__all__ = [
    "ASK_SCHEMA", "OBSERVATION_SCHEMA", "AskedTime", "EarlierObservation", "ImagePart",
    "KeyStore", "ReasonRequest", "ReasonResponse", "Reasoner", "ScreenText", "WindowSession",
    "describe_request", "get_reasoner", "render_text",
]
