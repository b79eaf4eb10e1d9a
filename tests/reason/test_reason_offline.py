"""The offline reasoner: rule-based, deterministic, validated like any endpoint."""

from __future__ import annotations

import json
from datetime import datetime

from reason.helpers import SCREEN, TIMELINE, at, screen, window

from localvideo.reason import ASK_SCHEMA, OBSERVATION_SCHEMA, ReasonRequest, get_reasoner
from localvideo.reason.base import AskedTime, ScreenText, WindowSession
from localvideo.reason.log import recent
from localvideo.reason.offline import ask, observe


def request(timeline: list[WindowSession] | None = None, screen: list[ScreenText] | None = None,
            question: str = "", asked: list[AskedTime] | None = None,
            task: str = "observe") -> ReasonRequest:
    return ReasonRequest(task=task if not question else "ask", system="",
                         timeline=timeline or [], screen=screen or [], question=question,
                         asked=asked or [])


ERROR_SCREEN = SCREEN + [screen("14:05:50", "xterm", "~/src/app",
                                "FAILED tests/test_login.py - AssertionError")]
ERRORS = request(TIMELINE, ERROR_SCREEN)


def asking(base: ReasonRequest, question: str) -> ReasonRequest:
    return request(base.timeline, base.screen, question, base.asked)


ROUND_TRIPS = request(
    [w for m in range(4) for w in (
        window(f"10:{m:02d}:00", f"10:{m:02d}:20", "libreoffice", "invoices.ods"),
        window(f"10:{m:02d}:20", f"10:{m:02d}:40", "firefox", "Shop admin - Orders"))],
    [screen("10:00:05", "libreoffice", "invoices.ods", "Invoice 1041 total 120.00")])


def test_repeated_error_text_suggests_fix_and_summary_counts_time():
    out = observe(ERRORS)
    assert out["summary"].startswith("Mostly in firefox (2m28s, 83%), xterm (30s, 17%).")
    assert "test_login failed" in out["summary"]
    assert out["activities"] == ["firefox — Build #42 failed - Jenkins (2m28s)",
                                 "xterm — ~/src/app (30s)"]
    task = out["task"]
    assert (task["verdict"], task["category"]) == ("TASK_FOUND", "FIX")
    assert "test_login failed" in task["title"]
    assert "[14:05:50]" in task["description"] and "appeared 2 times" in task["description"]


def test_fix_title_is_the_error_line_cut_at_a_word():
    req = request([window("14:00:00", "14:00:30", "xterm", "Build log")], [
        screen(f"14:00:{s:02d}", "xterm", "Build log", "quokka deploy 4217", "hello marmalade",
               "error: build failed in step 3 while linking the extraordinarily long target name")
        for s in (1, 9)])
    text = req.text
    title = observe(req)["task"]["title"]
    assert title.startswith("Fix: error: build failed in step 3")
    assert "quokka" not in title and "|" not in title
    assert title.endswith("…") and title[:-1].split()[-1] in text


def test_single_error_line_is_not_a_task():
    assert observe(request(TIMELINE, SCREEN))["task"]["verdict"] == "NO_TASK"


def test_repeated_window_round_trip_suggests_automation():
    task = observe(ROUND_TRIPS)["task"]
    assert (task["verdict"], task["category"]) == ("TASK_FOUND", "AUTOMATE")
    assert "repeated 4 times" in task["description"]
    assert "libreoffice → firefox" in task["title"]


def test_empty_window():
    out = observe(request())
    assert out["summary"] == "No activity recorded in this window."
    assert out["activities"] == [] and out["task"]["verdict"] == "NO_TASK"


def test_ask_quotes_matching_lines_with_timestamps():
    out = ask(asking(ERRORS, "when did test_login fail?"))
    assert "[14:03:12] firefox" in out["answer"] and "[14:05:50] xterm" in out["answer"]
    assert "make test" not in out["answer"]
    day = datetime(2026, 11, 25, 14, 3, 12).timestamp()
    assert out["timestamps"] == [day, day + 158]


def test_ask_without_match_says_so():
    out = ask(request(TIMELINE, SCREEN, "what about kubernetes?"))
    assert out["timestamps"] == [] and "kubernetes" in out["answer"]


def test_midnight_crossing_keeps_order():
    req = request(screen=[screen("23:59:50", "xterm", "sh", "deploy started"),
                          screen("00:00:10", "xterm", "sh", "deploy finished", day="2026-11-26")],
                  question="deploy")
    stamps = ask(req)["timestamps"]
    assert stamps[1] - stamps[0] == 20


def test_reasoner_is_deterministic_validated_and_logged(settings, db):
    r = get_reasoner(None, settings=settings, db=db)
    assert r.name == "offline" and not r.takes_images
    req = ReasonRequest(task="observe", system="", timeline=TIMELINE, screen=ERROR_SCREEN,
                        schema=OBSERVATION_SCHEMA)
    first, second = r.execute(req), r.execute(req)
    assert first.data == second.data and first.text == second.text
    assert json.loads(first.text) == first.data
    asked = r.execute(ReasonRequest(task="ask", system="", timeline=TIMELINE,
                                    screen=ERROR_SCREEN, question="build", schema=ASK_SCHEMA))
    assert asked.data and asked.data["timestamps"]
    assert [row["status"] for row in recent(db)] == ["ok", "ok", "ok"]


def test_trouble_words_in_the_question_find_error_lines():
    out = ask(asking(ERRORS, "what was I doing when the build broke?"))
    assert "[14:05:50] xterm" in out["answer"]       # no "build" there, but an error line
    assert "make test" not in out["answer"]
    day = datetime(2026, 11, 25, 14, 3, 12).timestamp()
    assert out["timestamps"][0] == day and day + 158 in out["timestamps"]


WHEN = request(
    [window("13:50:00", "14:03:12", "mail", "Inbox"),
     window("14:03:12", "14:05:40", "firefox", "Build #42 failed - Jenkins"),
     window("14:05:40", "14:30:00", "xterm", "~/src/app")],
    [screen("14:03:12", "firefox", "Build #42 failed - Jenkins", "error: test_login failed"),
     screen("14:05:41", "xterm", "~/src/app", "$ make test"),
     screen("14:20:00", "xterm", "~/src/app", "$ git push")],
    asked=[AskedTime(at("14:00:00"), at("14:10:00"), "14:05")])


def test_ask_about_a_time_says_what_was_open_and_on_screen():
    out = ask(asking(WHEN, "what was I doing at 14:05?"))
    answer = out["answer"]
    assert answer.startswith("14:05 (14:00–14:10):")
    # Every window open in the span, in time order; screen lines inside the span only.
    assert answer.index("mail — Inbox") < answer.index("firefox") < answer.index("xterm — ~")
    assert "$ make test" in answer and "git push" not in answer
    at = datetime(2026, 11, 25, 14, 0).timestamp()
    # Where each window starts within the span (mail from before: the span's start), and the
    # screen lines' own times.
    assert out["timestamps"] == [at, at + 192, at + 340, at + 341]


def test_ask_about_a_time_with_nothing_recorded():
    req = request(WHEN.timeline, WHEN.screen, "what was I doing at 9:05?",
                  [AskedTime(at("09:00:00"), at("09:10:00"), "9:05")])
    out = ask(req)
    assert out == {"answer": "9:05 (09:00–09:10): nothing was recorded then.", "timestamps": []}


def test_words_win_over_the_time_when_they_match():
    out = ask(asking(WHEN, "when did test_login fail around 14:05?"))
    assert "error: test_login failed" in out["answer"] and "mail" not in out["answer"]


def test_dated_lines_across_midnight_give_their_own_day():
    req = request(screen=[screen("23:59:50", "xterm", "sh", "deploy started", day="2026-11-24"),
                          screen("00:00:10", "xterm", "sh", "deploy finished", day="2026-11-25")],
                  question="deploy")
    stamps = ask(req)["timestamps"]
    assert stamps == [datetime(2026, 11, 24, 23, 59, 50).timestamp(),
                      datetime(2026, 11, 25, 0, 0, 10).timestamp()]


def test_a_long_span_quotes_its_start_middle_and_end():
    req = request(screen=[screen(f"14:{m:02d}:00", "xterm", "sh", f"line {m}")
                          for m in range(0, 60, 5)],
                  question="what did I do in the last hour?",
                  asked=[AskedTime(at("14:00:00"), at("15:00:00"), "last hour")])
    answer = ask(req)["answer"]
    quoted = [int(line.rsplit(" ", 1)[1]) for line in answer.splitlines() if ": line " in line]
    assert quoted == [0, 20, 35, 55]


def test_fix_title_quotes_the_whole_error_line():
    # The README's own screenshot once showed "Fix: ploy 4217 | hello marmalade | error: …":
    # with the key frame's lines in the request, the title is the error line, whole.
    lines = ("deploy 4217", "hello marmalade", "error: build failed in step 3")
    req = request([window("14:00:00", "14:00:30", "xterm", "Build log")],
                  [screen(f"14:00:{s:02d}", "xterm", "Build log", *lines) for s in (1, 9)])
    task = observe(req)["task"]
    assert task["title"] == "Fix: error: build failed in step 3"
    assert task["description"].endswith(
        "- [14:00:09] xterm — Build log: deploy 4217 | hello marmalade | "
        "error: build failed in step 3")


def test_lines_across_midnight_keep_their_dates_in_the_answer():
    # Lines dated across midnight: the answer quotes each with its own day and cites its own
    # moment, whatever the request's first day.
    req = request([window("23:59:40", "23:59:59", "xterm", "sh", day="2026-11-24"),
                   window("00:00:00", "00:00:20", "xterm", "sh", day="2026-11-25")],
                  [screen("23:59:50", "xterm", "sh", "deploy started", day="2026-11-24"),
                   screen("00:00:10", "xterm", "sh", "deploy failed: error 1", day="2026-11-25"),
                   screen("00:00:15", "xterm", "sh", "deploy failed: error 2", day="2026-11-25")],
                  question="when did the deploy start and fail?")
    out = ask(req)
    assert "- [2026-11-24 23:59:50] xterm — sh: deploy started" in out["answer"]
    assert "- [2026-11-25 00:00:10] xterm — sh: deploy failed: error 1" in out["answer"]
    assert out["timestamps"] == [datetime(2026, 11, 24, 23, 59, 50).timestamp(),
                                 datetime(2026, 11, 25, 0, 0, 10).timestamp(),
                                 datetime(2026, 11, 25, 0, 0, 15).timestamp()]
    task = observe(request(req.timeline, req.screen))["task"]
    assert task["category"] == "FIX"
    assert "- [2026-11-25 00:00:15] xterm — sh: deploy failed: error 2" in task["description"]
