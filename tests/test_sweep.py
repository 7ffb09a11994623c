import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.executors import execute
from simulator.results import analyze_results
from simulator.runs import run_sweep
from simulator.scenario import ScenarioError
from simulator.store import iter_records
from simulator.sweep import expand, load_sweep

from conftest import FIXTURES, ROOT

SMALL = FIXTURES / "sweeps" / "small.yaml"
cli = CliRunner()


def test_expansion_gives_content_addressed_specs():
    sw = load_sweep(SMALL)
    specs = expand(sw)
    assert len(specs) == 2 * 2 * 2 * 2 * 2  # lengths x tasks x agents x fault settings x replicates
    assert len({s.id for s in specs}) == len(specs)
    again = expand(load_sweep(SMALL))
    assert [s.id for s in specs] == [s.id for s in again]
    assert {s.tags["fault"] for s in specs} == {"none", "errors"}


def test_common_random_numbers_across_designs():
    specs = [s for s in expand(load_sweep(SMALL)) if s.tags["fault"] == "errors"]
    by = {}
    for rec, lines in execute(specs, executor="serial"):
        events = [json.loads(x) for x in lines.splitlines()]
        calls = [e["call"] for e in events if e["event"] == "tool_call"]
        fired = {e["call"] for e in events if e["event"] == "tool_call" and e.get("faults")}
        by.setdefault((rec.scenario, json.dumps(rec.spec["scenario"]["params"]), rec.replicate), {})[rec.agent] = \
            (max(calls, default=0), fired)
    compared = hits = 0
    for cell in by.values():
        (na, fa), (nb, fb) = cell["react"], cell["react-retry"]
        n = min(na, nb)
        # call k fails for one design exactly when it fails for the other
        assert {c for c in fa if c <= n} == {c for c in fb if c <= n}
        compared += n
        hits += len({c for c in fa if c <= n})
    assert compared >= 20 and hits >= 3


@pytest.mark.parametrize("text, where", [
    ("name: x\nscenarios: [{ref: chain}]\nprofiles: [medium]\n", "unknown profile 'medium'"),
    ("name: x\nscenarios: [{ref: chain}]\nfaults: {f: [nope]}\n", "unknown fault 'nope'"),
    ("name: x\nscenarios: [{ref: chain}]\nagents: [no_such_design]\n", "unknown agent 'no_such_design'"),
    ("name: x\nscenarios: [{ref: chain, params: {lenght: [1]}}]\n", "unknown parameter"),
    ("name: x\nscenarios: [{ref: chain}]\nreplicates: 0\n", "replicates"),
    ("name: x\nscenarios: [{ref: chain}\n", "malformed YAML"),
    ("name: x\nscenarios: [{ref: chain}]\nprofiles: [strong, strong]\n", "listed twice"),
    ("name: x\nscenarios: [{ref: chain}]\nbudgets: {max_step: 3}\n", "bad budget"),
    ("", "must be a YAML mapping"),
    ("name: x\nscenarios: [{ref: chain}]\nreviewer: {reject_rate: 3}\n", "reviewer.reject_rate"),
    ("name: x\nscenarios: [{ref: chain}]\nreviewer: sometimes\n", "reviewer: Input should be 'review'"),
])
def test_bad_sweep_files_say_what_is_wrong(tmp_path, text, where):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ScenarioError) as e:
        expand(load_sweep(f), str(f))
    assert where in str(e.value)


def test_bad_sweep_field_has_its_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nseed: 1\nreplicates: -2\nscenarios: [{ref: chain}]\n")
    with pytest.raises(ScenarioError) as e:
        load_sweep(f)
    assert e.value.problems[0][:2] == ("replicates", 3)


def test_a_sweep_reviewer_reaches_every_trial_and_only_its_ids_change(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\nscenarios: [{ref: support_refund}]\nagents: [human-approval]\nreplicates: 2\n")
    plain = expand(load_sweep(f))
    f.write_text(f.read_text() + "reviewer:\n  mode: none\n")
    waiting = expand(load_sweep(f))
    assert [s.reviewer for s in plain] == [None, None] and "reviewer" not in plain[0].model_dump()
    assert [s.reviewer for s in waiting] == [{"mode": "none"}] * 2
    assert {s.id for s in plain}.isdisjoint(s.id for s in waiting)
    f.write_text(f.read_text().replace("  mode: none\n", "  catches_errors: x\n"))
    with pytest.raises(ScenarioError) as e:
        expand(load_sweep(f))
    assert e.value.problems[0][:2] == ("reviewer.catches_errors", 6)


def test_serial_process_and_dask_give_identical_records(tmp_path):
    pytest.importorskip("distributed")
    results = {}
    for ex in ("serial", "process", "dask"):
        summary, out = run_sweep(SMALL, executor=ex, workers=2, out=tmp_path / ex)
        assert summary["trials"] == 32
        results[ex] = sorted(json.dumps(r.deterministic(), sort_keys=True) for r in iter_records(out))
    assert results["serial"] == results["process"] == results["dask"]


def test_dask_executor_on_an_existing_scheduler(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        summary, out = run_sweep(SMALL, executor="dask", scheduler=cluster.scheduler_address, out=tmp_path / "d")
    assert summary["trials"] == 32 and summary["outcomes"]["error"] == 0


def test_kill_9_then_resume_keeps_every_trial_exactly_once(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "simulator.cli", "sweep", str(FIXTURES / "sweeps" / "long.yaml"),
           "--executor", "serial", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    records = out / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if records.exists() and len(records.read_text().splitlines()) >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(records.read_text().splitlines())
    assert 6 <= before < 30, "the sweep should have been killed in the middle"
    res = subprocess.run(cmd + ["--resume", "--json"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["trials"] == 30 and summary["resumed_from"] >= 6
    ids = [json.loads(line)["trial_id"] for line in records.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 30
    starts = {}
    for line in (out / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "trial_start":
            starts[e["trial"]] = starts.get(e["trial"], 0) + 1
    assert starts == {i: 1 for i in ids}  # no events of the killed in-flight trial remain


def test_resuming_a_sweep_stopped_before_it_wrote_anything_runs_it_all(tmp_path):
    # killed in its first seconds, before the results directory had any file
    (tmp_path / "early").mkdir()
    summary, out = run_sweep(SMALL, executor="serial", out=tmp_path / "early", resume=True)
    assert summary["trials"] == 32
    res = cli.invoke(app, ["sweep", str(SMALL), "--executor", "serial", "--resume", "--out", str(tmp_path / "never")])
    assert res.exit_code == 0 and "nothing was written in" in res.stderr, res.output
    assert len((tmp_path / "never" / "records.jsonl").read_text().splitlines()) == 32


def test_analyze_json_contract(tmp_path):
    run_sweep(SMALL, executor="serial", out=tmp_path / "s")
    res = cli.invoke(app, ["analyze", str(tmp_path / "s"), "--json", "--bootstrap", "100"])
    assert res.exit_code == 0, res.output
    a = json.loads(res.stdout)
    for k in ("n_trials", "success_rate", "ci_low", "ci_high", "pass_hat_k", "horizon_50", "horizon_80",
              "per_step_reliability"):
        assert k in a
    assert a["n_trials"] == 32 and list(a["pass_hat_k"]) == ["1", "2"]
    for h in ("horizon_50", "horizon_80"):
        assert set(a[h]) >= {"estimate", "ci_low", "ci_high"}
    assert {c["agent"] for c in a["cells"]} == {"react", "react-retry"}
    assert a["fault_effects"]


def test_analyze_reproduces_tau_bench_pass_hat_k():
    res = cli.invoke(app, ["analyze", str(ROOT / "tests" / "data" / "tau-bench-gpt-4o-airline-rewards.jsonl"),
                           "--json"])
    a = json.loads(res.stdout)
    assert {k: round(v, 3) for k, v in a["pass_hat_k"].items()} == {"1": 0.42, "2": 0.273, "3": 0.22, "4": 0.2}


def test_sql_query_and_exports(tmp_path):
    pytest.importorskip("duckdb")
    run_sweep(SMALL, executor="serial", out=tmp_path / "s")
    res = cli.invoke(app, ["query", str(tmp_path / "s"),
                           "SELECT agent, count(*) AS n FROM trials GROUP BY agent ORDER BY agent", "--json"])
    assert json.loads(res.stdout) == [{"agent": "react", "n": 16}, {"agent": "react-retry", "n": 16}]
    res = cli.invoke(app, ["query", str(tmp_path / "s"), "SELECT count(*) AS n FROM events WHERE event = 'fault'",
                           "--json"])
    assert json.loads(res.stdout)[0]["n"] > 0
    for fmt in ("parquet", "csv"):
        res = cli.invoke(app, ["export", str(tmp_path / "s"), str(tmp_path / f"t.{fmt}")])
        assert res.exit_code == 0 and (tmp_path / f"t.{fmt}").stat().st_size > 0
    import duckdb
    n = duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 't.parquet'}'").fetchall()[0][0]
    assert n == 32
    res = cli.invoke(app, ["query", str(tmp_path / "s"), "SELECT nope FROM trials"])
    assert res.exit_code == 2 and "query failed" in res.stderr


def test_sweep_cli_plain_progress_and_json(tmp_path):
    res = cli.invoke(app, ["sweep", str(SMALL), "--executor", "serial", "--out", str(tmp_path / "c"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["trials"] == 32 and out["analysis"]["n_trials"] == 32
    assert "[32/32]" in res.stderr  # sparse plain progress lines when not on a terminal
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["sweep"]["name"] == "small" and manifest["seed"] == 5 and "langgraph" in manifest["versions"]


def test_quickstart_sweep_is_valid():
    specs = expand(load_sweep(ROOT / "scenarios" / "sweeps" / "quickstart.yaml"))
    assert len({s.scenario.params["length"] for s in specs}) >= 6
    assert len(expand(load_sweep(ROOT / "scenarios" / "sweeps" / "nightly.yaml"))) > len(specs)


def test_resume_with_shared_environments_reproduces_the_same_records(tmp_path):
    f = tmp_path / "shared.yaml"
    f.write_text("""
name: shared
seed: 4
replicates: 4
concurrency: 2
scenarios: [{ref: chain, params: {length: 4}}]
faults:
  load: ["shared_rate_limit:rpm=6,target=model"]
agents: [react-retry]
""")
    full = tmp_path / "full"
    run_sweep(f, executor="serial", out=full)
    part = tmp_path / "part"
    part.mkdir()
    lines = (full / "records.jsonl").read_text().splitlines()
    first = json.loads(lines[0])["trial_id"]
    (part / "records.jsonl").write_text(lines[0] + "\n")
    (part / "events.jsonl").write_text("".join(
        line + "\n" for line in (full / "events.jsonl").read_text().splitlines()
        if json.loads(line)["trial"] == first))
    (part / "manifest.json").write_text((full / "manifest.json").read_text())
    run_sweep(f, executor="serial", out=part, resume=True)
    key = lambda d: sorted(json.dumps(r.deterministic(), sort_keys=True) for r in iter_records(d))
    assert key(part) == key(full)


def test_resume_refuses_a_changed_sweep_file(tmp_path):
    run_sweep(SMALL, executor="serial", out=tmp_path / "r")
    changed = tmp_path / "small.yaml"
    changed.write_text(SMALL.read_text().replace("seed: 5", "seed: 6"))
    with pytest.raises(LookupError, match="has changed since the sweep"):
        run_sweep(changed, executor="serial", out=tmp_path / "r", resume=True)


def test_a_dying_worker_loses_only_its_own_trial(tmp_path):
    killer = tmp_path / "killer.py"
    killer.write_text("import os\nfrom attrition_designs.react import build as react\n\n"
                      "def build(kit):\n    if kit.session.replicate == 5:\n        os._exit(1)\n"
                      "    return react(kit)\n")
    f = tmp_path / "die.yaml"
    f.write_text(f"name: die\nseed: 1\nreplicates: 10\nscenarios: [{{ref: chain, params: {{length: 2}}}}]\n"
                 f"agents: ['{killer}:build']\n")
    summary, out = run_sweep(f, executor="process", workers=2, out=tmp_path / "o")
    lost = [r for r in iter_records(out) if r.outcome == "error"]
    assert [r.replicate for r in lost] == [5]
    assert lost[0].error.startswith("the worker process died: exited with status 1 while running this trial")
    assert summary["trials"] == 10
    # a trial that kills its worker does so every time: resume keeps its record instead of re-running it
    summary, _ = run_sweep(f, executor="process", workers=2, out=out, resume=True)
    assert summary["resumed_from"] == 10 and summary["ran_now"] == 0


def test_analyze_can_leave_out_trials_whose_fault_never_fired(tmp_path):
    run_sweep(SMALL, executor="serial", out=tmp_path / "s")
    all_ = analyze_results(tmp_path / "s", n_boot=100)
    fired = analyze_results(tmp_path / "s", n_boot=100, exclude_unfired=True)
    unfired = sum(r.faults_not_fired != [] for r in iter_records(tmp_path / "s"))
    assert unfired > 0 and fired["n_trials"] == all_["n_trials"] - unfired


def test_reference_problems_carry_their_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nscenarios: [{ref: chain}]\nprofiles:\n  - strong\n  - medium\n"
                 "faults:\n  ok: []\n  bad:\n    - rate_limit\n    - nope\n")
    with pytest.raises(ScenarioError) as e:
        expand(load_sweep(f), str(f))
    got = {(path, line) for path, line, _ in e.value.problems}
    assert got == {("profiles[1]", 5), ("faults.bad", 10)}

