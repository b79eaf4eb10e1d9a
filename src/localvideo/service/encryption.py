"""Encryption at rest (opt-in): ``encrypt enable|disable|status``, plain exports, and the
unlock check when the key is a passphrase.

What it protects and how: docs/encryption.md. The mechanisms are in crypto.py (keys, sealed
chunks) and store/cipher.py (the SQLCipher index); this area moves a store between plain and
encrypted without losing anything, and refuses while a recorder or an analysis runs on it.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

from .. import crypto
from ..analyze.lock import AnalyzeLock
from ..errors import LockedError, UsageError
from ..record.lock import RecorderLock
from ..store import cipher
from .context import Context, maybe_moment
from .models import EncryptionChange, EncryptionStatus, Exported, When
from .privacy import Unlocker
from .record import RecordArea


class EncryptionUnlocker(Unlocker):
    """``localvideo unlock`` on an encrypted store: the passphrase (or the keyring's key)
    must open it, not just running the CLI."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def needs_secret(self) -> bool:  # type: ignore[override]
        cfg = crypto.read_config(self._ctx.settings.data_dir)
        return cfg is not None and cfg.source == "passphrase"

    def verify(self, secret: str | None) -> None:
        root = self._ctx.settings.data_dir
        cfg = crypto.read_config(root)
        if cfg is None:
            return
        if cfg.source == "passphrase":
            if not secret:
                raise LockedError("this store is encrypted: unlocking takes its passphrase",
                                  "run `localvideo unlock` in a terminal and type it")
            crypto.unlock(root, secret, prompt=False)   # LockedError when it is wrong
        else:
            crypto.unlock(root, prompt=False)


class EncryptionArea:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def _root(self) -> Path:
        return self._ctx.settings.data_dir

    def status(self) -> EncryptionStatus:
        """Whether the store is encrypted, where its key comes from, and how many chunk
        files are sealed (a plain one left in an encrypted store is counted apart)."""
        root = self._root
        cfg = crypto.read_config(root)
        sealed = plain = 0
        for p in crypto.iter_sealable(root):
            if crypto.is_sealed(p):
                sealed += 1
            else:
                plain += 1
        return EncryptionStatus(
            enabled=cfg is not None, source=cfg.source if cfg else None,  # type: ignore[arg-type]
            key_id=cfg.key_id if cfg else None, keyring=crypto.keyring_backend(),
            index_encrypted=crypto.is_plain_sqlite(self._ctx.settings.db_path) is False,
            chunks_sealed=sealed, chunks_plain=plain)

    def enable(self, passphrase: str | None = None, keyring: bool | None = None
               ) -> EncryptionChange:
        """Encrypt the index (SQLCipher) and seal every chunk. The key goes to the OS keyring
        when there is one (``keyring`` None or True) unless a passphrase is given; else it is
        derived from ``passphrase`` or ``LOCALVIDEO_PASSPHRASE`` (Argon2id)."""
        root = self._root
        if crypto.read_config(root) is not None:
            raise UsageError(f"the store {root} is already encrypted",
                             "see `localvideo encrypt status`")
        cipher.module()  # the [encrypt] extra, before anything changes
        t0 = time.monotonic()
        backend = crypto.keyring_backend()
        if passphrase is None and keyring is not True:
            passphrase = os.environ.get(crypto.PASSPHRASE_ENV)
        if passphrase is not None and keyring is not True:
            cfg, keys = crypto.new_passphrase_config(passphrase)
        elif backend is not None and keyring is not False:
            cfg, keys = crypto.new_keyring_config()
        elif keyring is True:
            raise UsageError("there is no OS keyring here to keep the key in",
                             "use a passphrase: localvideo encrypt enable --passphrase")
        else:
            raise UsageError("no passphrase given and no OS keyring here to keep the key in",
                             f"set {crypto.PASSPHRASE_ENV}, or pass --passphrase to be asked")
        with self._quiet_store():
            # encryption.json first: until the index is swapped its first bytes say "plain"
            # (crypto.index_key), so a crash in between leaves a store that still opens.
            crypto.write_config(root, cfg)
            crypto.remember(keys)
            rows = self._swap_index(None, keys.index_key)
            sealer = crypto.Sealer(cfg.public, cfg.key_id)
            n = sum(crypto.seal_file(p, sealer) for p in list(crypto.iter_sealable(root)))
        return EncryptionChange(enabled=True, source=cfg.source, rows=rows, chunks=n,
                                seconds=round(time.monotonic() - t0, 3))

    def disable(self, passphrase: str | None = None) -> EncryptionChange:
        """Decrypt the index and open every sealed chunk back into a plain file, then drop
        the key (encryption.json and the keyring entry)."""
        root = self._root
        cfg = crypto.read_config(root)
        if cfg is None:
            raise UsageError(f"the store {root} is not encrypted",
                             "see `localvideo encrypt status`")
        cipher.module()
        t0 = time.monotonic()
        keys = crypto.unlock(root, passphrase)
        with self._quiet_store():
            n = sum(crypto.unseal_file(p, keys) for p in list(crypto.iter_sealable(root)))
            rows = self._swap_index(keys.index_key, None)
            crypto.forget(root, cfg)
        return EncryptionChange(enabled=False, source=cfg.source, rows=rows, chunks=n,
                                seconds=round(time.monotonic() - t0, 3))

    # -- helpers --------------------------------------------------------------------------
    def _quiet_store(self) -> ExitStack:
        """No recorder and no analysis may write while the store changes hands."""
        stack = ExitStack()
        try:
            for lock in (RecorderLock(self._root), AnalyzeLock(self._root)):
                lock.acquire()
                stack.callback(lock.release)
        except UsageError as exc:
            stack.close()
            raise UsageError(f"{exc.message}; stop it before changing the encryption",
                             exc.hint) from exc
        self._ctx.close()   # this process' own connections go too
        return stack

    def _swap_index(self, src_key: bytes | None, dst_key: bytes | None) -> dict[str, int]:
        db_path = self._ctx.settings.db_path
        if not db_path.exists():
            return {}
        new = db_path.with_name(db_path.name + ".migrate")
        rows = cipher.export(db_path, new, src_key=src_key, dst_key=dst_key)
        cipher.set_wal(new, dst_key)
        os.replace(new, db_path)
        for suffix in ("-wal", "-shm"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
        # The Context re-opens the index (with the new key) on its next use.
        self._ctx.__dict__.pop("db", None)
        return rows


class ExportArea:
    def __init__(self, ctx: Context, record: RecordArea) -> None:
        self._ctx = ctx
        self._record = record

    def chunks(self, since: When, until: When, out: str | Path) -> Exported:
        """Plain MP4 copies of the chunks overlapping [since, until] in ``out`` (whole chunks;
        a sealed chunk is opened with the store's key, a chunk still being written is copied
        up to its last whole fragment)."""
        lo, hi = maybe_moment(since, "--since"), maybe_moment(until, "--until")
        if lo is not None and hi is not None and lo > hi:
            raise UsageError("--since is after --until", "swap them, e.g. --since 3h --until 2h")
        target = Path(out).expanduser()
        if target.exists() and not target.is_dir():
            raise UsageError(f"--out {target} is a file", "pass a folder (it is created)")
        root = self._ctx.settings.data_dir.resolve()
        if target.resolve() == root or root in target.resolve().parents:
            raise UsageError(f"--out {target} is inside the store",
                             "export to a folder outside the data dir")
        target.mkdir(parents=True, exist_ok=True)
        files: list[str] = []
        total = 0
        for c in self._record.chunks(since=lo, until=hi):
            src = self._record.chunk_file(c.id)
            dst = target / f"{Path(c.path).parent.name}_{src.name}"
            if crypto.is_sealed(src):
                data = crypto.read_plain(src)
                tmp = dst.with_name(dst.name + ".part")
                tmp.write_bytes(data)
                os.replace(tmp, dst)
            else:
                shutil.copyfile(src, dst)
            files.append(str(dst))
            total += dst.stat().st_size
        if not files:
            raise UsageError("no chunk overlaps that time range",
                             "see `localvideo chunks` for what is recorded")
        return Exported(out=str(target), files=files, bytes=total)


def sealed_body(path: Path) -> bytes | None:
    """The plaintext of a sealed media file the service has confined to the store (the web
    server sends it from memory: no decrypted copy on disk), or None for a plain file."""
    return crypto.read_plain(path) if crypto.is_sealed(path) else None
