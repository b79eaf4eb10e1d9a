"""API keys kept under the data dir: ``keys.json``, readable by the owner only (0600).

Resolution order for one reasoner: the explicit ``--key`` flag > the stored key > the
environment variable(s) the endpoint's own SDK reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError, MissingKeyError, UsageError

KNOWN = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    # Hosted video providers (synth/hosted): the variables each one's own SDK reads.
    "replicate": ("REPLICATE_API_TOKEN",),
    "fal": ("FAL_KEY",),
    "veo": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "runway": ("RUNWAYML_API_SECRET",),
}


class KeyStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "keys.json"

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {self.path}: {exc}",
                              "fix or delete the file, then run `localvideo keys set NAME`") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"{self.path} is not a JSON object",
                              "delete it and run `localvideo keys set NAME` again")
        return {str(k): str(v) for k, v in doc.items()}

    def _write(self, doc: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        # Create with 0600 from the start so the key is never world-readable, even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def set(self, name: str, value: str) -> None:
        name = _check_name(name)
        value = value.strip()
        if not value:
            raise UsageError(f"the key for {name} is empty",
                             f"run `localvideo keys set {name}` and paste the key")
        doc = self._read()
        doc[name] = value
        self._write(doc)

    def get(self, name: str) -> str | None:
        return self._read().get(name.lower())

    def delete(self, name: str) -> bool:
        doc = self._read()
        if name.lower() not in doc:
            return False
        del doc[name.lower()]
        self._write(doc)
        return True

    def list(self) -> list[dict[str, str | bool]]:
        """Names with a masked hint of each key, and whether an env var would supply one."""
        doc = self._read()
        names = sorted(set(doc) | set(KNOWN))
        return [{"name": n, "stored": n in doc, "preview": _mask(doc[n]) if n in doc else "",
                 "env": next((e for e in KNOWN.get(n, ()) if os.environ.get(e)), "")}
                for n in names]

    def resolve(self, name: str, explicit: str | None, envs: Iterable[str],
                required: bool = True) -> str | None:
        if explicit:
            return explicit
        stored = self.get(name)
        if stored:
            return stored
        envs = tuple(envs)
        for env in envs:
            if os.environ.get(env):
                return os.environ[env]
        if not required:
            return None
        env_text = " or ".join(envs) if envs else "pass --key"
        raise MissingKeyError(f"No key found for {name}",
                              hint=f"run `localvideo keys set {name}` or set {env_text}")


def _check_name(name: str) -> str:
    name = name.strip().lower()
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"bad key name {name!r}",
                         f"use a reasoner name such as: {', '.join(KNOWN)}")
    return name


def _mask(value: str) -> str:
    return value[:3] + "…" + value[-4:] if len(value) > 12 else "…"
