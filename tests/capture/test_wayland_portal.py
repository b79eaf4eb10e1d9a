"""The xdg-desktop-portal ScreenCast path at its D-Bus boundary: a stub portal on a real
session bus, frames through a real PipeWire daemon, the restore token kept under the data
dir and sent back on the next run. Unverified on real GNOME and KDE desktops (README)."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from lvportal import PipeWireSession, StubPortal

from localvideo.capture import open_backend
from localvideo.capture.portal import TOKEN_NAME, PortalBackend
from localvideo.config import load_settings
from localvideo.errors import NoDisplayError
from localvideo.record.lock import RecorderLock
from localvideo.record.recorder import Recorder, setup_logging
from localvideo.store.db import Database


@pytest.fixture(scope="module")
def pipewire() -> Iterator[PipeWireSession]:
    pw = PipeWireSession()
    try:
        yield pw
    finally:
        pw.stop()


@pytest.fixture
def portal(pipewire: PipeWireSession, monkeypatch: pytest.MonkeyPatch) -> Iterator[StubPortal]:
    stub = StubPortal(pipewire)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", pipewire.bus)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(pipewire.rt))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "GNOME")
    for k in ("DISPLAY", "SWAYSOCK", "I3SOCK", "HYPRLAND_INSTANCE_SIGNATURE"):
        monkeypatch.delenv(k, raising=False)
    try:
        yield stub
    finally:
        stub.stop()


def test_portal_frames_and_restore_token(portal: StubPortal, tmp_path: Path) -> None:
    state = tmp_path / "data"
    with open_backend("active-window", state_dir=state) as b:
        assert isinstance(b, PortalBackend)
        assert "xdg-desktop-portal" in b.path and "GNOME offers no wlr-screencopy" in b.why
        assert "title unknown" in b.why
        f = b.grab()
        assert f is not None and f.size == (320, 240) and f.title == ""
        # The stub's stream is solid red (BGR 0,0,255): the pixels came through PipeWire.
        assert f.pixels[120, 160].tolist() == [0, 0, 255, 255]
        assert np.all(f.pixels[..., 2] == 255)
    methods = [m for m, _ in portal.calls]
    assert methods == ["CreateSession", "SelectSources", "Start", "OpenPipeWireRemote"], \
        portal.calls
    select = portal.calls[1][1]
    assert select["types"] == 1 and select["persist_mode"] == 2 and "restore_token" not in select
    assert len(portal.closed) == 1                 # the session is closed with the backend
    token = state / "state" / TOKEN_NAME
    assert token.read_text() == portal.token
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    # The next run asks with the saved token, so the user is not asked again.
    portal.calls.clear()
    with open_backend("display", state_dir=state) as b:
        assert "restore token" in b.why
        assert b.grab() is not None
    assert portal.calls[1][1]["restore_token"] == portal.token


def test_cancelled_dialog_names_what_works(portal: StubPortal, tmp_path: Path) -> None:
    portal.respond = 1
    with pytest.raises(NoDisplayError) as err:
        open_backend("display", state_dir=tmp_path)
    assert "cancelled by the user" in err.value.message
    assert "allow the screen share" in (err.value.hint or "")
    assert "--backend x11" in (err.value.hint or "")


def test_recorder_through_the_portal(portal: StubPortal, data_dir: Path) -> None:
    settings = load_settings(data_dir, {"record": {"fps": 4.0, "mode": "display"}})
    setup_logging(settings.data_dir)
    db = Database(settings.db_path)
    try:
        with RecorderLock(settings.data_dir), \
                open_backend("display", state_dir=settings.data_dir) as backend:
            summary = Recorder(settings, db, "dev", backend).run(duration=2.5,
                                                                 stop=threading.Event())
    finally:
        db.close()
    assert summary["frames_encoded"] >= 1 and summary["chunks"], summary
    assert summary["health"]["path"].startswith("xdg-desktop-portal")
    assert summary["health"]["state"] == "ok"


def test_no_portal_on_the_bus(pipewire: PipeWireSession, monkeypatch: pytest.MonkeyPatch,
                              tmp_path: Path) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", pipewire.bus)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "KDE")
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(NoDisplayError) as err:
        open_backend("display", state_dir=tmp_path)
    assert "xdg-desktop-portal" in err.value.message and "refused" in err.value.message
    assert "xdg-desktop-portal" in (err.value.hint or "")
