"""The regression gate: has a cell got worse than its baseline by more than a stated minimum?

A cell is one design, profile and fault setting, pooled over the sweep's scenarios and
lengths. Its unit is the task family (a scenario; a template's task at every length it runs
at, which share one difficulty draw and so are not independent): the same families run in
the baseline and in the new run, so each gives one difference of success rates, d_i =
baseline_i - run_i, and the test is a one-sided t-test on their mean (T - 1 degrees of
freedom). That is right whether or not the two runs share a seed. With another seed, the
model redraws each task's difficulty, and that variation (not only the trials' coin flips)
is what a nightly run meets from one night to the next; the spread of d_i carries it. With
the same seed, trials share their random numbers and d_i is small unless the code changed
what happened. Fewer than MIN_TASKS shared tasks cannot estimate that spread: the trial
becomes the unit (a two-proportion test), which is exact only for runs on the same seed.

A drop is a regression when it is significant after Holm's correction over the cells
(one family per metric) and at least the minimum effect. The same for H50 (a drop of at
least min_h50_drop, as a fraction) and cost per success (a rise of at least min_cost_rise),
both tested on the log scale with standard errors read off their bootstrap intervals.

The power reported is the minimum detectable drop: the smallest true drop this cell's
spread detects with probability `power` at the Bonferroni level alpha / m (Holm's first
step, so a conservative figure): (t_{1 - alpha/m} + t_{power}) * SE, and never below the
minimum effect, which the gate ignores by construction.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from scipy import stats

from .compare import holm

MIN_TASKS = 3
Z95 = 1.959963984540054
VERDICTS = ("regressed", "improved", "unchanged", "not enough data")


def success_test(base: Mapping[str, list], run: Mapping[str, list]) -> dict[str, Any] | None:
    """Drop in success (baseline - run) over the tasks both ran: {task: [trials, successes]}.
    One-sided p-values for a drop and for a rise; None when no task is shared."""
    shared = sorted(set(base) & set(run))
    shared = [t for t in shared if base[t][0] > 0 and run[t][0] > 0]
    if not shared:
        return None
    pb = np.array([base[t][1] / base[t][0] for t in shared])
    pr = np.array([run[t][1] / run[t][0] for t in shared])
    out = {"tasks": len(shared), "baseline": float(pb.mean()), "run": float(pr.mean()),
           "only_in_baseline": len(set(base) - set(run)), "only_in_run": len(set(run) - set(base))}
    if len(shared) >= MIN_TASKS:
        d = pb - pr
        se, df, unit = float(d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1, "family"
    else:  # the trial as the unit: a two-proportion test on the pooled counts
        nb, sb = sum(base[t][0] for t in shared), sum(base[t][1] for t in shared)
        nr, sr = sum(run[t][0] for t in shared), sum(run[t][1] for t in shared)
        out.update(baseline=sb / nb, run=sr / nr)
        pool = (sb + sr) / (nb + nr)
        se, df, unit = math.sqrt(pool * (1 - pool) * (1 / nb + 1 / nr)), math.inf, "trial"
    drop = out["baseline"] - out["run"]
    out.update(drop=drop, se=se, df=df, unit=unit, p_drop=_one_sided(drop, se, df), p_rise=_one_sided(-drop, se, df))
    half = se * (stats.t.ppf(0.975, df) if math.isfinite(df) else Z95)
    out.update(ci_low=drop - half, ci_high=drop + half)
    return out


def _one_sided(effect: float, se: float, df: float) -> float:
    """P(an effect this large or larger | no change), for a t (or, with infinite df, normal) statistic."""
    if se <= 0:
        return 0.0 if effect > 0 else 1.0
    return float(stats.t.sf(effect / se, df) if math.isfinite(df) else stats.norm.sf(effect / se))


def ratio_test(base: Mapping | None, run: Mapping | None, worse: str) -> dict[str, Any] | None:
    """run / baseline of a positive figure with a 95% interval ({estimate, ci_low, ci_high}),
    on the log scale; `worse` is "lower" (H50) or "higher" (cost). None when either side has
    no finite, positive interval (a horizon past every length tried, a design that never succeeded)."""
    sides = []
    for x in (base, run):
        vals = [x.get(k) if x else None for k in ("estimate", "ci_low", "ci_high")]
        if any(not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0 for v in vals):
            return None
        sides.append((math.log(vals[0]), (math.log(vals[2]) - math.log(vals[1])) / (2 * Z95)))
    (lb, sb), (lr, sr) = sides
    se = math.sqrt(sb * sb + sr * sr)
    change = lr - lb
    bad = -change if worse == "lower" else change
    return {"baseline": math.exp(lb), "run": math.exp(lr), "ratio": math.exp(change),
            "ratio_ci": [math.exp(change - Z95 * se), math.exp(change + Z95 * se)], "se_log": se,
            "p_worse": _one_sided(bad, se, math.inf), "p_better": _one_sided(-bad, se, math.inf)}


def detectable_drop(se: float, df: float, alpha: float, power: float, floor: float) -> float:
    """The smallest drop detected with probability `power` by a one-sided test at level alpha."""
    q = (lambda p: stats.t.ppf(p, df)) if math.isfinite(df) else stats.norm.ppf
    return max(floor, float((q(1 - alpha) + q(power)) * se))


def gate(baseline: Mapping[str, Mapping], run: Mapping[str, Mapping], *, min_effect: float = 0.05,
         min_h50_drop: float = 0.25, min_cost_rise: float = 0.25, alpha: float = 0.05,
         power: float = 0.8) -> dict[str, Any]:
    """Verdicts per cell. Each side maps a cell name to {tasks: {task: [n, successes]},
    horizon_50: {estimate, ci_low, ci_high}, cost_per_success: {...}, n_trials, ...}."""
    for name, v in (("min_effect", min_effect), ("min_h50_drop", min_h50_drop), ("min_cost_rise", min_cost_rise)):
        if not (math.isfinite(v) and 0 <= v < (10 if name == "min_cost_rise" else 1)):
            raise ValueError(f"{name} must be a number from 0 to {10 if name == 'min_cost_rise' else 1}, not {v}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must be between 0 and 1, not {alpha} and {power}")
    cells = []
    for name in sorted(set(baseline) | set(run)):
        b, r = baseline.get(name), run.get(name)
        c: dict[str, Any] = {"cell": name, **{k: (r or b).get(k) for k in ("agent", "profile", "fault")},
                             "n_baseline": (b or {}).get("n_trials", 0), "n_run": (r or {}).get("n_trials", 0)}
        if b is None or r is None:
            c["reason"] = "not in the run" if r is None else "not in the baseline"
        else:
            c["success"] = success_test(b["tasks"], r["tasks"])
            c["horizon_50"] = ratio_test(b.get("horizon_50"), r.get("horizon_50"), "lower")
            c["cost_per_success"] = ratio_test(b.get("cost_per_success"), r.get("cost_per_success"), "higher")
            if c["success"] is None:
                c["reason"] = "no task in common"
        cells.append(c)
    testable = [c for c in cells if c.get("success")]
    m = max(1, len(testable))
    for key, p_key in (("success", "p_drop"), ("success", "p_rise"), ("horizon_50", "p_worse"),
                       ("horizon_50", "p_better"), ("cost_per_success", "p_worse"), ("cost_per_success", "p_better")):
        fam = [c[key] for c in testable if c.get(key)]
        for t, p in zip(fam, holm([t[p_key] for t in fam])):
            t[p_key + "_holm"] = p
    for c in cells:
        c["verdict"], c["findings"] = _verdict(c, alpha, min_effect, min_h50_drop, min_cost_rise)
        s = c.get("success")
        if s:
            s["detectable_drop"] = detectable_drop(s["se"], s["df"], alpha / m, power, min_effect)
    counts = {v: sum(c["verdict"] == v for c in cells) for v in VERDICTS}
    return {"cells": cells, "counts": counts, "regressed": counts["regressed"] > 0, "alpha": alpha, "power": power,
            "tests_per_family": m, "min_effect": min_effect, "min_h50_drop": min_h50_drop,
            "min_cost_rise": min_cost_rise}


def _verdict(c: dict, alpha: float, min_effect: float, min_h50_drop: float, min_cost_rise: float):
    s, h, k = c.get("success"), c.get("horizon_50"), c.get("cost_per_success")
    if not s:
        return "not enough data", [c.get("reason", "no task in common")]
    worse, better = [], []
    if s["p_drop_holm"] < alpha and s["drop"] >= max(min_effect, 1e-12):
        worse.append(f"success fell {100 * s['drop']:.1f} points")
    if s["p_rise_holm"] < alpha and -s["drop"] >= max(min_effect, 1e-12):
        better.append(f"success rose {-100 * s['drop']:.1f} points")
    if h and h["p_worse_holm"] < alpha and h["ratio"] <= 1 - min_h50_drop:
        worse.append(f"H50 fell to {h['ratio']:.2f}x")
    if h and h["p_better_holm"] < alpha and h["ratio"] >= 1 / (1 - min_h50_drop):
        better.append(f"H50 rose to {h['ratio']:.2f}x")
    if k and k["p_worse_holm"] < alpha and k["ratio"] >= 1 + min_cost_rise:
        worse.append(f"cost per success rose to {k['ratio']:.2f}x")
    if k and k["p_better_holm"] < alpha and k["ratio"] <= 1 / (1 + min_cost_rise):
        better.append(f"cost per success fell to {k['ratio']:.2f}x")
    if worse:
        return "regressed", worse + better
    return ("improved", better) if better else ("unchanged", [])
