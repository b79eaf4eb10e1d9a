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


WHEN = """Local date: 2026-11-25
## Times asked about
2026-11-25 14:00:00–2026-11-25 14:10:00  (14:05)
## Timeline
13:50:00–14:03:12  mail — Inbox (13m12s)
14:03:12–14:05:40  firefox — Build #42 failed - Jenkins (2m28s)
14:05:40–14:30:00  xterm — ~/src/app (24m20s)
## Screen text
[2026-11-25 14:03:12] firefox — Build #42 failed - Jenkins: error: test_login failed
[2026-11-25 14:05:41] xterm — ~/src/app: $ make test
[2026-11-25 14:20:00] xterm — ~/src/app: $ git push
"""


def test_ask_about_a_time_says_what_was_open_and_on_screen():
    out = ask(WHEN + "## Question\nwhat was I doing at 14:05?\n")
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
    text = WHEN.replace("14:00:00–2026-11-25 14:10:00  (14:05)",
                        "09:00:00–2026-11-25 09:10:00  (9:05)")
    out = ask(text + "## Question\nwhat was I doing at 9:05?\n")
    assert out == {"answer": "9:05 (09:00–09:10): nothing was recorded then.", "timestamps": []}


def test_words_win_over_the_time_when_they_match():
    out = ask(WHEN + "## Question\nwhen did test_login fail around 14:05?\n")
    assert "error: test_login failed" in out["answer"] and "mail" not in out["answer"]


def test_dated_lines_across_midnight_give_their_own_day():
    text = ("Local date: 2026-11-24\n## Screen text\n"
            "[2026-11-24 23:59:50] xterm — sh: deploy started\n"
            "[2026-11-25 00:00:10] xterm — sh: deploy finished\n## Question\ndeploy\n")
    stamps = ask(text)["timestamps"]
    assert stamps == [datetime(2026, 11, 24, 23, 59, 50).timestamp(),
                      datetime(2026, 11, 25, 0, 0, 10).timestamp()]


def test_a_long_span_quotes_its_start_middle_and_end():
    text = ("Local date: 2026-11-25\n## Times asked about\n"
            "2026-11-25 14:00:00–2026-11-25 15:00:00  (last hour)\n## Screen text\n" +
            "".join(f"[2026-11-25 14:{m:02d}:00] xterm — sh: line {m}\n" for m in range(0, 60, 5)))
    answer = ask(text + "## Question\nwhat did I do in the last hour?\n")["answer"]
    quoted = [int(line.rsplit(" ", 1)[1]) for line in answer.splitlines() if ": line " in line]
    assert quoted == [0, 20, 35, 55]
