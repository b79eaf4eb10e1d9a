"""The web UI in real headless Chromium (Debian's, driven by Playwright's Python client).

Screenshots land in the test's tmp folder; set LOCALVIDEO_UI_SCREENSHOT=docs/ui.png to also
refresh the one the README shows.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from web_helpers import WORD, LiveServer, Recorded

from localvideo.service import Service

pytestmark = pytest.mark.x11

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def ui_server(recorded: Recorded) -> Iterator[LiveServer]:
    # A real program in place of `claude -p`, so the Act button is shown and works.
    script = "import sys; t = sys.stdin.read(); print('agent got:', t.splitlines()[2])"
    svc = Service.open(recorded.data_dir, {"serve": {
        "agent_command": f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"}})
    with LiveServer(svc) as server:
        yield server


@pytest.fixture
def page(browser: Any, ui_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # Local-only: no page may make the browser fetch anything from another machine.
    elsewhere: list[str] = []
    pg.on("request", lambda req: None if req.url.startswith((ui_server.url, "data:", "blob:"))
          else elsewhere.append(req.url))
    # The token goes in the URL once; the server swaps it for a cookie and redirects.
    pg.goto(f"{ui_server.url}/?token={ui_server.token}")
    assert pg.url == f"{ui_server.url}/", "the token must leave the address bar"
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"
    assert not elsewhere, f"requests off this machine: {elsewhere}"


def _shot(page: Any, tmp_path: Path, name: str, *, readme: bool = False) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("LOCALVIDEO_UI_SCREENSHOT")
    if readme and target:
        shutil.copyfile(path, target)
    return path


def test_today_shows_the_timeline_thumbnails_and_cards(page: Any, tmp_path: Path) -> None:
    assert page.locator(".tl-seg").count() >= 1
    assert "XTerm" in page.locator(".legend").inner_text()
    thumb = page.locator(".thumb img").first
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=thumb.element_handle(), timeout=20000)
    card = page.locator(".obs .task").first
    assert "FIX" in card.locator(".tag").inner_text().upper()
    assert card.locator(".act-btn").is_visible()
    _shot(page, tmp_path, "today", readme=True)


def test_search_a_word_and_open_the_moment(page: Any, tmp_path: Path) -> None:
    page.fill(".top-search input", WORD)
    page.press(".top-search input", "Enter")
    page.wait_for_url(f"**/search?q={WORD}")
    hits = page.locator(".hit")
    assert hits.count() >= 1
    assert WORD in hits.first.locator(".snippet").inner_text()
    assert hits.first.locator(".snippet mark").first.inner_text().lower() == WORD
    hits.first.click()
    page.wait_for_url("**/moment?at=*")
    frame = page.locator("#moment-frame")
    page.wait_for_function("img => img.complete && img.naturalWidth >= 400",
                           arg=frame.element_handle(), timeout=20000)
    video = page.locator("#moment-video")
    assert video.locator("source").get_attribute("src").endswith("/media")
    # The browser really decodes the chunk (H.264) and seeks to the moment.
    page.wait_for_function("v => v.readyState >= 1 && v.duration > 0 && !v.error",
                           arg=video.element_handle(), timeout=20000)
    state = video.evaluate("v => ({t: v.currentTime, d: v.duration, o: +v.dataset.offset})")
    assert abs(state["t"] - min(state["o"], state["d"])) < 0.2
    page.wait_for_function("v => v.readyState >= 2", arg=video.element_handle(), timeout=20000)
    _shot(page, tmp_path, "moment")


def test_ask_links_the_moments_it_used(page: Any, ui_server: LiveServer) -> None:
    page.goto(f"{ui_server.url}/search")
    page.fill("#ask-q", f"when did I see {WORD}?")
    page.click("#ask-form button")
    link = page.locator(".answer-moments a").first
    link.wait_for(timeout=20000)
    assert page.locator(".answer").inner_text() not in ("", "Thinking…")
    assert page.locator(".answer-times").inner_text() == ""   # no time in that question
    link.click()
    page.wait_for_url("**/moment?at=*")
    assert page.locator("#moment-frame").is_visible()


def test_ask_about_a_time(page: Any, ui_server: LiveServer, recorded: Recorded) -> None:
    from datetime import datetime

    first = ui_server.svc.record.chunks()[0].start_ts
    hhmm = datetime.fromtimestamp(first + 3).strftime("%H:%M")
    page.goto(f"{ui_server.url}/search")
    page.fill("#ask-q", f"what was I doing at {hhmm}?")
    page.click("#ask-form button")
    page.locator(".answer-moments a").first.wait_for(timeout=20000)
    assert page.locator(".answer-times").inner_text().startswith(f"Looked at {hhmm}: ")
    assert "XTerm" in page.locator(".answer").inner_text()


def test_act_on_a_suggested_task(page: Any, ui_server: LiveServer) -> None:
    page.goto(f"{ui_server.url}/observations")
    btn = page.locator(".act-btn").first
    btn.click()
    out = page.locator(".act-out").first
    out.wait_for(state="visible", timeout=20000)
    assert "agent got: Title:" in out.inner_text()
    assert btn.inner_text() == "Done"
    assert ui_server.svc.act.list()[0].state == "done"


# The button reloads the page: while the new document loads, #rec-state is not there yet,
# so the checks wait for it to exist (a bare querySelector(...).textContent threw then).
REC_STATE = "(document.querySelector('#rec-state') || {textContent: null}).textContent"


def test_pause_and_resume_button(page: Any, ui_server: LiveServer) -> None:
    page.click("#pause-btn")
    page.wait_for_function(f"({REC_STATE} || '').includes('Paused')")
    assert ui_server.svc.db.get_kv("paused") is True
    page.click("#pause-btn")
    page.wait_for_function(f"(t => t !== null && !t.includes('Paused'))({REC_STATE})")
    assert ui_server.svc.db.get_kv("paused") is False


def test_capture_health_banner(page: Any, ui_server: LiveServer) -> None:
    """A running recorder whose capture sees one colour while a window is on screen: every
    page says so in a banner; a healthy or stopped recorder shows none."""
    from localvideo.capture.base import Frame
    from localvideo.capture.health import CaptureHealth
    from localvideo.record.lock import RecorderLock

    assert page.locator("#capture-health").count() == 0
    # The verdict the recorder would put in its heartbeat, from real blank frames.
    health = CaptureHealth({"backend": "x11", "path": "xshm", "why": "--backend x11 on a "
                            "Wayland session"}, blank_after=1)
    black = np.zeros((60, 80, 4), np.uint8)
    for t in range(3):
        health.seen(Frame(pixels=black, ts=t, app="foot", title="notes.txt"), now=1000 + t)
    assert health.state == "blank"
    db = ui_server.svc.db
    beat = db.get_kv("recorder", {}) or {}
    with RecorderLock(ui_server.svc.settings.data_dir):
        db.set_kv("recorder", {**beat, "pid": os.getpid(), "health": health.status()})
        try:
            page.goto(f"{ui_server.url}/search")
            banner = page.locator("#capture-health")
            assert banner.is_visible()
            text = banner.inner_text()
            assert "Capture blank" in text and "notes.txt" in text, text
            assert "--backend wayland" in text and "x11 via xshm" in text, text
            db.set_kv("recorder", {**beat, "pid": os.getpid(),
                                   "health": {**health.status(), "state": "ok",
                                              "message": ""}})
            page.reload()
            assert page.locator("#capture-health").count() == 0
        finally:
            db.set_kv("recorder", beat)


def test_settings_page_saves_exclusions(page: Any, ui_server: LiveServer) -> None:
    page.goto(f"{ui_server.url}/settings")
    apps = page.locator("textarea[name=exclude_apps]")
    apps.fill(apps.input_value() + "\nMyBankApp")
    page.fill("input[name=max_age]", "14d")
    page.click("#settings-form button[type=submit]")
    page.wait_for_function("document.querySelector('#settings-status').textContent === 'Saved.'")
    text = ui_server.svc.settings.config_path.read_text()
    assert '"MyBankApp"' in text and "max_age = 1209600.0" in text
    page.fill("textarea[name=exclude_titles]", "(broken")
    page.click("#settings-form button[type=submit]")
    page.wait_for_function("document.querySelector('#settings-status').textContent"
                           ".includes('not a valid regex')")


@pytest.mark.synth
def test_generate_a_tiny_clip_with_live_progress(page: Any, ui_server: LiveServer,
                                                 tmp_path: Path) -> None:
    import tinymodels as tiny
    tiny.build_tiny("ltx", ui_server.svc.settings.models_dir / "tiny-ltx")
    size = tiny.TINY_SIZES["ltx"]
    page.goto(f"{ui_server.url}/clips")
    before = page.locator(".clip").count()
    page.fill("textarea[name=prompt]", "a red fox running through snow")
    page.fill("input[name=model_path]", "tiny-ltx")
    page.fill("input[name=frames]", str(size["frames"]))
    page.fill("input[name=width]", str(size["width"]))
    page.fill("input[name=height]", str(size["height"]))
    page.fill("input[name=steps]", "2")
    page.fill("input[name=seed]", "7")
    page.click("#gen-form button[type=submit]")
    page.locator("#gen-progress").wait_for(state="visible")
    # Done → the page reloads with the new clip in the gallery.
    page.wait_for_function(f"document.querySelectorAll('.clip').length > {before}",
                           timeout=120000)
    video = page.locator(".clip video").first  # newest first
    page.wait_for_function("v => v.readyState >= 1 && v.duration > 0",
                           arg=video.element_handle(), timeout=20000)
    job = ui_server.svc.jobs.list()[0]
    assert job.state == "done" and job.params["prompt"].startswith("a red fox")
    _shot(page, tmp_path, "clips")


def test_api_reference_page(page: Any, ui_server: LiveServer, tmp_path: Path) -> None:
    page.click("header nav >> text=API")
    page.wait_for_url("**/docs")
    assert page.locator(".api-route").count() >= 20
    search = page.locator(".api-route", has=page.locator("code", has_text="/api/search"))
    assert search.count() == 1
    assert "q" in search.locator("table.api-params").inner_text().split()
    page.click(".api-tags >> text=synth")
    assert page.evaluate("location.hash") == "#tag-synth"
    assert page.locator("#tag-synth").is_visible()
    _shot(page, tmp_path, "api")


def test_hosted_generate_shows_what_will_be_sent(page: Any, ui_server: LiveServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A hosted backend: the first click shows what will be sent beside the button and queues
    nothing; the second sends (here it fails on the missing key, before any network)."""
    for env in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(env, raising=False)
    page.goto(f"{ui_server.url}/clips")
    before = len(ui_server.svc.jobs.list())
    page.fill("textarea[name=prompt]", "a paper boat on a pond")
    page.select_option("select[name=backend]", "veo")
    page.fill("input[name=hosted_model]", "veo-3.0-fast-generate-001")
    button = page.locator("#gen-form button[type=submit]")
    button.click()
    page.locator("#gen-preview").wait_for(state="visible")
    text = page.locator("#gen-preview").text_content() or ""
    assert "'a paper boat on a pond'" in text and "aiplatform.googleapis.com" in text
    assert "$0.15 per second" in text
    assert button.text_content() == "Send to veo"
    assert len(ui_server.svc.jobs.list()) == before
    button.click()
    page.wait_for_function("document.querySelector('#gen-status').textContent"
                           ".startsWith('Failed:')", timeout=20000)
    job = ui_server.svc.jobs.list()[0]
    assert job.params["backend"] == "veo" and job.params["yes"] is True
    assert job.error and job.error["reason"] == "auth"
    assert "localvideo keys set veo" in (job.error.get("hint") or "")
