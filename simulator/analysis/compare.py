"""Paired comparison of designs under common random numbers: is B better than A under the
same faults, by how much, and at what cost?

Two designs run on one seed meet the same task, user, fault schedule and model draws, so a
trial of A and the trial of B with the same scenario, parameters, replicate, seed (and the
same values of whatever is not being compared) form a pair. Pairs remove the variation the
two trials share; what is left is the designs' difference ("Adding Error Bars to Evals",
Miller 2024: analyse per-pair differences, cluster on the unit that was randomised).

Rows need scenario_task (the cluster), trial, seed, agent, profile, fault, outcome and
success, length and sim_time_s, and optionally cost_usd. Differences are B - A. Intervals
are 95% percentile intervals of a bootstrap that draws scenario tasks, then pairs within
them, keeping each pair together; `diff_unpaired` draws A and B independently instead, to
show what pairing buys. p-values are exact McNemar tests on discordant pairs, Holm-adjusted
over every cell of every comparison returned.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy.stats import binomtest

from .economics import ece_brier, prompt_sensitivity
from .logistic import fit_many, horizons
from .resample import draw, hierarchy, interval, pct95

FIELDS = ("agent", "profile", "fault")
REQUIRED = ("scenario_task", "trial", "seed", "outcome", "success") + FIELDS


def compare(rows: Iterable[Mapping], by: tuple[str, ...] = ("agent",), baseline: str | None = None,
            within: tuple[str, ...] = ("fault",), seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Every design against `baseline` (or every pair of designs), overall and per cell of
    `within`: success, H50, cost per success and p95 session time, A, B and B - A."""
    rows = [dict(r) for r in rows]
    for i, r in enumerate(rows):
        missing = [k for k in REQUIRED if k not in r]
        if missing:
            raise ValueError(f"rows[{i}]: missing field {missing[0]!r}")
    keys = ("scenario_task", "trial", "seed") + tuple(k for k in FIELDS if k not in by)
    designs = _by_design(rows, by, keys)
    names = sorted(designs)
    if len(names) < 2:
        raise ValueError(f"only one design ({names[0] if names else 'none'}) when designs differ by "
                         f"{'+'.join(by)}: nothing to compare (try --by profile, or another results directory)")
    if baseline is not None and baseline not in designs:
        raise ValueError(f"design {baseline!r} is not in the results; designs: {', '.join(names)}")
    todo = [(baseline, d) for d in names if d != baseline] if baseline else list(combinations(names, 2))
    within = tuple(k for k in within if k not in by)
    rng = np.random.default_rng(seed)
    comparisons, unpaired = [], []
    for a, b in todo:
        pairs, reasons = _pair(designs[a], designs[b], a, b, keys)
        unpaired += reasons
        if not pairs:
            why = "; ".join(f"{u['trials']} of {u['design']}: {u['reason']}" for u in reasons) or "no trials"
            raise ValueError(f"{a} and {b} share no trial to pair: {why}")
        comparisons.append({"a": a, "b": b, "cells": _cells(pairs, within, rng, n_boot)})
    _holm([c for comp in comparisons for c in comp["cells"]])
    return {"by": list(by), "within": list(within), "baseline": baseline, "n_boot": n_boot, "seed": seed,
            "designs": [_design_row(d, designs[d], comparisons, tuple(k for k in ("agent", "profile") if k not in by),
                                    seed, n_boot) for d in names],
            "pairing": {"complete": not unpaired, "unpaired": unpaired,
                        "pairs": sum(c["cells"][0]["n_pairs"] for c in comparisons)},
            "comparisons": comparisons}


def _by_design(rows: list[dict], by: tuple[str, ...], keys: tuple[str, ...]) -> dict[str, dict[tuple, dict]]:
    out: dict[str, dict[tuple, dict]] = {}
    for r in rows:
        name = "@".join(str(r[k]) for k in by)
        key = tuple(r[k] for k in keys)
        mine = out.setdefault(name, {})
        if key in mine:
            raise ValueError(f"design {name} has two trials with the same {', '.join(keys)} "
                             f"({', '.join(map(str, key))}): name the designs apart before comparing")
        mine[key] = r
    return out


def _pair(ta: dict, tb: dict, a: str, b: str, keys: tuple[str, ...]) -> tuple[list[tuple], list[dict]]:
    """The (row A, row B) pairs, and why the other trials of either design are unpaired."""
    reasons: dict[tuple[str, str, str], int] = {}
    seeds_a, seeds_b = {k[2] for k in ta}, {k[2] for k in tb}
    alone = (f"the designs were run with different seeds ({', '.join(map(str, sorted(seeds_a)))} vs "
             f"{', '.join(map(str, sorted(seeds_b)))})" if not seeds_a & seeds_b else None)

    def note(design, other, why):
        reasons[(design, other, why)] = reasons.get((design, other, why), 0) + 1

    pairs = []
    for mine, theirs, me, other in ((ta, tb, a, b), (tb, ta, b, a)):
        for key, r in mine.items():
            partner = theirs.get(key)
            if r["outcome"] == "error":
                note(me, other, "it ended in a harness error")
            elif partner is None:
                note(me, other, alone or f"no trial of {other} with the same {', '.join(keys)}")
            elif partner["outcome"] == "error":
                note(me, other, "its partner ended in a harness error")
            elif me == a:
                pairs.append((r, partner))
    return pairs, [{"design": d, "against": o, "trials": n, "reason": w} for (d, o, w), n in sorted(reasons.items())]


@dataclass(frozen=True)
class _Pairs:
    """One cell's pairs as arrays (A and B side by side), for vectorised replicates."""
    task: np.ndarray
    ya: np.ndarray
    yb: np.ndarray
    length: np.ndarray
    time_a: np.ndarray
    time_b: np.ndarray
    cost_a: np.ndarray | None
    cost_b: np.ndarray | None
    bins_a: np.ndarray | None  # stated confidence per trial: (pairs, 10, 3), with the Brier sums
    bins_b: np.ndarray | None
    brier_a: np.ndarray | None
    brier_b: np.ndarray | None


def _arrays(pairs: list[tuple]) -> _Pairs:
    _, task = np.unique(np.array([str(ra["scenario_task"]) for ra, _ in pairs]), return_inverse=True)
    col = lambda side, k: np.array([float(p[side][k]) for p in pairs])
    costed = all(p[s].get("cost_usd") is not None for p in pairs for s in (0, 1))
    stated = all(p[s].get("conf_bins") for p in pairs for s in (0, 1))
    bins = lambda side: np.array([p[side]["conf_bins"] for p in pairs], dtype=float) if stated else None
    return _Pairs(task=task, ya=col(0, "success"), yb=col(1, "success"),
                  length=np.array([float(ra.get("length") or 0) for ra, _ in pairs]),
                  time_a=col(0, "sim_time_s"), time_b=col(1, "sim_time_s"),
                  cost_a=col(0, "cost_usd") if costed else None, cost_b=col(1, "cost_usd") if costed else None,
                  bins_a=bins(0), bins_b=bins(1), brier_a=col(0, "brier_sum") if stated else None,
                  brier_b=col(1, "brier_sum") if stated else None)


def _cells(pairs: list[tuple], within: tuple[str, ...], rng: np.random.Generator, n_boot: int) -> list[dict]:
    groups: dict[tuple, list[tuple]] = {}
    for p in pairs:
        groups.setdefault(tuple(p[0][k] for k in within), []).append(p)
    out = [{**{k: "all" for k in within}, **_stats(_arrays(pairs), rng, n_boot)}]
    for values in sorted(groups, key=lambda v: tuple(map(str, v))):
        out.append({**dict(zip(within, values)), **_stats(_arrays(groups[values]), rng, n_boot)})
    return out


def _draws(p: _Pairs, rng: np.random.Generator, n_boot: int) -> tuple[list, list]:
    """Paired replicates (tasks, then pairs within them) and a second, independent set."""
    h = hierarchy(p.task)
    return ([draw(h, rng, within=True) for _ in range(n_boot)],
            [draw(h, rng, within=True) for _ in range(n_boot)])


def _triple(est_a: float, est_b: float, ba: np.ndarray, bb: np.ndarray) -> dict:
    """A, B and B - A, each with its interval from the same (paired) replicates."""
    with np.errstate(invalid="ignore"):
        return {"a": interval(est_a, *pct95(ba)), "b": interval(est_b, *pct95(bb)),
                "diff": interval(est_b - est_a, *pct95(bb - ba))}


def _stats(p: _Pairs, rng: np.random.Generator, n_boot: int) -> dict:
    paired, other = _draws(p, rng, n_boot)
    mean = lambda y, idx: np.array([y[i].mean() for i in idx])
    a_only, b_only = int(((p.ya == 1) & (p.yb == 0)).sum()), int(((p.ya == 0) & (p.yb == 1)).sum())
    n_disc = a_only + b_only
    cell = {"n_pairs": len(p.ya), "n_tasks": int(len(np.unique(p.task))),
            "success_a": float(p.ya.mean()), "success_b": float(p.yb.mean()),
            "diff": interval(p.yb.mean() - p.ya.mean(), *pct95(mean(p.yb, paired) - mean(p.ya, paired))),
            "diff_unpaired": interval(p.yb.mean() - p.ya.mean(), *pct95(mean(p.yb, other) - mean(p.ya, paired))),
            "discordant": {"a_only": a_only, "b_only": b_only},
            "p_value": float(binomtest(b_only, n_disc, 0.5).pvalue) if n_disc else 1.0}
    cell.update(_h50(p, paired))
    cell["cost_per_success"] = None
    if p.cost_a is not None:
        per = lambda c, y, idx: np.array([c[i].sum() / y[i].sum() if y[i].sum() else np.nan for i in idx])
        est = lambda c, y: c.sum() / y.sum() if y.sum() else np.nan
        cell["cost_per_success"] = _triple(est(p.cost_a, p.ya), est(p.cost_b, p.yb),
                                           per(p.cost_a, p.ya, paired), per(p.cost_b, p.yb, paired))
    cell["ece"] = None
    if p.bins_a is not None:
        ece = lambda bins, brier, idx: np.array([ece_brier(bins[i], brier[i])[0] for i in idx])
        cell["ece"] = _triple(ece_brier(p.bins_a, p.brier_a)[0], ece_brier(p.bins_b, p.brier_b)[0],
                              ece(p.bins_a, p.brier_a, paired), ece(p.bins_b, p.brier_b, paired))
    p95 = lambda t, idx: np.array([np.percentile(t[i], 95) for i in idx])
    cell["p95_time_s"] = _triple(float(np.percentile(p.time_a, 95)), float(np.percentile(p.time_b, 95)),
                                 p95(p.time_a, paired), p95(p.time_b, paired))
    return cell


def _h50(p: _Pairs, paired: list) -> dict:
    """The METR horizon at 50% for A and B and its difference, fitted on counts per length."""
    levels, code = np.unique(p.length, return_inverse=True)
    if len(levels) < 2 or levels[0] <= 0:
        return {"h50": None, "h50_reason": "every pair has the same length: the horizon is not identified"}
    for side, y in (("A", p.ya), ("B", p.yb)):
        if y.min() == y.max():
            return {"h50": None, "h50_reason": f"design {side} {'succeeded' if y[0] else 'failed'} in every "
                                               "pair: the horizon is not identified"}
    x, m = np.log2(levels), len(levels)

    def fit(y, idx_list):
        n = np.stack([np.bincount(code[i], minlength=m) for i in idx_list]).astype(float)
        s = np.stack([np.bincount(code[i], weights=y[i], minlength=m) for i in idx_list])
        return horizons(*fit_many(x, n, s), 0.5)

    everything = [np.arange(len(p.ya))]
    ha, hb = fit(p.ya, everything)[0], fit(p.yb, everything)[0]
    return {"h50": _triple(ha, hb, fit(p.ya, paired), fit(p.yb, paired)), "h50_reason": None}


def _holm(cells: list[dict]) -> None:
    """Holm's step-down adjustment over all cells, in place (p_holm, significant)."""
    order = sorted(range(len(cells)), key=lambda i: cells[i]["p_value"])
    running, m = 0.0, len(cells)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * cells[i]["p_value"]))
        cells[i]["p_holm"] = running
        cells[i]["significant"] = running < 0.05


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given."""
    cells = [{"p_value": p} for p in p_values]
    _holm(cells)
    return [c["p_holm"] for c in cells]


def _design_row(name: str, trials: dict, comparisons: list[dict], others: tuple[str, ...], seed: int,
                n_boot: int) -> dict:
    errors = sum(r["outcome"] == "error" for r in trials.values())
    paired = max((c["cells"][0]["n_pairs"] for c in comparisons if name in (c["a"], c["b"])), default=0)
    # how much its success depends on the wording, when fault settings reword requests: per
    # value of what else varies (a design's profiles are different models)
    groups: dict[tuple, list[dict]] = {}
    for r in trials.values():
        if r["outcome"] != "error" and "task" in r:
            groups.setdefault(tuple(r[k] for k in others), []).append(r)
    sens = [{**dict(zip(others, key)), **got} for key, rows in sorted(groups.items(), key=str)
            if (got := prompt_sensitivity(rows, seed=seed, n_boot=n_boot))]
    return {"design": name, "trials": len(trials), "errors": errors, "paired": paired,
            "prompt_sensitivity": sens}
