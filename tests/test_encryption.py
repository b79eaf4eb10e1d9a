"""Encryption at rest end to end under the real Xvfb desktop: a real xterm shows a word, the
real recorder records it (plain, then encrypted after `encrypt enable` migrated the store),
the real OCR indexes it; then the whole data dir is scanned for the word, every chunk is
handed to PyAV, and search, playback through a real `localvideo serve`, `frame`, `export`
and `encrypt disable` are checked to work."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from netutil import free_port

pytestmark = pytest.mark.x11

PASS = "correct horse battery staple"
WORD = "QUOKKAVAULT"          # shown inside the window only, never in a title


def lv(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localvideo", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def ok(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    r = lv(*args, env=env, timeout=timeout)
    assert r.returncode == 0, f"{args}: {r.stdout}\n{r.stderr}"
    return r.stdout


def record(data: Path, env: dict[str, str], seconds: int) -> None:
    ok("record", "--duration", str(seconds), "--chunk-seconds", "4", "--data-dir", str(data),
       env=env, timeout=seconds + 60)


def said(r: subprocess.CompletedProcess[str]) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(r.stderr.split())


def scan(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under ``root`` that holds any of ``needles`` (raw bytes)."""
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits += [f"{p.relative_to(root)}: {n!r}" for n in needles if n in data]
    return hits


def plain_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                            "AND name NOT LIKE 'sqlite_%'")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


def decodes(data: bytes | str) -> int:
    """Frames decoded from an MP4 (the chunk format). The demuxer is named: FFmpeg's format
    probe, left to guess, once took a sealed chunk's random bytes for some other format and
    opened it (1 run in many; 1 in 300 random buffers raised another error than
    InvalidDataError here), where the MP4 demuxer refuses all of them."""
    with av.open(io.BytesIO(data) if isinstance(data, bytes) else data, format="mp4") as c:
        return sum(1 for _ in c.decode(video=0))


def test_encrypted_store_end_to_end(desktop: Any, tmp_path: Path) -> None:
    data = tmp_path / "D"
    base = {**desktop.env, "LOCALVIDEO_HOME": str(tmp_path / "unused"),
            "LOCALVIDEO_ANALYZE_REASONER": "offline"}
    base.pop("LOCALVIDEO_PASSPHRASE", None)
    env = {**base, "LOCALVIDEO_PASSPHRASE": PASS}
    needles = [WORD.encode(), WORD.lower().encode(), WORD.encode("utf-16-le")]
    desktop.xterm("enc-window", f"the vault word is {WORD} and more text {WORD}",
                  geometry="60x10+60+60", font_size=20)

    # 1. A plain store first: recorded and read, the word in its index.
    record(data, base, 6)
    ok("analyze", "--data-dir", str(data), env=base)
    before = plain_counts(data / "index.sqlite3")
    assert before["frames"] > 0 and before["chunks"] > 0
    assert scan(data, needles), "the plain store should hold the word (the scan's control)"

    # 2. Enable: the index is migrated, every chunk sealed, nothing lost.
    change = json.loads(ok("encrypt", "enable", "--json", "--data-dir", str(data), env=env))
    assert change["enabled"] and change["source"] == "passphrase"
    assert change["rows"] == before
    assert change["chunks"] == before["chunks"]
    st = json.loads(ok("encrypt", "status", "--json", "--data-dir", str(data), env=env))
    assert st["enabled"] and st["index_encrypted"] and st["chunks_plain"] == 0

    # 3. Record and read more with encryption on (the chunks sealed as they are written).
    enabled_at = time.time()
    # A new window in front: its first frame is a key frame, so the analysis surely reads a
    # sealed chunk (an unchanged window waits for the 10-s key-frame cadence, which a 6-s
    # recording may or may not reach: this test was flaky before).
    desktop.activate(desktop.xterm("enc-sealed", f"sealed text {WORD} here",
                                   geometry="60x10+60+60", font_size=20))
    record(data, env, 6)
    ok("analyze", "--data-dir", str(data), env=env)
    chunks = json.loads(ok("chunks", "--json", "--data-dir", str(data), env=env))
    assert len(chunks) > before["chunks"]
    assert all(c["state"] == "closed" and c["frames"] > 0 for c in chunks), chunks

    # 4. The data dir holds the word nowhere, and no chunk file decodes.
    assert scan(data, needles) == []
    for c in chunks:
        with pytest.raises(av.error.InvalidDataError):
            decodes(c["abs_path"])

    # 5. Search finds it (FTS5 inside SQLCipher), by its words and by its meaning
    #    (sqlite-vec loaded into SQLCipher's connection).
    hits = json.loads(ok("search", WORD, "--json", "--mode", "keyword", "--data-dir", str(data),
                         env=env))
    assert any(h["ts"] > enabled_at for h in hits), hits   # read from sealed chunks
    ok("analyze", "--reindex", "--data-dir", str(data), env=env, timeout=300)
    sem = json.loads(ok("search", "vault word", "--json", "--mode", "semantic", "--data-dir",
                        str(data), env=env))
    assert sem, "semantic search found nothing in the encrypted index"

    # 6. Playback through a real server (it decrypts in memory), and a frame by time.
    port = free_port()
    token = ok("token", "--data-dir", str(data), env=env).strip()
    srv = subprocess.Popen([sys.executable, "-m", "localvideo", "serve", "--port", str(port),
                            "--data-dir", str(data)], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                              headers={"Authorization": f"Bearer {token}"}, timeout=20)
        deadline = time.time() + 30
        while True:
            try:
                r = client.get(f"/api/chunks/{chunks[-1]['id']}/media")
                break
            except httpx.HTTPError:
                assert time.time() < deadline and srv.poll() is None, srv.stderr
                time.sleep(0.3)
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        assert decodes(r.content) == chunks[-1]["frames"]
        pic = client.get("/api/frame", params={"at": str(chunks[-1]["start_ts"] + 1)})
        assert pic.status_code == 200 and pic.content[:8] == b"\x89PNG\r\n\x1a\n"
        st = client.get("/api/encryption").json()
        assert st["enabled"] and st["source"] == "passphrase" and st["chunks_plain"] == 0
    finally:
        srv.terminate()
        srv.wait(10)

    # 7. Export writes plain MP4s of every chunk in the range.
    out = tmp_path / "export"
    exp = json.loads(ok("export", "--since", str(chunks[0]["start_ts"] - 1), "--until",
                        str(time.time() + 60), "--out",
                        str(out), "--json", "--data-dir", str(data), env=env))
    assert len(exp["files"]) == len(chunks)
    got = sorted(decodes(f) for f in exp["files"])
    assert got == sorted(c["frames"] for c in chunks)

    # 8. Without the passphrase, or with a wrong one: a clear refusal, nothing opened.
    r = lv("chunks", "--data-dir", str(data), env=base)
    assert r.returncode != 0 and "encrypted and no passphrase" in said(r), r.stderr
    assert "LOCALVIDEO_PASSPHRASE" in said(r)
    r = lv("chunks", "--data-dir", str(data), env={**base, "LOCALVIDEO_PASSPHRASE": "nope nope"})
    assert r.returncode != 0 and "wrong passphrase" in said(r), r.stderr

    # 9. Disable: back to a plain store with every row and chunk, the key forgotten.
    enc_rows = json.loads(ok("encrypt", "disable", "--json", "--data-dir", str(data), env=env))
    assert not enc_rows["enabled"] and enc_rows["chunks"] == len(chunks)
    assert plain_counts(data / "index.sqlite3") == enc_rows["rows"]
    assert enc_rows["rows"]["frames"] > before["frames"]
    assert not (data / "encryption.json").exists()
    for c in chunks:
        assert decodes(c["abs_path"]) == c["frames"]
    assert scan(data, needles), "the word is back in the plain index"
    plain = json.loads(ok("search", WORD, "--json", "--mode", "keyword", "--data-dir",
                          str(data), env=base))
    assert len(plain) == len(hits)


def test_killed_writer_loses_at_most_the_last_fragment(tmp_path: Path) -> None:
    """A sealed chunk writer killed with SIGKILL: what it had written decodes, less at most
    the last frame's fragment; a wrong key is refused by name."""
    child = f"""
import os, signal, numpy as np
from pathlib import Path
from localvideo import crypto, media
from localvideo.record.encoder import ChunkWriter
keys = crypto.derive(bytes(range(32)))
w = ChunkWriter(Path({str(tmp_path / 'c.mp4')!r}), 640, 360, "libx264", 28,
                seal=crypto.Sealer(keys.public, keys.key_id))
rng = np.random.default_rng(1)
for i in range(12):
    px = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    w.write(media.frame_from_ndarray(px).reformat(format="yuv420p"), i * 500)
print("wrote", w.frames, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == -9 and "wrote 12" in r.stdout, r.stderr
    from localvideo import crypto
    from localvideo.errors import LockedError

    keys = crypto.derive(bytes(range(32)))
    raw = (tmp_path / "c.mp4").read_bytes()
    plain, final = crypto.unseal_bytes(raw, tmp_path / "c.mp4", keys=keys)
    assert not final                       # no final record: it was cut short
    n = decodes_partial(plain)
    assert n >= 11, n
    with pytest.raises(av.error.InvalidDataError):
        decodes(str(tmp_path / "c.mp4"))
    other = crypto.derive(bytes(32))
    with pytest.raises(LockedError, match="another key"):
        crypto.unseal_bytes(raw, tmp_path / "c.mp4", keys=other)
    # A flipped byte inside a record is found, not decoded into garbage.
    bad = bytearray(raw)
    bad[200] ^= 1
    from localvideo.errors import MediaError

    with pytest.raises(MediaError, match="tampered"):
        crypto.unseal_bytes(bytes(bad), tmp_path / "c.mp4", keys=keys)


def test_enable_refuses_without_a_key_source_or_while_recording(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOCALVIDEO_PASSPHRASE"}
    data = tmp_path / "D"
    ok("chunks", "--data-dir", str(data), env=env)
    r = lv("encrypt", "enable", "--data-dir", str(data), env=env)
    assert r.returncode == 2 and "no passphrase given and no OS keyring" in said(r), r.stderr
    r = lv("encrypt", "enable", "--data-dir", str(data),
           env={**env, "LOCALVIDEO_PASSPHRASE": "short"})
    assert r.returncode == 2 and "too short" in said(r), r.stderr
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from localvideo.record.lock import RecorderLock; "
         f"held = RecorderLock(Path({str(data)!r})); held.acquire(); print('held', flush=True); "
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        r = lv("encrypt", "enable", "--data-dir", str(data),
               env={**env, "LOCALVIDEO_PASSPHRASE": PASS})
        assert r.returncode == 2 and "recorder is already running" in said(r), r.stderr
        assert "stop it before changing the encryption" in said(r)
    finally:
        holder.kill()
        holder.wait()
    assert not (data / "encryption.json").exists()
    r = lv("encrypt", "status", "--data-dir", str(data), env=env)
    assert r.returncode == 0 and "not encrypted" in r.stdout


def test_live_sealed_chunk_reads_through_the_service_and_kill_9_loses_one_frame_at_most(
        desktop: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder writing a sealed chunk: the service reads the chunk while it grows
    (playback body and a frame by time); after kill -9 every picture the index knows
    decodes, but for at most the last one."""
    import signal

    from localvideo import media
    from localvideo.service import Service
    from localvideo.service.encryption import sealed_body

    data = tmp_path / "D"
    monkeypatch.setenv("LOCALVIDEO_PASSPHRASE", PASS)
    env = {**desktop.env, "LOCALVIDEO_HOME": str(tmp_path / "unused"),
           "LOCALVIDEO_PASSPHRASE": PASS}
    ok("encrypt", "enable", "--data-dir", str(data), env=env)
    wid = desktop.xterm("live-window", f"live {WORD}", geometry="60x10+60+60", hold=False)
    proc = subprocess.Popen([sys.executable, "-m", "localvideo", "record", "--chunk-seconds",
                             "60", "--fps", "4", "--data-dir", str(data)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        desktop.activate(wid)
        for i in range(8):
            desktop.xdotool("type", f"echo {WORD} {i}\n")
            time.sleep(0.6)
        svc = Service.open(data)
        try:
            live = [c for c in svc.record.chunks() if c.state == "recording"]
            assert len(live) == 1 and live[0].frames > 0, live
            path, mime = svc.record.chunk_media(live[0].id)
            assert crypto_is_sealed(path)
            body = sealed_body(path)
            assert body is not None and decodes_partial(body) >= 1
            info = svc.record.frame_info(str(live[0].start_ts + 1))
            image = svc.record.frame_image(str(info.ts))
            assert image.size[0] > 0
        finally:
            svc.close()
        for i in range(4):
            desktop.xdotool("type", f"echo k{i}\n")
            time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    dead = Service.open(data, recover=False)
    try:
        rows = dead.db.query("SELECT id, path FROM chunks WHERE state = 'recording'")
        assert len(rows) == 1
        pts = [r[0] for r in dead.db.query("SELECT DISTINCT pts FROM frames WHERE chunk_id = ? "
                                           "AND pts IS NOT NULL", (rows[0]["id"],))]
    finally:
        dead.close()
    assert len(pts) >= 5
    after = Service.open(data)                 # recovery indexes the torn chunk
    try:
        row = after.db.one("SELECT state, frames, path FROM chunks WHERE id = ?",
                           (rows[0]["id"],))
        assert row is not None and row["state"] == "recovered", row
        p = media.scan_decodable(data / row["path"])
        lost = sum(1 for t in pts if p.last_pts is None or t > p.last_pts + 1e-4)
        assert lost <= 1, (lost, len(pts), p)
    finally:
        after.close()


def crypto_is_sealed(path: Path) -> bool:
    from localvideo import crypto

    return crypto.is_sealed(path)


def decodes_partial(data: bytes) -> int:
    """Frames that decode from a chunk still being written (it ends in a torn fragment)."""
    n = 0
    try:
        with av.open(io.BytesIO(data)) as c:
            for _ in c.decode(video=0):
                n += 1
    except av.error.FFmpegError:
        pass
    return n


def test_unlock_of_an_encrypted_store_takes_its_passphrase(tmp_path: Path) -> None:
    """`localvideo lock` then `unlock`: on a passphrase store the typed passphrase decides
    (a wrong one is refused by name and the lock stays), not just running the CLI."""
    data = tmp_path / "D"
    env = {**os.environ, "LOCALVIDEO_PASSPHRASE": PASS}
    ok("encrypt", "enable", "--data-dir", str(data), env=env)
    ok("lock", "--data-dir", str(data), env=env)
    st = json.loads(ok("lock", "--idle", "off", "--json", "--data-dir", str(data), env=env))
    assert st["locked"] and st["needs_secret"]
    r = subprocess.run([sys.executable, "-m", "localvideo", "unlock", "--data-dir", str(data)],
                       env=env, input="not the passphrase\n", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "wrong passphrase" in said(r), r.stderr
    st = json.loads(ok("lock", "--idle", "off", "--json", "--data-dir", str(data), env=env))
    assert st["locked"]
    r = subprocess.run([sys.executable, "-m", "localvideo", "unlock", "--json", "--data-dir",
                        str(data)], env=env, input=PASS + "\n", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout[r.stdout.index("{"):])["locked"] is False


def test_key_in_the_os_keyring(tmp_path: Path) -> None:
    """Where a keyring exists the key goes there, not to a passphrase: enable with no
    passphrase, read the store, disable drops the entry. The backend is keyrings.alt's file
    keyring (a real `keyring` backend, in a temporary XDG data dir); the Secret Service,
    Keychain and Credential Locker go through the same `keyring` calls."""
    data = tmp_path / "D"
    env = {k: v for k, v in os.environ.items() if k != "LOCALVIDEO_PASSPHRASE"}
    env.update(PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
               XDG_DATA_HOME=str(tmp_path / "xdg"))
    ok("chunks", "--data-dir", str(data), env=env)
    change = json.loads(ok("encrypt", "enable", "--json", "--data-dir", str(data), env=env))
    assert change["source"] == "keyring"
    st = json.loads(ok("encrypt", "status", "--json", "--data-dir", str(data), env=env))
    assert st["enabled"] and st["index_encrypted"] and "PlaintextKeyring" in st["keyring"]
    stored = list((tmp_path / "xdg").rglob("*.cfg"))
    assert stored and st["key_id"] in stored[0].read_text()
    cfg = json.loads((data / "encryption.json").read_text())
    assert cfg["kdf"] is None and "master" not in json.dumps(cfg)
    # Another keyring (another account, a copied disk): the store does not open.
    r = lv("chunks", "--data-dir", str(data), env={**env, "XDG_DATA_HOME": str(tmp_path / "x2")})
    assert r.returncode != 0 and "has no key" in said(r), r.stderr
    ok("encrypt", "disable", "--data-dir", str(data), env=env)
    assert st["key_id"] not in stored[0].read_text()
    assert json.loads(ok("encrypt", "status", "--json", "--data-dir", str(data),
                         env=env))["enabled"] is False
