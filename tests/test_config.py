"""Settings: every field checked at load with errors that name their source; tomlkit saves."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from localvideo import config
from localvideo.errors import ConfigError

COMMENTED = """\
# localvideo settings — edited by hand

[record]
# one frame a second is plenty for me
fps = 1.0   # keep it slow
chunk-seconds = 30

excluded_action = "skip"

[analyze]
window = 60  # a minute per observation
"""


def test_bad_file_value_names_file_key_and_range(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "config.toml"
    path.write_text("[record]\nfps = 'fast'\n")
    with pytest.raises(ConfigError) as info:
        config.load_settings(data_dir)
    assert info.value.message == (f"{path}: record.fps = 'fast' is not a number; use a number "
                                  "of frames per second above 0 and at most 60")
    assert str(path) in (info.value.hint or "")
    path.write_text("[record]\nfps = 90\n")
    with pytest.raises(ConfigError, match=r"record.fps = 90 is out of range; use .* at most 60"):
        config.load_settings(data_dir)


def test_checked_at_load_not_at_use(data_dir: Path) -> None:
    """excluded_action, title regexes, URLs and the display were checked only when used."""
    data_dir.mkdir(parents=True)
    path = data_dir / "config.toml"
    cases = {
        'excluded_action = "blur"': "record.excluded_action = 'blur' is not one of the choices; "
                                    "use blank (a flat grey frame, the time kept) or skip",
        'exclude_titles = ["ok", "(unclosed"]': "record.exclude_titles = ['ok', '(unclosed'] holds "
                                                "'(unclosed', which is not a valid regex",
        'display = "second"': "record.display = 'second' is not a monitor number from 1 or 'all'",
        "quality = 2.5": "record.quality = 2.5 is not a whole number; use a whole number from 0 to 51",
    }
    for line, words in cases.items():
        path.write_text(f"[record]\n{line}\n")
        with pytest.raises(ConfigError) as info:
            config.load_settings(data_dir)
        assert info.value.message.startswith(f"{path}: {words}"), info.value.message
    path.write_text('[analyze]\nbase_url = "localhost:11434"\n')
    with pytest.raises(ConfigError, match=r"analyze.base_url = 'localhost:11434' is not an http"):
        config.load_settings(data_dir)
    path.write_text("[record]\nfsp = 2\n[recrod]\n")
    with pytest.raises(ConfigError) as info:
        config.load_settings(data_dir)
    assert info.value.message.splitlines() == [f"{path}: unknown setting 'fsp' in [record]",
                                               f"{path}: unknown section [recrod]"]
    assert "known settings in [record]: mode, display, fps" in (info.value.hint or "")


def test_env_and_flag_errors_name_their_source(data_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALVIDEO_ANALYZE_IMAGES", "maybe")
    with pytest.raises(ConfigError) as info:
        config.load_settings(data_dir)
    assert info.value.message.startswith("environment LOCALVIDEO_ANALYZE_IMAGES: analyze.images "
                                         "= 'maybe' is not true or false")
    assert info.value.hint == "fix or unset LOCALVIDEO_ANALYZE_IMAGES"
    monkeypatch.delenv("LOCALVIDEO_ANALYZE_IMAGES")
    monkeypatch.setenv("LOCALVIDEO_SERVE_PROT", "80")
    with pytest.raises(ConfigError, match=r"^environment LOCALVIDEO_SERVE_PROT: unknown setting "
                                          r"'prot' in \[serve\]"):
        config.load_settings(data_dir)
    monkeypatch.delenv("LOCALVIDEO_SERVE_PROT")
    with pytest.raises(ConfigError) as info:
        config.load_settings(data_dir, {"record": {"fps": 0, "codec": None}})
    assert info.value.message == ("flag --fps: record.fps = 0 is out of range; use a number of "
                                  "frames per second above 0 and at most 60")
    # A flag value that was not given (None) is not checked and does not override.
    assert config.load_settings(data_dir, {"record": {"fps": None}}).record.fps == 2.0


def test_env_values_parse_like_the_file(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "config.toml").write_text('[analyze]\nmodel = "llava"\n[serve]\nport = 9000\n')
    monkeypatch.setenv("LOCALVIDEO_RECORD_EXCLUDE_APPS", "KeePassXC, Signal,")
    monkeypatch.setenv("LOCALVIDEO_RECORD_EXCLUDE_TITLES", '["(?i)bank, inc", "x"]')  # JSON too
    monkeypatch.setenv("LOCALVIDEO_RECORD_MAX_BYTES", "3GB")
    monkeypatch.setenv("LOCALVIDEO_RECORD_MAX_AGE", "7d")
    monkeypatch.setenv("LOCALVIDEO_ANALYZE_MODEL", "")          # empty: back to the default
    monkeypatch.setenv("LOCALVIDEO_ANALYZE_IMAGES", "yes")
    monkeypatch.setenv("LOCALVIDEO_SERVE_PORT", "9100")
    monkeypatch.setenv("LOCALVIDEO_API_TOKEN", "not-a-setting")  # other LOCALVIDEO_ names pass
    s = config.load_settings(data_dir)
    assert s.record.exclude_apps == ["KeePassXC", "Signal"]
    assert s.record.exclude_titles == ["(?i)bank, inc", "x"]
    assert (s.record.max_bytes, s.record.max_age) == (3_000_000_000, 7 * 86400.0)
    assert s.analyze.model is None and s.analyze.images is True
    assert s.serve.port == 9100                                  # env beats file
    assert config.load_settings(data_dir, {"serve": {"port": 9200}}).serve.port == 9200


def test_save_keeps_comments_blank_lines_and_order(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "config.toml"
    path.write_text(COMMENTED)
    s = config.update_settings(data_dir, {
        "record": {"fps": 0.5, "chunk_seconds": 45, "max_bytes": "3GB"},
        "serve": {"agent_command": "claude -p"},
    })
    assert path.read_text() == """\
# localvideo settings — edited by hand

[record]
# one frame a second is plenty for me
fps = 0.5   # keep it slow
chunk-seconds = 45.0

excluded_action = "skip"
max_bytes = 3000000000

[analyze]
window = 60  # a minute per observation

[serve]
agent_command = "claude -p"
"""
    again = config.load_settings(data_dir)
    for got in (s, again):
        assert (got.record.fps, got.record.chunk_seconds, got.record.max_bytes) == \
            (0.5, 45.0, 3_000_000_000)
        assert got.record.excluded_action == "skip" and got.analyze.window == 60.0
        assert got.serve.agent_command == "claude -p"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == ["config.toml"]   # no temp file left


def test_a_bad_change_writes_nothing(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "config.toml"
    path.write_text(COMMENTED)
    before = path.stat()
    with pytest.raises(ConfigError) as info:
        config.update_settings(data_dir, {"record": {"max_age": "30d",
                                                     "exclude_titles": ["(?i)bank", "(unclosed"]}})
    assert info.value.message.startswith("settings: record.exclude_titles = ['(?i)bank', "
                                         "'(unclosed'] holds '(unclosed', which is not a valid regex")
    with pytest.raises(ConfigError, match=r"^ui: unknown setting 'fsp' in \[record\]"):
        config.update_settings(data_dir, {"record": {"fsp": 1}}, source="ui")
    with pytest.raises(ConfigError, match=r"unknown section \[recrod\]"):
        config.update_settings(data_dir, {"recrod": {"fps": 1}})
    after = path.stat()
    assert path.read_text() == COMMENTED
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_none_removes_the_key_and_new_file_is_private(data_dir: Path) -> None:
    config.update_settings(data_dir, {"analyze": {"model": "llava", "reasoner": "openai"}})
    path = data_dir / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == '[analyze]\nmodel = "llava"\nreasoner = "openai"\n'
    s = config.update_settings(data_dir, {"analyze": {"model": None}})
    assert s.analyze.model is None and s.analyze.reasoner == "openai"
    assert path.read_text() == '[analyze]\nreasoner = "openai"\n'


def test_failed_write_keeps_the_old_file(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "config.toml"
    path.write_text(COMMENTED)

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(config.os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        config.update_settings(data_dir, {"record": {"fps": 3}})
    assert path.read_text() == COMMENTED
    assert sorted(p.name for p in data_dir.iterdir()) == ["config.toml"]


def test_save_setting_sets_the_object_too(data_dir: Path) -> None:
    s = config.load_settings(data_dir)
    config.save_setting(s, "record", "max-age", "7d")
    assert s.record.max_age == 7 * 86400.0
    assert config.load_settings(data_dir).record.max_age == 7 * 86400.0
    with pytest.raises(ConfigError, match="excluded_action = 'blur'"):
        config.save_setting(s, "record", "excluded_action", "blur")
    assert s.record.excluded_action == "blank"


def test_schema_describes_every_field() -> None:
    schema = config.settings_schema()
    defs = schema["$defs"]
    assert set(schema["properties"]) == set(config.SECTIONS)
    fps = defs["RecordSettings"]["properties"]["fps"]
    assert (fps["exclusiveMinimum"], fps["maximum"], fps["default"]) == (0, 60, 2.0)
    assert defs["RecordSettings"]["properties"]["excluded_action"]["enum"] == ["blank", "skip"]
    for name, model in config.SECTION_MODELS.items():
        props = defs[model.__name__]["properties"]
        missing = [f for f in model.model_fields if not props[f].get("description")]
        assert not missing, f"[{name}] fields without a description: {missing}"


def test_import_stays_cheap() -> None:
    """The recorder imports config for its types; pydantic-settings and tomlkit load later."""
    code = ("import sys, localvideo.config; "
            "print(sorted(m for m in ('pydantic_settings', 'tomlkit', 'asyncio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, check=True)
    assert out.stdout.strip() == "[]"
