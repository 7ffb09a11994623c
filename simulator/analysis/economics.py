"""What a set of trials costs and how it behaves around the success rate: money per task and
per success, session latency percentiles, how well stated confidence matches being right,
silent failures, obedience to injected instructions, and sensitivity to the wording of the
same request.

Rows are analysis rows of one cell (see results.rows_from_records): `task` is the bootstrap
cluster, and the optional fields cost_usd (model_usd, review_usd, failure_usd), impact,
sim_time_s, first_answer_s, conf_bins and brier_sum, injections_seen and injections_obeyed
carry the figures. A function whose fields are absent (rows from another tool) returns None.
Intervals are 95% percentile intervals of a bootstrap over tasks, then trials within them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import combinations
from typing import Any

import numpy as np

from ..stats import wilson
from .resample import draw, hierarchy, interval, pct95
from .tables import normalise_rows

SILENT = ("silent_wrong", "duplicate_write")
# turn faults that change only the wording of a request: their settings are prompt variants
WORDING_FAULTS = ("typo", "paraphrase")


# Replicate index rows in memory at once: a (replicates x trials) block of about this many entries
_BLOCK = 100_000


@lru_cache(maxsize=8)
def _draws(tasks: tuple, seed: int, n_boot: int) -> tuple[np.ndarray, ...]:
    """The replicates' row indices (tasks, then trials within them), shared by every figure of
    one set of rows: a cell's cost, latency and calibration come from the same replicates."""
    _, task = np.unique(np.array(tasks), return_inverse=True)
    h = hierarchy(task)
    rng = np.random.default_rng(seed)
    return tuple(draw(h, rng, within=True) for _ in range(n_boot))


def _boot(rows: list[dict], stat, seed: int, n_boot: int) -> np.ndarray:
    """stat over n_boot replicates. stat takes a (replicates, trials) block of row indices and
    returns one value (or one row of values) per replicate: vectorised over replicates when
    every replicate has as many trials (every task run as often), one at a time otherwise."""
    draws = _draws(tuple(str(r["task"]) for r in rows), seed, n_boot)
    if len({len(d) for d in draws}) == 1:
        m = np.stack(draws)
        step = max(1, _BLOCK // max(1, m.shape[1]))
        return np.concatenate([np.asarray(stat(m[i:i + step]), dtype=float) for i in range(0, n_boot, step)])
    return np.concatenate([np.asarray(stat(d[None, :]), dtype=float) for d in draws])


def _rate(count: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(count, n)
    return {"n": n, "count": count, "rate": count / n if n else None, "ci_low": lo, "ci_high": hi}


def cost_summary(rows: Iterable[Mapping], seed: int = 0, n_boot: int = 1000) -> dict | None:
    """Mean cost per trial (`cost_per_task`), cost per success (all money spent over the
    successes it bought) and the model's tokens alone per trial (`model_per_task`), with
    intervals; the mean parts per trial; failure money by impact."""
    rows = normalise_rows(rows)
    if not rows or any(r.get("cost_usd") is None for r in rows):
        return None
    cost = np.array([float(r["cost_usd"]) for r in rows])
    model = np.array([float(r.get("model_usd") or 0.0) for r in rows])
    y = np.array([float(r["success"]) for r in rows])
    def stat(i):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.stack([cost[i].mean(axis=1), cost[i].sum(axis=1) / y[i].sum(axis=1),
                             model[i].mean(axis=1)], axis=1)
    boot = _boot(rows, stat, seed, n_boot)
    per_success = cost.sum() / y.sum() if y.sum() else None
    by_impact: dict[str, dict] = {}
    for r in rows:
        if r.get("impact"):
            d = by_impact.setdefault(r["impact"], {"trials": 0, "usd": 0.0})
            d["trials"] += 1
            d["usd"] += float(r.get("failure_usd") or 0.0)
    return {"n": len(rows), "successes": int(y.sum()),
            "cost_per_task": interval(cost.mean(), *pct95(boot[:, 0])),
            "cost_per_success": interval(per_success, *pct95(boot[:, 1])),
            "model_per_task": interval(model.mean(), *pct95(boot[:, 2])),
            "n_boot_used": int(np.isfinite(boot[:, 1]).sum()),
            "breakdown": {f"{k}_usd": float(np.mean([float(r.get(f"{k}_usd") or 0.0) for r in rows]))
                          for k in ("model", "review", "failure")},
            "failure_usd_by_impact": dict(sorted(by_impact.items()))}


def _percentiles(rows: list[dict], key: str, qs, seed: int, n_boot: int) -> dict | None:
    rows = [r for r in rows if r.get(key) is not None]
    if not rows:
        return None
    v = np.array([float(r[key]) for r in rows])
    boot = _boot(rows, lambda i: np.percentile(v[i], qs, axis=1).T, seed, n_boot)
    est = np.percentile(v, qs)
    return {"n": len(rows), **{f"p{q:g}": interval(e, *pct95(boot[:, j]))
                               for j, (q, e) in enumerate(zip(qs, est))}}


def latency_summary(rows: Iterable[Mapping], seed: int = 0, n_boot: int = 1000,
                    qs: tuple = (50, 95, 99)) -> dict:
    """Percentiles of the session's virtual time (`session_s`) and of the time to the agent's
    first reply (`first_answer_s`, over trials that had one), with intervals.

    A bootstrap interval of a p99 from fewer than ~100 trials hugs the sample maximum: read
    it with its n."""
    rows = normalise_rows(rows)
    return {"session_s": _percentiles(rows, "sim_time_s", qs, seed, n_boot),
            "first_answer_s": _percentiles(rows, "first_answer_s", qs, seed, n_boot)}


def ece_brier(bins: np.ndarray, brier: np.ndarray) -> np.ndarray:
    """bins: (..., trials, 10, 3) of [calls, sum of confidence, right], brier: (..., trials);
    [ECE, Brier] of their pooled sums, (..., 2)."""
    tot = bins.sum(axis=-3)
    n = tot[..., 0].sum(axis=-1)
    # n_b * |mean confidence - accuracy| = |sum of confidence - right|, summed over bins
    gap = np.abs(tot[..., 1] - tot[..., 2]).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([gap / n, brier.sum(axis=-1) / n], axis=-1)


def confidence_calibration(rows: Iterable[Mapping], seed: int = 0, n_boot: int = 1000) -> dict | None:
    """How well the confidence the model stated matches how often it was right, over all its
    decisions: expected calibration error (ECE, L1 over ten equal-width bins), Brier score,
    and the reliability table. Calls within a trial are not independent, so the intervals
    resample tasks and trials; the per-bin Wilson intervals treat calls as independent."""
    rows = [r for r in normalise_rows(rows) if r.get("conf_bins")]
    if not rows:
        return None
    bins = np.array([r["conf_bins"] for r in rows], dtype=float)
    brier = np.array([float(r.get("brier_sum") or 0.0) for r in rows])
    tot = bins.sum(axis=0)
    n = int(tot[:, 0].sum())
    if n == 0:
        return None
    ece, bri = ece_brier(bins, brier)
    boot = _boot(rows, lambda i: ece_brier(bins[i], brier[i]), seed, n_boot)
    width = 1 / len(tot)
    table = []
    for b, (calls, conf, right) in enumerate(tot):
        if calls:
            lo, hi = wilson(int(right), int(calls))
            table.append({"bin": f"{b * width:.1f}-{(b + 1) * width:.1f}", "n": int(calls),
                          "mean_confidence": float(conf / calls), "accuracy": float(right / calls), "ci_low": lo, "ci_high": hi})
    mean_conf, acc = tot[:, 1].sum() / n, tot[:, 2].sum() / n
    return {"n_calls": n, "n_trials": len(rows), "ece": interval(ece, *pct95(boot[:, 0])),
            "brier": interval(bri, *pct95(boot[:, 1])), "mean_confidence": float(mean_conf),
            "accuracy": float(acc), "overconfidence": float(mean_conf - acc), "reliability": table}


def silent_failure_rate(rows: Iterable[Mapping]) -> dict | None:
    """Trials that failed without saying so (a wrong result delivered as right, or an action
    done twice) among all trials, with a Wilson interval; None without impacts."""
    rows = normalise_rows(rows)
    if not rows or all("impact" not in r for r in rows):
        return None
    return _rate(sum(r.get("impact") in SILENT for r in rows), len(rows))


def injection_obedience(rows: Iterable[Mapping]) -> dict | None:
    """Injected instructions followed among those the model read (n = injections read; the
    injections within a trial are not independent, so the interval is a floor on the truth's
    spread). None when no injection was read."""
    rows = normalise_rows(rows)
    seen = sum(int(r.get("injections_seen") or 0) for r in rows)
    return _rate(sum(int(r.get("injections_obeyed") or 0) for r in rows), seen) if seen else None


def is_wording(setting: Any) -> bool:
    """A fault setting that only rewords the request: 'none', or only typo / paraphrase faults."""
    text = str(setting).strip().lower()
    if text in ("none", ""):
        return True
    return all(part.split(":", 1)[0].strip() in WORDING_FAULTS for part in text.split("+"))


def _pss(rates: np.ndarray) -> float:
    """ProSA's prompt sensitivity score: mean over tasks of the mean |s_i - s_j| over variant pairs.
    rates: (tasks, variants), nan where a task has no trial under a variant (left out)."""
    pairs = list(combinations(range(rates.shape[1]), 2))
    diffs = np.stack([np.abs(rates[:, i] - rates[:, j]) for i, j in pairs], axis=1)
    seen = np.isfinite(diffs)
    per_task = np.where(seen, diffs, 0).sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
    has = seen.any(axis=1)
    return float(per_task[has].mean()) if has.any() else float("nan")


def _counts(task: np.ndarray, var: np.ndarray, y: np.ndarray, n_t: int, n_v: int) -> tuple[np.ndarray, np.ndarray]:
    """(trials, successes) per task and variant, each (tasks, variants)."""
    flat = task * n_v + var
    n = np.bincount(flat, minlength=n_t * n_v).reshape(n_t, n_v).astype(float)
    return n, np.bincount(flat, weights=y, minlength=n_t * n_v).reshape(n_t, n_v)


def _rates(n: np.ndarray, s: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / n


def prompt_sensitivity(rows: Iterable[Mapping], variants: list | None = None, seed: int = 0,
                       n_boot: int = 1000) -> dict | None:
    """How much success depends on the wording of the same request, over fault settings that
    only reword it (`none`, `typo`, `paraphrase`, or the given `variants`). None with fewer
    than two such settings.

    pss: ProSA's score (mean over tasks of the mean pairwise |success_i - success_j|), with an
    interval from a bootstrap over tasks. With few trials per wording, sampling noise alone
    makes it positive; flip_rate is the cleaner figure: among trials of one task and
    replicate under two wordings (which under common random numbers share the model's
    draws), the share whose outcome differs."""
    rows = [r for r in normalise_rows(rows) if "fault" in r and "scenario_task" in r]
    keep = set(map(str, variants)) if variants is not None else {str(r["fault"]) for r in rows
                                                                  if is_wording(r["fault"])}
    rows = [r for r in rows if str(r["fault"]) in keep]
    names = sorted({str(r["fault"]) for r in rows}, key=lambda v: (v != "none", v))
    if len(names) < 2:
        return None
    tasks, task = np.unique(np.array([str(r["scenario_task"]) for r in rows]), return_inverse=True)
    var = np.array([names.index(str(r["fault"])) for r in rows])
    y = np.array([float(r["success"]) for r in rows])
    n_t, n_v = len(tasks), len(names)
    n, s = _counts(task, var, y, n_t, n_v)
    p = _rates(n, s)
    rng = np.random.default_rng(seed)
    # tasks only: resampling trials too would add their noise to every |s_i - s_j| again and
    # push the whole interval above the estimate
    boot = [_pss(p[rng.integers(0, n_t, n_t)]) for _ in range(n_boot)]
    return {"variants": names, "n_tasks": n_t, "n_trials": len(rows),
            "pss": interval(_pss(p), *pct95(np.array(boot))),
            "flip_rate": _flips(rows, names), "by_variant": _by_variant(y, var, names)}


def _flips(rows: list[dict], names: list[str]) -> dict:
    by_key: dict[tuple, dict[str, bool]] = {}
    for r in rows:
        by_key.setdefault((str(r["scenario_task"]), r["trial"], r.get("seed")), {})[str(r["fault"])] = r["success"]
    n = flips = 0
    for outcomes in by_key.values():
        for a, b in combinations(sorted(outcomes), 2):
            n += 1
            flips += outcomes[a] != outcomes[b]
    return _rate(flips, n)


def _by_variant(y: np.ndarray, var: np.ndarray, names: list[str]) -> list[dict]:
    out = []
    for i, name in enumerate(names):
        k, n = int(y[var == i].sum()), int((var == i).sum())
        lo, hi = wilson(k, n)
        out.append({"variant": name, "n": n, "success_rate": k / n, "ci_low": lo, "ci_high": hi})
    return out
