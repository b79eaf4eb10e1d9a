"""Waiting for something a real process does (kept out of conftest.py to be importable;
bench/chaos.py uses :func:`poll` too)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def poll(cond: Callable[[], Any], timeout: float, every: float = 0.05) -> Any:
    """``cond()``'s first truthy value within ``timeout`` seconds, polled every ``every``;
    None when there was none."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(every)
    return None


def wait_for(cond: Callable[[], Any], timeout: float, what: str,
             detail: Callable[[], str] = lambda: "", every: float = 0.05) -> Any:
    """``cond()``'s first truthy value within ``timeout`` seconds, polled every ``every``;
    otherwise the test fails naming ``what``, with ``detail()`` (a log tail, what was seen)."""
    got = poll(cond, timeout, every)
    if got:
        return got
    more = detail()
    pytest.fail(f"{what} did not happen within {timeout:g} s" + (f"\n{more}" if more else ""))
