"""Process-wide helpers for the long-running loops (the recorder, the follow-mode analyzer):
the garbage collector, the C library, the heap."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys


def freeze_startup() -> None:
    """Take everything start-up allocated out of the cyclic garbage collector's walks.

    A recorder or analyzer runs for hours over ~700 imported modules (pydantic models, typer,
    rich, PyAV, python-xlib) that are never freed; each full collection walked all of their
    objects again. Collected once here, then frozen (gc.freeze), later collections walk only
    what the loop itself allocates.
    """
    gc.collect()
    gc.freeze()


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library on Linux, loaded once; None elsewhere or where it cannot be found."""
    name = ctypes.util.find_library("c") if sys.platform == "linux" else None
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc's malloc_trim; elsewhere nothing).

    glibc keeps freed pages mapped, and a recorder frees large blocks all day (an encoder
    per chunk, ~40 MB at 1080p; colour-conversion frames): over hours that read as slow RSS
    growth.
    """
    trim = getattr(_glibc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
