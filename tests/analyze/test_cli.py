"""The analyze-area commands as a user types them (subprocesses, real store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import plain
import pytest
from analyze_chunks import ChunkWriter

from localvideo.service import Service


def lv(*args: str, data: Path, stdin: str | None = None,
       extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "OPENAI_", "GEMINI_"))}
    env.update({"COLUMNS": "200", **(extra_env or {})})
    return subprocess.run([sys.executable, "-m", "localvideo", *args, "--data-dir", str(data)],
                          env=env, capture_output=True, text=True, timeout=120, input=stdin)


def test_analyze_then_the_reading_commands(svc: Service, recorded: ChunkWriter,
                                           data_dir: Path) -> None:
    r = lv("analyze", "--window", "30s", data=data_dir)
    assert r.returncode == 0, r.stderr
    assert "key frames" in r.stdout and "via offline" in r.stdout
    assert "1/1 chunks analysed" in r.stdout

    r = lv("search", "quokka", data=data_dir)
    assert r.returncode == 0 and "firefox" in r.stdout and "[quokka]" in r.stdout
    r = lv("search", "nothing-like-this", data=data_dir)
    assert r.returncode == 0 and "no match" in r.stdout
    r = lv("search", '"', data=data_dir)
    assert r.returncode == 2 and "no words" in r.stderr and "localvideo search" in r.stderr

    r = lv("timeline", "--json", data=data_dir)
    assert [s["app"] for s in json.loads(r.stdout)][:2] == ["xterm", "firefox"]
    r = lv("timeline", data=data_dir)
    assert r.returncode == 0 and "~/src/app" in r.stdout

    r = lv("observations", "--json", data=data_dir)
    (obs,) = json.loads(r.stdout)
    assert obs["status"] == "done" and obs["task"]["category"] == "FIX"
    r = lv("observations", "--status", "done", data=data_dir)
    assert r.returncode == 0 and "FIX" in r.stdout
    r = lv("observations", "--status", "weird", data=data_dir)
    assert r.returncode == 2 and "pending, done or failed" in r.stderr

    r = lv("ask", "when did the login test fail?", "--since", "1d", data=data_dir)
    assert r.returncode == 0 and "test_login" in r.stdout and "moments:" in r.stdout
    hhmm = datetime.fromtimestamp(recorded.start_ts + 5).strftime("%H:%M")
    r = lv("ask", f"what was I doing at {hhmm}?", data=data_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"looked at {hhmm}: ") and "firefox" in r.stdout


def test_dry_run_prints_the_request(svc: Service, recorded: ChunkWriter,
                                    data_dir: Path) -> None:
    r = lv("analyze", "--dry-run", "--reasoner", "anthropic", "--key", "sk-ant-x",
           "--base-url", "http://127.0.0.1:9", data=data_dir)
    assert r.returncode == 0, r.stderr
    assert "would send to anthropic" in r.stdout
    assert "## Screen text" in r.stdout and "[REDACTED:email]" in r.stdout
    assert "jane.doe" not in r.stdout and "sha256" in r.stdout
    assert plain.observations(svc) == []


def test_bad_flags_are_clear_errors(svc: Service, data_dir: Path) -> None:
    r = lv("analyze", "--window", "banana", data=data_dir)
    assert r.returncode == 2 and "--window" in r.stderr
    r = lv("analyze", "--reasoner", "clippy", data=data_dir)
    assert r.returncode == 2 and "--reasoner" in r.stderr
    r = lv("analyze", "--reasoner", "anthropic", data=data_dir)
    assert r.returncode == 1 and "localvideo keys set anthropic" in r.stderr
    r = lv("search", "x", "--since", "last tuesday", data=data_dir)
    assert r.returncode == 2 and "--since" in r.stderr


@pytest.mark.parametrize("how", ["argument", "prompt"])
def test_keys_set_list_delete(data_dir: Path, how: str) -> None:
    if how == "argument":
        r = lv("keys", "set", "openai", "sk-proj-0123456789abcdef", data=data_dir)
    else:
        r = lv("keys", "set", "openai", data=data_dir, stdin="sk-proj-0123456789abcdef\n")
    assert r.returncode == 0, r.stderr
    r = lv("keys", "list", "--json", data=data_dir)
    rows = {k["name"]: k for k in json.loads(r.stdout)}
    assert rows["openai"]["stored"] and "0123456789" not in r.stdout
    r = lv("keys", "delete", "openai", data=data_dir)
    assert r.returncode == 0
    r = lv("keys", "delete", "openai", data=data_dir)
    assert r.returncode == 1 and "localvideo keys list" in r.stderr
