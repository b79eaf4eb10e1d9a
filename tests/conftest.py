"""Shared test fixtures: a real Xvfb display with a window manager, real windows, a temp store.

Nothing here is mocked: capture tests grab real pixels from a real X server, and windows
are real xterm processes placed with xdotool.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lvdesktop import XDisplay

# Same seed, same clip: MKL's float kernels may take another path when a tensor lands at
# another memory alignment, and two synth tests that compare two same-seed runs each
# failed once in ~15 CI runs by a level or two. Strict conditional numerical
# reproducibility (read by MKL when torch first loads it, so set before any test imports
# torch) makes the result independent of alignment at a fixed thread count.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


@pytest.fixture(scope="session")
def xdisplay() -> Iterator[XDisplay]:
    """One real X server for the session; DISPLAY is set for code under test."""
    d = XDisplay()
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = d.name
    try:
        yield d
    finally:
        d.stop()
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old


@pytest.fixture
def desktop(xdisplay: XDisplay) -> Iterator[XDisplay]:
    """The session display, with every window a test opened closed afterwards."""
    yield xdisplay
    xdisplay.close_windows()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state root; LOCALVIDEO_HOME points at it so no test touches the real one."""
    d = tmp_path / "lv-home"
    monkeypatch.setenv("LOCALVIDEO_HOME", str(d))
    for k in list(os.environ):
        if k.startswith(("LOCALVIDEO_RECORD_", "LOCALVIDEO_ANALYZE_", "ANTHROPIC_", "OPENAI_",
                         "GEMINI_", "GOOGLE_API")):
            monkeypatch.delenv(k, raising=False)
    return d
