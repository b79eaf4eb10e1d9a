"""Process-wide settings for the long-running loops (the recorder, the follow-mode analyzer)."""

from __future__ import annotations

import gc


def freeze_startup() -> None:
    """Take everything start-up allocated out of the cyclic garbage collector's walks.

    A recorder or analyzer runs for hours over ~700 imported modules (pydantic models, typer,
    rich, PyAV, python-xlib) that are never freed; each full collection walked all of their
    objects again. Collected once here, then frozen (gc.freeze), later collections walk only
    what the loop itself allocates.
    """
    gc.collect()
    gc.freeze()
