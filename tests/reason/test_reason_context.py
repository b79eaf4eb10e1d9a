"""The one renderer: a request's structure as the text every model reasoner sends."""

from __future__ import annotations

from reason.helpers import TEXT, at, observe_request, screen, window

from localvideo.reason.base import (
    AskedTime,
    EarlierObservation,
    ReasonRequest,
    WindowSession,
    render_text,
)


def test_an_observation_renders_in_the_documented_format():
    req = observe_request(images=0)
    assert render_text(req) == req.text == TEXT


def test_an_observed_window_and_left_out_text_are_said():
    req = observe_request(images=0, span=(at("14:03:00"), at("14:08:00")), screen_left_out=True)
    lines = req.text.splitlines()
    assert lines[:3] == ["Local date: 2026-11-25", "Window: 14:03:00–14:08:00", ""]
    assert lines[-1] == "[…] (more screen text left out)"


def test_an_ask_renders_its_times_earlier_observations_and_question():
    req = ReasonRequest(
        task="ask", system="",
        timeline=[window("14:03:12", "14:05:40", "", "Build #42")],
        screen=[screen("14:03:12", "firefox", "Build #42", "error: x", "exit 1")],
        asked=[AskedTime(at("14:00:00"), at("14:10:00"), "14:05")],
        earlier=[EarlierObservation(at("13:50:00"), at("13:55:00"), "Reading mail.")],
        question="  what broke?  ")
    assert req.text == """Local date: 2026-11-25

## Times asked about
2026-11-25 14:00:00–2026-11-25 14:10:00  (14:05)

## Timeline
14:03:12–14:05:40  unknown — Build #42 (2m28s)

## Screen text
[2026-11-25 14:03:12] firefox — Build #42: error: x | exit 1

## Earlier observations
13:50:00–13:55:00: Reading mail.

## Question
what broke?
"""


def test_times_across_midnight_carry_their_day():
    # A window 23:59:50–00:00:10 read as times of one day would end before it starts.
    req = ReasonRequest(
        task="observe", system="",
        timeline=[WindowSession("xterm", "sh", at("23:59:50", "2026-11-24"),
                                at("00:00:10", "2026-11-25"))],
        screen=[screen("23:59:50", "xterm", "sh", "deploy started", day="2026-11-24"),
                screen("00:00:10", "xterm", "sh", "deploy finished", day="2026-11-25")])
    assert req.text.splitlines() == [
        "Local date: 2026-11-24", "", "## Timeline",
        "2026-11-24 23:59:50–2026-11-25 00:00:10  xterm — sh (20s)", "", "## Screen text",
        "[2026-11-24 23:59:50] xterm — sh: deploy started",
        "[2026-11-25 00:00:10] xterm — sh: deploy finished"]
