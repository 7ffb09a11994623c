"""Money per trial: tokens at the profile's prices, reviews at the scenario's rates, and what a
failure costs by how it reached the business; and the per-trial figures that feed
calibration and latency (confidence bins, Brier sum, time to the first answer)."""
import math

import pytest

from simulator.costs import charge, impact
from simulator.profiles import Price, Prices, ProfileError, get_profile
from simulator.records import Check, TrialRecord, model_figures
from simulator.scenario import Costs, ScenarioError, load_scenario_text

from conftest import run


def record(**kw) -> TrialRecord:
    base = dict(trial_id="t", spec={}, scenario="s", agent="a", profile="p", seed=0, replicate=0,
                outcome="failure", answer="Done.")
    return TrialRecord(**{**base, **kw})


@pytest.mark.parametrize("kw, expected", [
    (dict(outcome="success", failure_mode=None), None),
    (dict(outcome="error", answer=None), None),
    (dict(outcome="budget", failure_mode="max_model_calls"), "loud"),
    (dict(failure_mode="gave_up"), "loud"),
    (dict(failure_mode="awaiting_human"), "loud"),
    (dict(failure_mode="unhandled_rate_limited"), "loud"),
    (dict(failure_mode="wrong_final_state", answer=""), "loud"),  # it never said anything: a person notices
    (dict(failure_mode="premature_finish"), "silent_wrong"),  # it said done with steps left
    (dict(failure_mode="stale_arg", failure_cause="stale_arg"), "silent_wrong"),
    (dict(failure_mode="wrong_tool", checks=[Check(name="state refunds", passed=False,
                                                   expected={"R-1": {}}, actual={"R-1": {}, "R-2": {}})]),
     "duplicate_write"),
])
def test_a_failure_is_priced_by_how_it_reaches_the_business(kw, expected):
    assert impact(record(**kw)) == expected


def test_charge_prices_each_role_at_its_own_price_and_adds_reviews_and_the_failure():
    prices = Prices(input_per_mtok=2.0, output_per_mtok=8.0, roles={"summarizer": Price(input_per_mtok=0.5)})
    r = record(failure_mode="gave_up", tokens_by_role={"agent": [1_000_000, 10_000], "summarizer": [200_000, 5_000]},
               reviews=3, review_s=150.0)
    costs = Costs.model_validate({"failure": {"loud": 12.0}, "review": {"per_review": 0.5, "per_minute": 2.0}})
    c = charge(r, prices, costs).cost_usd
    assert c["model"] == pytest.approx(2.0 + 0.08 + 0.1 + 0.0)  # the summarizer's output price is its own 0
    assert c["review"] == pytest.approx(3 * 0.5 + 2.5 * 2.0)
    assert c["failure"] == 12.0
    assert c["total"] == pytest.approx(c["model"] + c["review"] + c["failure"])
    assert charge(record(outcome="success"), prices, Costs()).cost_usd["failure"] == 0.0


def test_model_figures_bin_stated_confidence_against_being_right():
    events = [{"event": "trial_start", "t": 10.0},
              {"event": "model_call", "role": "agent", "mode": "correct", "confidence": 0.95,
               "context_tokens": 100, "output_tokens": 10},
              {"event": "model_call", "role": "agent", "mode": "stale_arg", "confidence": 0.91,
               "context_tokens": 200, "output_tokens": 20},
              {"event": "model_call", "role": "summarizer", "mode": "summarize", "context_tokens": 50,
               "output_tokens": 5},
              {"event": "turn_end", "t": 12.5}, {"event": "turn_end", "t": 30.0}]
    f = model_figures(events)
    assert f["tokens_by_role"] == {"agent": [300, 30], "summarizer": [50, 5]}
    assert f["confidence_bins"][9] == [2, pytest.approx(1.86), 1]
    assert sum(b[0] for b in f["confidence_bins"]) == 2  # a summary states no confidence
    assert f["brier_sum"] == pytest.approx(0.05 ** 2 + 0.91 ** 2)
    assert f["first_answer_s"] == 2.5


def test_every_simulated_trial_carries_its_cost_and_figures():
    (r, events), = run("support_refund", "react", trials=1, seed=3, profile="weak")
    p = get_profile("weak").prices
    tin = sum(e["context_tokens"] for e in events if e["event"] == "model_call")
    assert r.tokens_by_role["agent"][0] == tin == r.tokens_in
    assert r.cost_usd["model"] == pytest.approx((r.tokens_in * p.input_per_mtok + r.tokens_out * p.output_per_mtok) / 1e6)
    assert math.isclose(r.cost_usd["total"], sum(r.cost_usd[k] for k in ("model", "review", "failure")))
    assert sum(b[0] for b in r.confidence_bins) == sum(e["event"] == "model_call" and "confidence" in e for e in events)
    assert 0 < r.first_answer_s <= r.sim_time_s


def test_a_partial_price_override_keeps_the_other_price():
    p = get_profile("strong", prices={"output_per_mtok": 20}).prices
    assert (p.input_per_mtok, p.output_per_mtok) == (2.5, 20.0)
    p = get_profile("strong", **{"prices.input_per_mtok": 3, "prices.roles.summarizer.output_per_mtok": 0.5}).prices
    assert (p.input_per_mtok, p.output_per_mtok, p.roles["summarizer"].output_per_mtok) == (3.0, 10.0, 0.5)
    with pytest.raises(ProfileError, match="base_hazard.x: base_hazard is not a group of settings"):
        get_profile("strong", **{"base_hazard.x": 1})


@pytest.mark.parametrize("value, words", [(-1, "greater than or equal to 0"), ("cheap", "valid number")])
def test_a_negative_or_non_numeric_price_is_refused_by_name(value, words):
    with pytest.raises(ProfileError, match=rf"prices\.input_per_mtok: .*{words}"):
        get_profile("strong", prices={"input_per_mtok": value})


SCENARIO = """\
name: tiny
tools:
  get:
    description: read
    args: {id: {type: string}}
    effect: {read: items, key: id}
world: {items: {A: {v: 1}}}
turns:
  - user: get A
    steps: [g]
golden_path:
  - {id: g, tool: get, args: {id: A}}
costs:
  failure:
    silent_wrong: %s
"""


@pytest.mark.parametrize("value, words", [("-5", "greater than or equal to 0"), ("lots", "valid number")])
def test_a_negative_or_non_numeric_impact_names_file_line_and_field(value, words):
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(SCENARIO % value, source="tiny.yaml")
    text = e.value.render()
    assert "tiny.yaml:15: " in text and "costs.failure.silent_wrong" in text and words in text


def test_costs_enter_the_scenario_digest_only_when_set():
    plain = load_scenario_text(SCENARIO.split("costs:")[0], source="a.yaml")
    default = load_scenario_text(SCENARIO % "100.0", source="b.yaml")
    changed = load_scenario_text(SCENARIO % "250", source="c.yaml")
    assert plain.digest() == default.digest() != changed.digest()
