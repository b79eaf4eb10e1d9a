"""`generate --batch ... --ray`: jobs on long-lived Ray actors, on a real local Ray (CPU).

One Ray instance for the module, started lean (2 CPUs, no dashboard) and shut down after;
each batch starts its own two actors, as the command does. Tiny real pipelines, real MP4s.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from tinymodels import tiny_size

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
                                 tmp_path: Path) -> None:
    items = items_for(tiny_model, tmp_path, [11, 12, 13, 11])
    events: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    res = run_batch(items, WorkerConfig(), ray="local", workers=2, on_event=events.append)
    print(f"4 jobs on 2 actors: {time.perf_counter() - t0:.1f}s")

    assert res.runner == "ray" and [j.status for j in res.jobs] == ["done"] * 4
    assert [j.attempts for j in res.jobs] == [1] * 4
    pids = {w["pid"] for w in res.workers}
    assert len(pids) == 2 and os.getpid() not in pids
    # Both actors took jobs; each loaded its pipeline once and kept it.
    assert {j.worker["pid"] for j in res.jobs if j.worker} == pids
    done = [e for e in events if e["event"] == "done"]
    assert sorted(e["reused_pipeline"] for e in done) == [False, False, True, True]
    # CPU actors share out the cluster's CPUs: one torch thread each here.
    assert all(w["device"] == "cpu" for w in res.workers)
    sides = [json.loads((tmp_path / f"clip-{i}.json").read_text()) for i in range(4)]
    assert [s["seed"] for s in sides] == [11, 12, 13, 11]
    assert all(s["device"]["torch_threads"] == 1 for s in sides)
    clips = [frames_of(tmp_path / f"clip-{i}.mp4") for i in range(4)]
    assert np.array_equal(clips[0], clips[3])          # same seed, whichever actor ran it
    assert not np.array_equal(clips[0], clips[1])
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

    res = run_batch(items, WorkerConfig(), ray="local", workers=2, on_event=on_event)
    assert [j.status for j in res.jobs] == ["done", "done"]
    assert res.jobs[0].attempts == 2 and res.jobs[1].attempts == 1
    retry = next(e for e in events if e["event"] == "retry")
    assert retry["line"] == 1 and retry["error"]["type"] == "ActorDiedError"
    replaced = [e for e in events if e["event"] == "worker" and e.get("replaced")]
    assert len(replaced) == 1 and replaced[0]["pid"] != killed[0]
    assert (tmp_path / "clip-0.mp4").is_file()
    assert json.loads((tmp_path / "clip-0.json").read_text())["seed"] == 21


def test_ctrl_c_kills_the_actors_and_cancels_the_rest(ray_local: Any,
                                                      tiny_model: Callable[[str], Path],
                                                      tmp_path: Path) -> None:
    items = items_for(tiny_model, tmp_path, [31, 32, 33, 34, 35, 36])
    events: list[dict[str, Any]] = []
    recorded: list[int] = []

    def record(item: Any, result: dict[str, Any]) -> Any:
        recorded.append(item.line)
        return {"line": item.line}

    def on_event(e: dict[str, Any]) -> None:
        events.append(e)
        if e["event"] == "done":
            raise KeyboardInterrupt      # what Ctrl-C raises in the driver's wait loop

    with pytest.raises(KeyboardInterrupt):
        run_batch(items, WorkerConfig(), ray="local", workers=2, record=record,
                  on_event=on_event)
    workers = [e for e in events if e["event"] == "worker"]
    assert len(workers) == 2
    assert all(pid_gone(w["pid"]) for w in workers)
    assert len(recorded) == 1
    cancelled = {e["line"] for e in events if e["event"] == "cancelled"}
    assert len(cancelled) >= 4 and recorded[0] not in cancelled
    assert any(e["event"] == "cancel" for e in events)


def test_more_workers_than_cpus_is_refused(ray_local: Any, tiny_model: Callable[[str], Path],
                                           tmp_path: Path) -> None:
    items = items_for(tiny_model, tmp_path, [1])
    with pytest.raises(UsageError, match="--workers 3: the Ray cluster has 2 CPU") as ei:
        run_batch(items, ray="local", workers=3)
    assert ei.value.hint == "pass --workers 2 or fewer"
    with pytest.raises(UsageError, match="--device cuda: the Ray cluster has no GPUs"):
        run_batch(items, WorkerConfig(device="cuda"), ray="local", workers=1)
