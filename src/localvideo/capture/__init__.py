"""Screen capture backends, imported lazily per platform (see registry.open_backend)."""

from .base import CaptureBackend, Frame, WindowInfo, open_backend
from .virtual import VirtualDisplay

__all__ = ["CaptureBackend", "Frame", "VirtualDisplay", "WindowInfo", "open_backend"]
