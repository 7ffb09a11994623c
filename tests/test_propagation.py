"""Propagation on constructed cases where the answer is known in advance."""
import json

import networkx as nx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from simulator.cli import app
from simulator.propagation import aggregate, trace_trial
from simulator.runs import run_sweep

from conftest import FIXTURES, run

PIPE = str(FIXTURES / "pipeline10.yaml")
CLEAN = {"base_hazard": 0.0001, "notice_silent_wrong": 0.0}   # a model that errs only when fed errors
WRONG_PRICE = "silent_wrong:target=get_plan,at_call=1,field=price,value=90"


def trace(agent, fault, **kw):
    (rec, events), = run(PIPE, agent=agent, seed=1, faults=[fault], profile_params=CLEAN, **kw)
    return rec, trace_trial(rec, events)


def test_a_silently_wrong_value_at_step_3_of_10_is_traced_to_the_failed_check():
    rec, tr = trace("react", WRONG_PRICE)
    assert rec.outcome == "failure" and tr["silent_failure"]
    (root,) = [r for r in tr["roots"] if r["type"] == "silent_wrong"]
    assert root["origin_node"] == "tools" and not root["detected"]
    assert root["reached_final_state"] and not root["contained"]
    assert root["calls"][0] == 3 and 9 in root["calls"]          # step 3's value reached step 9
    assert "invoices.INV-1" in root["writes"]
    assert root["depth"] >= 1 and root["blast_radius"] >= 3
    g = tr["graph"]
    chain = nx.shortest_path(g, root["id"], "check:state invoices")
    assert chain == [root["id"], "call:3", "call:9", "write:invoices.INV-1", "check:state invoices"]
    assert g.has_edge("check:state invoices", "outcome:failure:silent_wrong")


def test_the_same_fault_under_plan_execute_verify_is_contained_at_the_verifier():
    rec, tr = trace("plan-execute-verify", WRONG_PRICE)
    assert rec.outcome == "success" and not tr["silent_failure"]
    (root,) = [r for r in tr["roots"] if r["type"] == "silent_wrong"]
    assert root["detected"] and root["detected_node"] == "verify" and root["contained"]
    assert root["path"] == ["tools", "verify"] and root["writes"] == []


def test_a_detected_and_retried_fault_ends_with_no_taint():
    rec, tr = trace("react-retry", "server_error:target=get_plan,at_call=1")
    assert rec.outcome == "success"
    (root,) = tr["roots"]
    assert root["type"] == "server_error" and root["detected"] and root["detected_by"] == "raised"
    assert root["contained"] and root["blast_radius"] == 0 and root["calls"] == []


def test_an_unhandled_error_reaches_the_outcome():
    rec, tr = trace("react", "server_error:target=get_plan,at_call=1")
    (root,) = tr["roots"]
    assert rec.failure_mode == "unhandled_server_error" and root["reached_final_state"]
    assert not tr["silent_failure"]  # it surfaced


def test_value_matching_alone_traces_the_flow():
    # without the model's own account of its calls (a real model), the flow is inferred from values
    (rec, events), = run(PIPE, agent="react", seed=1, faults=[WRONG_PRICE], profile_params=CLEAN)
    bare = [e for e in events if e["event"] not in ("model_call", "corruption_accepted")]
    tr = trace_trial(rec, bare)
    (root,) = [r for r in tr["roots"] if r["type"] == "silent_wrong"]
    assert 9 in root["calls"] and root["reached_final_state"]


def test_events_that_break_the_schema_are_refused():
    # taint is read through the typed events: a malformed one fails loudly instead of being misread
    (rec, events), = run(PIPE, agent="react", seed=1, faults=[WRONG_PRICE], profile_params=CLEAN)
    i = next(i for i, e in enumerate(events) if e["event"] == "tool_call")
    broken = events[:i] + [{**events[i], "call": str(events[i]["call"])}] + events[i + 1:]
    with pytest.raises(ValidationError, match=r"tool_call\.call"):
        trace_trial(rec, broken)

def fake_trial(paths, outcome="failure", silent=False, agent="a"):
    return {"outcome": outcome, "silent_failure": silent, "agent": agent, "profile": "p", "graph_edges": [],
            "roots": [{"type": t, "kind": "fault", "origin_node": p[0], "path": p, "detected": False,
                       "contained": "final_state" not in p, "reached_final_state": "final_state" in p,
                       "depth": 0, "blast_radius": 0, "steps_to_detection": None, "time_to_detection_s": None}
                      for t, p in paths]}


def test_aggregate_counts_against_hand_computed_values():
    trials = [
        fake_trial([("silent_wrong", ["tools", "agent", "tools", "final_state"])], silent=True),
        fake_trial([("silent_wrong", ["tools", "verify"])], outcome="success"),
        fake_trial([("malformed", ["tools", "agent"])], outcome="success"),
        fake_trial([], outcome="error"),
    ]
    a = aggregate(trials)
    assert a["n_trials"] == 3 and a["error_trials_excluded"] == 1
    assert a["root_causes"] == {"malformed": 1, "silent_wrong": 2}
    tools, agent, verify = a["nodes"]["tools"], a["nodes"]["agent"], a["nodes"]["verify"]
    assert (tools["originated"], tools["entered"], tools["escaped"]) == (3, 0, 3)
    assert (agent["entered"], agent["escaped"], agent["contained"]) == (2, 1, 1)
    assert agent["containment_rate"] == 0.5 and verify["containment_rate"] == 1.0
    assert a["silent_failure_rate"] == pytest.approx(1 / 3)
    assert a["root_cause_detail"]["silent_wrong"]["containment_rate"] == 0.5
    assert a["graph"]["tools"]["agent"]["weight"] == 2


def test_propagation_cli_on_a_sweep(tmp_path):
    sweep = tmp_path / "p.yaml"
    sweep.write_text(f"""
name: p
seed: 2
replicates: 4
scenarios: [{{ref: {PIPE}}}]
agents: [react, plan-execute-verify]
faults:
  corrupting: ["silent_wrong:rate=0.3,target=reads"]
""")
    run_sweep(sweep, executor="serial", out=tmp_path / "r")
    res = CliRunner().invoke(app, ["propagation", str(tmp_path / "r"), "--json", "--graphml",
                                   str(tmp_path / "g.graphml"), "--trials", str(tmp_path / "t.jsonl")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {"silent_failure_rate", "ci_low", "ci_high", "root_causes", "nodes"} <= set(out)
    assert out["root_causes"]["silent_wrong"] > 0
    for node in out["nodes"].values():
        assert {"originated", "entered", "escaped", "containment_rate"} <= set(node)
    assert set(out["by_agent"]) == {"react", "plan-execute-verify"}
    assert out["by_agent"]["plan-execute-verify"]["nodes"]["verify"]["containment_rate"] > 0.8
    per_trial = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(per_trial) == 8
    root = next(r for t in per_trial for r in t["roots"] if r["type"] == "silent_wrong")
    assert {"detected", "steps_to_detection", "time_to_detection_s", "contained", "depth",
            "blast_radius"} <= set(root)
    g = nx.read_graphml(tmp_path / "g.graphml")
    assert g.number_of_edges() > 0
    assert json.loads((tmp_path / "g.json").read_text())["all"]["edges"]


def test_propagation_needs_a_results_directory(tmp_path):
    res = CliRunner().invoke(app, ["propagation", str(tmp_path)])
    assert res.exit_code == 2 and "not a results directory" in res.stderr
