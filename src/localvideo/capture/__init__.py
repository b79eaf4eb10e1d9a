"""Screen capture backends, imported lazily per platform (see base.open_backend)."""

from .base import CaptureBackend, Frame, WindowInfo, open_backend

__all__ = ["CaptureBackend", "Frame", "WindowInfo", "open_backend"]
