"""One-call summaries: analyze (everything about one set of trials) and fault_effects."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..stats import wilson
from .decay import constant_hazard_fit, logistic_horizon, weibull_fit
from .logistic import fit_many, horizons, qkey
from .passk import pass_at_k_curve, pass_hat_k_curve, task_counts
from .resample import draw, hierarchy, interval, pct95
from .tables import normalise_rows, plain, sort_key, success_by_cell


def analyze(rows: Iterable[Mapping], seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Success, reliability and decay with length for one set of trials, as plain JSON.

    Always: n_trials, n_tasks, successes, success_rate with its 95% Wilson interval
    (ci_low, ci_high), trials_per_task {min, max}, and the curves `pass_hat_k` (tau-bench)
    and `pass_at_k` (Chen et al. 2021), keyed "1".."K" with K the fewest trials of any task.

    When rows carry lengths: `by_length` (success_by_cell over length). When at least two
    distinct lengths occur: `horizon_50`, `horizon_80` (METR, arXiv:2503.14499) and
    `logistic` (the rest of that fit), `per_step_reliability` and `half_length` (constant
    hazard, Ord 2025) and `constant_hazard`, and `weibull` (weibull_fit). Otherwise those keys
    are None and `decay_reason` says why. Rows without a length are left out of the decay
    fits only (`n_with_length` counts the others). Both bootstraps use `seed`.
    """
    rows = normalise_rows(rows)
    if not rows:
        raise ValueError("no rows to analyse")
    n = len(rows)
    s = sum(int(r["success"]) for r in rows)
    counts = task_counts(rows)
    lo, hi = wilson(s, n)
    per_task = [t for t, _ in counts.values()]
    out: dict[str, Any] = {
        "n_trials": n, "n_tasks": len(counts), "successes": s, "success_rate": s / n,
        "ci_low": float(lo), "ci_high": float(hi),
        "trials_per_task": {"min": min(per_task), "max": max(per_task)},
        "pass_hat_k": pass_hat_k_curve(rows), "pass_at_k": pass_at_k_curve(rows),
        "n_with_length": 0, "by_length": None,
        "horizon_50": None, "horizon_80": None, "logistic": None,
        "per_step_reliability": None, "half_length": None, "constant_hazard": None,
        "weibull": None, "decay_reason": None,
    }
    with_len = [r for r in rows if "length" in r]
    out["n_with_length"] = len(with_len)
    if not with_len:
        out["decay_reason"] = "no row has a length"
        return out
    out["by_length"] = success_by_cell(with_len, ["length"])
    if len({r["length"] for r in with_len}) < 2:
        out["decay_reason"] = "every trial has the same length: decay is not identified"
        return out

    lh = logistic_horizon(with_len, quantiles=(0.5, 0.8), n_boot=n_boot, seed=seed)
    ch = constant_hazard_fit(with_len, seed=seed, n_boot=n_boot)
    out.update({
        "horizon_50": lh["horizon_50"], "horizon_80": lh["horizon_80"],
        "logistic": {k: v for k, v in lh.items() if k not in ("horizon_50", "horizon_80")},
        "per_step_reliability": ch["per_step_reliability"], "half_length": ch["half_length"],
        "constant_hazard": {k: v for k, v in ch.items()
                            if k not in ("per_step_reliability", "half_length")},
        "weibull": weibull_fit(with_len),
    })
    return out


def fault_effects(rows: Iterable[Mapping], fault_key: str = "fault", baseline: Any = "none",
                  seed: int = 0, n_boot: int = 1000, quantile: float = 0.5) -> list[dict]:
    """Per fault setting: success with a Wilson interval, the change from `baseline`, and
    (when lengths vary) the horizon at `quantile` and its ratio to the baseline's horizon.

    AgentChaos-style sweeps (ANCHORS: faults and propagation) ask how much a fault costs;
    the answer that transfers across task lengths is its effect on the METR horizon, not on
    one success rate. Intervals for the differences, horizons and ratios come from one joint
    hierarchical bootstrap: tasks are drawn once per replicate for every setting, then
    trials within each (task, setting). When the settings were run on the same tasks (common
    random numbers) this keeps the pairing, so the difference interval is the paired one;
    when they were not, it reduces to independent task bootstraps.

    Baseline first, then the other settings in sorted order. For success by fault x length,
    use success_by_cell(rows, [fault_key, "length"]).
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile!r}")
    rows = normalise_rows(rows)
    if not rows:
        raise ValueError("no rows to analyse")
    settings = _settings(rows, fault_key, baseline)
    t = _encode(rows, fault_key, settings)
    everything = np.arange(len(rows))
    est = (_rates(t, everything),
           _horizons(t, everything, quantile) if t.x is not None else None)
    boot = _bootstrap(t, seed, n_boot, quantile)
    hkey = qkey(quantile)
    return [_effect_row(t, f, v, fault_key, hkey, est, boot) for f, v in enumerate(settings)]


# ---------------------------------------------------------------- fault_effects, in parts

@dataclass(frozen=True)
class _Trials:
    """A fault sweep's rows as integer codes, in row order, for vectorised counting."""
    fcode: np.ndarray  # index of the row's setting in the settings list
    task: np.ndarray
    y: np.ndarray
    n_set: int
    x: np.ndarray | None  # log2 of the distinct lengths; None when lengths do not vary
    lcode: np.ndarray | None


def _settings(rows: list[dict], fault_key: str, baseline: Any) -> list[Any]:
    """The fault settings present: the one matching `baseline` first, the rest sorted."""
    for i, r in enumerate(rows):
        if fault_key not in r:
            raise ValueError(f"rows[{i}]: missing field {fault_key!r}")
    values: list[Any] = []
    for r in rows:
        v = plain(r[fault_key])
        if v not in values:
            values.append(v)
    # "none" from a CSV and None from JSON both name the no-fault baseline.
    base = next((v for v in values if v == baseline or str(v).lower() == str(baseline).lower()),
                None)
    if base is None and baseline not in values:
        raise ValueError(f"baseline {baseline!r} is not a value of {fault_key!r}: "
                         f"{sorted(values, key=sort_key)!r}")
    return [base] + sorted((v for v in values if v != base), key=sort_key)


def _encode(rows: list[dict], fault_key: str, settings: list[Any]) -> _Trials:
    index = {repr(v): i for i, v in enumerate(settings)}
    fcode = np.array([index[repr(plain(r[fault_key]))] for r in rows])
    _, task = np.unique(np.array([r["task"] for r in rows]), return_inverse=True)
    y = np.array([float(r["success"]) for r in rows])
    x = lcode = None
    lengths = [r.get("length") for r in rows]
    if all(v is not None for v in lengths) and len(set(lengths)) >= 2:
        levels, lcode = np.unique(np.array(lengths, dtype=float), return_inverse=True)
        x = np.log2(levels)
    return _Trials(fcode=fcode, task=task, y=y, n_set=len(settings), x=x, lcode=lcode)


def _rates(t: _Trials, idx: np.ndarray) -> np.ndarray:
    """Success rate per setting among the rows in idx (nan for a setting with none)."""
    n = np.bincount(t.fcode[idx], minlength=t.n_set).astype(float)
    s = np.bincount(t.fcode[idx], weights=t.y[idx], minlength=t.n_set)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / n


def _level_counts(t: _Trials, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(trials, successes) per setting and length among the rows in idx, each (settings, lengths)."""
    n_set, n_lev = t.n_set, len(t.x)
    flat = t.fcode[idx] * n_lev + t.lcode[idx]
    n = np.bincount(flat, minlength=n_set * n_lev).astype(float).reshape(n_set, n_lev)
    s = np.bincount(flat, weights=t.y[idx], minlength=n_set * n_lev).reshape(n_set, n_lev)
    return n, s


def _horizon_rows(x: np.ndarray, n: np.ndarray, s: np.ndarray, quantile: float) -> np.ndarray:
    """Horizon at `quantile` for each row of count tables n, s (rows, lengths); nan where the
    rules of logistic_horizon leave none: two lengths tried, both outcomes seen."""
    ok = ((n > 0).sum(axis=1) >= 2) & (s.sum(axis=1) > 0) & (s.sum(axis=1) < n.sum(axis=1))
    out = np.full(len(n), np.nan)
    if ok.any():
        out[ok] = horizons(*fit_many(x, n[ok], s[ok]), quantile)
    return out


def _horizons(t: _Trials, idx: np.ndarray, quantile: float) -> np.ndarray:
    """Horizon at `quantile` per setting among the rows in idx (nan where there is none)."""
    return _horizon_rows(t.x, *_level_counts(t, idx), quantile)


def _bootstrap(t: _Trials, seed: int, n_boot: int,
               quantile: float) -> tuple[np.ndarray, np.ndarray | None]:
    """(rates, horizons) per replicate and setting, from one joint hierarchical bootstrap:
    each replicate draws tasks once for every setting, keeping a paired design paired."""
    rng = np.random.default_rng(seed)
    hier = hierarchy(t.task, t.task * t.n_set + t.fcode)
    draws = [draw(hier, rng, within=True) for _ in range(n_boot)]
    boot_r = np.array([_rates(t, idx) for idx in draws])
    if t.x is None:
        return boot_r, None
    counts = [_level_counts(t, idx) for idx in draws]
    n = np.concatenate([c[0] for c in counts])  # (replicates x settings, lengths): fitted all at once
    s = np.concatenate([c[1] for c in counts])
    return boot_r, _horizon_rows(t.x, n, s, quantile).reshape(n_boot, t.n_set)


def _effect_row(t: _Trials, f: int, v: Any, fault_key: str, hkey: str,
                est: tuple[np.ndarray, np.ndarray | None],
                boot: tuple[np.ndarray, np.ndarray | None]) -> dict[str, Any]:
    """The result row of setting number f (value v); f = 0 is the baseline."""
    est_rate, est_h = est
    boot_r, boot_h = boot
    mine = t.fcode == f
    n, s = int(mine.sum()), int(t.y[mine].sum())
    lo, hi = wilson(s, n)
    row = {fault_key: v, "n": n, "n_tasks": int(len(np.unique(t.task[mine]))), "successes": s,
           "success_rate": s / n, "ci_low": float(lo), "ci_high": float(hi),
           "diff_from_baseline": None, hkey: None, f"{hkey}_ratio": None,
           "n_boot_used": None}
    if f > 0:
        row["diff_from_baseline"] = interval(est_rate[f] - est_rate[0],
                                             *pct95(boot_r[:, f] - boot_r[:, 0]))
    if boot_h is not None:
        row[hkey] = interval(est_h[f], *pct95(boot_h[:, f]))
        row["n_boot_used"] = int(np.isfinite(boot_h[:, f]).sum())
        if f > 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = boot_h[:, f] / boot_h[:, 0]
                row[f"{hkey}_ratio"] = interval(est_h[f] / est_h[0], *pct95(ratio))
    return row
