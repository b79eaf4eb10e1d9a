"""Key store, key precedence and automatic reasoner choice."""

from __future__ import annotations

import json
import stat

import pytest

from localvideo.errors import ConfigError, MissingKeyError, UsageError
from localvideo.reason import KeyStore, get_reasoner


def test_store_roundtrip_with_owner_only_file(data_dir):
    ks = KeyStore(data_dir)
    ks.set("anthropic", "  sk-ant-0123456789abcdef\n")
    assert ks.get("anthropic") == "sk-ant-0123456789abcdef"
    assert stat.S_IMODE((data_dir / "keys.json").stat().st_mode) == 0o600
    listed = {k["name"]: k for k in ks.list()}
    assert listed["anthropic"]["stored"] is True
    assert "0123456789" not in str(listed["anthropic"]["preview"])
    assert listed["openai"]["stored"] is False
    assert ks.delete("anthropic") is True and ks.delete("anthropic") is False
    assert ks.get("anthropic") is None


def test_empty_key_and_bad_name_are_refused(data_dir):
    ks = KeyStore(data_dir)
    with pytest.raises(UsageError, match="empty"):
        ks.set("openai", "   ")
    with pytest.raises(UsageError):
        ks.set("../etc", "x")
    assert not (data_dir / "keys.json").exists()


def test_corrupt_key_file_is_a_config_error_that_names_the_fix(data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "keys.json").write_text("{not json")
    with pytest.raises(ConfigError) as info:
        KeyStore(data_dir).get("anthropic")
    assert "localvideo keys set" in (info.value.hint or "")


def test_precedence_flag_then_stored_then_env(settings, db, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    args = {"settings": settings, "db": db, "base_url": "https://api.example.com"}
    assert get_reasoner("anthropic", **args).key == "from-env"
    KeyStore(settings.data_dir).set("anthropic", "from-store")
    assert get_reasoner("anthropic", **args).key == "from-store"
    assert get_reasoner("anthropic", key="from-flag", **args).key == "from-flag"


def test_missing_key_error_names_the_command(settings, db):
    with pytest.raises(MissingKeyError) as info:
        get_reasoner("anthropic", settings=settings, db=db)
    assert str(info.value) == ("No key found for anthropic\n  → run `localvideo keys set "
                               "anthropic` or set ANTHROPIC_API_KEY")


@pytest.mark.parametrize(("env", "stored", "expected"), [
    ({}, False, "offline"),
    ({"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}, False, "anthropic"),
    ({"ANTHROPIC_API_KEY": "k"}, False, "anthropic"),
    ({}, True, "anthropic"),
    ({"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}, False, "openai"),
    ({"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "ANTHROPIC_API_KEY": "k"}, False,
     "anthropic"),
    ({"GEMINI_API_KEY": "k", "OPENAI_API_KEY": "k"}, False, "offline"),
])
def test_auto_choice(settings, db, monkeypatch, env, stored, expected):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    if stored:
        KeyStore(settings.data_dir).set("anthropic", "stored-key")
    assert get_reasoner("auto", settings=settings, db=db).name == expected


def test_setting_and_unknown_name(settings, db):
    settings.analyze.reasoner = "offline"
    assert get_reasoner(None, settings=settings, db=db).name == "offline"
    with pytest.raises(UsageError) as info:
        get_reasoner("claude", settings=settings, db=db)
    assert "--reasoner" in (info.value.hint or "")


def test_keys_file_is_json_object(data_dir):
    KeyStore(data_dir).set("openai", "sk-abc")
    assert json.loads((data_dir / "keys.json").read_text()) == {"openai": "sk-abc"}
