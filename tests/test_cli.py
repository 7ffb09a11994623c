import json

import pytest
from typer.testing import CliRunner

from simulator.cli import app

from conftest import FIXTURES

cli = CliRunner()


def invoke(*args):
    return cli.invoke(app, [str(a) for a in args], catch_exceptions=False)


def run_json(tmp_path, *args, name="r"):
    res = invoke("run", *args, "--out", tmp_path / name, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_run_json_has_the_contract_keys(tmp_path):
    out = run_json(tmp_path, "support_refund", "--trials", 6, "--seed", 1)
    for key in ("trials", "successes", "success_rate", "ci_low", "ci_high", "sim_time_s",
                "wall_time_s", "outcomes"):
        assert key in out
    assert out["trials"] == 6 and sum(out["outcomes"].values()) == 6
    assert out["ci_low"] <= out["success_rate"] <= out["ci_high"]


def test_same_seed_identical_json_apart_from_wall_time(tmp_path):
    a = run_json(tmp_path, "chain", "--param", "length=6", "--trials", 5, "--seed", 7, name="a")
    b = run_json(tmp_path, "chain", "--param", "length=6", "--trials", 5, "--seed", 7, name="b")
    c = run_json(tmp_path, "chain", "--param", "length=6", "--trials", 5, "--seed", 8, name="c")
    strip = lambda d: {k: v for k, v in d.items() if k not in ("wall_time_s", "results_dir")}
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_results_directory(tmp_path):
    run_json(tmp_path, "support_refund", "--trials", 3, "--seed", 2)
    d = tmp_path / "r"
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["seed"] == 2 and manifest["spec"]["agent"] == "react"
    assert "langgraph" in manifest["versions"] and manifest["summary"]["trials"] == 3
    records = (d / "records.jsonl").read_text().splitlines()
    assert len(records) == 3
    events = [json.loads(line) for line in (d / "events.jsonl").read_text().splitlines()]
    assert {e["trial"] for e in events} == {json.loads(r)["trial_id"] for r in records}
    assert all({"v", "t", "seq", "event"} <= set(e) for e in events)


def test_human_output_has_rate_interval_and_n(tmp_path):
    res = invoke("run", "support_refund", "--trials", 4, "--out", tmp_path / "h")
    assert res.exit_code == 0
    assert "success rate" in res.stdout and "95% CI" in res.stdout and "n=4" in res.stdout
    assert "virtual time" in res.stdout and "wall time" in res.stdout


def test_replay_reruns_a_trial_from_its_id(tmp_path):
    run_json(tmp_path, "support_refund", "--trials", 2, "--seed", 5)
    trial = json.loads((tmp_path / "r" / "records.jsonl").read_text().splitlines()[1])["trial_id"]
    res = invoke("replay", trial[:10], "--results", tmp_path)
    assert res.exit_code == 0, res.output
    assert "replay matches the stored record" in res.stderr
    assert "model_call" in res.stdout and "tool_call" in res.stdout
    res = invoke("replay", trial, "--results", tmp_path, "--json")
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert events[0]["event"] == "trial_start" and events[-1]["event"] == "trial_end"


def test_replay_unknown_id(tmp_path):
    res = invoke("replay", "deadbeef", "--results", tmp_path)
    assert res.exit_code == 2 and "no trial with id 'deadbeef'" in res.stderr


def test_validate(tmp_path):
    assert invoke("validate", "scenarios/support_refund.yaml").exit_code == 0
    bad = tmp_path / "bad.yaml"
    text = (FIXTURES / "slow_tools.yaml").read_text().replace("tool: publish,", "tool: publsh,")
    bad.write_text(text)
    res = invoke("validate", bad)
    assert res.exit_code == 2
    assert "golden_path[2].tool: unknown tool 'publsh'" in res.stderr
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "tool: publsh" in t)
    assert f"{bad}:{line}:" in res.stderr


def test_bad_agent_reference_is_a_clear_error_not_a_traceback(tmp_path):
    res = invoke("run", "support_refund", "--agent", FIXTURES / "broken_import.py", "--out", tmp_path / "x")
    assert res.exit_code == 2
    assert "failed to import" in res.stderr and "Traceback" not in res.output
    assert not (tmp_path / "x").exists()


def test_factory_errors_exit_1_and_keep_results(tmp_path):
    res = invoke("run", "support_refund", "--trials", 3, "--out", tmp_path / "e",
                 "--agent", f"{FIXTURES / 'bad_designs.py'}:raising_factory")
    assert res.exit_code == 1
    assert "factory exploded" in res.stderr
    assert len((tmp_path / "e" / "records.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("args, message", [
    (["chain", "--param", "lenght=3"], "unknown parameter"),
    (["chain", "--param", "length"], "not of the form key=value"),
    (["support_refund", "--profile", "medium"], "unknown profile 'medium'"),
    (["support_refund", "--budget", "max_stepz=3"], "unknown budget max_stepz"),
    (["nope.yaml"], "no such file, shipped scenario or template"),
    (["support_refund", "--fault", "ratelimit"], "unknown fault 'ratelimit'"),
    (["support_refund", "--fault", "rate_limit:rate=3"], "less than or equal to 1"),
    (["support_refund", "--fault", "outage"], "give windows=START-END"),
    (["support_refund", "--fault", "timeout:target=refund"], "target tool 'refund' is not in scenario"),
])
def test_bad_input_exit_2(tmp_path, args, message):
    res = invoke("run", *args, "--out", tmp_path / "z")
    assert res.exit_code == 2
    assert message in res.stderr


def test_run_with_faults_reports_firings(tmp_path):
    out = run_json(tmp_path, "support_refund", "--trials", 5, "--seed", 3,
                   "--fault", "rate_limit:rate=0.3", "--fault", "silent_wrong:at_call=99", "--agent", "react-retry")
    assert out["faults_fired"]["rate_limit"]["firings"] > 0
    assert out["faults_fired"]["silent_wrong"]["firings"] == 0
    assert out["trials_with_unfired_faults"] == 5


def test_list_faults_shows_parameters():
    res = invoke("list", "faults")
    assert res.exit_code == 0
    for name in ("rate_limit", "silent_wrong", "context_overflow", "ambiguous", "prompt_injection", "memory_loss"):
        assert name in res.stdout
    assert "retry_after_s" in res.stdout and "Trigger keys" in res.stdout


def test_list_and_schema(tmp_path):
    res = invoke("list")
    for name in ("react", "strong", "weak", "chain", "support_refund", "travel_rebooking"):
        assert name in res.stdout
    res = invoke("schema", "--out", tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text())["title"] == "attrition scenario"


def test_step_budget_boundary(tmp_path):
    ok = run_json(tmp_path, "support_refund", "--trials", 1, "--seed", 0, name="a")
    steps = ok["mean_steps"]
    exact = run_json(tmp_path, "support_refund", "--trials", 1, "--seed", 0, "--budget", f"max_steps={int(steps)}",
                     name="b")
    less = run_json(tmp_path, "support_refund", "--trials", 1, "--seed", 0, "--budget",
                    f"max_steps={int(steps) - 1}", name="c")
    assert exact["outcomes"]["success"] == 1 and less["outcomes"]["budget"] == 1


@pytest.mark.parametrize("value", ["max_steps=abc", "max_steps=0"])
def test_bad_budget_values(tmp_path, value):
    res = invoke("run", "support_refund", "--budget", value, "--out", tmp_path / "z")
    assert res.exit_code == 2 and "bad budget" in res.stderr


def test_replay_refuses_a_short_or_ambiguous_prefix(tmp_path):
    from simulator.records import TrialRecord
    run_json(tmp_path, "support_refund", "--trials", 1, "--seed", 1)
    res = invoke("replay", "ab", "--results", tmp_path)
    assert res.exit_code == 2 and "at least 4 characters" in res.stderr
    twins = tmp_path / "twins"
    twins.mkdir()
    (twins / "records.jsonl").write_text("".join(TrialRecord(
        trial_id=tid, spec={}, scenario="s", agent="a", profile="strong", seed=0, replicate=0,
        outcome="success").model_dump_json() + "\n" for tid in ("abcd1111", "abcd2222")))
    res = invoke("replay", "abcd", "--results", twins)
    assert res.exit_code == 2 and "matches 2 trials" in res.stderr


def test_replay_notices_a_changed_scenario(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text((FIXTURES / "slow_tools.yaml").read_text())
    run_json(tmp_path, str(sc), "--trials", 1, "--seed", 1)
    trial = json.loads((tmp_path / "r" / "records.jsonl").read_text())["trial_id"]
    sc.write_text(sc.read_text().replace("dataset: orders", "dataset: invoices"))
    res = invoke("replay", trial, "--results", tmp_path)
    # the results directory keeps the content the trial ran on: the replay runs on it and says so
    assert res.exit_code == 0, res.output
    assert "from the copy kept in" in res.stderr and "has changed since the trial was recorded" in res.stderr
    assert "replay matches the stored record" in res.stderr
    for kept in (tmp_path / "r" / "scenarios").iterdir():  # results written before copies were kept
        kept.unlink()
    res = invoke("replay", trial, "--results", tmp_path)
    assert res.exit_code == 2 and "has changed since the trial was recorded" in res.stderr
    assert "keeps no copy of it" in res.stderr


# --- rendering lives in simulator.report: data in, text out -------------------------------

def test_report_renders_text_and_escapes_data():
    from simulator.report import terminal
    plain = terminal.query_table(["name", "n"], [["[bold]x[/bold]", 1], ["[/oops]", None]], width=132)
    assert "[bold]x[/bold]" in plain and "[/oops]" in plain and "None" in plain
    assert "\x1b[" not in plain
    assert "\x1b[" in terminal.query_table(["name"], [["a"]], color=True, width=132)
    narrow = terminal.entry_tables({"profile": []}, width=40)
    assert max(map(len, narrow.splitlines())) <= 40 and "(none yet)" in narrow


def test_report_run_summary_and_analysis(tmp_path):
    from simulator.report import terminal
    s = run_json(tmp_path, "support_refund", "--trials", 3, "--seed", 1)
    s["spec"]["scenario"]["ref"] = "odd[/x]name"
    text = terminal.run_summary(s, tmp_path / "[r]", width=132)
    assert "odd[/x]name × react × strong (seed 1)" in text and "n=3" in text
    assert f"results: {tmp_path / '[r]'}" in text
    res = invoke("analyze", tmp_path / "r")
    a = json.loads(invoke("analyze", tmp_path / "r", "--json").stdout)
    assert terminal.analysis_tables(a, str(tmp_path / "r"), width=132) == res.stdout


def test_list_warns_about_plugins_that_failed_to_load():
    from simulator.registry import PROBLEMS
    from simulator.report import terminal
    assert "warning" not in invoke("list", "profiles").stdout
    PROBLEMS.append("entry point bad = [nope]:x (attrition.faults) failed to load: boom")
    try:
        res = invoke("list", "profiles")
    finally:
        PROBLEMS.pop()
    assert res.exit_code == 0 and "strong" in res.stdout
    assert "warning: 1 plug-in problem(s)" in res.stdout and "bad = [nope]:x" in res.stdout
    assert "warning" not in terminal.entry_tables({"profile": []}, [])


def test_write_graphs_one_graph_or_one_per_design(tmp_path):
    import networkx as nx
    from simulator.report.graphs import take_graphs, write_graphs, write_trials
    g = nx.DiGraph()
    g.add_edge("agent", "tools", weight=2)
    written = write_graphs({"all": g}, tmp_path / "one.graphml")
    assert written == [tmp_path / "one.graphml", tmp_path / "one.json"]
    assert set(nx.read_graphml(written[0]).nodes) == {"agent", "tools"}
    res = {"graph": g, "by_agent": {"react": {"graph": g.copy(), "n": 1}, "pev": {"graph": g.copy()}}}
    graphs = take_graphs(res)
    assert list(graphs) == ["all", "react", "pev"] and "graph" not in res and res["by_agent"]["react"] == {"n": 1}
    written = write_graphs(graphs, tmp_path / "many.graphml")
    assert set(nx.read_graphml(written[0]).nodes) == {"react/agent", "react/tools", "pev/agent", "pev/tools"}
    assert set(json.loads(written[1].read_text())) == {"all", "react", "pev"}
    assert write_trials([{"trial": "a"}, {"trial": "b"}], tmp_path / "t.jsonl") == 2
    assert [json.loads(x)["trial"] for x in (tmp_path / "t.jsonl").read_text().splitlines()] == ["a", "b"]


def test_propagation_human_output_and_files(tmp_path):
    run_json(tmp_path, "support_refund", "--trials", 3, "--seed", 1)
    res = invoke("propagation", tmp_path / "r", "--graphml", tmp_path / "g.graphml", "--trials", tmp_path / "t.jsonl")
    assert res.exit_code == 0, res.output
    assert "all trials: 3 trials, silent failures" in res.stdout
    assert "per graph node" in res.stdout and "per root cause" in res.stdout
    assert f"wrote 3 trials to {tmp_path / 't.jsonl'}" in res.stderr
    assert f"wrote {tmp_path / 'g.graphml'} and {tmp_path / 'g.json'}" in res.stderr
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 3


def test_replay_verdict_lists_differences():
    from types import SimpleNamespace
    from simulator.report.terminal import event_line, replay_verdict
    fresh = SimpleNamespace(trial_id="abc", outcome="failure", failure_mode="repeated_call")
    r = SimpleNamespace(fresh=fresh, run_dir="res/x", same=False, shared=1,
                        differences=lambda: [("outcome", "success", "failure")])
    assert replay_verdict(r).splitlines() == [
        "trial abc from res/x: failure (repeated_call); replay DIFFERS from the stored record",
        "  outcome: stored 'success' vs replay 'failure'"]
    r.shared = 3
    assert replay_verdict(r).startswith("note: this trial shared its virtual environment with 2 other session(s)")
    line = event_line({"t": 1.5, "seq": 7, "event": "tool_call", "tool": "refund", "ok": True, "result": [1]})
    assert line == "      1.50s     7  tool_call    refund ok=True [1]"


def test_cli_has_no_dead_entry_point():
    import simulator.cli
    assert not hasattr(simulator.cli, "main")


def test_error_messages_quote_input_literally():
    res = invoke("list", "[/x]")
    assert res.exit_code == 2 and "unknown list '[/x]'" in res.stderr
