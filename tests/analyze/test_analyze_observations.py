"""Observations and ask: the offline reasoner, and a real Anthropic-compatible server."""

from __future__ import annotations

import base64
import io
import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import plain
import pytest
from analyze_chunks import ChunkWriter, session_shots, write_chunk
from PIL import Image
from reason.servers import AnthropicServer

from localvideo.analyze import ocr
from localvideo.errors import MissingKeyError, UsageError
from localvideo.service import Service


@pytest.fixture
def anthropic(monkeypatch: pytest.MonkeyPatch, data_dir: Path):  # type: ignore[no-untyped-def]
    with AnthropicServer() as srv:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
        yield srv


def sent_text(body: dict) -> str:  # type: ignore[type-arg]
    return "\n".join(b["text"] for m in body["messages"] for b in m["content"]
                     if b["type"] == "text")


def sent_images(body: dict) -> list[Image.Image]:  # type: ignore[type-arg]
    return [Image.open(io.BytesIO(base64.b64decode(b["source"]["data"])))
            for m in body["messages"] for b in m["content"] if b["type"] == "image"]


def test_offline_observation_with_no_endpoint(svc: Service, recorded: ChunkWriter) -> None:
    res = plain.analyze(svc)                      # nothing configured: auto → offline
    assert res["reasoner"] == "offline"
    obs = plain.observations(svc)
    assert len(obs) == 1
    o = obs[0]
    assert o["status"] == "done" and o["reasoner"] == "offline"
    assert o["start_ts"] == recorded.start_ts
    assert "xterm" in o["summary"] and "firefox" in o["summary"]
    assert o["task"]["verdict"] == "TASK_FOUND" and o["task"]["category"] == "FIX"
    assert "test_login" in o["task"]["description"]
    # The title quotes the screen line that holds the error, whole: not its neighbours.
    assert o["task"]["title"] == "Fix: error: test_login failed", o["task"]["title"]
    assert all("keepassxc" not in a for a in o["activities"])
    assert plain.observation(svc, o["id"]) == o
    assert plain.analysis_status(svc)["observations_done"] == 1
    # A second run has nothing new to observe.
    plain.analyze(svc)
    assert len(plain.observations(svc)) == 1


def test_windows_are_cut_by_the_window_setting(svc: Service, recorded: ChunkWriter) -> None:
    plain.analyze(svc, window="5s", reasoner="offline")
    spans = [(o["start_ts"] - recorded.start_ts, round(o["end_ts"] - recorded.start_ts, 3))
             for o in plain.observations(svc)]
    # Frames at 0…4.5, 6, 8 and 20 s (7 s is an excluded window): idle time opens no window,
    # and the last one is closed at the last frame because nothing is recording.
    assert spans == [(0.0, 5.0), (6.0, 11.0), (20.0, 20.001)]
    with pytest.raises(UsageError):
        plain.analyze(svc, window="1s")
    with pytest.raises(UsageError):
        plain.analyze(svc, window="soon")


def test_anthropic_endpoint_gets_frames_and_text_and_the_answer_is_stored(
        svc: Service, recorded: ChunkWriter, anthropic: AnthropicServer) -> None:
    res = plain.analyze(svc)
    assert res["reasoner"] == "anthropic"
    calls = anthropic.model_calls()
    assert len(calls) == 1
    body = calls[0].json
    assert calls[0].api_key == "sk-ant-test-key"
    text = sent_text(body)
    assert "## Timeline" in text and "## Screen text" in text
    assert "xterm — ~/src/app" in text and "test_login" in text and "quokka" in text
    images = sent_images(body)
    assert 1 <= len(images) <= svc.settings.analyze.max_images
    # Key frames are cropped to the window: the canvas is 640×360 and so are these windows.
    assert all(im.size == (640, 360) for im in images)
    o = plain.observations(svc)[0]
    assert o["status"] == "done" and o["reasoner"] == "anthropic"
    assert o["summary"].startswith("Reading a failed build")
    assert o["task"] == {"verdict": "TASK_FOUND", "category": "FIX", "title": "Fix test_login",
                         "description": "test_login fails with an AssertionError in build #42."}
    log = svc.db.one("SELECT request, status FROM reason_log WHERE id = ?",
                     (o["request_ids"][0],))
    assert log["status"] == "ok"
    assert "base64" not in log["request"] and "sha256" in log["request"]


def test_secrets_and_excluded_windows_never_reach_the_endpoint(
        svc: Service, recorded: ChunkWriter, anthropic: AnthropicServer) -> None:
    plain.analyze(svc)
    raw = anthropic.model_calls()[0].body.decode()
    body = anthropic.model_calls()[0].json
    assert "jane.doe@example.com" not in raw
    assert "[REDACTED:email]" in sent_text(body)
    assert "hunter2" not in raw and "vault" not in raw and "keepassxc" not in raw
    # The e-mail is on the frame at 6 s; its pixels are blurred before the image leaves.
    for im in sent_images(body):
        words = {w["t"].lower() for w in ocr.read_text(im).words}
        assert not any("jane" in w or "example.com" in w for w in words), words


def test_endpoint_down_keeps_the_observation_pending_then_completes_it(
        svc: Service, recorded: ChunkWriter, anthropic: AnthropicServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    anthropic.stop()                         # killed before the run: connection refused
    res = plain.analyze(svc)
    assert res["observations"][0]["status"] == "pending"
    status = plain.analysis_status(svc)
    assert status["observations_pending"] == 1 and status["next_retry_ts"] is not None
    assert "last endpoint error" in status["line"]
    assert plain.observations(svc, status="pending")[0]["error"]
    keyframes = status["frames_read"]
    with AnthropicServer() as back:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", back.url)
        back.fail(503, times=3)              # overloaded for the whole first run
        plain.analyze(svc)
        assert plain.observations(svc)[0]["status"] == "pending"
        assert plain.observations(svc)[0]["attempts"] == 2
        plain.analyze(svc)                        # the next run completes it
        assert len(back.model_calls()) == 4
    o = plain.observations(svc)
    assert len(o) == 1 and o[0]["status"] == "done" and o[0]["attempts"] == 3
    after = plain.analysis_status(svc)
    assert after["frames_read"] == keyframes          # nothing read twice
    assert after["last_endpoint_error"] is None


def test_a_long_retry_after_sets_the_next_try_instead_of_retrying_now(
        svc: Service, recorded: ChunkWriter, anthropic: AnthropicServer) -> None:
    anthropic.fail(429, headers={"Retry-After": "600"}, message="rate limited")
    before = time.time()
    res = plain.analyze(svc)
    (obs,) = res["observations"]
    assert obs["status"] == "pending" and obs["next_try_ts"] >= before + 600
    assert len(anthropic.model_calls()) == 1          # no retry storm against a 429
    assert plain.analysis_status(svc)["next_retry_ts"] >= before + 600   # what --follow honours


def test_malformed_answer_is_retried(svc: Service, recorded: ChunkWriter,
                                     anthropic: AnthropicServer) -> None:
    anthropic.say("I think the user was busy.")     # not JSON; the reasoner retries
    plain.analyze(svc)
    assert plain.observations(svc)[0]["status"] == "done"
    assert len(anthropic.model_calls()) == 2


def test_dry_run_sends_nothing_and_shows_what_would_be_sent(
        svc: Service, recorded: ChunkWriter, anthropic: AnthropicServer) -> None:
    res = plain.analyze(svc, dry_run=True)
    assert anthropic.model_calls() == []
    assert plain.observations(svc) == []
    (req,) = res["requests"]
    assert req["reasoner"] == "anthropic" and req["task"] == "observe"
    assert "[REDACTED:email]" in req["text"] and "jane.doe" not in json.dumps(req)
    assert req["images"] and all(len(i["sha256"]) == 64 for i in req["images"])
    assert res["keyframes"] >= 4              # the local part (OCR, index) did run


def test_missing_key_names_the_command(svc: Service, recorded: ChunkWriter) -> None:
    with pytest.raises(MissingKeyError) as err:
        plain.analyze(svc, reasoner="anthropic")
    assert "localvideo keys set anthropic" in (err.value.hint or "")
    assert plain.observations(svc) == []


def test_ask_offline_answers_with_the_moments_used(svc: Service,
                                                   recorded: ChunkWriter) -> None:
    plain.analyze(svc, reasoner="offline")
    res = plain.ask(svc, "when did the login test fail?", since="1d")
    t0 = recorded.start_ts
    assert res["reasoner"] == "offline"
    assert "test_login" in res["answer"]
    assert res["timestamps"] and all(t0 - 1 <= t <= t0 + 21 for t in res["timestamps"])
    assert {round(h["ts"] - t0, 1) for h in res["sources"]} >= {0.0, 8.0}
    with pytest.raises(UsageError):
        plain.ask(svc, "   ")


def test_ask_about_a_time_offline(svc: Service, recorded: ChunkWriter) -> None:
    plain.analyze(svc, reasoner="offline")
    t0 = recorded.start_ts
    hhmm = datetime.fromtimestamp(t0 + 5).strftime("%H:%M")
    res = plain.ask(svc, f"what was I doing at {hhmm}?")
    # The question was placed at that minute ±5 min, and the answer says what was open then
    # and what the screens said: no word of the question is on screen.
    assert [t["label"] for t in res["times"]] == [hhmm]
    assert res["times"][0]["start_ts"] <= t0 <= res["times"][0]["end_ts"]
    assert "xterm" in res["answer"] and "firefox" in res["answer"]
    assert "test_login" in res["answer"]
    assert "keepassxc" not in res["answer"] and "hunter2" not in res["answer"]
    assert res["timestamps"] and all(t0 - 1 <= t <= t0 + 21 for t in res["timestamps"])
    # An hour before the recording: nothing, said plainly.
    before = datetime.fromtimestamp(t0 - 3600).strftime("%H:%M")
    res = plain.ask(svc, f"what was I doing at {before}?")
    assert "nothing was recorded then" in res["answer"] and res["timestamps"] == []


def test_ask_about_a_time_just_after_midnight(svc: Service, data_dir: Path) -> None:
    # Work from 23:59:50 to 00:00:10; the question names 00:05 (window 00:00–00:10), so the
    # request's first timeline line starts the day before: its moments must stay on that day.
    # Last night's midnight, so the question is about the past whenever the test runs.
    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = (today - timedelta(days=1)).timestamp()
    t0 = midnight - 10
    write_chunk(svc.db, data_dir, t0, session_shots(), name="midnight")
    plain.analyze(svc, reasoner="offline")
    res = plain.ask(svc, "what was I doing yesterday at 00:05?")
    assert res["times"][0]["start_ts"] == midnight
    # The window open at 00:00:10 is listed (its timeline line was read as the next
    # midnight's when the request's date was the question's day).
    assert "00:00:10–00:00:10 xterm" in res["answer"], res["answer"]
    assert res["timestamps"] and all(t0 - 1 <= t <= t0 + 21 for t in res["timestamps"]), \
        (res["timestamps"], t0)


def test_ask_through_anthropic(svc: Service, recorded: ChunkWriter,
                               anthropic: AnthropicServer) -> None:
    plain.analyze(svc)
    t0 = recorded.start_ts
    anthropic.answer = json.dumps({"answer": "You were reading Jenkins build 42.",
                                   "timestamps": [t0 + 4.0]})
    res = plain.ask(svc, "what was on the jenkins page?", since="1d")
    assert res == {**res, "answer": "You were reading Jenkins build 42.",
                   "timestamps": [t0 + 4.0], "reasoner": "anthropic"}
    text = sent_text(anthropic.model_calls()[-1].json)
    assert "## Question" in text and "what was on the jenkins page?" in text
    assert "quokka" in text and "jane.doe@example.com" not in text
    assert "## Earlier observations" in text
    # A time in the question sends the screen text of that time, whatever its words.
    hhmm = datetime.fromtimestamp(t0 + 5).strftime("%H:%M")
    res = plain.ask(svc, f"what was I looking at around {hhmm}?")
    text = sent_text(anthropic.model_calls()[-1].json)
    assert "## Times asked about" in text and f"({hhmm})" in text
    assert "quokka" in text and "zanzibar-7" in text.lower() and "hunter2" not in text


def test_keys(svc: Service) -> None:
    svc.keys.set("anthropic", "sk-ant-abcdefghijklmnop")
    listed = {k["name"]: k for k in plain.keys_list(svc)}
    assert listed["anthropic"]["stored"] and "abcdef" not in str(listed["anthropic"]["preview"])
    assert (svc.settings.data_dir / "keys.json").stat().st_mode & 0o777 == 0o600
    svc.keys.delete("anthropic")
    assert not {k["name"]: k for k in plain.keys_list(svc)}["anthropic"]["stored"]
    from localvideo.errors import NotFoundError
    with pytest.raises(NotFoundError):
        svc.keys.delete("anthropic")


@pytest.mark.parametrize("secret", [False, True], ids=["clean", "with-email"])
def test_gemini_gets_the_chunk_video_only_when_nothing_was_redacted(
        svc: Service, data_dir: Path, t0: float, secret: bool) -> None:
    import base64 as b64

    from analyze_chunks import Shot, render, write_chunk
    from reason.servers import GeminiServer

    lines = ["deploy pipeline green"] + (["mail ops@example.org"] if secret else [])
    chunk = write_chunk(svc.db, data_dir, t0, [Shot(0, render(lines), "xterm", "deploy"),
                                               Shot(1, None, "xterm", "deploy")])
    with GeminiServer() as srv:
        plain.analyze(svc, reasoner="gemini", base_url=srv.url, key="g-test-key")
        (call,) = srv.model_calls()
    parts = [p for c in call.json["contents"] for p in c["parts"]]
    # The SDK writes the protocol's inlineData with a snake_case mime_type.
    inline = [p["inlineData"] for p in parts if "inlineData" in p]
    videos = [d for d in inline if d.get("mime_type", d.get("mimeType")) == "video/mp4"]
    images = [d for d in inline if d.get("mime_type", d.get("mimeType")) == "image/jpeg"]
    assert images, "key frames go along in both cases"
    if secret:
        assert videos == [] and "ops@example.org" not in call.body.decode()
    else:
        assert len(videos) == 1
        assert b64.urlsafe_b64decode(videos[0]["data"]) == chunk.path.read_bytes()
    assert plain.observations(svc)[0]["status"] == "done"


def test_endpoint_dies_mid_run_nothing_lost(svc: Service, recorded: ChunkWriter,
                                            anthropic: AnthropicServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from reason.servers import DEFAULT_OBSERVATION

    # Three windows of 5 s: the first answer arrives, then the endpoint only fails.
    anthropic.say(json.dumps(DEFAULT_OBSERVATION))
    anthropic.fail(503, times=100)
    plain.analyze(svc, window="5s")
    by_status = [o["status"] for o in plain.observations(svc)]
    assert by_status == ["done", "pending", "pending"]
    anthropic.stop()
    with AnthropicServer() as back:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", back.url)
        plain.analyze(svc, window="5s")
        assert len(back.model_calls()) == 2          # only the two that were pending
    obs = plain.observations(svc)
    assert [o["status"] for o in obs] == ["done", "done", "done"]
    assert [o["attempts"] for o in obs] == [1, 2, 2]


def test_openai_compatible_server_is_picked_by_its_base_url(
        svc: Service, recorded: ChunkWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    from reason.servers import OpenAIServer

    with OpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url + "/v1")
        res = plain.analyze(svc, model="llava:13b")
        (call,) = srv.model_calls()
    assert res["reasoner"] == "openai" and res["model"] == "llava:13b"
    body = call.json
    parts = [p for m in body["messages"] if isinstance(m["content"], list) for p in m["content"]]
    assert any(p["type"] == "image_url" for p in parts)
    text = "\n".join(p.get("text", "") for p in parts) + "\n".join(
        m["content"] for m in body["messages"] if isinstance(m["content"], str))
    assert "## Screen text" in text and "jane.doe@example.com" not in call.body.decode()
    assert plain.observations(svc)[0]["status"] == "done"
