"""The openai reasoner against a real chat-completions server on 127.0.0.1."""

from __future__ import annotations

import base64
import json

import pytest
from reason.helpers import observe_request

from localvideo.errors import EndpointError, MissingKeyError
from localvideo.reason import describe_request, get_reasoner
from localvideo.reason.base import ASK_SCHEMA, ReasonRequest
from localvideo.reason.log import recent


def _get(settings, db, monkeypatch, srv, model, **kw):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url + "/v1")
    return get_reasoner(None, settings=settings, db=db, model=model, backoff=0.01, timeout=5,
                        **kw)


def _image_urls(call) -> list[str]:  # type: ignore[no-untyped-def]
    user = call.json["messages"][1]["content"]
    if isinstance(user, str):
        return []
    return [p["image_url"]["url"] for p in user if p["type"] == "image_url"]


def test_vision_model_gets_image_url_parts_and_json_mode(settings, db, monkeypatch,
                                                         openai_server):
    r = _get(settings, db, monkeypatch, openai_server, "llava:13b")
    assert r.name == "openai" and r.takes_images
    req = observe_request(images=2)
    resp = r.execute(req)
    assert resp.data is not None and resp.model == "llava:13b"
    (call,) = openai_server.model_calls()
    # A loopback server needs no key: a placeholder goes instead of an error.
    assert call.api_key == "local-no-key"
    assert call.json["response_format"] == {"type": "json_object"}
    urls = _image_urls(call)
    assert [base64.b64decode(u.split(",", 1)[1]) for u in urls] == [im.data for im in req.images]
    assert all(u.startswith("data:image/png;base64,") for u in urls)
    assert call.json["messages"][0]["role"] == "system"


def test_text_only_model_gets_no_images(settings, db, monkeypatch, openai_server):
    r = _get(settings, db, monkeypatch, openai_server, "llama3.1:8b")
    assert not r.takes_images
    req = observe_request(images=2)
    r.execute(req)
    (call,) = openai_server.model_calls()
    assert call.json["messages"][1]["content"] == req.text
    assert describe_request(req, r)["images_withheld"] == 2


def test_server_refusing_images_falls_back_to_text_and_remembers(settings, db, monkeypatch,
                                                                openai_server):
    openai_server.text_only_models.add("mystery-vl-model")
    r = _get(settings, db, monkeypatch, openai_server, "mystery-vl-model")
    assert r.takes_images
    r.execute(observe_request(images=1))
    first, second = openai_server.model_calls()
    assert _image_urls(first) and not _image_urls(second)
    # A new reasoner for the same server and model starts text-only: no wasted request.
    again = _get(settings, db, monkeypatch, openai_server, "mystery-vl-model")
    assert not again.takes_images
    again.execute(observe_request(images=1))
    assert not _image_urls(openai_server.model_calls()[-1])
    assert len(openai_server.model_calls()) == 3
    statuses = [row["status"] for row in reversed(recent(db))]
    assert statuses == ["error:400", "ok", "ok"]


def test_forced_images_option_overrides_the_name(settings, db, monkeypatch, openai_server):
    r = _get(settings, db, monkeypatch, openai_server, "llama3.1:8b", images=True)
    r.execute(observe_request(images=1))
    assert _image_urls(openai_server.model_calls()[0])


def test_server_without_json_mode(settings, db, monkeypatch, openai_server):
    openai_server.no_json_mode = True
    r = _get(settings, db, monkeypatch, openai_server, "qwen2.5:7b")
    resp = r.execute(observe_request(images=0))
    assert resp.data is not None
    assert "response_format" not in openai_server.model_calls()[-1].json


def test_ask_schema_answer(settings, db, monkeypatch, openai_server):
    openai_server.answer = json.dumps({"answer": "You were reading build #42.",
                                       "timestamps": [1795615392.0]})
    r = _get(settings, db, monkeypatch, openai_server, "gpt-4o-mini")
    resp = r.execute(ReasonRequest(task="ask", system="Answer from the record.",
                                   question="what broke?", schema=ASK_SCHEMA))
    assert resp.data == {"answer": "You were reading build #42.", "timestamps": [1795615392.0]}


def test_garbage_body_retries_then_fails_retryable(settings, db, monkeypatch, openai_server):
    openai_server.garbage(times=3)
    r = _get(settings, db, monkeypatch, openai_server, "gpt-4o-mini")
    with pytest.raises(EndpointError) as info:
        r.execute(observe_request(images=0))
    assert info.value.retryable
    assert len(openai_server.model_calls()) == 3


def test_remote_server_without_key_names_the_command(settings, db, monkeypatch):
    with pytest.raises(MissingKeyError) as info:
        get_reasoner("openai", settings=settings, db=db, base_url="https://api.example.com/v1")
    assert info.value.message == "No key found for openai"
    assert info.value.hint == "run `localvideo keys set openai` or set OPENAI_API_KEY"
