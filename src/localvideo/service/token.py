"""The API token: the bearer secret of the local REST API, the web UI and its cookie."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from ..errors import ConfigError, UsageError
from .context import Context

TOKEN_ENV = "LOCALVIDEO_API_TOKEN"
TOKEN_FILE = "api-token"


class TokenArea:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def path(self) -> Path:
        return self._ctx.settings.data_dir / TOKEN_FILE

    def get(self) -> str:
        """The bearer token of the local API; created (mode 0600) on first use.

        ``LOCALVIDEO_API_TOKEN`` overrides the file."""
        env = os.environ.get(TOKEN_ENV, "").strip()
        if env:
            return env
        path = self.path
        try:
            token = path.read_text().strip()
            if token:
                return token
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ConfigError(f"cannot read the API token {path}: {exc}",
                              f"remove {path}; `localvideo token` makes a new one") from exc
        self._ctx.settings.data_dir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        # O_EXCL: two processes starting at once must agree on one token, not overwrite.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token

    def rotate(self) -> str:
        """Replace the token; every browser and client holding the old one is locked out at
        once (the server reads the file on each request)."""
        if os.environ.get(TOKEN_ENV, "").strip():
            raise UsageError(f"the token comes from {TOKEN_ENV}, so there is no file to rotate",
                             f"change {TOKEN_ENV} instead")
        self.path.unlink(missing_ok=True)
        return self.get()

    def check(self, token: str | None) -> bool:
        """Whether ``token`` is the API token (constant-time compare)."""
        if not token:
            return False
        return hmac.compare_digest(token.encode(), self.get().encode())
