"""Hosted providers through their official SDKs against loopback servers (hosted_servers.py).

Each provider runs text→video and image→video end to end (submit, queued, running, download,
conversion to H.264 that decodes), and meets a bad key, an unknown model, a refused and a
failed job, and a cancellation that must reach the server.
"""

from __future__ import annotations

import base64
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hosted_servers import (  # noqa: E402
    FRAMES,
    FalServer,
    LoopbackServer,
    ReplicateServer,
    RunwayServer,
    VertexVeoServer,
    clip_colour,
)

from localvideo.errors import DependencyError, HostedCancelled, HostedError  # noqa: E402
from localvideo.synth.hosted import HostedRequest, get_provider  # noqa: E402

KEY_ENVS = ("REPLICATE_API_TOKEN", "FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "GOOGLE_API_KEY",
            "GEMINI_API_KEY", "RUNWAYML_API_SECRET", "GOOGLE_CLOUD_PROJECT",
            "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_USE_VERTEXAI", "REPLICATE_BASE_URL",
            "RUNWAYML_BASE_URL")


@dataclass
class Case:
    name: str
    server: Callable[[], LoopbackServer]
    t2v: str           # a text→video model the server knows
    i2v: str           # an image→video model the server knows
    unknown: str       # a well-formed model name the server does not know


CASES = [
    Case("replicate", ReplicateServer, "acme/tiny-video",
         "acme/tiny-video:5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
         "acme/no-such-model"),
    Case("fal", FalServer, "fal-ai/tiny-video", "fal-ai/tiny-video/image-to-video",
         "fal-ai/no-such-app"),
    Case("veo", VertexVeoServer, "veo-3.0-fast-generate-001", "veo-3.0-fast-generate-001",
         "veo-9.9-imaginary"),
    Case("runway", RunwayServer, "gen4.5", "gen4_turbo", "gen9_imaginary"),
]


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDKs read their env variables themselves: none may leak in from the machine.
    for env in KEY_ENVS:
        monkeypatch.delenv(env, raising=False)


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Iterator[tuple[Case, LoopbackServer]]:
    c: Case = request.param
    with c.server() as server:
        yield c, server


def provider(c: Case, server: LoopbackServer, key: str | None = LoopbackServer.key,
             **kw: Any) -> Any:
    return get_provider(c.name, api_key=key, base_url=server.url, poll_interval=0.02, **kw)


def decode(path: Path) -> tuple[str, np.ndarray]:
    with av.open(str(path)) as cont:
        stream = cont.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in cont.decode(stream)])
        return stream.codec_context.name, frames


def check_clip(path: Path, prompt: str) -> None:
    codec, frames = decode(path)
    assert codec == "h264"
    assert frames.shape[0] == FRAMES
    # The clip's colour comes from the prompt the server received: away from the moving bar,
    # every frame is that colour (within coding error of two lossy encodes).
    corner = frames[:, -8:, -16:-8].reshape(-1, 3).mean(axis=0)
    assert np.abs(corner - np.array(clip_colour(prompt))).max() < 8, corner


@pytest.fixture
def png(tmp_path: Path) -> Path:
    from PIL import Image

    y, x = np.mgrid[0:40, 0:56]
    img = np.stack([x * 4, y * 6, np.full_like(x, 99)], axis=-1).astype(np.uint8)
    path = tmp_path / "first.png"
    Image.fromarray(img).save(path)
    return path


def test_text_to_video(case: tuple[Case, LoopbackServer], tmp_path: Path) -> None:
    c, server = case
    events: list[dict[str, Any]] = []
    prompt = "a red fox running through snow"
    res = provider(c, server).run(c.t2v, HostedRequest(prompt=prompt, seed=7),
                                  tmp_path / "clip.mp4", on_progress=events.append)
    check_clip(tmp_path / "clip.mp4", prompt)
    assert res.request_id and res.request_id.rsplit("/", 1)[-1] in server.jobs
    assert res.provider == c.name and res.model == c.t2v
    assert res.video["codec"] == "h264" and res.video["source"]["codec"] == "mpeg4"
    states = [e["state"] for e in events]
    assert states[0] == "submit" and states[-1] == "done"
    assert {"queued", "running", "download", "convert"} <= set(states) or (
        c.name == "veo" and {"running", "download"} <= set(states))
    assert not list(tmp_path.glob("*.download")) and not list(tmp_path.glob("*.part"))
    job = next(iter(server.jobs.values()))
    assert job.prompt == prompt
    assert res.params.get("seed") == 7


def test_image_to_video_sends_the_image(case: tuple[Case, LoopbackServer], tmp_path: Path,
                                        png: Path) -> None:
    c, server = case
    prompt = "the gradient starts to swirl"
    res = provider(c, server).run(c.i2v, HostedRequest(prompt=prompt, image=png),
                                  tmp_path / "i2v.mp4")
    check_clip(tmp_path / "i2v.mp4", prompt)
    assert res.submission["mode"] == "image-to-video"
    assert res.submission["image"]["width"] == 56 and res.submission["image"]["height"] == 40
    body = next(iter(server.jobs.values())).body
    sent: bytes
    if c.name == "replicate":
        assert isinstance(server, ReplicateServer)
        (fid, sent), = server.files.items()
        assert body["input"]["image"].endswith(f"/v1/files/{fid}")
        assert body["version"] == c.i2v.split(":")[1]
    elif c.name == "fal":
        uri = body["image_url"]
        assert uri.startswith("data:image/png;base64,")
        sent = base64.b64decode(uri.split(",", 1)[1])
    elif c.name == "veo":
        image = body["instances"][0]["image"]
        assert image["mimeType"] == "image/png"
        sent = base64.b64decode(image["bytesBase64Encoded"])
    else:
        assert server.calls_to("POST", "/v1/image_to_video")
        uri = body["promptImage"]
        sent = base64.b64decode(uri.split(",", 1)[1])
        assert body["model"] == "gen4_turbo" and body["ratio"] == "1280:720"
    assert sent == png.read_bytes()


def test_bad_key_names_keys_set(case: tuple[Case, LoopbackServer], tmp_path: Path) -> None:
    c, server = case
    with pytest.raises(HostedError) as ei:
        provider(c, server, key="wrong").run(c.t2v, HostedRequest(prompt="x"),
                                             tmp_path / "c.mp4")
    assert ei.value.reason == "auth"
    assert f"localvideo keys set {c.name}" in str(ei.value.hint)
    assert not (tmp_path / "c.mp4").exists()


def test_missing_key_fails_before_sending(case: tuple[Case, LoopbackServer],
                                          tmp_path: Path) -> None:
    c, server = case
    with pytest.raises(HostedError) as ei:
        provider(c, server, key=None).run(c.t2v, HostedRequest(prompt="x"), tmp_path / "c.mp4")
    assert ei.value.reason == "auth" and f"localvideo keys set {c.name}" in str(ei.value.hint)
    assert server.calls == []


def test_unknown_model(case: tuple[Case, LoopbackServer], tmp_path: Path) -> None:
    c, server = case
    with pytest.raises(HostedError) as ei:
        provider(c, server).run(c.unknown, HostedRequest(prompt="x"), tmp_path / "c.mp4")
    assert ei.value.reason == "model", ei.value
    assert c.unknown in ei.value.message


@pytest.mark.parametrize("word,reason", [("REFUSE", "refused"), ("FAIL", "failed")])
def test_refused_and_failed_jobs(case: tuple[Case, LoopbackServer], tmp_path: Path,
                                 word: str, reason: str) -> None:
    c, server = case
    with pytest.raises(HostedError) as ei:
        provider(c, server).run(c.t2v, HostedRequest(prompt=f"{word} this"), tmp_path / "c.mp4")
    err = ei.value
    assert err.reason == reason, err
    assert err.request_id and err.request_id.rsplit("/", 1)[-1] in server.jobs
    if reason == "refused":
        assert "rephrase" in str(err.hint)
    assert not (tmp_path / "c.mp4").exists()


def test_cancel_reaches_the_provider(case: tuple[Case, LoopbackServer], tmp_path: Path) -> None:
    c, server = case
    stop = threading.Event()

    def on_progress(e: dict[str, Any]) -> None:
        if e["state"] == "running":
            stop.set()

    with pytest.raises(HostedCancelled) as ei:
        provider(c, server).run(c.t2v, HostedRequest(prompt="HANG on"), tmp_path / "c.mp4",
                                on_progress=on_progress, cancel=stop)
    rid = str(ei.value.request_id).rsplit("/", 1)[-1]
    if c.name == "veo":
        # The SDK has no cancel for Veo operations: the error says so, nothing is sent.
        assert "no cancel" in ei.value.message
        assert server.cancels == []
    else:
        assert server.cancels == [rid]
        assert ei.value.message.startswith("cancelled")
    assert ei.value.exit_code == 130


def test_ctrl_c_cancels_on_the_provider(tmp_path: Path) -> None:
    def on_progress(e: dict[str, Any]) -> None:
        if e["state"] == "running":
            raise KeyboardInterrupt

    with ReplicateServer() as server:
        p = get_provider("replicate", api_key=server.key, base_url=server.url,
                         poll_interval=0.02)
        with pytest.raises(HostedCancelled) as ei:
            p.run("acme/tiny-video", HostedRequest(prompt="HANG"), tmp_path / "c.mp4",
                  on_progress=on_progress)
        assert server.cancels == [ei.value.request_id]
        assert server.calls_to("POST", f"/v1/predictions/{ei.value.request_id}/cancel")


def test_timeout_cancels_and_says_so(tmp_path: Path) -> None:
    with RunwayServer() as server:
        p = get_provider("runway", api_key=server.key, base_url=server.url, poll_interval=0.02,
                         timeout=0.3)
        with pytest.raises(HostedError) as ei:
            p.run("gen4.5", HostedRequest(prompt="HANG"), tmp_path / "c.mp4")
        assert ei.value.reason == "timeout" and "cancelled on the provider" in ei.value.message
        assert server.cancels == [ei.value.request_id]


def test_quota_is_named(tmp_path: Path) -> None:
    with ReplicateServer() as server:
        p = get_provider("replicate", api_key=server.key, base_url=server.url)
        with pytest.raises(HostedError) as ei:
            p.run("acme/tiny-video", HostedRequest(prompt="QUOTA"), tmp_path / "c.mp4")
        assert ei.value.reason == "quota" and ei.value.status == 429
    with FalServer() as fserver:
        # fal answers an exhausted balance with 403: a quota, not a bad key.
        p = get_provider("fal", api_key=fserver.key, base_url=fserver.url)
        with pytest.raises(HostedError) as ei:
            p.run("fal-ai/tiny-video", HostedRequest(prompt="QUOTA"), tmp_path / "c.mp4")
        assert ei.value.reason == "quota" and "balance" in ei.value.message


def test_key_from_the_key_store_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localvideo.reason.keys import KeyStore

    store = KeyStore(tmp_path / "data")
    with RunwayServer() as server:
        store.set("runway", server.key)
        p = get_provider("runway", base_url=server.url, key_store=store, poll_interval=0.02)
        p.run("gen4.5", HostedRequest(prompt="from the store"), tmp_path / "a.mp4")
        assert server.calls[0]["headers"]["authorization"] == f"Bearer {server.key}"
    with FalServer() as fserver:
        monkeypatch.setenv("FAL_KEY", fserver.key)
        p = get_provider("fal", base_url=fserver.url, key_store=KeyStore(tmp_path / "empty"),
                         poll_interval=0.02)
        p.run("fal-ai/tiny-video", HostedRequest(prompt="from the env"), tmp_path / "b.mp4")
        assert fserver.calls[0]["headers"]["authorization"] == f"Key {fserver.key}"


def test_describe_says_what_leaves_the_machine(png: Path) -> None:
    req = HostedRequest(prompt="a fox", image=png, negative="blur",
                        params={"duration_seconds": 8})
    sub = get_provider("veo").describe("veo-3.0-fast-generate-001", req)
    text = "\n".join(sub.lines())
    assert f"{png.stat().st_size:,} bytes" in text and "56×40" in text and "'a fox'" in text
    assert "aiplatform.googleapis.com" in text
    assert sub.estimate.price and "$0.15" in sub.estimate.price and "$1.20" in sub.estimate.price
    assert sub.estimate.source and "cloud.google.com" in sub.estimate.source
    runway = get_provider("runway").describe("gen4_turbo", HostedRequest(
        prompt="x", params={"duration": 5}))
    assert runway.estimate.price and "25 credits" in runway.estimate.price
    rep = get_provider("replicate").describe("acme/tiny-video", HostedRequest(prompt="x"))
    assert rep.estimate.price is None and "not published" in "\n".join(rep.lines())
    assert rep.mode == "text-to-video" and rep.image is None


@pytest.mark.parametrize("name,bad", [("replicate", "no-owner"), ("fal", "just-one"),
                                      ("veo", "veo 3"), ("runway", "gen4/turbo")])
def test_malformed_model_names(name: str, bad: str) -> None:
    from localvideo.errors import UsageError

    with pytest.raises(UsageError) as ei:
        get_provider(name).describe(bad, HostedRequest(prompt="x"))
    assert ei.value.hint


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "runwayml", None)  # import runwayml → ImportError
    with pytest.raises(DependencyError) as ei:
        get_provider("runway", api_key="k").run("gen4.5", HostedRequest(prompt="x"),
                                                tmp_path / "c.mp4")
    assert "pip install 'localvideo[hosted]'" in str(ei.value.hint)
