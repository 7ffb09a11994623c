"""User code never takes the driver or other trials down with it: whatever the executor, a
graph that segfaults, aborts, exits or never returns costs its own trial only, recorded as an
error naming the cause, and --resume does not run it again; a killed driver leaves no process
behind; bad design files and an unreachable scheduler are one clear message."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator import workers
from simulator.cli import app
from simulator.design_loader import DesignError, load_factory
from simulator.runs import run_cell, run_sweep
from simulator.store import LOST, iter_records

from conftest import FIXTURES

CRASHERS = FIXTURES / "crashers"
LONG = FIXTURES / "sweeps" / "long.yaml"  # 30 trials
CRASHES = {"os_exit": ("exited with status 3", "hard_exit"), "abort": ("killed by SIGABRT", "abort_now"),
           "segfault": ("killed by SIGSEGV", "read_null")}
LIMIT = 2.0  # seconds: a good trial here takes a tenth of that, even in a fresh worker
# a local Dask cluster takes a while to start and to run these: with -m slow
EXECUTORS = ["serial", "process", pytest.param("dask", marks=pytest.mark.slow)]
# serial and process share the code that enforces the limit, and the shared-environment
# test below times out with the serial executor: the serial hangs run with -m slow
HANG_EXECUTORS = [pytest.param("serial", marks=pytest.mark.slow), *EXECUTORS[1:]]
cli = CliRunner()


def sweep_file(tmp_path: Path, designs: list[str], replicates: int = 2, concurrency: int = 1) -> Path:
    agents = ", ".join(f"'{CRASHERS / d}.py:build'" for d in designs)
    f = tmp_path / "mix.yaml"
    f.write_text(f"name: mix\nseed: 3\nreplicates: {replicates}\nconcurrency: {concurrency}\n"
                 f"scenarios: [{{ref: chain, params: {{length: 2}}}}]\nagents: [{agents}]\n")
    return f


def by_design(out: Path) -> dict[str, list]:
    recs: dict[str, list] = {}
    for r in iter_records(out):
        recs.setdefault(Path(r.agent.split(":")[0]).stem, []).append(r)
    return recs


def same(records) -> list[str]:
    return sorted(json.dumps(r.deterministic(), sort_keys=True) for r in records)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The good design's records from a run with no crasher beside it."""
    d = tmp_path_factory.mktemp("clean")
    _, out = run_sweep(sweep_file(d, ["good"]), executor="serial", out=d / "out")
    return same(iter_records(out))


def need(executor: str) -> None:
    if executor == "dask":
        pytest.importorskip("distributed")


@pytest.mark.parametrize("executor", EXECUTORS)
def test_crashing_trials_are_errors_with_their_cause_and_the_rest_is_untouched(tmp_path, clean, executor):
    need(executor)
    f = sweep_file(tmp_path, ["os_exit", "good", "abort", "segfault"])  # good trials after a crash too
    summary, out = run_sweep(f, executor=executor, workers=2, out=tmp_path / "out")
    recs = by_design(out)
    assert summary["trials"] == 8
    assert same(recs["good"]) == clean  # shared a chunk (and, serially, a worker) with the crashers
    for name, (cause, frame) in CRASHES.items():
        assert len(recs[name]) == 2
        for r in recs[name]:
            assert r.outcome == "error" and not r.error.startswith(LOST)
            assert r.error.startswith(f"the worker process died: {cause}"), r.error
            assert "while running this trial" in r.error and "--resume does not run it again" in r.error
            if name != "os_exit":  # a fatal signal leaves the Python stack: the record names the node
                assert f"in {frame} at {CRASHERS / name}.py:" in r.error
    summary, _ = run_sweep(f, executor=executor, workers=2, out=out, resume=True)
    assert summary["ran_now"] == 0 and summary["resumed_from"] == 8
    assert len((out / "records.jsonl").read_text().splitlines()) == 8


@pytest.mark.parametrize("executor", HANG_EXECUTORS)
def test_a_trial_that_never_ends_is_stopped_from_outside(tmp_path, clean, executor):
    need(executor)
    f = sweep_file(tmp_path, ["spin", "good", "sleeps"], replicates=1)
    summary, out = run_sweep(f, executor=executor, workers=2, out=tmp_path / "out", trial_timeout_s=LIMIT)
    recs = by_design(out)
    assert len(recs["good"]) == 1 and set(same(recs["good"])) <= set(clean)
    for name, frame in (("spin", "spin"), ("sleeps", "nap")):
        (r,) = recs[name]
        assert r.outcome == "error"
        assert r.error.startswith("trial exceeded the wall-time limit of 2 s (--trial-timeout)"), r.error
        assert f"it was in {frame} at {CRASHERS / name}.py:" in r.error  # where it hung
    summary, _ = run_sweep(f, executor=executor, workers=2, out=out, resume=True, trial_timeout_s=LIMIT)
    assert summary["ran_now"] == 0


def test_a_shared_environment_that_times_out_is_one_unit(tmp_path):
    f = sweep_file(tmp_path, ["good", "spin"], concurrency=2)  # groups: both good, then both spinning
    summary, out = run_sweep(f, executor="serial", out=tmp_path / "out", trial_timeout_s=LIMIT)
    recs = by_design(out)
    assert [r.outcome for r in recs["good"]] == ["success", "success"]
    for r in recs["spin"]:
        assert r.error.startswith("trial exceeded the wall-time limit of 2 s (--trial-timeout): this trial's "
                                  "shared environment (2 sessions) ran past 4 s"), r.error


def test_run_cell_runs_the_graph_outside_the_driver(tmp_path):
    summary, out = run_cell("chain", {"length": 2}, f"{CRASHERS / 'segfault.py'}:build", trials=2, seed=1,
                            out=tmp_path / "r")
    assert summary["outcomes"]["error"] == 2  # and this process is still here to see it
    assert "killed by SIGSEGV" in summary["errors"][0]


def test_no_wall_time_limit_and_bad_limits(tmp_path):
    f = sweep_file(tmp_path, ["good"], replicates=1)
    summary, _ = run_sweep(f, executor="serial", out=tmp_path / "a", trial_timeout_s=None)
    assert summary["outcomes"]["success"] == 1
    for bad in (0, -1.0, 0.5, 604801):
        with pytest.raises(ValueError, match="wall-time limit is 1 to 604800 seconds"):
            run_sweep(f, executor="serial", out=tmp_path / "b", trial_timeout_s=bad)
    assert not (tmp_path / "b").exists()


def test_a_lost_worker_server_is_replaced(tmp_path, monkeypatch):
    srv = workers.server()
    srv.proc.kill()
    srv.proc.wait()
    monkeypatch.setattr(workers.Server, "alive", lambda self: True)  # as if it ended just after we looked
    summary, _ = run_cell("chain", {"length": 2}, f"{CRASHERS / 'good.py'}:build", trials=1, seed=1,
                          out=tmp_path / "r")
    assert summary["outcomes"]["success"] == 1 and workers.server() is not srv


def test_a_design_file_that_exits_while_imported_is_a_clear_error(tmp_path):
    ref = f"{CRASHERS / 'exit_at_import.py'}:build"
    with pytest.raises(DesignError, match=r"exit_at_import.py failed to import: SystemExit: 4 \(line 4\)"):
        load_factory(ref)
    res = cli.invoke(app, ["run", "chain", "--agent", ref, "-n", "1", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "failed to import: SystemExit: 4 (line 4)" in res.stderr


def test_an_agent_file_that_is_not_python_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("not python\n")
    monkeypatch.chdir(tmp_path)
    for ref in (f"{tmp_path / 'notes.txt'}:build", "notes.txt:build", "./notes.txt"):
        with pytest.raises(DesignError, match="notes.txt is not a Python file"):
            load_factory(ref)


def test_an_unreachable_scheduler_fails_fast_and_writes_nothing(tmp_path):
    pytest.importorskip("distributed")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    f = sweep_file(tmp_path, ["good"], replicates=1)
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: "):
        run_sweep(f, executor="dask", scheduler=f"tcp://127.0.0.1:{port}", out=tmp_path / "out")
    assert time.monotonic() - t0 < 10
    assert not (tmp_path / "out").exists()
    res = cli.invoke(app, ["sweep", str(f), "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{port}",
                           "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "cannot reach the Dask scheduler" in res.stderr


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent, start time) of a process, from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for d in os.listdir("/proc"):
            st = _stat(int(d)) if d.isdigit() else None
            if st and st[1] == parent and int(d) not in found:
                found[int(d)] = st[2]
                frontier.append(int(d))
    return found


def _alive(procs: dict[int, int]) -> list[int]:
    """Those still running (a zombie has ended; a reused pid has another start time)."""
    return [p for p, start in procs.items() if (st := _stat(p)) and st[2] == start and st[0] != "Z"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("command", [
    pytest.param(["run", "chain", "-p", "length=24", "-n", "40"], marks=pytest.mark.slow),
    pytest.param(["sweep", str(LONG), "--executor", "serial"], marks=pytest.mark.slow),
    ["sweep", str(LONG), "--executor", "process", "--workers", "2"],
    pytest.param(["sweep", str(LONG), "--executor", "dask", "--workers", "2"], marks=pytest.mark.slow),
], ids=["run", "serial", "process", "dask"])
def test_killing_the_driver_ends_its_workers_and_resume_loses_nothing(tmp_path, command):
    if "dask" in command:
        pytest.importorskip("distributed")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "simulator.cli", *command, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    records = out / "records.jsonl"
    tree: dict[int, int] = {}
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (records.exists() and len(records.read_text().splitlines()) >= 3):
            time.sleep(0.05)
        tree = _descendants(proc.pid)
        assert tree, "the driver should have started worker processes"
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone: its workers must follow by themselves
        proc.wait()
        deadline = time.time() + 5
        while _alive(tree) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(tree), [Path(f"/proc/{p}/cmdline").read_text()[:80] for p in _alive(tree)]
    finally:
        proc.kill()
        for p in _alive(tree):
            os.kill(p, signal.SIGKILL)
    if command[0] != "sweep":
        return
    before = len(records.read_text().splitlines())
    assert 3 <= before < 30, "the sweep should have been killed in the middle"
    res = subprocess.run(cmd + ["--resume", "--json"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["outcomes"]["error"] == 0
    ids = [json.loads(line)["trial_id"] for line in records.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 30  # nothing lost, nothing twice
    starts = [json.loads(line)["trial"] for line in (out / "events.jsonl").read_text().splitlines()
              if '"trial_start"' in line]
    assert sorted(starts) == sorted(ids)  # no events of the trials killed in flight
