"""Device identity from the machine's hardware id — never a login or an account.

Linux: /sys/class/dmi/id/product_uuid (root-readable) else /etc/machine-id;
macOS: IOPlatformUUID from IOPlatformExpertDevice; Windows: MachineGuid in the registry.
The raw id is hashed so the folder name does not reveal the hardware serial.
"""

from __future__ import annotations

import hashlib
import platform
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

_LINUX_SOURCES = ("/sys/class/dmi/id/product_uuid", "/etc/machine-id", "/var/lib/dbus/machine-id")


def _linux_raw() -> str | None:
    for src in _LINUX_SOURCES:
        try:
            value = Path(src).read_text().strip()
        except OSError:
            continue
        if value and set(value) - {"0", "-"}:
            return value
    return None


def _macos_raw() -> str | None:
    try:
        out = subprocess.run(["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'"IOPlatformUUID"\s*=\s*"([^"]+)"', out)
    return m.group(1) if m else None


def _windows_raw() -> str | None:
    if platform.system() != "Windows":
        return None
    try:
        import winreg  # only on Windows; typeshed hides its names elsewhere

        return _read_machine_guid(winreg)
    except (ImportError, OSError):
        return None


def _read_machine_guid(winreg: Any) -> str:
    key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Cryptography",
                         0, winreg.KEY_READ | winreg.KEY_WOW64_64KEY)
    value, _ = winreg.QueryValueEx(key, "MachineGuid")
    return str(value)


def hardware_id(system: str | None = None) -> str:
    system = system or platform.system()
    raw = {"Linux": _linux_raw, "Darwin": _macos_raw, "Windows": _windows_raw}.get(
        system, lambda: None)()
    # Last resort: the MAC-derived node id, still stable per machine and needs no login.
    return raw or f"node-{uuid.getnode():012x}"


def device_id(system: str | None = None) -> str:
    """A 16-hex-digit stable id for this machine, safe to use as a folder name."""
    return hashlib.sha256(hardware_id(system).encode()).hexdigest()[:16]
