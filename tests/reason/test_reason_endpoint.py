"""The reasoning endpoint as the Settings page and `localvideo reasoner` set it, its one-request
test, and a local model server found on 127.0.0.1 — all against real HTTP servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from netutil import free_port
from reason.servers import OpenAIServer

from localvideo.reason.local import find_local, probe
from localvideo.service import Service
from localvideo.service.reasoner import ReasonerUpdate

KEY = "sk-test-0123456789abcdefSECRET"
COMMENTED = """# my notes on this machine
[record]
fps = 2.0   # keep it light

[analyze]
# window: how much activity one observation covers
window = 600.0
"""


def _cli(data_dir: Path, *args: str, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localvideo", *args, "--data-dir",
                           str(data_dir)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_the_test_button_gets_the_reply_of_a_real_openai_compatible_server(
        data_dir: Path, openai_server: OpenAIServer) -> None:
    openai_server.answer = "Hello, I am llama3.2."
    svc = Service.open(data_dir)
    t = svc.reasoner.test(ReasonerUpdate(reasoner="openai", base_url=f"{openai_server.url}/v1",
                                         model="llama3.2"))
    assert t.ok and t.answer == "Hello, I am llama3.2." and t.model == "llama3.2", t
    assert t.endpoint == f"{openai_server.url}/v1"
    (call,) = openai_server.model_calls()
    body = call.json
    assert body["model"] == "llama3.2" and body["max_tokens"] == 64
    # One small request: the test question, no screen content at all.
    user = body["messages"][-1]["content"]
    assert "Say hello" in user and "[" not in user.split("## Screen text")[1].split("##")[0]
    # Testing saves nothing: the offline default stays.
    assert not svc.settings.config_path.exists()
    assert svc.reasoner.get().resolved == "offline"


def test_the_test_button_on_a_dead_port_shows_the_error(data_dir: Path) -> None:
    port = free_port()
    svc = Service.open(data_dir)
    t = svc.reasoner.test(ReasonerUpdate(reasoner="openai",
                                         base_url=f"http://127.0.0.1:{port}/v1", model="m"))
    assert not t.ok and t.answer is None
    assert f"cannot reach the openai endpoint http://127.0.0.1:{port}/v1" in (t.error or "")
    assert t.hint and "start the server" in t.hint
    bad = svc.reasoner.test(ReasonerUpdate(reasoner="openai", base_url="ftp://x"))
    assert not bad.ok and "not an http:// or https:// URL" in (bad.error or ""), bad
    # A named reasoner that needs a key and has none says how to give one.
    nokey = svc.reasoner.test(ReasonerUpdate(reasoner="anthropic", base_url=""))
    assert not nokey.ok and "No key found for anthropic" in (nokey.error or "")
    assert "localvideo keys set anthropic" in (nokey.hint or "")


def test_a_typed_key_is_stored_shown_masked_and_the_change_is_audited(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "config.toml").write_text(COMMENTED)
    svc = Service.open(data_dir)
    before = svc.reasoner.get()
    assert before.local and before.window == 600.0
    r = svc.reasoner.update(ReasonerUpdate(reasoner="openai",
                                           base_url="https://llm.example.org/v1",
                                           model="gpt-4o-mini", window="2m", key=KEY))
    assert json.loads((data_dir / "keys.json").read_text()) == {"openai": KEY}
    assert (data_dir / "keys.json").stat().st_mode & 0o777 == 0o600
    assert r.key == "sk-…CRET" and KEY not in r.model_dump_json()
    assert KEY not in svc.reasoner.get().model_dump_json()
    # Where screen text goes, said in words; off this machine.
    assert not r.local and r.host == "llm.example.org"
    assert "sent to llm.example.org" in r.sends and "off this machine" in r.sends
    assert "up to 4 key frames" in r.sends and "Every 2m00s" in r.sends
    text = (data_dir / "config.toml").read_text()
    for kept in ("# my notes on this machine", "fps = 2.0   # keep it light",
                 "# window: how much activity one observation covers"):
        assert kept in text, text
    assert 'reasoner = "openai"' in text and 'base_url = "https://llm.example.org/v1"' in text
    assert "window = 120.0" in text and KEY not in text
    (entry,) = svc.privacy.audit()
    assert entry.action == "endpoint" and entry.channel == "cli" and entry.client == "owner"
    assert "offline (this machine) -> openai (llm.example.org)" in entry.target
    assert "key for openai stored" in entry.target and KEY not in entry.target
    # The key is used: a test sends it as the bearer token (to a real server here).
    with OpenAIServer() as srv:
        t = svc.reasoner.test(ReasonerUpdate(base_url=f"{srv.url}/v1"))
        assert t.ok and srv.model_calls()[0].api_key == KEY
    # Back to the offline reasoner: logged too; a bad URL saves nothing.
    svc.reasoner.update(ReasonerUpdate(reasoner="offline"))
    assert len(svc.privacy.audit()) == 2
    try:
        svc.reasoner.update(ReasonerUpdate(reasoner="openai", base_url="not a url"))
        raise AssertionError("a bad URL was accepted")
    except Exception as exc:  # noqa: BLE001 - the type is checked below
        assert "http:// or https:// URL" in str(exc), exc
    assert svc.reasoner.get().resolved == "offline"


def test_discovery_finds_a_server_on_a_given_port_only_by_a_loopback_get(
        data_dir: Path) -> None:
    dead = free_port()
    with OpenAIServer() as srv:
        found = find_local([dead, srv.port])
        assert [s.port for s in found] == [srv.port]
        assert found[0].base_url == f"http://127.0.0.1:{srv.port}/v1"
        # The embedding model is listed but not offered: it cannot chat.
        assert found[0].model == "llama3.2:latest"
        assert [(r.method, r.path) for r in srv.requests] == [("GET", "/v1/models")]
    assert probe(srv.port) is None   # stopped: nothing found, no error


def test_ollama_on_its_own_port_is_offered_as_ollama(data_dir: Path) -> None:
    # 11434 is bound only when free; when something already listens there, the probe must
    # report exactly what that server answers.
    try:
        srv = OpenAIServer(port=11434)
    except OSError:
        there = probe(11434)
        svc = Service.open(data_dir)
        assert [s.port for s in svc.reasoner.local([11434])] == ([11434] if there else [])
        return
    with srv:
        srv.models = ["llama3.2:latest"]
        svc = Service.open(data_dir)
        (offer,) = [s for s in svc.reasoner.local() if s.port == 11434]
        assert offer.name == "Ollama" and offer.label == "Use Ollama (llama3.2)"
        assert offer.command == "localvideo reasoner use ollama" and not offer.configured
        r = svc.reasoner.use_local("ollama")
        assert (r.resolved, r.base_url, r.model) == ("openai", "http://127.0.0.1:11434/v1",
                                                     "llama3.2:latest")
        assert r.local and "a server on this machine" in r.sends


def test_doctor_prints_the_one_step_command_and_it_works(data_dir: Path) -> None:
    with OpenAIServer() as srv:
        env = {"LOCALVIDEO_ANALYZE_LOCAL_PORTS": json.dumps([free_port(), srv.port])}
        out = _cli(data_dir, "doctor", env=env)
        assert out.returncode in (0, 1), out.stderr
        line = next(ln for ln in out.stdout.splitlines() if "reasoner" in ln)
        assert "offline" in line and "nothing leaves this machine" in line, line
        assert f"local server answers at http://127.0.0.1:{srv.port}/v1 (llama3.2:latest)" \
            in line and f"`localvideo reasoner use {srv.port}`" in line, line
        # Only the probe reached the server: the offline reasoner stays the default.
        assert {(r.method, r.path) for r in srv.requests} == {("GET", "/v1/models")}
        assert not (data_dir / "config.toml").exists()
        use = _cli(data_dir, "reasoner", "use", str(srv.port), env=env)
        assert use.returncode == 0, use.stderr
        assert "a server on this machine" in use.stdout
        text = (data_dir / "config.toml").read_text()
        assert 'reasoner = "openai"' in text and \
            f'base_url = "http://127.0.0.1:{srv.port}/v1"' in text
        test = _cli(data_dir, "reasoner", "test", env=env)
        assert test.returncode == 0 and "answered in" in test.stdout, test.stdout + test.stderr
        again = _cli(data_dir, "doctor", "--json", env=env)
        check = next(c for c in json.loads(again.stdout)["checks"] if c["name"] == "reasoner")
        assert check["data"]["local"][0]["configured"] is True
        assert "use it" not in check["detail"]
    dead = _cli(data_dir, "reasoner", "test", env=env)
    assert dead.returncode == 1 and "cannot reach" in dead.stdout, dead.stdout
