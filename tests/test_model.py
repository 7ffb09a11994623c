import math

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from simulator.session import Session
from simulator.vclock import Clock
from simulator.values import fabricate
from simulator.profiles import ERROR_MODES, get_profile
from simulator.registry import objects
from simulator.rng import stream
from simulator.scenario_refs import resolve_scenario
from simulator.tokens import TokenCounter

from conftest import run


def logit(p):
    return math.log(p / (1 - p))


def make_session(profile="strong", seed=0, replicate=0, **over):
    sc, _ = resolve_scenario("support_refund")
    return Session("t" * 16, seed, replicate, sc, get_profile(profile, **over), Clock())


def test_hazard_is_additive_on_the_log_odds_scale():
    s = make_session()
    s.profile = s.profile.model_copy(update={"context_softness": 0.0})  # the hard threshold: exact sums
    s.difficulty = 0.0
    from simulator.brain import Brain
    b = Brain(s, "agent")
    p = s.profile
    assert b.hazard(1000, 0) == pytest.approx(p.base_hazard)
    x = logit(p.base_hazard) + p.context_rot * math.log2(4) + 2 * p.self_conditioning
    assert b.hazard(4 * p.effective_context, 2) == pytest.approx(1 / (1 + math.exp(-x)))
    s.difficulty = 1.0
    assert logit(b.hazard(1000, 0)) == pytest.approx(logit(p.base_hazard) + 1.0)


def test_difficulty_is_drawn_per_task_family_not_per_replicate():
    a, b = make_session(seed=3), make_session(seed=3, replicate=1)
    assert a.difficulty == b.difficulty
    # ...while everything keyed by the replicate does differ
    assert a.stream("model", "agent").random() != b.stream("model", "agent").random()
    assert make_session(seed=4).difficulty != a.difficulty
    c, _ = resolve_scenario("chain", {"task": 1})
    d, _ = resolve_scenario("chain", {"task": 2})
    p = get_profile("strong")
    assert Session("x", 3, 0, c, p, Clock()).difficulty != Session("x", 3, 0, d, p, Clock()).difficulty


def test_profiles_are_documented():
    for p in objects("profile"):
        assert p.summary and p.calibration
        assert abs(sum(p.error_modes.values()) - 1) < 1e-9
        assert set(p.error_modes) <= set(ERROR_MODES)
    assert get_profile("weak").base_hazard > get_profile("strong").base_hazard


def test_unknown_profile_and_bad_override():
    with pytest.raises(KeyError, match="unknown profile 'medium'; known: strong, tau-airline, weak"):
        get_profile("medium")
    with pytest.raises(ValueError, match="base_hazard"):
        get_profile("strong", base_hazard=2)


@pytest.mark.parametrize("mode, failure", [("premature_finish", "premature_finish"),
                                           ("give_up", "gave_up"),
                                           ("skipped_step", "skipped_step")])
def test_each_error_mode_has_its_consequence(mode, failure):
    # on the chain every step needs the one before, so any uncaught error is fatal
    (rec, events), = run("chain", params={"length": 12},
                         profile_params={"base_hazard": 0.5, "error_modes": {mode: 1.0}}, seed=1)
    assert rec.outcome == "failure"
    assert rec.failure_mode == failure
    assert any(e["event"] == "model_call" and e["mode"] == mode for e in events)


def test_repeating_a_write_duplicates_it_in_the_world():
    recs = run(profile_params={"base_hazard": 0.3, "error_modes": {"repeated_call": 1.0}},
               trials=20, seed=2)
    dup = [r for r, _ in recs if r.failure_mode == "repeated_call"]
    assert dup, "some repeated writes should have landed"
    for r in dup:
        refunds = next(c for c in r.checks if c.name == "state refunds")
        tickets = next(c for c in r.checks if c.name == "state tickets")
        assert len(refunds.actual or {}) + len(tickets.actual or {}) > 2


def test_noticing_errors_is_what_recovers_fabricated_arguments():
    fab = {"base_hazard": 0.2, "error_modes": {"fabricated_arg": 1.0}}
    careful = [r.outcome for r, _ in run(profile_params={**fab, "notice_error": 1.0}, trials=15, seed=3)]
    careless = [r.outcome for r, _ in run(profile_params={**fab, "notice_error": 0.0}, trials=15, seed=3)]
    assert careful.count("success") > careless.count("success")


def test_context_overflow_raises_the_providers_error():
    (_, events), = run(seed=0)
    peak = max(e["context_tokens"] for e in events if e["event"] == "model_call")
    window = int(peak * 0.6)
    (rec, events), = run(profile_params={"context_window": window}, seed=0)
    assert rec.outcome == "failure"
    assert rec.failure_mode == "unhandled_context_length_exceeded"
    assert f"maximum context length is {window}" in rec.error
    assert any(e["event"] == "model_error" for e in events)


def test_every_call_states_a_confidence_and_charges_time_and_tokens():
    (rec, events), = run(seed=4)
    calls = [e for e in events if e["event"] == "model_call"]
    assert len(calls) == rec.model_calls
    assert all(0 < e["confidence"] < 1 and e["latency_s"] > 0 and e["output_tokens"] > 0 for e in calls)
    assert sum(e["context_tokens"] for e in calls) == rec.tokens_in


def test_token_counts_are_cached_per_message():
    c = TokenCounter()
    msgs = [HumanMessage("x" * 400, id="h1"), AIMessage("y" * 40, id="a1")]
    first = c.messages(msgs)
    assert first == (4 + 100) + (4 + 10)
    msgs[0].content = "changed"  # a cached message is not re-counted
    assert c.messages(msgs) == first
    # a new message is counted on its own, without re-counting the ones already seen
    assert c.messages(msgs + [HumanMessage("z" * 8, id="h2")]) == first + 4 + 2
    assert c.message(HumanMessage("changed", id="h3")) == 4 + 2


def test_fabricated_values_look_plausible_but_differ():
    rng = stream(0, "t")
    for v in ["O-5521", 118.5, 3, "abc", True]:
        f = fabricate(v, rng)
        assert f != v and type(f) is type(v)
