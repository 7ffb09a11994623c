"""Decisions of the simulated model that a real model would not make: giving up with nothing
in the way, counting a wrong tool's result as the step it meant to do, inventing a new value
for the same missing fact on every call, never mistaking an id for a look-alike it has seen,
every step equally hard; and a failure named by its cause, not only by its first error."""
import json

import pytest
from langchain_core.messages import HumanMessage, ToolMessage

from simulator.brain import Brain
from simulator.calls import answer, args_for, error_weights, stale
from simulator.gateway import Gateway
from simulator.kit import Kit
from simulator.oracle import ANN, Belief
from simulator.profiles import ERROR_MODES, get_profile
from simulator.records import TrialRecord
from simulator.results import summarize
from simulator.rng import stream
from simulator.scenario_refs import resolve_scenario
from simulator.session import Session
from simulator.vclock import Clock
from simulator.world import resolve

from conftest import run


def session(scenario="chain", params=None, profile="strong", **over):
    sc, _ = resolve_scenario(scenario, params)
    return Session("t" * 16, 0, 0, sc, get_profile(profile, **over), Clock())


def force(monkeypatch, plan: dict[tuple[str, int], str], writers_too: bool = True) -> None:
    """Every decision on a golden step is correct, except the n-th attempt at step x, which
    takes the mode plan[(x, n)]; a forced wrong tool is a read unless `writers_too`."""
    seen: dict[str, int] = {}
    choose, compose = Brain._choose, Brain._compose

    def forced_choose(self, d, b, bound, p_err, obey):
        choose(self, d, b, bound, p_err, obey)
        if d.step is not None and d.mode in ERROR_MODES + ("correct",):
            seen[d.step] = seen.get(d.step, 0) + 1
            d.mode = plan.get((d.step, seen[d.step]), "correct")

    def forced_compose(self, d, b, bound, p_err, final_turn):
        if d.mode == "wrong_tool" and not writers_too:
            right = self.s.oracle.steps[d.step].tool
            bound = {n: t for n, t in bound.items()
                     if n == right or not self.s.scenario.tools[n].effect.writes}
        compose(self, d, b, bound, p_err, final_turn)

    monkeypatch.setattr(Brain, "_choose", forced_choose)
    monkeypatch.setattr(Brain, "_compose", forced_compose)


# -- giving up --------------------------------------------------------------------------

def test_giving_up_is_drawn_only_when_something_stands_in_the_way():
    weights = {"give_up": 0.5, "repeated_call": 0.5}
    assert error_weights(weights, obstacle=False) == (["give_up", "repeated_call"], [0.0, 0.5])
    assert error_weights(weights, obstacle=True) == (["give_up", "repeated_call"], [0.5, 0.5])
    # a profile that leaves it no other way to err still gives up
    assert error_weights({"give_up": 1.0}, obstacle=False) == (["give_up"], [1.0])


def test_with_nothing_in_its_way_it_never_gives_up():
    # repeating a read is harmless and nothing else can go wrong: nothing ever blocks it
    recs = run("chain", params={"length": 8}, trials=6, seed=2,
               profile_params={"base_hazard": 0.5, "recall_in_answer": 0.0,  # its answer quotes facts exactly
                               "error_modes": {"give_up": 0.5, "repeated_call": 0.5}})
    modes = [e["mode"] for _, ev in recs for e in ev if e["event"] == "model_call"]
    assert "repeated_call" in modes and "give_up" not in modes
    assert all(r.outcome == "success" for r, _ in recs)


def test_it_gives_up_after_an_obstacle():
    # an invented id comes back "not found": it is noticed, and then giving up is possible
    recs = run("chain", params={"length": 8}, trials=8, seed=2,
               profile_params={"base_hazard": 0.5, "notice_error": 1.0,
                               "error_modes": {"give_up": 0.5, "fabricated_arg": 0.5}})
    gave_up = 0
    for _, ev in recs:
        rejected = False
        for e in ev:
            if e["event"] == "model_call":  # its verdicts are on the results it has just read
                rejected = rejected or "reject" in (e.get("verdicts") or {}).values()
                if e["mode"] == "give_up":
                    assert rejected, "it gave up with nothing in its way"
                    gave_up += 1
    assert gave_up


# -- a wrong tool ------------------------------------------------------------------------

def test_a_wrong_tools_result_does_not_count_as_the_step(monkeypatch):
    force(monkeypatch, {("s0", 1): "wrong_tool"})
    s = session(params={"length": 4})
    kit = Kit(s, Gateway(s).tools(), {})
    llm = kit.model().bind_tools(kit.tools)
    user = HumanMessage(s.scenario.turns[0].user, id="turn-0-0-0", additional_kwargs={ANN: {"turn": 0}})
    first = llm.invoke([user])
    call = first.tool_calls[0]
    assert call["name"] != "get_ticket"
    assert first.additional_kwargs[ANN]["calls"][call["id"]]["step"] is None
    # the wrong tool answers with a record of its own; the step it meant to do is still to do
    result = ToolMessage(json.dumps({"id": "ACC-000009", "next_id": "INV-000010", "code": "C00001"}),
                         tool_call_id=call["id"])
    again = llm.invoke([user, first, result]).tool_calls[0]
    first_id = s.oracle.steps["s0"].args["ticket_id"]
    assert (again["name"], again["args"]) == ("get_ticket", {"ticket_id": first_id})


def test_a_harmless_wrong_tool_leaves_the_task_to_succeed(monkeypatch):
    force(monkeypatch, {("s1", 1): "wrong_tool"}, writers_too=False)
    (rec, events), = run("chain", params={"length": 4}, seed=1)
    assert [e["mode"] for e in events if e["event"] == "model_call"].count("wrong_tool") == 1
    assert rec.outcome == "success"


# -- inventions --------------------------------------------------------------------------

def test_the_same_missing_fact_is_invented_the_same_way_within_a_trial():
    s = session(params={"length": 6})
    b = Belief()  # it knows nothing: the ticket id s2 needs is missing
    one, _, _ = args_for(s, stream(1, "a"), "agent", "s2", b)
    two, _, _ = args_for(s, stream(2, "b"), "agent", "s2", b)
    assert one == two and one["invoice_id"] != s.oracle.golden.args["s2"]["invoice_id"]
    # ...while another trial invents its own
    other, _, _ = args_for(session(params={"length": 6}), stream(2, "b"), "agent", "s2", b)
    assert other != one


def test_remembering_an_invention_draws_the_same_as_inventing_afresh():
    fresh, repeat = stream(7, "x"), stream(7, "x")
    s = session(params={"length": 6})
    args_for(s, stream(1, "a"), "agent", "s2", Belief())
    args_for(s, repeat, "agent", "s2", Belief())                       # remembered
    args_for(session(params={"length": 6}), fresh, "agent", "s2", Belief())  # invented
    assert repeat.random() == fresh.random()


@pytest.mark.parametrize("seed", range(8))
def test_a_premature_answer_names_one_invented_id_for_one_fact(seed):
    # the last request and the task's success both ask for the report id: it is quoted once
    s = session(params={"length": 6})
    facts = s.scenario.turns[-1].answer_must_contain + s.scenario.success.answer_must_contain
    assert len(facts) == 2 and len(set(facts)) == 1
    said = answer(s, stream(seed, "answer"), Belief(), final_turn=True)
    assert said.startswith("Done. ") and ";" not in said


def test_a_trial_that_finishes_early_names_one_report_id(monkeypatch):
    force(monkeypatch, {("s2", 1): "premature_finish"})
    (rec, _), = run("chain", params={"length": 6}, seed=3)
    assert rec.outcome == "failure" and rec.failure_mode == "premature_finish"
    assert rec.answer.count("REP-") == 1


# -- stale ids ---------------------------------------------------------------------------

def test_a_stale_id_can_be_a_look_alike_it_has_seen():
    s = session(params={"length": 12})
    known = {x: s.oracle.golden.outputs[x] for x in ("s0", "s1", "s2", "s3", "s4", "s5")}
    b = Belief(known=known, done=set(known))
    args = resolve(s.oracle.steps["s6"].args, known)
    outputs = {v for out in known.values() for k, v in out.items() if k in ("id", "next_id")}
    decoys = {i for out in known.values() for i in out["see_also"]} - outputs
    assert decoys  # ids a record names as related, never the output of a step it did
    picked = {stale(s, stream(n, "stale"), "s6", args, b)[0]["ticket_id"] for n in range(200)}
    assert picked & decoys and args["ticket_id"] not in picked


# -- step difficulty by kind -------------------------------------------------------------

def test_a_step_that_combines_sources_is_harder_than_one_that_copies():
    s = session("support_refund")
    d = s.oracle.difficulty
    assert d["orders"] == d["order"] == d["customer"] == 0.0  # one source: copied
    assert d["status"] == pytest.approx(0.2)                  # an output and a value of the request
    assert d["refund"] == pytest.approx(0.4)                  # two outputs and the request
    assert all(v == 0.0 for v in session(params={"length": 16}).oracle.difficulty.values())
    brain = Brain(s, "agent")
    brain.hazard(100, 0, step="refund")
    assert brain.terms["fixed"] == pytest.approx(0.4)  # re-scoring a decision sees it too


def test_an_annotated_step_adds_its_own_difficulty_to_its_kind():
    sc, _ = resolve_scenario("support_refund")
    data = sc.model_dump()
    assert data["golden_path"][5]["id"] == "refund"
    data["golden_path"][5]["difficulty"] = 1.0
    s = Session("t" * 16, 0, 0, type(sc).model_validate(data), get_profile("strong"), Clock())
    assert s.step_difficulty("refund") == pytest.approx(1.4)


# -- failure by cause --------------------------------------------------------------------

def test_the_failure_is_named_by_its_cause_and_by_its_first_error(monkeypatch):
    # an early wrong tool (a read: harmless, the step is done again right after) and then an
    # invented argument in the report, which is what leaves the wrong report behind
    force(monkeypatch, {("s1", 1): "wrong_tool", ("report", 1): "fabricated_arg"}, writers_too=False)
    (rec, events), = run("chain", params={"length": 4}, seed=1)
    assert rec.outcome == "failure"
    assert rec.failure_mode == "wrong_tool"       # the first error in time
    assert rec.failure_cause == "fabricated_arg"  # the one whose taint reached the failed check
    assert not next(c for c in rec.checks if c.name == "state reports").passed
    s = summarize([rec])
    assert s["failure_modes"] == {"fabricated_arg": 1} and s["first_errors"] == {"wrong_tool": 1}


def test_a_failure_with_one_error_names_it_both_ways(monkeypatch):
    force(monkeypatch, {("report", 1): "fabricated_arg"})
    (rec, _), = run("chain", params={"length": 4}, seed=1)
    assert (rec.failure_mode, rec.failure_cause) == ("fabricated_arg", "fabricated_arg")
    force(monkeypatch, {("s2", 1): "give_up"})
    (rec, _), = run("chain", params={"length": 4}, seed=1)
    assert (rec.failure_mode, rec.failure_cause) == ("gave_up", "gave_up")


def test_records_written_before_causes_load_and_report_their_first_error():
    old = {"schema_version": 1, "trial_id": "x", "spec": {}, "scenario": "chain-4", "agent": "react",
           "profile": "weak", "seed": 0, "replicate": 0, "outcome": "failure", "failure_mode": "stale_arg"}
    rec = TrialRecord.model_validate(old)
    assert rec.failure_cause is None
    assert summarize([rec])["failure_modes"] == {"stale_arg": 1}
