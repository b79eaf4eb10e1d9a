"""Backend registry: platform choice, lazy imports, and the errors a user sees."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lvdesktop import XDisplay

from localvideo.capture import open_backend
from localvideo.capture.x11 import X11Backend
from localvideo.errors import CaptureError, DependencyError, NoDisplayError, UsageError


def test_x11_when_display_is_set(desktop: XDisplay) -> None:
    with open_backend("active-window", "1", system="Linux") as b:
        assert isinstance(b, X11Backend) and b.display_name == desktop.name
    with open_backend("display", "all", system="Linux") as b:
        assert b.mode == "display" and b.display == "all"


def test_no_display_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(NoDisplayError) as err:
        open_backend(system="Linux")
    assert err.value.message.startswith("no display: DISPLAY is not set")
    assert "--virtual-display" in (err.value.hint or "")


def test_wayland_without_a_compositor_names_what_works(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    # WAYLAND_DISPLAY names a socket nobody listens on: grim (wlr-screencopy) cannot connect.
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("SWAYSOCK", raising=False)
    monkeypatch.delenv("XDG_CURRENT_DESKTOP", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    with pytest.raises(NoDisplayError) as err:
        open_backend(system="Linux")
    assert "Wayland compositor" in err.value.message and "wayland-0" in err.value.message
    hint = err.value.hint or ""
    assert "XWayland" in hint and "X11" in hint and "--virtual-display" in hint
    # Asked for explicitly, the Wayland path needs WAYLAND_DISPLAY, X11 needs DISPLAY.
    monkeypatch.delenv("WAYLAND_DISPLAY")
    with pytest.raises(NoDisplayError, match="--backend wayland"):
        open_backend(system="Linux", backend="wayland")
    with pytest.raises(NoDisplayError, match="--backend x11"):
        open_backend(system="Linux", backend="x11")


def test_gnome_and_kde_need_the_portal(monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    # No session bus at all: the portal path (tests/capture/test_wayland_portal.py) can't run.
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    for desktop in ("GNOME", "KDE"):
        monkeypatch.setenv("XDG_CURRENT_DESKTOP", desktop)
        with pytest.raises(NoDisplayError) as err:
            open_backend(system="Linux", state_dir=tmp_path)
        msg = err.value.message
        assert f"{desktop} offers no wlr-screencopy" in msg and "xdg-desktop-portal" in msg
        assert "DBUS_SESSION_BUS_ADDRESS is not set" in msg
        assert "--backend x11" in (err.value.hint or "")


def test_auto_falls_back_to_xwayland_loudly(desktop: XDisplay,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # A GNOME session with XWayland: no Wayland path yet, so X11 — and `why` says what is lost.
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "GNOME")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with open_backend(system="Linux") as b:
        assert isinstance(b, X11Backend)
        assert "Wayland capture is unavailable" in b.why and "only X11 apps" in b.why
    with pytest.raises(NoDisplayError, match="xdg-desktop-portal"):
        open_backend(system="Linux", backend="wayland")


@pytest.mark.parametrize("backend", ["X11", "gnome", "", "portal"])
def test_bad_backend(backend: str) -> None:
    with pytest.raises(UsageError) as err:
        open_backend(system="Linux", backend=backend)
    assert repr(backend) in err.value.message and "--backend" in (err.value.hint or "")
    with pytest.raises(UsageError, match="for Linux"):
        open_backend(system="Darwin", backend="x11")


@pytest.mark.parametrize("mode", ["window", "", "Display", "screen"])
def test_bad_mode(mode: str) -> None:
    with pytest.raises(UsageError) as err:
        open_backend(mode, "1", system="Linux")
    assert repr(mode) in err.value.message and "--mode" in (err.value.hint or "")


@pytest.mark.parametrize("display", ["0", "-1", "first", "1.5", ""])
def test_bad_display(display: str) -> None:
    with pytest.raises(UsageError) as err:
        open_backend("display", display, system="Linux")
    assert "--display" in (err.value.hint or "")


def test_display_number_is_normalised(desktop: XDisplay) -> None:
    with open_backend("display", " 01 ", system="Linux") as b:
        assert b.display == "1"
    with open_backend("display", "ALL", system="Linux") as b:
        assert b.display == "all"


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="checks a missing OS library")
@pytest.mark.parametrize(("system", "package"), [
    ("Darwin", "pyobjc-framework-ScreenCaptureKit"), ("Windows", "pywin32")])
def test_other_platform_library_missing(system: str, package: str) -> None:
    # pyobjc and pywin32 really are absent here: the lazy import fails on that platform only.
    with pytest.raises(DependencyError) as err:
        open_backend(system=system)
    assert package in (err.value.hint or "") and "pip install" in (err.value.hint or "")


def test_unsupported_platform() -> None:
    with pytest.raises(CaptureError, match="not supported on 'Plan9'"):
        open_backend(system="Plan9")


def test_wayland_hint_names_the_x_server_that_is_there(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from localvideo.capture.wayland import open_wayland, x_displays

    (tmp_path / "X12").touch()
    (tmp_path / "X3").touch()
    (tmp_path / "X3-lock").touch()
    assert x_displays(tmp_path) == [":3", ":12"]
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "GNOME")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(NoDisplayError) as err:
        open_wayland(socket_dir=tmp_path, state_dir=tmp_path)
    assert "export DISPLAY=:3" in (err.value.hint or "")
    with pytest.raises(NoDisplayError) as err:
        open_wayland(socket_dir=tmp_path / "missing", state_dir=tmp_path)
    assert "export DISPLAY=:0" in (err.value.hint or "")
