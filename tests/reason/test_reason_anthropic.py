"""The anthropic reasoner against a real Messages-API server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest
from reason.helpers import TEXT, observe_request
from reason.servers import AnthropicServer

from localvideo.errors import EndpointError, ReasonerError
from localvideo.reason import get_reasoner
from localvideo.reason.log import recent


def _reasoner(settings, db, monkeypatch, srv: AnthropicServer, **kw):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-env")
    return get_reasoner(None, settings=settings, db=db, backoff=0.01, timeout=5, **kw)


def test_auto_picks_anthropic_and_sends_image_blocks(settings, db, monkeypatch,
                                                     anthropic_server):
    r = _reasoner(settings, db, monkeypatch, anthropic_server)
    assert r.name == "anthropic" and r.base_url == anthropic_server.url
    req = observe_request(images=2)
    resp = r.execute(req)

    assert resp.data is not None and resp.data["task"]["category"] == "FIX"
    assert resp.usage == {"input_tokens": 120, "output_tokens": 40}
    (call,) = anthropic_server.model_calls()
    assert call.api_key == "sk-ant-test-env"
    assert "anthropic-version" in call.headers
    body = call.json
    assert body["model"] == r.default_model == resp.model
    assert "JSON schema" in body["system"]
    blocks = body["messages"][0]["content"]
    images = [b for b in blocks if b["type"] == "image"]
    assert [base64.b64decode(b["source"]["data"]) for b in images] == [im.data for im in req.images]
    assert images[0]["source"]["media_type"] == "image/png"
    assert blocks[-1] == {"type": "text", "text": req.text}


def test_log_rows_hold_hashes_not_bytes(settings, db, monkeypatch, anthropic_server):
    r = _reasoner(settings, db, monkeypatch, anthropic_server)
    req = observe_request(images=1)
    resp = r.execute(req)
    (row,) = recent(db)
    assert row["id"] == resp.request_id and row["status"] == "ok"
    assert row["reasoner"] == "anthropic" and row["base_url"] == anthropic_server.url
    img = row["request"]["images"][0]
    assert img["sha256"] == hashlib.sha256(req.images[0].data).hexdigest()
    assert img["bytes"] == len(req.images[0].data)
    # The log keeps the text the model read: the request's context, rendered.
    assert row["request"]["text"] == TEXT
    raw = db.one("SELECT request FROM reason_log")[0]
    assert base64.b64encode(req.images[0].data).decode()[:40] not in raw
    assert json.loads(row["response"])["summary"]


def test_retries_429_and_500_then_succeeds(settings, db, monkeypatch, anthropic_server):
    anthropic_server.fail(429)
    anthropic_server.fail(500)
    r = _reasoner(settings, db, monkeypatch, anthropic_server)
    resp = r.execute(observe_request(images=0))
    assert resp.data is not None
    assert len(anthropic_server.model_calls()) == 3
    assert [row["status"] for row in reversed(recent(db))] == ["error:429", "error:500", "ok"]


def test_retry_after_is_honoured_and_a_long_one_is_left_to_the_next_run(
        settings, db, monkeypatch, anthropic_server):
    anthropic_server.fail(429, headers={"Retry-After": "1.2"})
    r = _reasoner(settings, db, monkeypatch, anthropic_server)
    r.backoff = 0.01
    started = time.monotonic()
    assert r.execute(observe_request(images=0)).data is not None
    assert time.monotonic() - started >= 1.2          # waited as long as the server asked
    # A long pause is not slept through: the error carries it, the work stays pending.
    anthropic_server.fail(429, headers={"Retry-After": "120"})
    started = time.monotonic()
    with pytest.raises(EndpointError) as info:
        r.execute(observe_request(images=0))
    assert info.value.retry_after == 120 and info.value.retryable
    assert time.monotonic() - started < 10


def test_final_failure_is_a_retryable_endpoint_error(settings, db, monkeypatch,
                                                     anthropic_server):
    anthropic_server.fail(503, times=5, message="overloaded")
    r = _reasoner(settings, db, monkeypatch, anthropic_server)
    with pytest.raises(EndpointError) as info:
        r.execute(observe_request(images=0))
    assert info.value.retryable and info.value.status == 503
    assert "overloaded" in info.value.message
    assert len(anthropic_server.model_calls()) == 3   # first try + 2 retries


def test_malformed_json_is_retried_then_kept_pending(settings, db, monkeypatch,
                                                     anthropic_server):
    anthropic_server.say("Sure! Here is what I saw: the user was busy.", times=3)
    r = _reasoner(settings, db, monkeypatch, anthropic_server)
    with pytest.raises(EndpointError) as info:
        r.execute(observe_request(images=0))
    assert info.value.retryable and "not a JSON object" in info.value.message


def test_fenced_json_with_bad_enum_is_rejected_then_good_answer_accepted(
        settings, db, monkeypatch, anthropic_server):
    bad = {"summary": "s", "activities": [], "task": {"verdict": "MAYBE", "category": "FIX",
                                                      "title": "", "description": ""}}
    anthropic_server.say("```json\n" + json.dumps(bad) + "\n```")
    r = _reasoner(settings, db, monkeypatch, anthropic_server)
    resp = r.execute(observe_request(images=0))
    assert resp.data["task"]["verdict"] == "TASK_FOUND"
    errors = [row["error"] for row in recent(db) if row["status"] != "ok"]
    assert errors and "MAYBE" in errors[0]


def test_bad_key_is_not_retried_and_names_the_command(settings, db, monkeypatch,
                                                      anthropic_server):
    anthropic_server.fail(401, times=3, message="invalid x-api-key")
    r = _reasoner(settings, db, monkeypatch, anthropic_server)
    with pytest.raises(ReasonerError) as info:
        r.execute(observe_request(images=0))
    assert not isinstance(info.value, EndpointError)
    assert "localvideo keys set anthropic" in (info.value.hint or "")
    assert len(anthropic_server.model_calls()) == 1


def test_timeout_becomes_retryable_endpoint_error(settings, db, monkeypatch, anthropic_server):
    anthropic_server.hang(2.0, times=3)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    r = get_reasoner("anthropic", settings=settings, db=db, key="k", retries=0, timeout=0.5)
    with pytest.raises(EndpointError) as info:
        r.execute(observe_request(images=0))
    assert info.value.retryable and "did not answer within 0.5s" in info.value.message


def test_endpoint_down_is_retryable(settings, db, monkeypatch):
    srv = AnthropicServer()
    url = srv.url
    srv.httpd.server_close()   # the port is now closed: connection refused
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    r = get_reasoner("anthropic", settings=settings, db=db, key="k", retries=1, backoff=0.01)
    with pytest.raises(EndpointError) as info:
        r.execute(observe_request(images=0))
    assert info.value.retryable and "cannot reach" in info.value.message
    assert "ANTHROPIC_BASE_URL" in (info.value.hint or "")
    assert len(recent(db)) == 2


def test_html_error_page_is_retryable(settings, db, monkeypatch, anthropic_server):
    anthropic_server.garbage(times=1)
    r = _reasoner(settings, db, monkeypatch, anthropic_server)
    assert r.execute(observe_request(images=0)).data is not None
    assert "not JSON" in recent(db)[-1]["error"]


def test_local_shim_needs_no_key(settings, db, monkeypatch, anthropic_server):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    r = get_reasoner(None, settings=settings, db=db)
    assert r.name == "anthropic" and r.key is None
    r.execute(observe_request(images=0))
    assert anthropic_server.model_calls()[0].api_key == "local-no-key"
