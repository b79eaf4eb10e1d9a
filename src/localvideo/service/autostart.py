"""Start `localvideo observe` at login: a systemd user unit (Linux) or a launchd agent (macOS)."""

from __future__ import annotations

import os
import platform
import plistlib
import shlex
import sys
from pathlib import Path

from ..errors import UsageError
from .context import Context
from .models import AutostartInstalled, AutostartRemoved

SYSTEMD_UNIT = "localvideo.service"
LAUNCHD_LABEL = "dev.localvideo.observe"


def launchd_path(python: str) -> str:
    """PATH for the launchd agent: the Python's own bin, Homebrew (both prefixes), system."""
    dirs = [os.path.dirname(python), "/opt/homebrew/bin", "/opt/homebrew/sbin",
            "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    return ":".join(dict.fromkeys(d for d in dirs if d))


def _unsupported(system: str) -> UsageError:
    return UsageError(f"autostart is not supported on {system} yet",
                      "start `localvideo observe` from your login items instead")


class AutostartArea:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _target(self, home: Path | None, system: str | None) -> tuple[str, Path]:
        system = system or platform.system()
        home = Path(home) if home is not None else Path.home()
        if system == "Linux":
            return system, home / ".config" / "systemd" / "user" / SYSTEMD_UNIT
        if system == "Darwin":
            return system, home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
        raise _unsupported(system)

    def unit_text(self, *, python: str | None = None, system: str | None = None) -> str:
        """The unit (systemd) or agent (launchd) text that runs ``localvideo observe``."""
        system = system or platform.system()
        python = python or sys.executable
        data_dir = str(self._ctx.settings.data_dir)
        if system == "Linux":
            exec_start = " ".join(shlex.quote(a) for a in
                                  [python, "-m", "localvideo", "observe", "--data-dir", data_dir])
            # graphical-session.target: capture needs the user's display, which systemd
            # only knows once the desktop session has imported DISPLAY/WAYLAND_DISPLAY.
            return (
                "[Unit]\n"
                "Description=localvideo: record, analyze and serve your screen history\n"
                "PartOf=graphical-session.target\n"
                "After=graphical-session.target\n\n"
                "[Service]\n"
                "Type=simple\n"
                f"ExecStart={exec_start}\n"
                "Restart=on-failure\n"
                "RestartSec=10\n"
                # Owner-only files even before our own umask is set (docs/privacy.md).
                "UMask=0077\n"
                # observe forwards SIGINT to its children and waits for chunks to close.
                "KillSignal=SIGINT\n"
                "TimeoutStopSec=30\n\n"
                "[Install]\n"
                "WantedBy=graphical-session.target\n"
            )
        if system == "Darwin":
            logs = Path(data_dir) / "logs"
            plist = {
                "Label": LAUNCHD_LABEL,
                "ProgramArguments": [python, "-m", "localvideo", "observe", "--data-dir",
                                     data_dir],
                "RunAtLoad": True,
                "KeepAlive": {"SuccessfulExit": False},
                "ProcessType": "Interactive",
                "StandardOutPath": str(logs / "observe.out.log"),
                "StandardErrorPath": str(logs / "observe.err.log"),
                # launchd starts agents with PATH=/usr/bin:/bin:/usr/sbin:/sbin: without this,
                # Homebrew's tesseract and ffmpeg (/opt/homebrew/bin on Apple Silicon,
                # /usr/local/bin on Intel) are not found. The venv's bin comes first.
                "EnvironmentVariables": {"PATH": launchd_path(python)},
            }
            return plistlib.dumps(plist).decode()
        raise _unsupported(system)

    def install(self, *, home: Path | None = None, system: str | None = None,
                python: str | None = None) -> AutostartInstalled:
        """Write the autostart file; returns its path and the command that enables it."""
        system, path = self._target(home, system)
        text = self.unit_text(python=python, system=system)
        path.parent.mkdir(parents=True, exist_ok=True)
        if system == "Darwin":
            (self._ctx.settings.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        if system == "Linux":
            enable = ("systemctl --user daemon-reload && systemctl --user enable --now "
                      f"{SYSTEMD_UNIT}")
        else:
            enable = f"launchctl bootstrap gui/$(id -u) {shlex.quote(str(path))}"
        return AutostartInstalled(system=system, path=str(path), enable_command=enable)

    def uninstall(self, *, home: Path | None = None,
                  system: str | None = None) -> AutostartRemoved:
        """Remove the autostart file and its enablement links; says how to stop a running copy."""
        system, path = self._target(home, system)
        removed = []
        if system == "Linux":
            # `systemctl disable` refuses once the unit file is gone, so drop the
            # enablement links ourselves; what is left is stopping the running copy.
            for link in path.parent.glob(f"*.wants/{SYSTEMD_UNIT}"):
                link.unlink(missing_ok=True)
                removed.append(str(link))
            stop = f"systemctl --user stop {SYSTEMD_UNIT}; systemctl --user daemon-reload"
        else:
            # bootout works by label, with or without the plist on disk.
            stop = f"launchctl bootout gui/$(id -u)/{LAUNCHD_LABEL}"
        if path.exists():
            path.unlink()
            removed.insert(0, str(path))
        return AutostartRemoved(system=system, path=str(path), removed=removed,
                                stop_command=stop)
