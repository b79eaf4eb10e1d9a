"""The reasoning endpoint on the Settings page: REST routes and the page in real headless
Chromium, against real OpenAI-compatible servers on 127.0.0.1 (tests/reason/servers.py).

The screenshot lands in the test's tmp folder, and in $LOCALVIDEO_REASONER_SHOT when set."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netutil import free_port
from reason.servers import OpenAIServer
from web_helpers import LiveServer

from localvideo.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
def llm() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        srv.models = ["llama3.2:latest", "nomic-embed-text:latest"]
        srv.answer = "Hello from llama3.2 on this machine."
        yield srv


@pytest.fixture
def server(data_dir: Path, llm: OpenAIServer, serve: Any) -> LiveServer:
    # The local server's port stands in for Ollama's 11434 (which may be taken here).
    data_dir.mkdir(parents=True)
    (data_dir / "config.toml").write_text("# mine\n[analyze]\nwindow = 300.0  # 5 minutes\n")
    svc = Service.open(data_dir, {"analyze": {"local_ports": [free_port(), llm.port]}})
    srv: LiveServer = serve(svc)
    return srv


def test_rest_routes_store_the_key_masked_test_and_audit(server: LiveServer,
                                                         llm: OpenAIServer) -> None:
    with server.client() as c:
        r = c.get("/api/reasoner").json()
        assert r["resolved"] == "offline" and r["local"] is True
        t = c.post("/api/reasoner/test", json={"reasoner": "openai", "model": "llama3.2",
                                                "base_url": f"{llm.url}/v1"}).json()
        assert t["ok"] and t["answer"] == "Hello from llama3.2 on this machine.", t
        dead = c.post("/api/reasoner/test", json={
            "reasoner": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1"}).json()
        assert dead["ok"] is False and "cannot reach" in dead["error"]
        saved = c.post("/api/reasoner", json={"reasoner": "openai", "model": "gpt-4o-mini",
                                              "base_url": "https://api.openai.com/v1",
                                              "key": KEY})
        assert saved.status_code == 200 and KEY not in saved.text
        assert saved.json()["key"] == "sk-…CRET" and "sent to api.openai.com" in \
            saved.json()["sends"]
        assert KEY not in c.get("/api/reasoner").text
        assert KEY not in c.get("/settings").text
        (found,) = c.get("/api/reasoner/local").json()
        assert found["port"] == llm.port and found["model"] == "llama3.2:latest"
        used = c.post(f"/api/reasoner/local/{llm.port}").json()
        assert used["base_url"] == f"{llm.url}/v1" and used["local"] is True
        assert c.post("/api/reasoner/local/1").status_code == 400
        entries = c.get("/api/audit").json()
    changes = [e for e in entries if e["action"] == "endpoint"]
    assert [(e["channel"], e["client"]) for e in changes] == [("api", "owner")] * 2
    assert "-> openai (api.openai.com)" in changes[1]["target"]
    assert f"-> openai (127.0.0.1:{llm.port})" in changes[0]["target"]
    text = server.svc.settings.config_path.read_text()
    assert text.startswith("# mine\n") and "window = 300.0  # 5 minutes" in text
    assert json.loads((server.svc.settings.data_dir / "keys.json").read_text())["openai"] == KEY
    # A read-only token can look but not point the history somewhere else.
    ro = server.svc.privacy.create_token("viewer", "read").token
    with server.client(auth=False, headers={"Authorization": f"Bearer {ro}"}) as c:
        assert c.get("/api/reasoner").status_code == 200
        assert c.post("/api/reasoner", json={"base_url": "https://evil.example"}
                      ).status_code == 403
        assert c.post("/api/reasoner/test", json={}).status_code == 403


@pytest.fixture
def page(server: LiveServer) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        elsewhere: list[str] = []
        pg.on("request", lambda req: None if req.url.startswith((server.url, "data:"))
              else elsewhere.append(req.url))
        pg.goto(f"{server.url}/?token={server.token}")
        yield pg
        context.close()
        browser.close()
        assert not errors, f"JavaScript errors: {errors}"
        assert not elsewhere, f"requests off this machine: {elsewhere}"


def test_settings_page_sets_tests_and_offers_the_local_model(page: Any, server: LiveServer,
                                                             llm: OpenAIServer,
                                                             tmp_path: Path) -> None:
    page.goto(f"{server.url}/settings")
    form = page.locator("#reasoner-form")
    assert "Nothing leaves this machine" in form.locator("#reasoner-sends").inner_text()
    # The local server is offered with one button; the probe was its only request.
    use = page.locator("#reasoner-local button.local-use")
    use.wait_for()
    assert use.inner_text() == "Use local server (llama3.2)"
    assert {(r.method, r.path) for r in llm.requests} == {("GET", "/v1/models")}
    # Test a typed endpoint without saving: the server's reply is shown.
    page.select_option("#reasoner-form select[name=reasoner]", "openai")
    page.fill("#reasoner-form input[name=base_url]", f"{llm.url}/v1")
    page.fill("#reasoner-form input[name=model]", "llama3.2")
    assert page.locator("#reasoner-pending").inner_text() == \
        f"Not saved yet: on Save, screen text will be sent to 127.0.0.1:{llm.port} (this machine)."
    page.click("#reasoner-test")
    result = page.locator("#reasoner-result.test-ok")
    result.wait_for()
    assert "Hello from llama3.2 on this machine." in result.inner_text()
    assert len(llm.model_calls()) == 1 and not server.svc.settings.analyze.base_url
    page.screenshot(path=str(tmp_path / "settings-tested.png"), full_page=True)
    # A dead port: the error and the hint.
    page.fill("#reasoner-form input[name=base_url]", f"http://127.0.0.1:{free_port()}/v1")
    page.click("#reasoner-test")
    failed = page.locator("#reasoner-result.test-failed")
    failed.wait_for()
    assert "cannot reach the openai endpoint" in failed.inner_text()
    # A key typed and saved: stored, then only its mask comes back to the page.
    page.fill("#reasoner-form input[name=base_url]", "https://api.openai.com/v1")
    page.fill("#reasoner-form input[name=model]", "gpt-4o-mini")
    page.fill("#reasoner-form input[name=key]", KEY)
    assert "sent to api.openai.com — off this machine" in \
        page.locator("#reasoner-pending").inner_text()
    page.click("#reasoner-form button[type=submit]")
    page.wait_for_function("document.querySelector('#reasoner-status').textContent === 'Saved.'")
    assert page.input_value("#reasoner-form input[name=key]") == ""
    assert "sk-…CRET" in page.locator("#reasoner-key").inner_text()
    assert "sent to api.openai.com" in page.locator("#reasoner-sends").inner_text()
    assert "off this machine" in page.locator("#reasoner-sends").inner_text()
    page.reload()
    assert KEY not in page.content() and "sk-…CRET" in page.content()
    # The one-click local model.
    page.locator("#reasoner-local button.local-use").click()
    page.wait_for_function("document.querySelector('#reasoner-local button').textContent"
                           ".endsWith('in use')")
    assert page.input_value("#reasoner-form input[name=base_url]") == f"{llm.url}/v1"
    assert "a server on this machine" in page.locator("#reasoner-sends").inner_text()
    text = server.svc.settings.config_path.read_text()
    assert text.startswith("# mine\n") and f'base_url = "{llm.url}/v1"' in text
    assert 'model = "llama3.2:latest"' in text
    shot = tmp_path / "settings-reasoner.png"
    page.locator("#reasoner-form").screenshot(path=str(shot))
    if os.environ.get("LOCALVIDEO_REASONER_SHOT"):
        shutil.copyfile(shot, os.environ["LOCALVIDEO_REASONER_SHOT"])
    changes = [e for e in server.svc.privacy.audit() if e.action == "endpoint"]
    assert [e.channel for e in changes] == ["ui", "ui"]
