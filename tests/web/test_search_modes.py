"""Search by meaning over real HTTP: the API's ``mode`` parameter and ``matched`` field, and
the search page's mode select, on a store whose key-frame text the bundled model embedded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from web_helpers import LiveServer

from localvideo.analyze import embed
from localvideo.service import Service

T0 = 1_790_000_000.0
SCREENS = [("firefox", "Government services - Mozilla Firefox",
            "Travel document application\nApplicant surname and given names\n"
            "Fee 75 EUR payable by card"),
           ("gedit", "list.txt - gedit", "Shopping list\nmilk eggs bread butter")]


def _store(root: Path) -> Service:
    svc = Service.open(root, recover=False)
    db = svc.db
    with db.tx() as conn:
        conn.execute("INSERT INTO chunks(id, path, device_id, start_ts, state) "
                     "VALUES (1, 'c.mp4', 'test', ?, 'closed')", (T0,))
        for i, (app, title, text) in enumerate(SCREENS, start=1):
            conn.execute("INSERT INTO frames(id, chunk_id, ts, pts, app, title) "
                         "VALUES (?, 1, ?, ?, ?, ?)", (i, T0 + i * 60, i * 60.0, app, title))
            conn.execute("INSERT INTO frame_text(frame_id, text) VALUES (?, ?)", (i, text))
            conn.execute("INSERT INTO frame_fts(rowid, text, app, title) VALUES (?, ?, ?, ?)",
                         (i, text, app, title))
    assert embed.embed_pending(db, embed.get_embedder())["frames"] == 2
    return svc


def test_api_and_page_search_by_meaning(tmp_path: Path,
                                        serve: Callable[[Service], LiveServer]) -> None:
    live = serve(_store(tmp_path))
    q = "the form for renewing my passport"
    with live.client() as c:
        r = c.get("/api/search", params={"q": q})
        assert r.status_code == 200, r.text
        hits = r.json()
        assert hits[0]["app"] == "firefox" and hits[0]["matched"] == "meaning"
        assert c.get("/api/search", params={"q": q, "mode": "keyword"}).json() == []
        both = c.get("/api/search", params={"q": "shopping list", "mode": "hybrid"}).json()
        assert both[0]["app"] == "gedit" and both[0]["matched"] == "both"
        bad = c.get("/api/search", params={"q": q, "mode": "fuzzy"})
        assert bad.status_code == 422
        page = httpx.get(f"{live.url}/search", params={"q": q, "mode": "semantic"},
                         headers={"Authorization": f"Bearer {live.token}"}, timeout=60)
        assert page.status_code == 200
        assert '<option value="semantic" selected>' in page.text
        assert "by meaning" in page.text and "Government services" in page.text
