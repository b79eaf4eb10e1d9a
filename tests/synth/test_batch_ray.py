"""`generate --batch ... --ray`: jobs on long-lived Ray actors, on a real local Ray (CPU).

One Ray instance for the module, started lean (2 CPUs, no dashboard) and shut down after;
each batch starts its own two actors, as the command does. Tiny real pipelines, real MP4s.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from tinymodels import tiny_size
from typer.testing import CliRunner

from localvideo.cli import app
from localvideo.errors import UsageError
from localvideo.synth.batch import WorkerConfig, parse_jobs, resolve_jobs, run_batch

# Ray itself is a dependency of these tests (the [ray] extra is in setup.sh's test set):
# without it they fail with the DependencyError that names the extra, never skip.
pytestmark = [pytest.mark.timeout(300), pytest.mark.synth]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    from localvideo.synth.batch import require_ray

    ray = require_ray()
    t0 = time.perf_counter()
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
             object_store_memory=100 * 2**20)
    print(f"ray.init: {time.perf_counter() - t0:.1f}s")
    yield ray
    ray.shutdown()


def frames_of(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])


def items_for(tiny_model: Callable[[str], Path], tmp_path: Path, seeds: list[int]) -> Any:
    s = tiny_size("ltx")
    text = "\n".join(json.dumps({"prompt": "a red fox running through snow", "seed": seed,
                                 "out": f"clip-{i}.mp4"}) for i, seed in enumerate(seeds))
    return resolve_jobs(parse_jobs(text, base=tmp_path),
                        {"model_path": tiny_model("ltx"), **s, "steps": 2, "fps": 8.0},
                        models_dir=tmp_path / "models")


def run_cli(args: list[str]) -> Any:
    res = CliRunner().invoke(app, args)
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def pid_gone(pid: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_four_jobs_on_two_actors(ray_local: Any, tiny_model: Callable[[str], Path],
                                 data_dir: Path, tmp_path: Path) -> None:
    """The issue's check: `localvideo generate --batch jobs.jsonl --model-path DIR --ray local
    --workers 2` leaves four clips with their own seeds in the gallery."""
    s = tiny_size("ltx")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"prompt": f"a red fox {i}", "seed": seed}) + "\n"
                            for i, seed in enumerate([11, 12, 13, 11])))
    t0 = time.perf_counter()
    report = run_cli(["generate", "--batch", str(jobs), "--model-path", str(tiny_model("ltx")),
                      "--ray", "local", "--workers", "2", "--frames", str(s["frames"]),
                      "--height", str(s["height"]), "--width", str(s["width"]), "--steps",
                      "2", "--fps", "8", "--data-dir", str(data_dir), "--json"])
    print(f"4 jobs on 2 actors: {time.perf_counter() - t0:.1f}s")

    assert report["runner"] == "ray" and (report["done"], report["failed"]) == (4, 0)
    assert [j["status"] for j in report["jobs"]] == ["done"] * 4
    assert [j["attempts"] for j in report["jobs"]] == [1] * 4
    pids = {w["pid"] for w in report["workers"]}
    assert len(pids) == 2 and os.getpid() not in pids
    # Both actors took jobs; CPU actors share out the cluster's CPUs (one thread each here).
    assert {j["worker"]["pid"] for j in report["jobs"]} == pids
    assert all(w["device"] == "cpu" for w in report["workers"])

    clips = run_cli(["clips", "--json", "--data-dir", str(data_dir)])
    assert sorted((c["prompt"], c["seed"]) for c in clips) == [
        ("a red fox 0", 11), ("a red fox 1", 12), ("a red fox 2", 13), ("a red fox 3", 11)]
    by_line = {c["batch"]["line"]: c for c in clips}
    assert set(by_line) == {1, 2, 3, 4}
    for c in clips:
        p = Path(c["abs_path"])
        assert c["exists"] and p.is_relative_to(data_dir / "clips")
        assert json.loads(p.with_suffix(".json").read_text())["seed"] == c["seed"]
        assert Path(c["latents"]).is_file() and c["device"]["torch_threads"] == 1
        assert c["batch"]["runner"] == "ray" and c["batch"]["worker"]["pid"] in pids
    same = [frames_of(Path(by_line[n]["abs_path"])) for n in (1, 4, 2)]
    assert same[0].shape == (s["frames"], s["height"], s["width"], 3)
    assert np.array_equal(same[0], same[1])          # same seed, whichever actor ran it
    assert not np.array_equal(same[0], same[2])
    # Actors are gone when the batch is: their memory (a GPU's, on a GPU) is free again.
    assert all(pid_gone(p) for p in pids)


def test_a_killed_actor_is_replaced_and_its_job_retried(ray_local: Any,
                                                        tiny_model: Callable[[str], Path],
                                                        tmp_path: Path) -> None:
    items = items_for(tiny_model, tmp_path, [21, 22])
    events: list[dict[str, Any]] = []
    killed: list[int] = []

    def on_event(e: dict[str, Any]) -> None:
        events.append(e)
        if e["event"] == "start" and e["line"] == 1 and not killed:
            # The node's OOM killer, or a lost machine, as the driver sees it.
            killed.append(e["worker"]["pid"])
            os.kill(e["worker"]["pid"], signal.SIGKILL)

    # One actor (fewer start-ups to wait for): the retry must run on its replacement.
    res = run_batch(items, WorkerConfig(), ray="local", workers=1, on_event=on_event)
    assert [j.status for j in res.jobs] == ["done", "done"]
    assert res.jobs[0].attempts == 2 and res.jobs[1].attempts == 1
    retry = next(e for e in events if e["event"] == "retry")
    assert retry["line"] == 1 and retry["error"]["type"] == "ActorDiedError"
    replaced = [e for e in events if e["event"] == "worker" and e.get("replaced")]
    assert len(replaced) == 1 and replaced[0]["pid"] != killed[0]
    assert {j.worker["pid"] for j in res.jobs if j.worker} == {replaced[0]["pid"]}
    assert (tmp_path / "clip-0.mp4").is_file()
    assert json.loads((tmp_path / "clip-0.json").read_text())["seed"] == 21


def test_ctrl_c_kills_the_actors_and_cancels_the_rest(ray_local: Any,
                                                      tiny_model: Callable[[str], Path],
                                                      data_dir: Path, tmp_path: Path) -> None:
    """A real SIGINT to a real `localvideo generate --batch ... --ray HOST:PORT` process,
    joined to the running cluster as a second driver, once its first clip is recorded."""
    s = tiny_size("ltx")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"prompt": "a red fox", "seed": seed}) + "\n"
                            for seed in range(31, 37)))
    address = ray_local.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [sys.executable, "-m", "localvideo", "generate", "--batch", str(jobs), "--model-path",
         str(tiny_model("ltx")), "--ray", address, "--workers", "2", "--frames",
         str(s["frames"]), "--height", str(s["height"]), "--width", str(s["width"]),
         "--steps", "2", "--fps", "8", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"})
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if " done: clip " in line:
                proc.send_signal(signal.SIGINT)
                break
        rest, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    lines += rest.splitlines()
    text = "\n".join(lines)
    assert proc.returncode == 130, text
    pids = [int(m) for m in re.findall(r"worker \d up: \S+ pid (\d+)", text)]
    assert len(pids) == 2, text
    assert all(pid_gone(p) for p in pids), text
    done = re.findall(r"line (\d) done", text)
    cancelled = re.findall(r"line (\d) cancelled", text)
    assert len(done) >= 1 and len(cancelled) >= 2 and not set(done) & set(cancelled), text
    clips = run_cli(["clips", "--json", "--data-dir", str(data_dir)])
    # A job's "done" may be printed twice (its progress line, then the summary on Ctrl-C).
    assert sorted(c["batch"]["line"] for c in clips) == sorted({int(n) for n in done})


def test_more_workers_than_cpus_is_refused(ray_local: Any, tiny_model: Callable[[str], Path],
                                           tmp_path: Path) -> None:
    items = items_for(tiny_model, tmp_path, [1])
    with pytest.raises(UsageError, match="--workers 3: the Ray cluster has 2 CPU") as ei:
        run_batch(items, ray="local", workers=3)
    assert ei.value.hint == "pass --workers 2 or fewer"
    with pytest.raises(UsageError, match="--device cuda: the Ray cluster has no GPUs"):
        run_batch(items, WorkerConfig(device="cuda"), ray="local", workers=1)
