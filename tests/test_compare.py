"""Paired comparison on hand-made and synthetic rows: closed forms, pairing, coverage, A/A."""
import json
import math

import numpy as np
import pytest

from simulator.analysis.compare import compare, holm
from simulator.analysis.logistic import fit_logistic, fit_many, horizon, horizons


def row(design, task, trial, success, *, seed=0, fault="none", length=4, time=10.0, cost=None, outcome=None):
    r = {"agent": design, "profile": "p", "fault": fault, "scenario_task": f"t{task}", "task": f"t{task}",
         "trial": trial, "seed": seed, "success": bool(success), "length": length, "sim_time_s": time,
         "outcome": outcome or ("success" if success else "failure")}
    if cost is not None:
        r["cost_usd"] = cost
    return r


def pairs(ya, yb, **kw):
    return [row("A", i // 4, i % 4, a, **kw) for i, a in enumerate(ya)] + \
           [row("B", i // 4, i % 4, b, **kw) for i, b in enumerate(yb)]


def overall(rows, **kw):
    return compare(rows, n_boot=kw.pop("n_boot", 200), **kw)["comparisons"][0]["cells"][0]


def test_mcnemar_is_exact_and_the_difference_is_the_mean_of_pair_differences():
    ya = [1] * 5 + [0] * 3
    yb = [0] * 5 + [0] * 3  # A only in 5 pairs, B only in none
    c = overall(pairs(ya, yb))
    assert c["discordant"] == {"a_only": 5, "b_only": 0}
    assert c["p_value"] == pytest.approx(2 * 0.5 ** 5)
    assert c["diff"]["estimate"] == pytest.approx(np.mean(yb) - np.mean(ya))
    same = overall(pairs([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]))  # 3 and 3 discordant
    assert same["p_value"] == pytest.approx(1.0)
    assert overall(pairs([1, 0], [1, 0]))["p_value"] == 1.0  # no discordant pair


def test_holm_steps_down_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_cost_per_success_and_p95_are_the_hand_computed_ones():
    rows = [row("A", 0, k, s, cost=c, time=t) for k, (s, c, t) in enumerate([(1, 2.0, 10), (0, 4.0, 20), (1, 6.0, 30)])]
    rows += [row("B", 0, k, 1, cost=1.0, time=5.0 * (k + 1)) for k in range(3)]
    c = overall(rows)
    assert c["cost_per_success"]["a"]["estimate"] == pytest.approx(12.0 / 2)
    assert c["cost_per_success"]["b"]["estimate"] == pytest.approx(1.0)
    assert c["p95_time_s"]["a"]["estimate"] == pytest.approx(np.percentile([10, 20, 30], 95))
    assert c["p95_time_s"]["diff"]["estimate"] == pytest.approx(np.percentile([5, 10, 15], 95) - np.percentile([10, 20, 30], 95))
    assert overall(pairs([1, 0], [1, 1]))["cost_per_success"] is None  # no cost on the rows


def test_unpaired_trials_are_counted_with_their_reason():
    rows = pairs([1, 0, 1, 1], [1, 1, 0, 1])
    rows.append(row("A", 9, 0, 1))  # no partner
    rows.append(row("A", 8, 0, 0, outcome="error"))
    rows.append(row("B", 7, 0, 0, outcome="error"))
    rows.append(row("A", 7, 0, 1))  # its partner is an error
    res = compare(rows, n_boot=50)
    reasons = {(u["design"], u["reason"].split(" with")[0]): u["trials"] for u in res["pairing"]["unpaired"]}
    assert reasons == {("A", "no trial of B"): 1, ("A", "it ended in a harness error"): 1,
                       ("B", "it ended in a harness error"): 1, ("A", "its partner ended in a harness error"): 1}
    assert not res["pairing"]["complete"] and res["comparisons"][0]["cells"][0]["n_pairs"] == 4


def test_bad_requests_say_what_is_wrong():
    rows = pairs([1, 0], [0, 1])
    with pytest.raises(ValueError, match="design 'C' is not in the results; designs: A, B"):
        compare(rows, baseline="C")
    with pytest.raises(ValueError, match=r"only one design \(A\)"):
        compare([r for r in rows if r["agent"] == "A"])
    with pytest.raises(ValueError, match="two trials with the same"):
        compare(rows + [rows[0]])
    apart = [row("A", 0, 0, 1, seed=0), row("B", 0, 0, 1, seed=7)]
    with pytest.raises(ValueError, match=r"share no trial to pair: .*different seeds \(0 vs 7\)"):
        compare(apart)
    with pytest.raises(ValueError, match="missing field 'scenario_task'"):
        compare([{k: v for k, v in r.items() if k != "scenario_task"} for r in rows])


def crn_rows(rng, n_tasks, trials, shift, *, same_noise=True):
    """Per-task difficulty; B's success probability is A's plus `shift`. With same_noise
    the two share each trial's uniform (common random numbers)."""
    rows = []
    for t in range(n_tasks):
        p = rng.uniform(0.3, 0.9)
        for k in range(trials):
            u = rng.random()
            v = u if same_noise else rng.random()
            rows += [row("A", t, k, u < p), row("B", t, k, v < p + shift)]
    return rows


def test_pairing_tightens_the_interval_under_common_random_numbers():
    c = overall(crn_rows(np.random.default_rng(1), 30, 4, -0.1), n_boot=400)
    width = lambda d: d["ci_high"] - d["ci_low"]
    assert width(c["diff"]) < 0.6 * width(c["diff_unpaired"])


@pytest.mark.parametrize("reps, floor", [(30, 0.8), pytest.param(200, 0.88, marks=pytest.mark.slow)])
def test_a_known_difference_is_found_with_its_sign_and_covered(reps, floor):
    rng = np.random.default_rng(2)
    covered = negative = 0
    for i in range(reps):
        c = overall(crn_rows(rng, 20, 4, -0.1), n_boot=200, seed=i)
        covered += c["diff"]["ci_low"] <= -0.1 <= c["diff"]["ci_high"]
        negative += c["diff"]["estimate"] < 0
    assert covered >= floor * reps and negative >= 0.9 * reps


def test_identical_designs_reject_at_most_at_the_nominal_rate():
    rng = np.random.default_rng(3)
    rejected = [overall(crn_rows(rng, 20, 4, 0.0, same_noise=False), n_boot=50)["p_value"] < 0.05 for _ in range(40)]
    assert sum(rejected) <= 0.05 * 40 + 2 * math.sqrt(0.05 * 0.95 * 40)  # ~4.8 of 40


def test_h50_difference_has_the_sign_of_a_faster_decay_and_needs_two_lengths():
    rng = np.random.default_rng(4)
    rows = []
    for t in range(12):
        for L in (2, 8, 32):
            for k in range(4):
                u = rng.random()
                rows += [row("A", f"{t}-{L}", k, u < 1 / (1 + (L / 20) ** 1.5), length=L),
                         row("B", f"{t}-{L}", k, u < 1 / (1 + (L / 6) ** 1.5), length=L)]
    h = overall(rows)["h50"]
    assert h["diff"]["estimate"] < 0 and h["a"]["estimate"] > h["b"]["estimate"]
    one = overall(pairs([1, 0, 1, 1], [1, 1, 0, 0]))
    assert one["h50"] is None and "same length" in one["h50_reason"]


def test_fit_many_agrees_with_the_one_at_a_time_fit():
    x = np.log2([4.0, 16.0, 64.0])
    rng = np.random.default_rng(5)
    n = rng.integers(3, 30, (50, 3)).astype(float)
    s = rng.binomial(n.astype(int), [0.9, 0.6, 0.2]).astype(float)
    b0, b1 = fit_many(x, n, s)
    for i in range(50):
        a0, a1, _ = fit_logistic(x, n[i], s[i])
        assert (b0[i], b1[i]) == pytest.approx((a0, a1), abs=1e-8)
        h = horizon(a0, a1, 0.5)
        got = horizons(b0[i:i + 1], b1[i:i + 1], 0.5)[0]
        assert (math.isnan(got) and not math.isfinite(h)) or got == pytest.approx(h, rel=1e-6)


def test_same_seed_same_answer_and_plain_json():
    rows = crn_rows(np.random.default_rng(6), 10, 3, -0.1)
    a, b = compare(rows, n_boot=100, seed=4), compare(rows, n_boot=100, seed=4)
    assert a == b
    json.dumps(a)


def test_ece_of_each_design_and_its_difference_come_from_the_stated_confidence():
    empty = [0, 0.0, 0]
    sure = [empty] * 9 + [[4, 3.8, 2]]  # mean 0.95, half right: ECE 0.45
    honest = [empty] * 9 + [[4, 3.8, 4]]  # mean 0.95, all right: ECE 0.05
    rows = pairs([1, 0, 1, 0], [1, 1, 1, 1])
    for r in rows:
        r["conf_bins"], r["brier_sum"] = (sure if r["agent"] == "A" else honest), 1.0
    c = overall(rows)
    assert c["ece"]["a"]["estimate"] == pytest.approx(0.45) and c["ece"]["b"]["estimate"] == pytest.approx(0.05)
    assert c["ece"]["diff"]["estimate"] == pytest.approx(-0.4)
    assert overall(pairs([1, 0], [1, 1]))["ece"] is None


def test_each_design_carries_its_prompt_sensitivity_when_settings_reword_requests():
    rows = []
    for f, ya, yb in (("none", [1, 1, 1, 1], [1, 1, 1, 1]), ("typo", [0, 0, 1, 1], [1, 1, 1, 1])):
        for side, ys in (("A", ya), ("B", yb)):
            rows += [row(side, i // 2, i % 2, y, fault=f) for i, y in enumerate(ys)]
    res = compare(rows, n_boot=50)
    sens = {d["design"]: d["prompt_sensitivity"][0] for d in res["designs"]}
    assert sens["A"]["flip_rate"]["count"] == 2 and sens["B"]["flip_rate"]["count"] == 0
    assert sens["A"]["pss"]["estimate"] == pytest.approx(0.5) and sens["B"]["pss"]["estimate"] == 0
