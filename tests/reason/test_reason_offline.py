"""The offline reasoner: rule-based, deterministic, validated like any endpoint."""

from __future__ import annotations

import json
from datetime import datetime

from reason.helpers import TEXT

from localvideo.reason import ASK_SCHEMA, OBSERVATION_SCHEMA, ReasonRequest, get_reasoner
from localvideo.reason.log import recent
from localvideo.reason.offline import ask, observe

ERRORS = TEXT + "[14:05:50] xterm — ~/src/app: FAILED tests/test_login.py - AssertionError\n"

ROUND_TRIPS = "## Timeline\n" + "".join(
    f"10:{m:02d}:00–10:{m:02d}:20  libreoffice — invoices.ods (20s)\n"
    f"10:{m:02d}:20–10:{m:02d}:40  firefox — Shop admin - Orders (20s)\n" for m in range(4)
) + "\n## Screen text\n[10:00:05] libreoffice — invoices.ods: Invoice 1041 total 120.00\n"


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
    text = ("## Timeline\n14:00:00–14:00:30  xterm — Build log (30s)\n\n## Screen text\n" + "".join(
        f"[14:00:{s:02d}] xterm — Build log: quokka deploy 4217 | hello marmalade | "
        f"error: build failed in step 3 while linking the extraordinarily long target name\n"
        for s in (1, 9)))
    title = observe(text)["task"]["title"]
    assert title.startswith("Fix: error: build failed in step 3")
    assert "quokka" not in title and "|" not in title
    assert title.endswith("…") and title[:-1].split()[-1] in text


def test_single_error_line_is_not_a_task():
    assert observe(TEXT)["task"]["verdict"] == "NO_TASK"


def test_repeated_window_round_trip_suggests_automation():
    task = observe(ROUND_TRIPS)["task"]
    assert (task["verdict"], task["category"]) == ("TASK_FOUND", "AUTOMATE")
    assert "repeated 4 times" in task["description"]
    assert "libreoffice → firefox" in task["title"]


def test_empty_window():
    out = observe("")
    assert out["summary"] == "No activity recorded in this window."
    assert out["activities"] == [] and out["task"]["verdict"] == "NO_TASK"


def test_ask_quotes_matching_lines_with_timestamps():
    out = ask(ERRORS + "\n## Question\nwhen did test_login fail?\n")
    assert "[14:03:12] firefox" in out["answer"] and "[14:05:50] xterm" in out["answer"]
    assert "make test" not in out["answer"]
    day = datetime(2026, 11, 25, 14, 3, 12).timestamp()
    assert out["timestamps"] == [day, day + 158]


def test_ask_without_match_says_so():
    out = ask(TEXT + "\n## Question\nwhat about kubernetes?\n")
    assert out["timestamps"] == [] and "kubernetes" in out["answer"]


def test_midnight_crossing_keeps_order():
    text = ("Date: 2026-11-25\n## Screen text\n[23:59:50] xterm — sh: deploy started\n"
            "[00:00:10] xterm — sh: deploy finished\n## Question\ndeploy\n")
    stamps = ask(text)["timestamps"]
    assert stamps[1] - stamps[0] == 20


def test_reasoner_is_deterministic_validated_and_logged(settings, db):
    r = get_reasoner(None, settings=settings, db=db)
    assert r.name == "offline" and not r.takes_images
    req = ReasonRequest(task="observe", system="", text=ERRORS, schema=OBSERVATION_SCHEMA)
    first, second = r.execute(req), r.execute(req)
    assert first.data == second.data and first.text == second.text
    assert json.loads(first.text) == first.data
    asked = r.execute(ReasonRequest(task="ask", system="", text=ERRORS + "## Question\nbuild\n",
                                    schema=ASK_SCHEMA))
    assert asked.data and asked.data["timestamps"]
    assert [row["status"] for row in recent(db)] == ["ok", "ok", "ok"]


def test_trouble_words_in_the_question_find_error_lines():
    out = ask(ERRORS + "\n## Question\nwhat was I doing when the build broke?\n")
    assert "[14:05:50] xterm" in out["answer"]       # no "build" there, but an error line
    assert "make test" not in out["answer"]
    day = datetime(2026, 11, 25, 14, 3, 12).timestamp()
    assert out["timestamps"][0] == day and day + 158 in out["timestamps"]
