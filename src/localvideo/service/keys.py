"""API keys of the reasoners, stored 0600 in the data dir (see reason/keys.py)."""

from __future__ import annotations

from ..errors import NotFoundError
from ..reason.keys import KeyStore
from .context import Context
from .models import KeyChange, KeyInfo


class KeysArea:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _store(self) -> KeyStore:
        return KeyStore(self._ctx.settings.data_dir)

    def set(self, name: str, value: str) -> KeyChange:
        self._store().set(name, value)
        return KeyChange(name=name.strip().lower(), stored=True)

    def list(self) -> list[KeyInfo]:
        """Names with a masked hint of each key, and which env var would supply one."""
        return [KeyInfo.model_validate(k) for k in self._store().list()]

    def delete(self, name: str) -> KeyChange:
        if not self._store().delete(name):
            raise NotFoundError(f"no stored key named {name!r}",
                                "see the stored keys with `localvideo keys list`")
        return KeyChange(name=name.strip().lower(), deleted=True)
