"""Encryption at rest: the store's key, the sealed chunk format, the index's key.

Keys (nothing secret is ever written to the data dir)::

    master: 32 random bytes kept in the OS keyring (Secret Service, macOS Keychain,
            Windows Credential Locker), or Argon2id(passphrase, salt) where there is none
     ├─ HKDF "localvideo index"  → the SQLCipher key of index.sqlite3 (a raw key: no PBKDF2
     │                              on every open, the KDF already ran once)
     ├─ HKDF "localvideo chunks" → an X25519 private key; its *public* half is in
     │                              encryption.json, next to the salt, the KDF's parameters
     └─ HKDF "localvideo check"  → a check value that tells a wrong passphrase at once

A chunk is sealed to the public key: the writer makes an ephemeral X25519 key pair per file,
and the file's AES-256-GCM key is HKDF(X25519(ephemeral, public)). Writing a chunk therefore
needs no secret at all; reading it needs the master key. Sealed file::

    "LVSEAL1\\n" | key id (8: sha256(public)[:8]) | ephemeral public key (32)
    then records: length (4, big endian) | AES-GCM(data key, nonce = record number,
                  aad = record number | final flag) of whatever the muxer wrote in one go

The muxer (fragmented MP4, flush_packets) hands each fragment over as it is made, and each
write becomes a record on disk at once: a killed recorder loses what it had not written yet,
as with a plain file, and a chunk still growing reads up to its last whole record. ``close``
adds an empty final record, so a file cut short is told from a finished one.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import io
import json
import os
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DependencyError, LockedError, MediaError, UsageError

CONFIG_NAME = "encryption.json"
PASSPHRASE_ENV = "LOCALVIDEO_PASSPHRASE"
MAGIC = b"LVSEAL1\n"
HEADER = len(MAGIC) + 8 + 32
FINAL_TAG = 16                      # an empty plaintext seals to the GCM tag alone
SEAL_BLOCK = 1 << 20                # record size when a whole file is sealed at once
KEYRING_SERVICE = "localvideo"
# RFC 9106's second recommended setting (64 MiB, 3 passes, 4 lanes): ~0.2-0.5 s here.
KDF_DEFAULTS = {"iterations": 3, "lanes": 4, "memory_kib": 64 * 1024}
SQLITE_MAGIC = b"SQLite format 3\x00"

ENCRYPT_EXTRA_HINT = "pip install 'localvideo[encrypt]' (sqlcipher3, keyring)"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode())


def _hkdf(master: bytes, info: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=info.encode()).derive(master)


# -- keys ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyConfig:
    """encryption.json: everything needed to find and check the key, nothing secret."""

    source: str                   # "keyring" | "passphrase"
    key_id: str
    public: bytes                 # X25519 public key chunks are sealed to
    check: bytes
    kdf: dict[str, Any] | None    # Argon2id salt and parameters (passphrase only)
    created: float

    def to_json(self) -> str:
        return json.dumps({"version": 1, "source": self.source, "key_id": self.key_id,
                           "public": _b64(self.public), "check": _b64(self.check),
                           "kdf": self.kdf, "created": self.created}, indent=1)

    @property
    def keyring_user(self) -> str:
        return f"store-{self.key_id}"


@dataclass(frozen=True)
class Keys:
    master: bytes
    index_key: bytes
    private: Any                  # X25519PrivateKey
    public: bytes
    check: bytes

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.public).hexdigest()[:16]


def derive(master: bytes) -> Keys:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.from_private_bytes(_hkdf(master, "localvideo chunks"))
    public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
    return Keys(master=master, index_key=_hkdf(master, "localvideo index"), private=private,
                public=public, check=_hkdf(master, "localvideo check"))


def _argon2(passphrase: str, kdf: dict[str, Any]) -> bytes:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    return Argon2id(salt=_unb64(kdf["salt"]), length=32, iterations=int(kdf["iterations"]),
                    lanes=int(kdf["lanes"]), memory_cost=int(kdf["memory_kib"])
                    ).derive(passphrase.encode())


def config_path(root: Path) -> Path:
    return Path(root) / CONFIG_NAME


def read_config(root: Path) -> KeyConfig | None:
    p = config_path(root)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LockedError(f"cannot read {p}: {exc}",
                          "restore it from a backup: without it the store cannot be opened"
                          ) from exc
    return KeyConfig(source=raw["source"], key_id=raw["key_id"], public=_unb64(raw["public"]),
                     check=_unb64(raw["check"]), kdf=raw.get("kdf"),
                     created=float(raw.get("created", 0)))


def write_config(root: Path, cfg: KeyConfig) -> None:
    p = config_path(root)
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(cfg.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)


def keyring_backend() -> str | None:
    """The OS keyring's backend name, or None when there is no usable one (a headless
    Linux without a Secret Service answers with keyring's fail/null backends)."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    kr = keyring.get_keyring()
    name = f"{type(kr).__module__}.{type(kr).__name__}"
    if isinstance(kr, fail.Keyring) or "null" in name.lower() or getattr(kr, "priority", 0) <= 0:
        return None
    if name.startswith("keyrings.alt") and not os.environ.get("PYTHON_KEYRING_BACKEND"):
        # keyrings.alt's file keyrings keep secrets in a file on the same disk: chosen only
        # when the user names one on purpose, never picked up by accident.
        return None
    return name


_UNLOCKED: dict[str, Keys] = {}
_LOCK = threading.Lock()


def _passphrase(root: Path, given: str | None, prompt: bool) -> str:
    if given is not None:
        return given
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env
    if prompt and sys.stdin is not None and sys.stdin.isatty():
        value = getpass.getpass(f"passphrase for {root}: ")
        # Children (observe's recorder, analysis, server) inherit it instead of asking.
        os.environ[PASSPHRASE_ENV] = value
        return value
    raise LockedError(f"the store {root} is encrypted and no passphrase was given",
                      f"set {PASSPHRASE_ENV} or run the command in a terminal to be asked")


def new_passphrase_config(passphrase: str, kdf: dict[str, Any] | None = None
                          ) -> tuple[KeyConfig, Keys]:
    if len(passphrase) < 8:
        raise UsageError("the passphrase is too short", "use at least 8 characters")
    params = {"name": "argon2id", "salt": _b64(os.urandom(16)), **KDF_DEFAULTS, **(kdf or {})}
    keys = derive(_argon2(passphrase, params))
    return KeyConfig("passphrase", keys.key_id, keys.public, keys.check, params,
                     time.time()), keys


def new_keyring_config() -> tuple[KeyConfig, Keys]:
    import keyring

    keys = derive(os.urandom(32))
    cfg = KeyConfig("keyring", keys.key_id, keys.public, keys.check, None, time.time())
    try:
        keyring.set_password(KEYRING_SERVICE, cfg.keyring_user, keys.master.hex())
    except Exception as exc:  # keyring backends raise their own types
        raise DependencyError(f"cannot store the key in the OS keyring: {exc}",
                              f"use a passphrase instead: {PASSPHRASE_ENV}=... "
                              "localvideo encrypt enable --passphrase") from exc
    return cfg, keys


def unlock(root: Path, passphrase: str | None = None, *, prompt: bool = True) -> Keys:
    """The store's keys (cached per process): from the keyring, or the passphrase given,
    ``LOCALVIDEO_PASSPHRASE`` or a prompt. LockedError names what is missing or wrong."""
    root = Path(root)
    cfg = read_config(root)
    if cfg is None:
        raise UsageError(f"the store {root} is not encrypted", "localvideo encrypt enable")
    with _LOCK:
        cached = _UNLOCKED.get(cfg.key_id)
        if cached is not None and passphrase is None:
            return cached
        if cfg.source == "keyring":
            keys = _from_keyring(root, cfg)
        else:
            if cfg.kdf is None:
                raise LockedError(f"{config_path(root)} has no KDF parameters",
                                  "restore it from a backup")
            keys = derive(_argon2(_passphrase(root, passphrase, prompt), cfg.kdf))
            if not hmac.compare_digest(keys.check, cfg.check):
                raise LockedError(f"wrong passphrase for the encrypted store {root}",
                                  f"check {PASSPHRASE_ENV} (or what you typed) and try again")
        _UNLOCKED[cfg.key_id] = keys
        return keys


def _from_keyring(root: Path, cfg: KeyConfig) -> Keys:
    try:
        import keyring

        secret = keyring.get_password(KEYRING_SERVICE, cfg.keyring_user)
    except ImportError as exc:
        raise DependencyError("the store's key is in the OS keyring but `keyring` is not "
                              "installed", ENCRYPT_EXTRA_HINT) from exc
    except Exception as exc:
        raise LockedError(f"the OS keyring did not give the store's key: {exc}",
                          "unlock your keyring (log in to the desktop session)") from exc
    if not secret:
        raise LockedError(f"the OS keyring has no key {KEYRING_SERVICE}/{cfg.keyring_user} "
                          f"for {root}", "unlock your keyring, or restore the entry")
    keys = derive(bytes.fromhex(secret))
    if not hmac.compare_digest(keys.check, cfg.check):
        raise LockedError(f"the keyring's key does not open {root}",
                          "the entry was replaced; restore it from a backup")
    return keys


def remember(keys: Keys) -> None:
    """Keep freshly made keys for this process (``encrypt enable`` goes on to use them)."""
    with _LOCK:
        _UNLOCKED[keys.key_id] = keys


def forget(root: Path, cfg: KeyConfig) -> None:
    """Drop the key (after ``encrypt disable``): the keyring entry and the cache."""
    if cfg.source == "keyring":
        try:
            import keyring

            keyring.delete_password(KEYRING_SERVICE, cfg.keyring_user)
        except Exception:  # already gone, or no keyring: nothing left to drop
            pass
    with _LOCK:
        _UNLOCKED.pop(cfg.key_id, None)
    config_path(root).unlink(missing_ok=True)


def is_plain_sqlite(path: Path) -> bool | None:
    """True: a plain SQLite file; False: something else (SQLCipher's pages are noise from
    byte 0); None: missing or empty."""
    try:
        head = _read_head(Path(path), 16)
    except FileNotFoundError:
        return None
    return None if not head else head == SQLITE_MAGIC


# POSIX drops every fcntl lock a process holds on a file when it closes *any* descriptor of
# that file. Opening the live index to peek at its header and closing it again released this
# process's SQLite locks, so another process (a CLI command) took itself for the last user,
# deleted the WAL and SHM, and this one read stale pages ("database disk image is
# malformed"). The header is read through one descriptor per index kept open for the
# process's life; a replaced file (encrypt enable/disable swaps it) gets a fresh one.
_HEAD_FDS: dict[str, int] = {}
_HEAD_LOCK = threading.Lock()


def _read_head(path: Path, n: int) -> bytes:
    if not hasattr(os, "pread"):    # Windows: its file locks do not go with another handle
        with open(path, "rb") as fh:
            return fh.read(n)
    key = str(path.resolve())
    with _HEAD_LOCK:
        fd = _HEAD_FDS.get(key)
        if fd is not None and os.fstat(fd).st_ino != os.stat(key).st_ino:
            fd = None    # the old file's descriptor stays open: closing it is the bug above
        if fd is None:
            fd = os.open(key, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            _HEAD_FDS[key] = fd
        return os.pread(fd, n, 0)


def index_key(db_path: Path) -> bytes | None:
    """The SQLCipher key ``db_path`` opens with, or None for a plain index. A half-migrated
    store (encryption.json written, the index not yet swapped) is still plain: the file's
    first bytes decide, so a crash during ``encrypt enable|disable`` never locks it out."""
    root = Path(db_path).parent
    cfg = read_config(root)
    plain = is_plain_sqlite(db_path)
    if cfg is None:
        if plain is False:
            raise LockedError(f"{db_path} is encrypted but {config_path(root)} is missing",
                              "restore encryption.json from a backup")
        return None
    if plain:
        return None
    return unlock(root).index_key


# -- sealed files ----------------------------------------------------------------------------

def _aad(i: int, final: bool) -> bytes:
    return struct.pack(">QB", i, 1 if final else 0)


def _nonce(i: int) -> bytes:
    # A fresh data key per file (ephemeral X25519), so a counter never repeats under a key.
    return b"\0\0\0\0" + struct.pack(">Q", i)


def _data_key(shared: bytes, eph_pub: bytes, public: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + public,
                info=b"localvideo chunk").derive(shared)


@dataclass(frozen=True)
class Sealer:
    """What a writer needs to seal files for a store: its public key only."""

    public: bytes
    key_id: str

    def start(self) -> tuple[bytes, Any]:
        """A new file's header and its AES-GCM cipher."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.x25519 import (
            X25519PrivateKey,
            X25519PublicKey,
        )
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        eph = X25519PrivateKey.generate()
        eph_pub = eph.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
        shared = eph.exchange(X25519PublicKey.from_public_bytes(self.public))
        header = MAGIC + bytes.fromhex(self.key_id)[:8] + eph_pub
        return header, AESGCM(_data_key(shared, eph_pub, self.public))


def sealer_for(root: Path) -> Sealer | None:
    """The store's sealer when encryption is on (no secret needed), else None."""
    cfg = read_config(root)
    return None if cfg is None else Sealer(cfg.public, cfg.key_id)


class SealedWriter:
    """A write-only binary file that seals every write as one record (PyAV writes into it).

    No ``seek``: the muxer sees a stream, which a fragmented MP4 needs none of."""

    def __init__(self, path: Path, sealer: Sealer) -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                       0o600)
        header, self._aes = sealer.start()
        self._n = 0
        self._write_all(header)

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            done = os.write(self._fd, view)
            view = view[done:]

    def _record(self, data: bytes, final: bool) -> None:
        ct = self._aes.encrypt(_nonce(self._n), data, _aad(self._n, final))
        self._n += 1
        # One write per record: a reader sees whole records or a torn last one.
        self._write_all(struct.pack(">I", len(ct)) + ct)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._fd is None:
            raise ValueError("write to a closed sealed file")
        b = bytes(data)
        if b:
            self._record(b, False)
        return len(b)

    def flush(self) -> None:
        pass  # every write is already on its way to the disk

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self._record(b"", True)
        finally:
            os.close(self._fd)
            self._fd = None

    @property
    def closed(self) -> bool:
        return self._fd is None


def seal_bytes(data: bytes, sealer: Sealer) -> bytes:
    header, aes = sealer.start()
    out = [header]
    n = 0
    for off in range(0, len(data), SEAL_BLOCK):
        ct = aes.encrypt(_nonce(n), data[off:off + SEAL_BLOCK], _aad(n, False))
        out.append(struct.pack(">I", len(ct)) + ct)
        n += 1
    ct = aes.encrypt(_nonce(n), b"", _aad(n, True))
    out.append(struct.pack(">I", len(ct)) + ct)
    return b"".join(out)


def is_sealed(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _keys_for(path: Path, key_id: str) -> Keys:
    with _LOCK:
        keys = _UNLOCKED.get(key_id)
    if keys is not None:
        return keys
    # Not unlocked in this process yet: the store the file lives in says how.
    for parent in Path(path).resolve().parents:
        cfg = read_config(parent) if config_path(parent).exists() else None
        if cfg is not None and cfg.key_id == key_id:
            return unlock(parent)
    raise LockedError(f"{path} is sealed with key {key_id}, which no store here holds",
                      "open it from inside its own data dir")


def unseal_bytes(data: bytes, path: Path, *, keys: Keys | None = None) -> tuple[bytes, bool]:
    """The plaintext of a sealed file's bytes and whether it ended with its final record.

    A torn last record (a chunk still being written, or its writer killed) is left out."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(data) < HEADER or data[:len(MAGIC)] != MAGIC:
        raise MediaError(f"{path} is not a sealed file")
    key_id = data[len(MAGIC):len(MAGIC) + 8].hex()
    eph_pub = data[len(MAGIC) + 8:HEADER]
    k = keys or _keys_for(path, key_id)
    if k.key_id[:16] != key_id:
        raise LockedError(f"{path} is sealed with another key ({key_id})")
    shared = k.private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    aes = AESGCM(_data_key(shared, eph_pub, k.public))
    out: list[bytes] = []
    off, n, end = HEADER, 0, len(data)
    while off + 4 <= end:
        size = struct.unpack_from(">I", data, off)[0]
        if off + 4 + size > end:
            break                              # torn: still being written, or cut short
        ct = data[off + 4:off + 4 + size]
        last = off + 4 + size == end
        if size == FINAL_TAG:
            try:
                aes.decrypt(_nonce(n), ct, _aad(n, True))
                return b"".join(out), True
            except InvalidTag:
                pass
        try:
            out.append(aes.decrypt(_nonce(n), ct, _aad(n, False)))
        except InvalidTag as exc:
            if last:
                break                          # a record landing as we read it
            raise MediaError(f"{path} is damaged or was tampered with (record {n})",
                             "restore it from a backup, or delete its time range") from exc
        off += 4 + size
        n += 1
    return b"".join(out), False


def read_plain(path: Path) -> bytes:
    """A file's plaintext: sealed files are opened with their store's key."""
    data = Path(path).read_bytes()
    if data[:len(MAGIC)] != MAGIC:
        return data
    return unseal_bytes(data, Path(path))[0]


def plain_source(path: Path) -> str | io.BytesIO:
    """What PyAV should open for ``path``: the path itself, or the sealed file's plaintext
    in memory (never a plaintext copy on disk)."""
    if not is_sealed(path):
        return str(path)
    return io.BytesIO(read_plain(path))


def seal_file(path: Path, sealer: Sealer) -> bool:
    """Seal a plain file in place (atomic; the plaintext is checked before the swap)."""
    data = Path(path).read_bytes()
    if data[:len(MAGIC)] == MAGIC:
        return False
    sealed = seal_bytes(data, sealer)
    _replace(Path(path), sealed)
    return True


def unseal_file(path: Path, keys: Keys) -> bool:
    data = Path(path).read_bytes()
    if data[:len(MAGIC)] != MAGIC:
        return False
    _replace(Path(path), unseal_bytes(data, Path(path), keys=keys)[0])
    return True


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".seal-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def iter_sealable(root: Path) -> Iterator[Path]:
    """The files under the store that hold what was on screen: chunks and cached
    transcodes (the index is SQLCipher's; clips, logs and settings stay as they are)."""
    for sub in ("observer-recordings", "cache/media"):
        base = Path(root) / sub
        if base.is_dir():
            yield from sorted(p for p in base.rglob("*.mp4") if p.is_file())


__all__ = [
    "CONFIG_NAME", "KeyConfig", "Keys", "PASSPHRASE_ENV", "SealedWriter", "Sealer",
    "config_path", "derive", "forget", "index_key", "is_plain_sqlite", "is_sealed",
    "keyring_backend", "new_keyring_config", "new_passphrase_config", "plain_source",
    "read_config", "read_plain", "remember", "seal_bytes", "seal_file", "sealer_for", "unlock",
    "unseal_bytes", "unseal_file", "write_config",
]
