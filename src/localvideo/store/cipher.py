"""The index encrypted with SQLCipher (``sqlcipher3``: SQLCipher 4 built into its wheel).

Why SQLCipher rather than sealing rows ourselves: every page of the file is AES-256
encrypted with an HMAC, the WAL and the journal included, while FTS5, triggers, the
migrations and sqlite-vec (a loadable extension: it loads into SQLCipher's connection the
same way) keep working unchanged; a row-level scheme would have broken full-text search.

The key is a raw 256-bit key (``PRAGMA key = "x'…'"``) derived from the store's master key
(crypto.py), so opening a connection costs no PBKDF2. ``encrypt enable`` copies the plain
index into a new encrypted file with ``sqlcipher_export`` and ``disable`` copies it back;
both compare every table's row count before the swap.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from ..crypto import ENCRYPT_EXTRA_HINT
from ..errors import DependencyError, LockedError, StoreError

# sqlcipher3 (its own SQLite, ~5 MB resident) is imported on first use, by a store that is
# encrypted or becoming so: a plain store's recorder never loads it.
_sqlcipher: Any = None

def module() -> Any:
    global _sqlcipher
    if _sqlcipher is None:
        try:
            from sqlcipher3 import dbapi2
        except ImportError as exc:  # the [encrypt] extra is not installed
            raise DependencyError("this store's index is encrypted and sqlcipher3 is not "
                                  "installed", ENCRYPT_EXTRA_HINT) from exc
        _sqlcipher = dbapi2
    return _sqlcipher


def errors() -> tuple[type[Exception], ...]:
    """What a query module catches (``except cipher.errors()``: evaluated when the exception
    is raised): the stdlib's errors and, once a SQLCipher index has been opened, its
    binding's own (separate classes, not subclasses of sqlite3's)."""
    return (sqlite3.Error,) if _sqlcipher is None else (sqlite3.Error, _sqlcipher.Error)


def operational_errors() -> tuple[type[Exception], ...]:
    """The operational ones among :func:`errors` (a full disk, a damaged index)."""
    return (sqlite3.OperationalError,) if _sqlcipher is None else (
        sqlite3.OperationalError, _sqlcipher.OperationalError)


def _key_pragma(key: bytes) -> str:
    return f"\"x'{key.hex()}'\""


def connect(path: Path, key: bytes) -> Any:
    """A SQLCipher connection to ``path`` opened with ``key`` (checked at once)."""
    mod = module()
    try:
        conn = mod.connect(str(path), timeout=30, isolation_level=None,
                           check_same_thread=False)
        conn.execute(f"PRAGMA key = {_key_pragma(key)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except mod.DatabaseError as exc:
        raise LockedError(f"cannot open the encrypted index {path}: {exc}",
                          "the key does not match this index (was encryption.json replaced?)"
                          ) from exc
    conn.row_factory = mod.Row
    return conn


def _counts(conn: Any, schema: str) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%'")]
    return {n: conn.execute(f'SELECT count(*) FROM {schema}."{n}"').fetchone()[0]
            for n in names}


def export(src: Path, dst: Path, *, src_key: bytes | None, dst_key: bytes | None
           ) -> dict[str, int]:
    """Copy the index ``src`` into a new file ``dst`` (either may be encrypted), check every
    table's row count, and return them. ``dst`` is removed when anything fails."""
    mod = module()
    dst.unlink(missing_ok=True)
    conn = mod.connect(str(src), isolation_level=None)
    try:
        if src_key is not None:
            conn.execute(f"PRAGMA key = {_key_pragma(src_key)}")
        _load_vec(conn)
        # Everything in the WAL into the main file first: the export reads the database.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = _counts(conn, "main")
        key = _key_pragma(dst_key) if dst_key is not None else "''"
        conn.execute(f"ATTACH DATABASE ? AS dst KEY {key}", (str(dst),))
        conn.execute("SELECT sqlcipher_export('dst')").fetchone()
        version = conn.execute("PRAGMA main.user_version").fetchone()[0]
        conn.execute(f"PRAGMA dst.user_version = {int(version)}")
        conn.execute("DETACH DATABASE dst")
        # Counted on a connection of its own: this one's view of the attached schema
        # predates the virtual tables the export created.
        check = mod.connect(str(dst), isolation_level=None)
        try:
            if dst_key is not None:
                check.execute(f"PRAGMA key = {_key_pragma(dst_key)}")
            _load_vec(check)
            after = _counts(check, "main")
        finally:
            check.close()
    except mod.Error as exc:
        dst.unlink(missing_ok=True)
        raise StoreError(f"copying the index {src} failed: {exc}",
                         "nothing was changed; check the free space and try again") from exc
    finally:
        conn.close()
    if after != before:
        dst.unlink(missing_ok=True)
        diff = {t: (before.get(t), after.get(t)) for t in set(before) | set(after)
                if before.get(t) != after.get(t)}
        raise StoreError(f"the copied index differs from {src}: {diff}",
                         "nothing was changed; report this as a bug")
    with open(dst, "rb+") as fh:
        os.fsync(fh.fileno())
    return after


def _load_vec(conn: Any) -> None:
    """sqlite-vec on the copying connection, for a store that still has a vec0 table."""
    try:
        import sqlite_vec

        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        conn.enable_load_extension(False)
    except (ImportError, AttributeError) + errors():
        pass  # no vec0 table to copy needs it; the counts would tell otherwise


def set_wal(path: Path, key: bytes | None) -> None:
    """The copy is in rollback-journal mode; the store runs in WAL."""
    mod = module()
    conn = mod.connect(str(path), isolation_level=None)
    try:
        if key is not None:
            conn.execute(f"PRAGMA key = {_key_pragma(key)}")
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
    finally:
        conn.close()


def integrity(path: Path, key: bytes | None) -> str:
    mod = module()
    conn = mod.connect(str(path), isolation_level=None)
    try:
        if key is not None:
            conn.execute(f"PRAGMA key = {_key_pragma(key)}")
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


__all__ = ["connect", "errors", "export", "integrity", "module", "operational_errors",
           "set_wal"]
