"""Settings, units, the SQLite store and the device id: the pieces every command stands on."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from localvideo import config, units
from localvideo.errors import ConfigError, UsageError
from localvideo.record.device import device_id, hardware_id
from localvideo.store.db import Database, _split_sql
from localvideo.store.layout import chunk_path, inside


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("2d", 172800.0),
    ("250ms", 0.25), (12, 12.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert units.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "abc", "5 parsecs", "-3", "3x"])
def test_parse_duration_rejects_with_hint(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        units.parse_duration(bad, what="--window")
    assert "--window" in str(err.value) or "negative" in str(err.value)


def test_parse_size() -> None:
    assert units.parse_size("500MB") == 500_000_000
    assert units.parse_size("2GiB") == 2 * 1024**3
    assert units.parse_size(1234) == 1234
    with pytest.raises(UsageError, match="invalid --max-bytes"):
        units.parse_size("lots", what="--max-bytes")


@pytest.mark.parametrize("seconds,compact,spaced", [
    (0, "0s", "0 s"), (None, "0s", "0 s"), (45, "45s", "45 s"), (59.6, "1m00s", "1 min 00 s"),
    (185, "3m05s", "3 min 05 s"), (3725, "1h02m", "1 h 02 min"), (90000, "25h00m", "25 h 00 min")])
def test_format_duration_both_styles(seconds: float | None, compact: str, spaced: str) -> None:
    assert units.format_duration(seconds) == compact
    assert units.format_duration(seconds, spaced=True) == spaced


def test_parse_time_forms() -> None:
    now = 1_800_000_000.0
    assert units.parse_time("now", now=now) == now
    assert units.parse_time("2h", now=now) == now - 7200
    assert units.parse_time(str(now - 5), now=now) == now - 5
    iso = units.parse_time("2026-11-25T14:03:00+00:00")
    assert iso == 1795615380.0
    with pytest.raises(UsageError, match="ISO 8601"):
        units.parse_time("yesterday-ish")
    from datetime import datetime

    at = datetime(2026, 11, 25, 16, 30).timestamp()
    assert units.parse_time("today", now=at) == datetime(2026, 11, 25).timestamp()
    assert units.parse_time("Yesterday", now=at) == datetime(2026, 11, 24).timestamp()
    assert units.parse_time("yesterday 14:05", now=at) == datetime(2026, 11, 24, 14, 5).timestamp()
    assert units.parse_time("today 9:00:30", now=at) == datetime(2026, 11, 25, 9, 0, 30).timestamp()
    with pytest.raises(UsageError, match="no such time of day"):
        units.parse_time("yesterday 25:00", now=at)


@pytest.mark.parametrize("question,windows", [
    ("what was I doing at 14:00?", [("25 13:55:00", "25 14:05:00", "14:00")]),
    ("around 3pm yesterday", [("24 14:45:00", "24 15:15:00", "3pm")]),   # "around": ±15 min
    ("what was on at 23:15", [("24 23:10:00", "24 23:20:00", "23:15")]),  # later: last night
    ("at 9:05:30 am", [("25 09:00:30", "25 09:10:30", "9:05:30 am")]),
    ("12pm or 12am?", [("24 23:55:00", "25 00:05:00", "12am"),
                       ("25 11:55:00", "25 12:05:00", "12pm")]),
    ("in the last 20 minutes", [("25 16:10:00", "25 16:30:00", "last 20 minutes")]),
    ("in the last hour", [("25 15:30:00", "25 16:30:00", "last hour")]),
    ("two hours ago", [("25 14:25:00", "25 14:35:00", "two hours ago")]),
    ("just now", [("25 16:25:00", "25 16:30:00", "just now")]),
    ("yesterday afternoon", [("24 12:00:00", "24 18:00:00", "yesterday afternoon")]),
    ("this morning", [("25 06:00:00", "25 12:00:00", "this morning")]),
    ("what did I read last night", [("24 18:00:00", "25 00:00:00", "last night")]),
    ("what did I do yesterday", [("24 00:00:00", "25 00:00:00", "yesterday")]),
    ("today", [("25 00:00:00", "25 16:30:00", "today")]),
    # Not times: decimals, long numbers, impossible clocks, plain words.
    ("build 3.14 failed with code 12345 at 25:61 or 13pm", []),
    ("the invoice from ACME", []),
])
def test_question_times(question: str, windows: list[tuple[str, str, str]]) -> None:
    from datetime import datetime

    now = datetime(2026, 11, 25, 16, 30).timestamp()
    got = [(datetime.fromtimestamp(w.start).strftime("%d %H:%M:%S"),
            datetime.fromtimestamp(w.end).strftime("%d %H:%M:%S"), w.label)
           for w in units.question_times(question, now=now)]
    assert got == windows


def test_time_words_are_not_search_words() -> None:
    assert all(units.is_time_word(w) for w in ("yesterday", "3pm", "14h30", "ago", "Minutes"))
    assert not any(units.is_time_word(w) for w in ("invoice", "build42", "login", "2231"))
    from localvideo.analyze.observations import keywords

    assert keywords("what was invoice 2231 about at 14:30 yesterday?") == ["invoice", "2231"]
    assert keywords("error 404 in the last 20 minutes, around 3pm") == ["error", "404"]
    assert keywords("what was I doing two hours ago?") == []


def test_settings_layering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[record]\nfps = 1.0\nchunk_seconds = 30\n'
                                      '[analyze]\nwindow = 60\n')
    monkeypatch.setenv("LOCALVIDEO_HOME", str(home))
    monkeypatch.setenv("LOCALVIDEO_RECORD_CHUNK_SECONDS", "20")
    s = config.load_settings(overrides={"record": {"codec": "h264", "fps": None}})
    assert s.data_dir == home.resolve()
    assert s.record.fps == 1.0            # file
    assert s.record.chunk_seconds == 20.0  # env beats file
    assert s.record.codec == "h264"        # flag
    assert s.analyze.window == 60.0
    # a flag beats the environment
    s2 = config.load_settings(overrides={"record": {"chunk_seconds": 5}})
    assert s2.record.chunk_seconds == 5.0


def test_settings_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[record]\nfsp = 2\n")
    with pytest.raises(ConfigError, match="unknown setting 'fsp'"):
        config.load_settings(tmp_path)
    (tmp_path / "config.toml").write_text("[record]\nfps = 'fast'\n")
    with pytest.raises(ConfigError, match=r"config.toml: record.fps = 'fast' is not a number; "
                                          r"use a number of frames per second above 0"):
        config.load_settings(tmp_path)
    (tmp_path / "config.toml").write_text("[recrod]\n")
    with pytest.raises(ConfigError, match="unknown section"):
        config.load_settings(tmp_path)
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        config.load_settings(f)


def test_save_setting_round_trips(tmp_path: Path) -> None:
    s = config.load_settings(tmp_path)
    config.save_setting(s, "record", "exclude_apps", ["keepassxc", "Signal"])
    config.save_setting(s, "serve", "agent_command", "claude -p")
    again = config.load_settings(tmp_path)
    assert again.record.exclude_apps == ["keepassxc", "Signal"]
    assert again.serve.agent_command == "claude -p"


def test_database_wal_and_migrations(tmp_path: Path) -> None:
    db = Database(tmp_path / "index.sqlite3")
    assert db.one("PRAGMA journal_mode")[0] == "wal"
    names = [r[0] for r in db.query("SELECT name FROM migrations ORDER BY rowid")]
    assert names[0] == "0001_core"
    # reopening applies nothing twice
    assert Database(tmp_path / "index.sqlite3").migrate() == []
    db.set_kv("paused", True)
    assert db.get_kv("paused") is True
    assert db.get_kv("missing", 7) == 7


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    db = Database(tmp_path / "index.sqlite3")
    with pytest.raises(sqlite3.IntegrityError):
        with db.tx() as c:
            c.execute("INSERT INTO chunks(path, device_id, start_ts) VALUES ('a', 'd', 1)")
            c.execute("INSERT INTO chunks(path, device_id, start_ts) VALUES ('a', 'd', 2)")
    assert db.one("SELECT COUNT(*) FROM chunks")[0] == 0


def test_split_sql_keeps_trigger_bodies() -> None:
    script = """
    CREATE TABLE t(a); -- a comment; with a semicolon
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        INSERT INTO t VALUES (1);
    END;
    """
    stmts = _split_sql(script)
    assert len(stmts) == 2
    assert stmts[1].startswith("CREATE TRIGGER") and stmts[1].rstrip().endswith("END;")


def test_device_id_is_stable_hashed_and_not_the_raw_id() -> None:
    a, b = device_id(), device_id()
    assert a == b and len(a) == 16 and int(a, 16) >= 0
    assert hardware_id() not in a
    # an unknown platform still gets a stable id with no login involved
    assert device_id("Plan9") == device_id("Plan9")


def test_layout_paths_and_containment(tmp_path: Path) -> None:
    p = chunk_path(tmp_path / "observer-recordings", "abcd", 1_800_000_000.5)
    rel = p.relative_to(tmp_path / "observer-recordings" / "abcd")
    assert len(rel.parts) == 2 and rel.parts[1].startswith("chunk_") and p.suffix == ".mp4"
    assert inside(tmp_path, "a/b.mp4") == (tmp_path / "a/b.mp4").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(UsageError, match="outside the store"):
            inside(tmp_path, bad)
    os.symlink("/etc", tmp_path / "link")
    with pytest.raises(UsageError):
        inside(tmp_path, "link/passwd")
