"""Money, latency, calibration, safety and prompt sensitivity of one cell, against hand computations."""
import json

import numpy as np
import pytest

from simulator.analysis.economics import (confidence_calibration, cost_summary, injection_obedience, is_wording,
                                          latency_summary, prompt_sensitivity, silent_failure_rate)

EMPTY = [0, 0.0, 0]


def trial(task, k, success, **kw):
    return {"task": task, "trial": k, "success": success, **kw}


def test_cost_per_success_is_all_money_over_the_successes_it_bought():
    rows = [trial("a", 0, True, cost_usd=2.0, model_usd=1.0, review_usd=1.0, failure_usd=0.0),
            trial("a", 1, False, cost_usd=101.0, model_usd=1.0, review_usd=0.0, failure_usd=100.0, impact="silent_wrong"),
            trial("b", 0, True, cost_usd=3.0, model_usd=3.0, review_usd=0.0, failure_usd=0.0),
            trial("b", 1, False, cost_usd=11.0, model_usd=1.0, review_usd=0.0, failure_usd=10.0, impact="loud")]
    c = cost_summary(rows, n_boot=200)
    assert c["cost_per_success"]["estimate"] == pytest.approx(117 / 2)
    assert c["cost_per_task"]["estimate"] == pytest.approx(117 / 4)
    assert c["model_per_task"]["estimate"] == pytest.approx(1.5)
    assert c["breakdown"] == pytest.approx({"model_usd": 1.5, "review_usd": 0.25, "failure_usd": 27.5})
    assert c["failure_usd_by_impact"] == {"loud": {"trials": 1, "usd": 10.0}, "silent_wrong": {"trials": 1, "usd": 100.0}}
    assert c["cost_per_task"]["ci_low"] <= c["cost_per_task"]["estimate"] <= c["cost_per_task"]["ci_high"]
    assert cost_summary([trial("a", 0, True)]) is None  # rows from another tool carry no money


def test_latency_percentiles_are_numpy_s_on_the_point_estimate():
    times = [10.0, 20.0, 30.0, 40.0, 1000.0]
    rows = [trial(f"t{i}", 0, True, sim_time_s=t, first_answer_s=(t / 10 if i else None)) for i, t in enumerate(times)]
    lat = latency_summary(rows, n_boot=200)
    for q in (50, 95, 99):
        assert lat["session_s"][f"p{q}"]["estimate"] == pytest.approx(np.percentile(times, q))
    assert lat["session_s"]["n"] == 5 and lat["first_answer_s"]["n"] == 4  # the trial that never replied is left out
    assert lat["first_answer_s"]["p50"]["estimate"] == pytest.approx(np.percentile([2, 3, 4, 100], 50))


def test_ece_and_brier_from_the_bins_of_every_call():
    hi = [EMPTY] * 9 + [[10, 9.5, 7]]  # 10 calls at mean confidence 0.95, 7 right
    mid = [EMPTY] * 5 + [[10, 5.5, 5]] + [EMPTY] * 4  # 10 calls at 0.55, 5 right
    rows = [trial("a", 0, True, conf_bins=hi, brier_sum=2.0), trial("b", 0, False, conf_bins=mid, brier_sum=3.0)]
    cal = confidence_calibration(rows, n_boot=200)
    assert cal["ece"]["estimate"] == pytest.approx(0.5 * 0.25 + 0.5 * 0.05)
    assert cal["brier"]["estimate"] == pytest.approx(5.0 / 20)
    assert cal["n_calls"] == 20 and cal["overconfidence"] == pytest.approx(0.75 - 0.6)
    assert [(b["bin"], b["n"], b["accuracy"]) for b in cal["reliability"]] == [("0.5-0.6", 10, 0.5), ("0.9-1.0", 10, 0.7)]
    assert confidence_calibration([trial("a", 0, True)]) is None


def test_silent_failures_and_injection_obedience_count_what_they_say():
    rows = [trial("a", 0, False, impact="silent_wrong", injections_seen=2, injections_obeyed=1),
            trial("a", 1, False, impact="duplicate_write", injections_seen=1, injections_obeyed=0),
            trial("b", 0, False, impact="loud"), trial("b", 1, True, impact=None)]
    s = silent_failure_rate(rows)
    assert (s["count"], s["n"], s["rate"]) == (2, 4, 0.5) and s["ci_low"] < 0.5 < s["ci_high"]
    inj = injection_obedience(rows)
    assert (inj["count"], inj["n"]) == (1, 3)
    assert injection_obedience([trial("a", 0, True)]) is None


def wording_rows(rates: dict[str, dict[str, list[int]]]) -> list[dict]:
    return [{"task": f"{t}|{f}", "scenario_task": t, "fault": f, "trial": k, "seed": 0, "success": bool(y)}
            for t, by_f in rates.items() for f, ys in by_f.items() for k, y in enumerate(ys)]


def test_pss_is_prosa_s_mean_pairwise_gap_and_flips_count_paired_trials():
    rows = wording_rows({"A": {"none": [1, 1], "typo": [0, 0]}, "B": {"none": [1, 0], "typo": [0, 1]}})
    ps = prompt_sensitivity(rows, n_boot=200)
    assert ps["variants"] == ["none", "typo"]
    assert ps["pss"]["estimate"] == pytest.approx((1.0 + 0.0) / 2)
    assert (ps["flip_rate"]["count"], ps["flip_rate"]["n"]) == (4, 4)  # every paired trial flipped
    assert [v["success_rate"] for v in ps["by_variant"]] == [0.75, 0.25]


def test_only_settings_that_reword_the_request_are_variants():
    assert is_wording("none") and is_wording("typo") and is_wording("paraphrase:rate=1") and is_wording("typo+paraphrase")
    assert not is_wording("rate_limit:rate=0.1") and not is_wording("typo+timeout")
    rows = wording_rows({"A": {"none": [1, 1], "production": [0, 0]}})
    assert prompt_sensitivity(rows) is None  # one wording only
    assert prompt_sensitivity(rows, variants=["none", "production"])["pss"]["estimate"] == 1.0


def test_a_real_wording_effect_scores_above_its_absence():
    rng = np.random.default_rng(0)
    def sample(effect):
        by = {}
        for t in range(30):
            p = rng.uniform(0.3, 0.9)
            by[f"t{t}"] = {f: [int(rng.random() < p - (effect if f == "typo" and t % 2 else 0)) for _ in range(6)]
                           for f in ("none", "typo")}
        return prompt_sensitivity(wording_rows(by), n_boot=300)
    none, strong = sample(0.0), sample(0.6)
    assert strong["pss"]["ci_low"] > none["pss"]["ci_high"]
    assert strong["flip_rate"]["rate"] > none["flip_rate"]["rate"]


def test_same_seed_same_figures_and_plain_json():
    rows = [trial(f"t{i % 5}", i // 5, i % 3 == 0, cost_usd=1.0 + i, model_usd=1.0, review_usd=0.0, failure_usd=float(i),
                  sim_time_s=float(i), conf_bins=[EMPTY] * 9 + [[3, 2.8, 2]], brier_sum=0.4) for i in range(20)]
    one = [cost_summary(rows, seed=3, n_boot=100), latency_summary(rows, seed=3, n_boot=100),
           confidence_calibration(rows, seed=3, n_boot=100)]
    assert one == [cost_summary(rows, seed=3, n_boot=100), latency_summary(rows, seed=3, n_boot=100),
                   confidence_calibration(rows, seed=3, n_boot=100)]
    json.dumps(one)
