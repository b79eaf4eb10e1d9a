"""The gemini reasoner against a real generateContent + File API server on 127.0.0.1."""

from __future__ import annotations

import base64
from pathlib import Path

import av
import numpy as np
import pytest
from reason.helpers import observe_request

from localvideo.errors import EndpointError, MissingKeyError, UsageError
from localvideo.reason import describe_request, get_reasoner


@pytest.fixture(scope="module")
def chunk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real fragmented MP4 (H.264), like the recorder's chunks."""
    path = tmp_path_factory.mktemp("chunk") / "chunk_140312_000.mp4"
    with av.open(str(path), "w", options={"movflags": "empty_moov+default_base_moof"}) as out:
        stream = out.add_stream("libx264", rate=2)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(6):
            img = np.full((48, 64, 3), i * 40, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _b64(data: str) -> bytes:
    # Proto-JSON bytes may be standard or web-safe base64; this SDK sends web-safe.
    return base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)


def _get(settings, db, srv, **kw):  # type: ignore[no-untyped-def]
    return get_reasoner("gemini", settings=settings, db=db, base_url=srv.url, backoff=0.01,
                        timeout=5, **kw)


def test_never_automatic(settings, db, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "g-key")
    assert get_reasoner(None, settings=settings, db=db).name == "offline"


def test_small_chunk_goes_inline(settings, db, monkeypatch, gemini_server, chunk):
    monkeypatch.setenv("GOOGLE_API_KEY", "g-env-key")
    r = _get(settings, db, gemini_server)
    req = observe_request(images=1, video=chunk)
    resp = r.execute(req)
    assert resp.data is not None and resp.usage == {"input_tokens": 120, "output_tokens": 40}
    (call,) = gemini_server.model_calls()
    assert call.path.split("/", 2)[2] == "models/gemini-2.5-flash:generateContent"
    assert call.api_key == "g-env-key"
    parts = call.json["contents"][0]["parts"]
    inline = [p["inlineData"] for p in parts if "inlineData" in p]
    # Proto-JSON takes either spelling; this SDK sends snake_case.
    assert [i.get("mimeType") or i.get("mime_type") for i in inline] == ["video/mp4", "image/png"]
    assert _b64(inline[0]["data"]) == chunk.read_bytes()
    assert _b64(inline[1]["data"]) == req.images[0].data
    assert parts[-1]["text"] == req.text
    assert call.json["generationConfig"]["responseMimeType"] == "application/json"
    assert not gemini_server.uploads


def test_large_chunk_uses_the_file_api(settings, db, gemini_server, chunk):
    gemini_server.processing_polls = 2
    r = _get(settings, db, gemini_server, key="g-flag", inline_limit=100, poll_interval=0.01)
    assert describe_request(observe_request(video=chunk), r)["video"]["sent_as"] == \
        "file-api-upload"
    r.execute(observe_request(images=0, video=chunk))
    (name, data), = gemini_server.uploads.items()
    assert data == chunk.read_bytes()
    start = next(rq for rq in gemini_server.requests if rq.path.startswith("/upload/"))
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    polls = [rq for rq in gemini_server.requests if rq.method == "GET"]
    assert len(polls) == 3     # PROCESSING twice, then ACTIVE
    (call,) = gemini_server.model_calls()
    file_data = [p["fileData"] for p in call.json["contents"][0]["parts"] if "fileData" in p]
    uri = file_data[0].get("fileUri") or file_data[0].get("file_uri")
    mime = file_data[0].get("mimeType") or file_data[0].get("mime_type")
    assert uri.endswith(name) and mime == "video/mp4"


def test_rate_limit_then_success_and_missing_chunk(settings, db, gemini_server, tmp_path):
    gemini_server.fail(429)
    r = _get(settings, db, gemini_server, key="k")
    assert r.execute(observe_request(images=0)).data is not None
    assert len(gemini_server.model_calls()) == 2
    with pytest.raises(UsageError):
        r.execute(observe_request(images=0, video=tmp_path / "gone.mp4"))


def test_server_error_exhausts_retries(settings, db, gemini_server):
    gemini_server.fail(500, times=3)
    r = _get(settings, db, gemini_server, key="k")
    with pytest.raises(EndpointError) as info:
        r.execute(observe_request(images=0))
    assert info.value.status == 500 and info.value.retryable


def test_missing_key_names_both_env_vars(settings, db, gemini_server):
    with pytest.raises(MissingKeyError) as info:
        get_reasoner("gemini", settings=settings, db=db, base_url="https://example.com")
    assert "localvideo keys set gemini" in (info.value.hint or "")
    assert "GEMINI_API_KEY or GOOGLE_API_KEY" in (info.value.hint or "")


def test_bad_key_answered_with_400_is_a_key_error(settings, db, gemini_server):
    from localvideo.errors import ReasonerError

    gemini_server.fail(400, message="API key not valid. Please pass a valid API key.")
    r = _get(settings, db, gemini_server, key="wrong")
    with pytest.raises(ReasonerError) as info:
        r.execute(observe_request(images=0))
    assert not isinstance(info.value, EndpointError)
    assert "localvideo keys set gemini" in (info.value.hint or "")
    assert len(gemini_server.model_calls()) == 1
