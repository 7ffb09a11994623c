"""The regression gate's statistics against closed forms, its verdicts, and its false-alarm
rate and power on synthetic nights with the nightly sweep's shape."""
import math

import numpy as np
import pytest
from scipy import stats

from simulator.analysis.compare import holm
from simulator.analysis.gate import detectable_drop, gate, ratio_test, success_test


def _cell(tasks, **extra):
    n = sum(v[0] for v in tasks.values())
    s = sum(v[1] for v in tasks.values())
    return {"agent": "react", "profile": "strong", "fault": "none", "n_trials": n, "successes": s, "tasks": tasks, **extra}


def test_success_test_is_a_t_test_on_per_task_differences():
    base = {"a": [4, 4], "b": [4, 3], "c": [4, 2], "d": [4, 4]}
    run = {"a": [4, 3], "b": [4, 1], "c": [4, 2], "d": [4, 2], "e": [4, 0]}
    got = success_test(base, run)
    d = np.array([0.25, 0.5, 0.0, 0.5])
    se = d.std(ddof=1) / 2
    assert got["tasks"] == 4 and got["only_in_run"] == 1 and got["unit"] == "family"
    assert got["drop"] == pytest.approx(d.mean())
    assert got["se"] == pytest.approx(se)
    assert got["p_drop"] == pytest.approx(stats.t.sf(d.mean() / se, 3))
    assert got["p_rise"] == pytest.approx(stats.t.sf(-d.mean() / se, 3))
    assert got["ci_low"] == pytest.approx(d.mean() - stats.t.ppf(0.975, 3) * se)


def test_with_fewer_than_three_tasks_the_trial_is_the_unit():
    got = success_test({"a": [40, 36]}, {"a": [40, 28]})
    pool = 64 / 80
    se = math.sqrt(pool * (1 - pool) * (2 / 40))
    assert got["unit"] == "trial"
    assert got["drop"] == pytest.approx(0.2)
    assert got["p_drop"] == pytest.approx(stats.norm.sf(0.2 / se))


def test_ratio_test_reads_standard_errors_off_the_intervals():
    base = {"estimate": 64.0, "ci_low": 32.0, "ci_high": 128.0}
    run = {"estimate": 16.0, "ci_low": 8.0, "ci_high": 32.0}
    got = ratio_test(base, run, "lower")
    se = math.sqrt(2) * math.log(4) / (2 * 1.959963984540054)
    assert got["ratio"] == pytest.approx(0.25)
    assert got["se_log"] == pytest.approx(se)
    assert got["p_worse"] == pytest.approx(stats.norm.sf(math.log(4) / se))
    # an unbounded horizon cannot be tested
    assert ratio_test(base, {"estimate": 1e3, "ci_low": 10.0, "ci_high": math.inf}, "lower") is None
    assert ratio_test(None, run, "lower") is None


def test_detectable_drop_closed_form():
    assert detectable_drop(0.02, 99, 0.05 / 12, 0.8, 0.05) == pytest.approx(
        (stats.t.ppf(1 - 0.05 / 12, 99) + stats.t.ppf(0.8, 99)) * 0.02)
    assert detectable_drop(0.001, 99, 0.05, 0.8, 0.05) == 0.05  # never below the minimum effect


def _tasks(rates, reps=4):
    return {f"t{i}": [reps, int(round(p * reps))] for i, p in enumerate(rates)}


def test_verdicts_and_holm_over_cells():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.5, 1.0, 60)
    p -= rng.uniform(0, 0.05, 60)  # not every task moves alike: the differences have a spread

    def cell(rates):
        return _cell(_tasks(rates, reps=100))
    base = {"same": cell(p), "worse": cell(p), "better": cell(p - 0.3), "small": cell(p), "gone": cell(p)}
    run = {"same": cell(p), "worse": cell(p - 0.3 + rng.uniform(0, 0.05, 60)), "better": cell(p),
           "small": cell(p - 0.03 + rng.uniform(-0.01, 0.01, 60)), "new": cell(p)}
    res = gate(base, run, min_effect=0.05)
    v = {c["cell"]: c["verdict"] for c in res["cells"]}
    assert v == {"same": "unchanged", "worse": "regressed", "better": "improved", "small": "unchanged",
                 "gone": "not enough data", "new": "not enough data"}
    assert res["regressed"] and res["counts"]["regressed"] == 1 and res["tests_per_family"] == 4
    tested = [c for c in res["cells"] if c.get("success")]
    assert [c["success"]["p_drop_holm"] for c in tested] == pytest.approx(holm([c["success"]["p_drop"] for c in tested]))
    # a significant drop below the minimum effect is not a regression; with no minimum it is
    small = next(c for c in res["cells"] if c["cell"] == "small")["success"]
    assert small["p_drop_holm"] < 0.05
    assert gate(base, run, min_effect=0.0)["counts"]["regressed"] == 2


def test_h50_and_cost_regressions_count_alone():
    tasks = _tasks([0.8] * 30)
    h = {"estimate": 64.0, "ci_low": 56.0, "ci_high": 72.0}
    k = {"estimate": 10.0, "ci_low": 9.0, "ci_high": 11.0}
    base = {"c": _cell(tasks, horizon_50=h, cost_per_success=k)}
    slow = {"c": _cell(tasks, horizon_50={"estimate": 32.0, "ci_low": 28.0, "ci_high": 36.0}, cost_per_success=k)}
    dear = {"c": _cell(tasks, horizon_50=h, cost_per_success={"estimate": 20.0, "ci_low": 18.0, "ci_high": 22.0})}
    assert gate(base, slow)["cells"][0]["findings"] == ["H50 fell to 0.50x"]
    assert gate(base, dear)["cells"][0]["findings"] == ["cost per success rose to 2.00x"]
    assert gate(base, base)["cells"][0]["verdict"] == "unchanged"


@pytest.mark.parametrize("bad", [{"min_effect": -0.1}, {"min_effect": 1.5}, {"min_effect": math.nan},
                                 {"alpha": 0}, {"min_h50_drop": 1.0}])
def test_bad_limits_are_refused(bad):
    with pytest.raises(ValueError):
        gate({}, {}, **bad)


def _night(rng, logit_p, reps, shift=0.0, tau=1.4):
    """One night: each task family's difficulty redrawn around its fixed part, then `reps`
    trials. tau = 1.4 logits gives per-family differences with sd 0.40 near 50% success over
    6 trials, about what nightly.yaml's weak cells show between two seeds."""
    z = logit_p + tau * rng.standard_normal(len(logit_p)) - shift
    k = rng.binomial(reps, 1 / (1 + np.exp(-z)))
    return {f"t{i}": [reps, int(x)] for i, x in enumerate(k)}


def _nights(seed, shift_cell=None, shift=0.0, cells=12, tasks=213, reps=6):
    """A baseline and a run of a nightly-shaped sweep: 12 cells x 213 families x 6 trials
    (3 lengths x 2 replicates)."""
    rng = np.random.default_rng(seed)
    fixed = [rng.normal(0.0, 1.0, tasks) for _ in range(cells)]
    base = {f"c{i}": _cell(_night(rng, fixed[i], reps)) for i in range(cells)}
    run = {f"c{i}": _cell(_night(rng, fixed[i], reps, shift if i == shift_cell else 0.0)) for i in range(cells)}
    return gate(base, run)


def test_false_alarms_stay_at_or_below_the_nominal_rate():
    """A/A: 200 pairs of nights of the same design with fresh seeds (difficulty redrawn)."""
    alarms = sum(_nights(s)["regressed"] for s in range(200))
    assert alarms <= 200 * 0.05 + 2 * math.sqrt(200 * 0.05 * 0.95)  # nominal plus two standard errors


def _planted(shift, reps=100):
    caught, others, drops, detectable = 0, 0, [], []
    for s in range(reps):
        res = _nights(1000 + s, shift_cell=3, shift=shift)
        c = next(c for c in res["cells"] if c["cell"] == "c3")
        drops.append(c["success"]["drop"])
        detectable.append(c["success"]["detectable_drop"])
        caught += c["verdict"] == "regressed"
        others += any(x["verdict"] == "regressed" for x in res["cells"] if x["cell"] != "c3")
    return caught, others, float(np.mean(drops)), float(np.mean(detectable))


def test_a_ten_point_drop_is_caught_at_the_stated_power():
    """0.6 logits cost about 10 points at these rates: caught in at least 80 of 100 nights."""
    caught, others, drop, detectable = _planted(0.6)
    assert 0.09 < drop < 0.11 and detectable < 0.1
    assert caught >= 80
    assert others <= 100 * 0.05 + 2 * math.sqrt(100 * 0.05 * 0.95)


def test_the_detectable_drop_is_caught_at_80_percent():
    """A true drop equal to the detectable drop the gate reports is caught about 80% of the time."""
    caught, _, drop, detectable = _planted(0.55)
    assert abs(drop - detectable) < 0.01
    assert 68 <= caught <= 92  # 80% within three standard errors of 100 nights
