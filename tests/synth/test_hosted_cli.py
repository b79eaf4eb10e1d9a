"""`localvideo generate --backend replicate|fal|veo|runway` end to end: the CLI, the service,
the provider's official SDK and a loopback server speaking the provider's protocol
(hosted_servers.py); the clip, its sidecar and its clips row, the question before sending."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from hosted_servers import (  # noqa: E402
    FalServer,
    LoopbackServer,
    ReplicateServer,
    RunwayServer,
    VertexVeoServer,
)

from localvideo.cli import app  # noqa: E402
from localvideo.errors import LocalVideoError, UsageError  # noqa: E402
from localvideo.service import Service  # noqa: E402
from localvideo.service.models import GenerateRequest  # noqa: E402

pytestmark = pytest.mark.timeout(60)

CASES = {
    "replicate": (ReplicateServer, "acme/tiny-video"),
    "fal": (FalServer, "fal-ai/tiny-video"),
    "veo": (VertexVeoServer, "veo-3.0-fast-generate-001"),
    "runway": (RunwayServer, "gen4.5"),
}
ENVS = ("REPLICATE_API_TOKEN", "FAL_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY",
        "RUNWAYML_API_SECRET", "GOOGLE_CLOUD_PROJECT", "GOOGLE_GENAI_USE_VERTEXAI")


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ENVS:
        monkeypatch.delenv(env, raising=False)
    # The providers' own pace (2 s between status checks) is a test's wait: poll fast.
    monkeypatch.setenv("LOCALVIDEO_SYNTH_HOSTED_POLL", "0.05")


@pytest.fixture(params=list(CASES))
def hosted(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, LoopbackServer]]:
    name = request.param
    server_cls, model = CASES[name]
    with server_cls() as server:
        yield name, model, server


def cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """(exit code as `localvideo` exits — a LocalVideoError's own code —, stdout, stderr
    with the error's message and hint as the CLI prints them)."""
    res = CliRunner().invoke(app, list(args), input=input)
    exc = res.exception
    if isinstance(exc, LocalVideoError):
        return exc.exit_code, res.stdout, f"{res.stderr}\nerror: {exc}"
    return res.exit_code, res.stdout, res.stderr


def test_generate_with_a_hosted_backend(hosted: tuple[str, str, LoopbackServer],
                                        data_dir: Path, tmp_path: Path) -> None:
    name, model, server = hosted
    code, _, err = cli("keys", "set", name, server.key, "--data-dir", str(data_dir))
    assert code == 0, err
    out = tmp_path / "clip.mp4"
    code, stdout, err = cli("generate", "a red fox running through snow", "--backend", name,
                            "--model", model, "--base-url", server.url, "--yes", "--seed", "3",
                            "--out", str(out), "--json", "--data-dir", str(data_dir))
    assert code == 0, err
    clip = json.loads(stdout)

    with av.open(str(out)) as c:     # playable: every frame decodes, as H.264
        assert c.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in c.decode(video=0)) == 12

    sidecar = json.loads(out.with_suffix(".json").read_text())
    (job_id, job), = server.jobs.items()
    assert sidecar["backend"] == name and sidecar["model"]["name"] == model
    assert sidecar["hosted"]["request_id"].rsplit("/", 1)[-1] == job_id
    assert sidecar["hosted"]["host"] == server.url
    assert sidecar["seed"] == 3 and sidecar["hosted"]["submission"]["prompt"] == job.prompt
    assert sidecar["video"]["codec"] == "h264" and sidecar["device"]["kind"] == "hosted"

    code, stdout, err = cli("clips", "--json", "--data-dir", str(data_dir))
    rows = json.loads(stdout)
    assert [r["id"] for r in rows] == [clip["clip_id"]]
    assert rows[0]["backend"] == name and rows[0]["hosted"]["request_id"] == \
        sidecar["hosted"]["request_id"]


def test_nothing_is_sent_without_a_yes(data_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, png: Path) -> None:
    with RunwayServer() as server:
        monkeypatch.setenv("RUNWAYML_API_SECRET", server.key)
        args = ("generate", "the fox jumps", "--backend", "runway", "--model", "gen4_turbo",
                "--image", str(png), "--param", "duration=5", "--base-url", server.url,
                "--out", str(tmp_path / "c.mp4"), "--data-dir", str(data_dir))
        # No terminal to ask on: the preview is shown, nothing is sent, --yes is named.
        code, _, err = cli(*args)
        assert code == 2 and "pass --yes" in err
        assert "the fox jumps" in err and f"{png.stat().st_size:,} bytes" in err
        assert "25 credits" in err and "docs.dev.runwayml.com" in err
        assert server.calls == []
        # A terminal, and the answer is no.
        monkeypatch.setattr("localvideo.cli.synth._interactive", lambda: True)
        code, _, err = cli(*args, input="n\n")
        assert code == 1 and "nothing sent" in err and server.calls == []
        # Yes: it goes, with the parameter as given.
        code, _, err = cli(*args, input="y\n")
        assert code == 0, err
        body = next(iter(server.jobs.values())).body
        assert body["duration"] == 5 and body["model"] == "gen4_turbo"
        assert (tmp_path / "c.mp4").is_file()


def test_service_refuses_a_hosted_run_without_yes(data_dir: Path) -> None:
    svc = Service.open(data_dir)
    req = GenerateRequest.of(prompt="a fox", backend="fal", model="fal-ai/tiny-video")
    with pytest.raises(UsageError, match="confirm first"):
        svc.synth.generate(req)
    preview = svc.synth.hosted_preview(req)
    assert preview.host == "https://queue.fal.run" and preview.mode == "text-to-video"
    assert any("'a fox'" in line for line in preview.lines)
    with pytest.raises(UsageError, match="needs --model"):
        svc.synth.hosted_preview(GenerateRequest.of(prompt="a fox", backend="veo"))


def test_cli_names_the_key_fix(data_dir: Path, tmp_path: Path) -> None:
    with ReplicateServer() as server:
        code, _, err = cli("generate", "a fox", "--backend", "replicate", "--model",
                           "acme/tiny-video", "--base-url", server.url, "--yes",
                           "--out", str(tmp_path / "c.mp4"), "--data-dir", str(data_dir))
    assert code == 1 and "localvideo keys set replicate" in err
    assert not (tmp_path / "c.mp4").exists()


@pytest.fixture
def png(tmp_path: Path) -> Path:
    import numpy as np
    from PIL import Image

    path = tmp_path / "first.png"
    Image.fromarray(np.full((40, 56, 3), 120, dtype=np.uint8)).save(path)
    return path


def test_doctors_hosted_command_runs_as_printed(data_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine without a GPU the doctor's synth verdict is a hosted command; run it
    (pointed at the loopback Vertex server) and get a clip."""
    import shlex

    from localvideo.doctor import Check, _synth_verdict

    verdict = _synth_verdict({"gpu": Check("gpu", False, "no GPU found", data={"kind": "none"})})
    keys_cmd, gen_cmd = verdict["command"].split(" && ")
    assert shlex.split(keys_cmd) == ["localvideo", "keys", "set", "veo"]
    args = [a.replace("...", "a paper boat on a pond") for a in shlex.split(gen_cmd)[1:]]
    with VertexVeoServer() as server:
        code, _, err = cli("keys", "set", "veo", server.key, "--data-dir", str(data_dir))
        assert code == 0, err
        code, _, err = cli(*args, "--base-url", server.url, "--yes",
                           "--out", str(tmp_path / "boat.mp4"), "--data-dir", str(data_dir))
        assert code == 0, err
    assert (tmp_path / "boat.mp4").is_file()


def test_ctrl_c_cancels_the_prediction(data_dir: Path, tmp_path: Path) -> None:
    """A real SIGINT to `localvideo generate --backend replicate` while the prediction runs:
    the CLI cancels it on the server and exits 130."""
    import os
    import signal
    import subprocess
    import time

    with ReplicateServer() as server:
        env = {**os.environ, "REPLICATE_API_TOKEN": server.key, "LOCALVIDEO_HOME": str(data_dir),
               "LOCALVIDEO_SYNTH_HOSTED_POLL": "0.05"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "localvideo", "generate", "HANG until stopped", "--backend",
             "replicate", "--model", "acme/tiny-video", "--base-url", server.url, "--yes",
             "--out", str(tmp_path / "c.mp4")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            end = time.time() + 30
            while not any(j.extra.get("phase") == "running" for j in server.jobs.values()):
                assert proc.poll() is None and time.time() < end, proc.communicate()
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        (job_id,) = server.jobs
        assert proc.returncode == 130, err
        assert server.cancels == [job_id] and f"cancelled Replicate request {job_id}" in err
    assert not (tmp_path / "c.mp4").exists()
