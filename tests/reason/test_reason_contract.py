"""The shared contract: JSON extraction, schema validation, --dry-run descriptions."""

from __future__ import annotations

import hashlib

import pytest
from reason.helpers import observe_request

from localvideo.errors import EndpointError, UsageError
from localvideo.reason import OBSERVATION_SCHEMA, describe_request, get_reasoner
from localvideo.reason.base import ReasonRequest, is_local, parse_json_answer, validate

GOOD = {"summary": "s", "activities": ["a"],
        "task": {"verdict": "NO_TASK", "category": "OTHER", "title": "", "description": ""}}


@pytest.mark.parametrize("text", [
    '{"a": 1}',
    'Here you go:\n```json\n{"a": 1}\n```\nanything else?',
    '```\n{"a": 1}\n```',
    'The answer is {"a": 1} as requested.',
])
def test_parse_json_answer_tolerates_fences_and_prose(text):
    assert parse_json_answer(text) == {"a": 1}


@pytest.mark.parametrize("text", ["", "no json here", "[1, 2]", '{"a": 1'])
def test_parse_json_answer_rejects_non_objects(text):
    with pytest.raises(EndpointError) as info:
        parse_json_answer(text)
    assert info.value.retryable


def test_validate_accepts_a_good_observation():
    validate(GOOD, OBSERVATION_SCHEMA)


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d.pop("summary"), "lacks the key 'summary'"),
    (lambda d: d["task"].update(category="PANIC"), "answer.task.category"),
    (lambda d: d.update(activities="one string"), "answer.activities should be a array"),
    (lambda d: d.update(activities=[1]), "answer.activities[0] should be a string"),
    (lambda d: d["task"].pop("verdict"), "lacks the key 'verdict'"),
])
def test_validate_rejects_with_a_message_that_says_where(mutate, where):
    import copy

    bad = copy.deepcopy(GOOD)
    mutate(bad)
    with pytest.raises(EndpointError) as info:
        validate(bad, OBSERVATION_SCHEMA)
    assert where in info.value.message and info.value.retryable


def test_dry_run_shows_hashes_model_and_url_and_sends_nothing(settings, db, anthropic_server):
    r = get_reasoner("anthropic", settings=settings, db=db, key="k",
                     base_url=anthropic_server.url, model="claude-haiku-4-5")
    req = observe_request(images=2)
    d = describe_request(req, r)
    assert (d["reasoner"], d["model"], d["base_url"]) == ("anthropic", "claude-haiku-4-5",
                                                          anthropic_server.url)
    assert d["text"] == req.text and "JSON schema" in d["system"]
    assert [i["sha256"] for i in d["images"]] == [hashlib.sha256(i.data).hexdigest()
                                                  for i in req.images]
    assert all(set(i) == {"sha256", "media_type", "bytes", "ts", "label"} for i in d["images"])
    assert anthropic_server.requests == []
    assert db.one("SELECT COUNT(*) FROM reason_log")[0] == 0


def test_unknown_task_is_a_usage_error(settings, db):
    r = get_reasoner("offline", settings=settings, db=db)
    with pytest.raises(UsageError):
        r.execute(ReasonRequest(task="summarise", system=""))


@pytest.mark.parametrize(("url", "local"), [
    ("http://127.0.0.1:11434/v1", True), ("http://localhost:1234", True),
    ("http://[::1]:8000", True), ("https://api.openai.com/v1", False), (None, False),
    ("http://127.example.com", False),
])
def test_is_local(url, local):
    assert is_local(url) is local


def test_validate_treats_booleans_as_non_numbers():
    from localvideo.reason import ASK_SCHEMA

    validate({"answer": "a", "timestamps": [1.5, 2]}, ASK_SCHEMA)
    with pytest.raises(EndpointError, match=r"timestamps\[0\] should be a number"):
        validate({"answer": "a", "timestamps": [True]}, ASK_SCHEMA)
