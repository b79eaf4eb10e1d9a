"""svc.token, svc.jobs, svc.act, svc.autostart: the API token, the generation job queue,
handing tasks to an agent, autostart files."""

from __future__ import annotations

import json
import os
import plistlib
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netutil import free_port
from web_helpers import Recorded

from localvideo.errors import ConfigError, NotFoundError, UsageError
from localvideo.service import Service
from localvideo.service.jobs import JobsLock
from localvideo.service.models import GenerateParams, Observation

# -- token ----------------------------------------------------------------------------------


def test_token_is_created_once_with_mode_0600(data_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCALVIDEO_API_TOKEN", raising=False)
    a, b = Service.open(data_dir), Service.open(data_dir)
    token = a.token.get()
    assert len(token) >= 40
    assert b.token.get() == token  # a second process reads the same file
    path = data_dir / "api-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert a.token.check(token) and not a.token.check(token[:-1] + "x")
    assert not a.token.check("") and not a.token.check(None)


def test_env_token_overrides_the_file(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = Service.open(data_dir)
    file_token = svc.token.get()
    monkeypatch.setenv("LOCALVIDEO_API_TOKEN", "from-the-environment")
    assert svc.token.get() == "from-the-environment"
    assert svc.token.check("from-the-environment") and not svc.token.check(file_token)


def test_rotating_the_token_locks_out_the_old_one(data_dir: Path, serve: object,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCALVIDEO_API_TOKEN", raising=False)
    svc = Service.open(data_dir)
    server = serve(svc)  # type: ignore[operator]
    old = svc.token.get()
    with server.client() as c:
        assert c.get("/api/status").status_code == 200
    out = subprocess.run([sys.executable, "-m", "localvideo", "token", "--rotate"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out != old and svc.token.get() == out
    # The running server reads the file per request: no restart needed.
    with server.client() as c:
        assert c.get("/api/status").status_code == 200
        assert c.get("/api/status", headers={"Authorization": f"Bearer {old}"}
                     ).status_code == 401
    monkeypatch.setenv("LOCALVIDEO_API_TOKEN", "pinned")
    with pytest.raises(UsageError, match="LOCALVIDEO_API_TOKEN"):
        svc.token.rotate()


def test_token_command_prints_it(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCALVIDEO_API_TOKEN", raising=False)
    out = subprocess.run([sys.executable, "-m", "localvideo", "token", "--url"],
                         capture_output=True, text=True, check=True, env=os.environ).stdout
    token = Service.open(data_dir).token.get()
    assert out.strip() == f"http://127.0.0.1:8765/?token={token}"


# -- act ------------------------------------------------------------------------------------
def _task_observation(rec: Recorded) -> Observation:
    found = [o for o in rec.svc.analyze.observations()
             if o.task is not None and o.task.verdict == "TASK_FOUND"]
    assert found, "the recorded error lines should make the offline reasoner suggest a fix"
    return found[0]


def test_act_refuses_without_agent_command(recorded: Recorded) -> None:
    obs = _task_observation(recorded)
    before = len(recorded.svc.act.list())
    with pytest.raises(ConfigError) as info:
        recorded.svc.act.run(obs.id)
    assert "agent_command" in (info.value.hint or "")
    assert len(recorded.svc.act.list()) == before  # nothing ran, nothing logged


def test_act_hands_the_task_on_stdin_and_logs_it(recorded: Recorded) -> None:
    obs = _task_observation(recorded)
    # A real program stands in for `claude -p`: it reads the task from stdin like it would.
    script = ("import sys; t = sys.stdin.read(); "
              "print('agent got', len(t), 'chars'); print(t.splitlines()[2])")
    cmd = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"
    svc = Service.open(recorded.data_dir, {"serve": {"agent_command": cmd}})
    result = svc.act.run(obs.id)
    assert result.state == "done" and result.exit_code == 0
    assert "agent got" in (result.output_tail or "")
    assert obs.task is not None and obs.task.description
    assert f"Title: {obs.task.title}" in (result.output_tail or "")
    assert obs.task.description.splitlines()[0] in result.task
    logged = svc.act.list()[0]
    assert logged.id == result.id and logged.observation_id == obs.id
    assert logged.command == cmd and (logged.finished_ts or 0) >= logged.ts


def test_act_task_placeholder_and_failing_agent(recorded: Recorded) -> None:
    obs = _task_observation(recorded)
    svc = Service.open(recorded.data_dir, {"serve": {"agent_command": "printf %s {task}"}})
    result = svc.act.run(obs.id)
    assert result.state == "done" and result.output_tail == result.task
    svc = Service.open(recorded.data_dir, {"serve": {"agent_command": "false"}})
    result = svc.act.run(obs.id)
    assert result.state == "failed" and result.exit_code == 1
    svc = Service.open(recorded.data_dir,
                       {"serve": {"agent_command": "no-such-agent-binary -p"}})
    with pytest.raises(ConfigError, match="not on PATH"):
        svc.act.run(obs.id)


def test_act_refuses_observations_without_a_task(recorded: Recorded) -> None:
    svc = Service.open(recorded.data_dir, {"serve": {"agent_command": "cat"}})
    plain = [o for o in svc.analyze.observations()
             if o.task is None or o.task.verdict != "TASK_FOUND"]
    if plain:
        with pytest.raises(UsageError, match="no suggested task"):
            svc.act.run(plain[0].id)
    with pytest.raises(NotFoundError):
        svc.act.run(999_999)


def test_a_hand_off_left_running_by_a_dead_server_reads_as_failed(data_dir: Path) -> None:
    svc = Service.open(data_dir)
    with svc.db.tx() as conn:
        cur = conn.execute("INSERT INTO actions(ts, observation_id, command, task, state) "
                           "VALUES(?, 1, 'claude -p', 'x', 'running')", (time.time() - 7200,))
        fresh = conn.execute("INSERT INTO actions(ts, observation_id, command, task, state) "
                             "VALUES(?, 1, 'claude -p', 'x', 'running')", (time.time(),))
    old = svc.act.get(int(cur.lastrowid or 0))
    assert old.state == "failed" and "stopped" in (old.output_tail or "")
    assert svc.act.get(int(fresh.lastrowid or 0)).state == "running"


# -- autostart ------------------------------------------------------------------------------
def test_systemd_unit_is_written_and_removed(data_dir: Path, tmp_path: Path) -> None:
    svc = Service.open(data_dir)
    home = tmp_path / "home"
    r = svc.autostart.install(home=home, system="Linux", python="/opt/py/bin/python3")
    unit = home / ".config/systemd/user/localvideo.service"
    assert r.path == str(unit)
    text = unit.read_text()
    assert f"ExecStart=/opt/py/bin/python3 -m localvideo observe --data-dir {data_dir}" in text
    assert "KillSignal=SIGINT" in text and "Restart=on-failure" in text
    assert "UMask=0077" in text          # owner-only files (docs/privacy.md)
    assert "WantedBy=graphical-session.target" in text
    assert r.enable_command.endswith("systemctl --user enable --now localvideo.service")
    # What `systemctl --user enable` would create; uninstall must remove it too.
    wants = unit.parent / "graphical-session.target.wants"
    wants.mkdir()
    (wants / "localvideo.service").symlink_to(unit)
    gone = svc.autostart.uninstall(home=home, system="Linux")
    assert not unit.exists() and not (wants / "localvideo.service").is_symlink()
    assert len(gone.removed) == 2 and "systemctl --user stop" in gone.stop_command
    assert svc.autostart.uninstall(home=home, system="Linux").removed == []


def test_launchd_agent_is_a_valid_plist(data_dir: Path, tmp_path: Path) -> None:
    svc = Service.open(data_dir)
    r = svc.autostart.install(home=tmp_path, system="Darwin", python="/usr/bin/python3")
    path = Path(r.path)
    assert path == tmp_path / "Library/LaunchAgents/dev.localvideo.observe.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["ProgramArguments"] == ["/usr/bin/python3", "-m", "localvideo", "observe",
                                         "--data-dir", str(data_dir)]
    assert plist["RunAtLoad"] is True and plist["Label"] == "dev.localvideo.observe"
    assert r.enable_command.startswith("launchctl bootstrap gui/")
    assert svc.autostart.uninstall(home=tmp_path, system="Darwin").removed == [str(path)]


def test_autostart_elsewhere_says_what_to_do(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        Service.open(data_dir).autostart.install(home=tmp_path, system="Windows")
    assert "login items" in info.value.hint


# -- generation jobs ------------------------------------------------------------------------
def test_submit_refuses_bad_arguments(data_dir: Path) -> None:
    svc = Service.open(data_dir)
    with pytest.raises(UsageError, match="prompt"):
        svc.jobs.submit(GenerateParams(prompt="  "))
    with pytest.raises(UsageError, match="unknown generation argument"):
        svc.jobs.submit(GenerateParams.of(prompt="a fox", out="/tmp/elsewhere.mp4"))
    assert svc.jobs.list() == []
    with pytest.raises(NotFoundError):
        svc.jobs.get(42)


def test_a_job_left_by_a_dead_server_reads_as_failed(data_dir: Path) -> None:
    svc = Service.open(data_dir)
    dead = subprocess.Popen(["true"])
    dead.wait()
    with svc.db.tx() as conn:
        conn.execute("INSERT INTO jobs(params, state, pid, created_ts) VALUES(?, 'running', ?, ?)",
                     (json.dumps({"prompt": "x"}), dead.pid, time.time()))
    job = svc.jobs.list()[0]
    assert job.state == "failed" and (job.error or {})["type"] == "Interrupted"
    assert svc.db.one("SELECT state FROM jobs")[0] == "failed"


def _lock_holder(data_dir: Path) -> subprocess.Popen[str]:
    """Another process that owns a job queue: it holds its jobs lock, as a server does."""
    code = ("import sys, time; from pathlib import Path; "
            "from localvideo.service.jobs import JobsLock; "
            "lock = JobsLock(Path(sys.argv[1])); lock.acquire(); print('held', flush=True); "
            "time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(data_dir)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_job_liveness_is_the_owners_lock_not_its_pid(data_dir: Path) -> None:
    # A live process that owns no queue has this pid now (the OS reused a dead server's
    # pid): `os.kill(pid, 0)` would call its jobs alive forever; the lock does not.
    stranger = subprocess.Popen(["sleep", "120"])
    holder = _lock_holder(data_dir)
    svc = Service.open(data_dir)
    try:
        rows = [("running", stranger.pid), ("queued", stranger.pid), ("running", holder.pid)]
        with svc.db.tx() as conn:
            ids = [int(conn.execute(
                "INSERT INTO jobs(params, state, pid, created_ts) VALUES(?, ?, ?, ?)",
                (json.dumps({"prompt": "x"}), state, pid, time.time())).lastrowid or 0)
                for state, pid in rows]
        reused_running, reused_queued, owned = (svc.jobs.get(i) for i in ids)
        assert reused_running.state == "failed"
        assert (reused_running.error or {})["type"] == "Interrupted"
        assert reused_queued.state == "queued" and reused_queued.waiting
        assert owned.state == "running" and owned.waiting is None
        assert JobsLock(data_dir, holder.pid).path.is_file()
    finally:
        stranger.kill()
        holder.kill()
        stranger.wait()
        holder.wait()
    # The owner died (kill -9 included): the kernel dropped its lock, its job reads failed.
    assert svc.jobs.get(ids[2]).state == "failed"


@pytest.mark.synth
def test_generation_jobs_run_one_at_a_time_with_progress(data_dir: Path) -> None:
    import tinymodels as tiny
    svc = Service.open(data_dir)
    path = tiny.build_tiny("ltx", svc.settings.models_dir / "tiny-ltx")
    size = tiny.TINY_SIZES["ltx"]
    good = svc.jobs.submit(GenerateParams(prompt="a red fox", model_path=str(path), steps=2,
                                          seed=3, **size))
    bad = svc.jobs.submit(GenerateParams(prompt="a red fox",
                                         model_path=str(svc.settings.models_dir / "missing")))
    assert good.state in ("queued", "running") and bad.state == "queued"
    svc.jobs.wait()
    done, failed = svc.jobs.get(good.id), svc.jobs.get(bad.id)
    assert done.state == "done", done.error
    assert (done.progress or {})["phase"] in ("encode", "decode")
    clip = svc.synth.clip((done.result or {})["clip_id"])
    assert Path(clip.abs_path).is_file()
    # One at a time: the second started only after the first finished.
    assert (failed.started_ts or 0) >= (done.finished_ts or 0)
    assert failed.state == "failed" and (failed.error or {})["message"]
    assert [j.id for j in svc.jobs.list()] == [bad.id, good.id]


@pytest.mark.synth
def test_a_restarted_server_runs_the_jobs_a_dead_one_had_queued(data_dir: Path) -> None:
    import tinymodels as tiny
    svc = Service.open(data_dir)
    path = tiny.build_tiny("ltx", svc.settings.models_dir / "tiny-ltx")
    params = {"prompt": "a red fox", "model_path": str(path), "steps": 2, "seed": 3,
              **tiny.TINY_SIZES["ltx"]}
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = _lock_holder(data_dir)   # another server that is still up
    rows = [("queued", dead.pid), ("running", dead.pid), ("queued", alive.pid)]
    with svc.db.tx() as conn:
        ids = [int(conn.execute(
            "INSERT INTO jobs(kind, params, state, pid, created_ts) VALUES('generate',?,?,?,?)",
            (json.dumps(params), state, pid, time.time())).lastrowid or 0)
            for state, pid in rows]
    queued, running, others = ids
    # Until a server starts, the orphaned queued job waits (it is not lost, not failed).
    assert svc.jobs.get(queued).state == "queued"
    assert "localvideo serve" in (svc.jobs.get(queued).waiting or "")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "localvideo", "serve", "--port", str(port),
         "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 90
        while svc.jobs.get(queued).state in ("queued", "running") \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        job = svc.jobs.get(queued)
        assert job.state == "done", job.error
        assert Path(svc.synth.clip((job.result or {})["clip_id"]).abs_path).is_file()
        # A job that was mid-run is not retried (it may be what killed the server).
        assert svc.jobs.get(running).state == "failed"
        assert (svc.jobs.get(running).error or {})["type"] == "Interrupted"
        # A job queued by a server that is still alive stays that server's.
        assert svc.jobs.get(others).state == "queued"
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
        alive.kill()
        alive.wait()
    assert f"resumed 1 generation job(s) a stopped server had queued: {queued}" in out, err


# -- the CLI over these ---------------------------------------------------------------------
def test_act_and_actions_commands(recorded: Recorded) -> None:
    obs = _task_observation(recorded)
    env = {**os.environ, "LOCALVIDEO_HOME": str(recorded.data_dir),
           "LOCALVIDEO_SERVE_AGENT_COMMAND": "wc -l"}
    r = subprocess.run([sys.executable, "-m", "localvideo", "act", str(obs.id)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "done (exit 0)" in r.stdout
    lines = len(recorded.svc.act.task_text(obs).splitlines())
    assert str(lines) in r.stdout.split("logged", 1)[1]  # wc -l counted the task's lines
    listed = json.loads(subprocess.run(
        [sys.executable, "-m", "localvideo", "actions", "--json"], env=env,
        capture_output=True, text=True, check=True, timeout=60).stdout)
    assert listed[0]["command"] == "wc -l" and listed[0]["observation_id"] == obs.id
    env.pop("LOCALVIDEO_SERVE_AGENT_COMMAND")
    r = subprocess.run([sys.executable, "-m", "localvideo", "act", str(obs.id)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "agent_command" in r.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="writes the systemd unit")
def test_service_commands_write_under_home(data_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "localvideo", "service", "install"], env=env,
                       capture_output=True, text=True, check=True, timeout=60)
    unit = tmp_path / ".config/systemd/user/localvideo.service"
    assert unit.is_file() and f"--data-dir {data_dir}" in unit.read_text()
    assert "systemctl --user enable --now localvideo.service" in r.stdout
    r = subprocess.run([sys.executable, "-m", "localvideo", "service", "uninstall"], env=env,
                       capture_output=True, text=True, check=True, timeout=60)
    assert not unit.exists() and "removed" in r.stdout
