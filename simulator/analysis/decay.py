"""How success decays with task length: logistic horizons, constant hazard, Weibull.

Three views of the same curve, from the public work in ANCHORS.md:
- logistic_horizon: METR's regression of success on log2(length) and the length at which
  success crosses 50% / 80% (Kwa et al. 2025, arXiv:2503.14499);
- constant_hazard_fit: S(n) = p^n, a fixed chance of failing at every step (Ord 2025);
- weibull_fit: S(n) = exp(-(n/lam)^k), which tells whether the hazard falls (k < 1) or
  rises (k > 1) with length, against the constant hazard as the k = 1 special case.

Intervals come from bootstraps over tasks, the unit that was randomised: trials of one task
share its difficulty, so treating them as independent would make intervals too narrow
("Adding Error Bars to Evals", Miller 2024). All outputs are plain floats or None.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from .tables import normalise_rows

_LN2 = math.log(2.0)
# A vanishing ridge keeps the logistic MLE finite under perfect separation (every short task
# solved, every long one failed), where the unpenalised slope runs off to -infinity.
_RIDGE = 1e-4
# Weibull shapes searched: far wider than agents show (k ~ 0.6 in Ord 2025).
_K_BOUNDS = (0.02, 50.0)


# ---------------------------------------------------------------- data and resampling

def _arrays(rows: Iterable[Mapping], key: str) -> dict[str, Any] | None:
    """Task codes, values and outcomes for rows with a positive value under `key`."""
    tasks, vals, ys, skipped = [], [], [], 0
    for r in normalise_rows(rows):
        v = r.get(key)
        try:
            v = float(v)
        except (TypeError, ValueError):
            v = float("nan")
        if not (math.isfinite(v) and v > 0):
            skipped += 1
            continue
        tasks.append(r["task"])
        vals.append(v)
        ys.append(float(r["success"]))
    if not vals:
        return None
    _, task_code = np.unique(np.array(tasks, dtype=object).astype(str), return_inverse=True)
    levels, code = np.unique(np.array(vals), return_inverse=True)
    return {"task": task_code, "value": np.array(vals), "y": np.array(ys),
            "levels": levels, "code": code, "skipped": skipped}


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c), without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    return np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)


def _hierarchy(task: np.ndarray, cell: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Index rows as tasks -> cells -> trials for the resampler.

    A cell is a block of trials resampled among themselves; normally the task itself, but
    when one task is run under several settings (a paired fault design) each (task,
    setting) is its own cell, so a resampled task keeps its trial count in every setting.
    """
    cell = task if cell is None else cell
    order = np.lexsort((cell, task))
    t, c = task[order], cell[order]
    new_cell = np.r_[True, (t[1:] != t[:-1]) | (c[1:] != c[:-1])]
    cell_start = np.flatnonzero(new_cell)
    cell_size = np.diff(np.r_[cell_start, len(order)])
    cell_task = t[cell_start]
    new_task = np.r_[True, cell_task[1:] != cell_task[:-1]]
    task_cell_start = np.flatnonzero(new_task)
    task_cell_count = np.diff(np.r_[task_cell_start, len(cell_start)])
    return {"order": order, "cell_start": cell_start, "cell_size": cell_size,
            "task_cell_start": task_cell_start, "task_cell_count": task_cell_count}


def _draw(h: dict[str, np.ndarray], rng: np.random.Generator, within: bool) -> np.ndarray:
    """Row indices of one bootstrap replicate: tasks with replacement, then (if `within`)
    trials with replacement inside each drawn cell, as METR's hierarchical bootstrap."""
    n_tasks = len(h["task_cell_start"])
    tasks = rng.integers(0, n_tasks, n_tasks)
    cells = _ranges(h["task_cell_start"][tasks], h["task_cell_count"][tasks])
    sizes = h["cell_size"][cells]
    if within:
        pos = np.repeat(h["cell_start"][cells], sizes) + rng.integers(0, np.repeat(sizes, sizes))
    else:
        pos = _ranges(h["cell_start"][cells], sizes)
    return h["order"][pos]


def _grouped(d: dict[str, Any], idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(trials, successes) per distinct value, for the rows in idx (all rows if None)."""
    code = d["code"] if idx is None else d["code"][idx]
    y = d["y"] if idx is None else d["y"][idx]
    m = len(d["levels"])
    return (np.bincount(code, minlength=m).astype(float),
            np.bincount(code, weights=y, minlength=m))


def _interval(est: Any, lo: Any, hi: Any) -> dict[str, float | None]:
    f = lambda v: None if v is None or not math.isfinite(v) else float(v)
    return {"estimate": f(est), "ci_low": f(lo), "ci_high": f(hi)}


def _qkey(q: float) -> str:
    return f"horizon_{q * 100:g}"


# ---------------------------------------------------------------- logistic horizon (METR)

def _fit_logistic(x: np.ndarray, n: np.ndarray, s: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood (tiny ridge) logistic fit of s/n on x by damped Newton.

    Works on binomial counts per distinct x, so a bootstrap replicate costs a handful of
    2x2 solves whatever the number of trials. Returns (beta0, beta1, log-likelihood).
    """
    keep = n > 0
    x, n, s = x[keep], n[keep], s[keep]
    # Centring x makes the ridge on the intercept harmless and the Hessian well conditioned.
    xm = float(np.average(x, weights=n))
    xc = x - xm
    rate = min(max(s.sum() / n.sum(), 1e-3), 1 - 1e-3)
    b = np.array([math.log(rate / (1 - rate)), 0.0])

    def objective(b):
        eta = b[0] + b[1] * xc
        return float((s * eta - n * np.logaddexp(0.0, eta)).sum() - 0.5 * _RIDGE * (b @ b))

    f = objective(b)
    for _ in range(200):
        eta = b[0] + b[1] * xc
        p = 1.0 / (1.0 + np.exp(-eta))
        r = s - n * p
        w = n * p * (1 - p)
        g = np.array([r.sum(), (r * xc).sum()]) - _RIDGE * b
        H = np.array([[w.sum(), (w * xc).sum()], [(w * xc).sum(), (w * xc * xc).sum()]])
        step = np.linalg.solve(H + _RIDGE * np.eye(2), g)
        t = 1.0
        while True:
            nb = b + t * step
            nf = objective(nb)
            if nf >= f - 1e-12 or t < 1e-10:
                break
            t *= 0.5
        b, f = nb, nf
        if np.max(np.abs(t * step)) < 1e-10:
            break
    eta = b[0] + b[1] * xc
    ll = float((s * eta - n * np.logaddexp(0.0, eta)).sum())
    return float(b[0] - b[1] * xm), float(b[1]), ll


def _horizon(b0: float, b1: float, q: float) -> float:
    """h_q = 2^((logit q - b0) / b1); inf when the slope does not point down."""
    if not (b1 < 0 and math.isfinite(b0)):
        return math.inf
    e = (math.log(q / (1 - q)) - b0) / b1
    return 2.0 ** e if e < 1000 else math.inf


def _logistic_on(d: dict[str, Any] | None, quantiles: Sequence[float], n_boot: int, seed: int,
                 unit: str) -> dict[str, Any]:
    out: dict[str, Any] = {"unit": unit, "x": f"log2({unit})", "n_trials": 0, "n_tasks": 0,
                           "beta0": None, "beta1": None, "beta1_ci": None,
                           "log_likelihood": None}
    for q in quantiles:
        out[_qkey(q)] = _interval(None, None, None)
    out.update({"range": None, "extrapolated": None, "separated": None, "n_boot": int(n_boot),
                "n_boot_used": 0, "n_boot_dropped": 0,
                "n_skipped": 0 if d is None else d["skipped"], "reason": None})
    if d is None:
        out["reason"] = f"no rows with a positive {unit}"
        return out
    out["n_trials"] = int(len(d["y"]))
    out["n_tasks"] = int(d["task"].max() + 1)
    out["range"] = [float(d["levels"][0]), float(d["levels"][-1])]
    if len(d["levels"]) < 2:
        out["reason"] = f"fewer than 2 distinct values of {unit}: the slope is not identified"
        return out
    if d["y"].min() == d["y"].max():
        out["reason"] = ("every trial succeeded" if d["y"][0] else "every trial failed") + \
                        ": success does not cross any level inside the data"
        return out

    x = np.log2(d["levels"])
    n, s = _grouped(d)
    b0, b1, ll = _fit_logistic(x, n, s)
    out.update({"beta0": b0, "beta1": b1, "log_likelihood": ll})
    # Perfect separation: the data only say the horizon lies between the longest length
    # always solved and the shortest always failed; the ridge picks a point in that gap.
    solved, failed = d["value"][d["y"] == 1], d["value"][d["y"] == 0]
    out["separated"] = bool(solved.max() < failed.min() or failed.max() < solved.min())
    if b1 >= 0:
        out["reason"] = "success does not fall with length (beta1 >= 0): no horizon"
    ests = {q: _horizon(b0, b1, q) for q in quantiles}

    rng = np.random.default_rng(seed)
    h = _hierarchy(d["task"])
    reps, slopes, dropped = {q: [] for q in quantiles}, [], 0
    for _ in range(n_boot):
        idx = _draw(h, rng, within=True)
        nb, sb = _grouped(d, idx)
        ok = nb > 0
        # A replicate that lost every failure, every success or all but one length has no
        # identified slope; refitting it would only inject the ridge's arbitrary answer.
        if ok.sum() < 2 or sb.sum() in (0.0, nb.sum()):
            dropped += 1
            continue
        rb0, rb1, _ = _fit_logistic(x, nb, sb)
        hs = {q: _horizon(rb0, rb1, q) for q in quantiles}
        # Replicates whose slope is not negative have no horizon at all; they are dropped and
        # counted, so a reader can see when the interval rests on a minority of replicates.
        if not all(math.isfinite(v) for v in hs.values()):
            dropped += 1
            continue
        slopes.append(rb1)
        for q in quantiles:
            reps[q].append(hs[q])
    out["n_boot_used"], out["n_boot_dropped"] = len(slopes), dropped
    lo_x, hi_x = out["range"]
    out["extrapolated"] = {}
    for q in quantiles:
        lo = hi = None
        if reps[q]:
            lo, hi = np.percentile(reps[q], [2.5, 97.5])
        out[_qkey(q)] = _interval(ests[q] if math.isfinite(ests[q]) else None, lo, hi)
        # A horizon outside the lengths tried is an extrapolation of the fitted curve.
        out["extrapolated"][f"{q * 100:g}"] = (None if not math.isfinite(ests[q])
                                                else not (lo_x <= ests[q] <= hi_x))
    if slopes:
        out["beta1_ci"] = [float(v) for v in np.percentile(slopes, [2.5, 97.5])]
    return out


def logistic_horizon(rows: Iterable[Mapping], quantiles: Sequence[float] = (0.5, 0.8),
                     n_boot: int = 1000, seed: int = 0,
                     time_key: str | None = None) -> dict[str, Any]:
    """METR time horizon: logistic regression of success on x = log2(length).

    Kwa et al. 2025 (arXiv:2503.14499): the horizon at success level q is
    h_q = 2^((logit q - beta0) / beta1), reported for q = 50% and 80%, with a 95% interval
    from a hierarchical bootstrap (tasks with replacement, then trials within each drawn
    task; 2.5/97.5 percentiles). Replicates without a horizon (slope not negative, or a
    replicate missing every success, failure or all but one length) are dropped and counted
    in `n_boot_dropped`. The fit is maximum likelihood with a 1e-4 ridge, which only
    matters under perfect separation, where it keeps the slope finite.

    Returns beta0, beta1, beta1_ci, `horizon_50`, `horizon_80` (one key per quantile, each
    {"estimate", "ci_low", "ci_high"} in steps), n_boot_used, n_boot_dropped, `range` (the
    lengths tried) and `extrapolated` (per quantile: horizon outside that range). With fewer
    than 2 distinct lengths, or no successes or no failures, the horizons are None and
    `reason` says why. `separated` is True when every solved trial is shorter than every
    failed one: the horizon then lies in that gap, at a point set by the ridge.

    time_key (e.g. "sim_time_s"): also fit the same model on log2(row[time_key]) and put
    the result, horizons in that unit, under out["time"]. The value should describe the task
    (how long it takes when done), not the trial: a failed trial that stops early has a
    short time, which would make failure look like a property of short tasks.
    """
    for q in quantiles:
        if not 0 < q < 1:
            raise ValueError(f"quantiles must lie in (0, 1), got {q!r}")
    rows = normalise_rows(rows)
    out = _logistic_on(_arrays(rows, "length"), quantiles, n_boot, seed, "length")
    if time_key is not None:
        out["time"] = _logistic_on(_arrays(rows, time_key), quantiles, n_boot, seed, time_key)
    return out


# ---------------------------------------------------------------- hazard models (Ord 2025)

def _hazard_mle(m: np.ndarray, n: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """MLE of h in S = exp(-h m) from trials n and successes s per exposure m.

    Log-likelihood -h * sum(s m) + sum((n - s) log(1 - exp(-h m))) is concave in h and its
    score is decreasing, so the root of the score is the unique maximum. Solving on log h
    keeps full relative precision when h is tiny (p = exp(-h) close to 1, where the
    interesting half-lengths live), which an optimiser working on p in (0, 1) loses.
    Returns (h, log-likelihood); h = 0 when nothing failed, inf when nothing succeeded.
    """
    f = n - s
    a = float((s * m).sum())
    if f.sum() == 0:
        return 0.0, 0.0
    if a == 0:
        return math.inf, 0.0
    fm = f * m

    def score(u):
        with np.errstate(over="ignore", divide="ignore"):
            return -a + float((fm / np.expm1(math.exp(u) * m)).sum())

    lo, hi = -1.0, 1.0
    for _ in range(200):
        if score(lo) > 0:
            break
        lo -= 4.0
    for _ in range(200):
        if score(hi) < 0:
            break
        hi += 4.0
    u = optimize.brentq(score, lo, hi, xtol=1e-13, rtol=1e-13)
    hz = math.exp(u)
    ll = -hz * a + float((f * np.log(-np.expm1(-hz * m))).sum())
    return hz, ll


def _fixed_k(levels: np.ndarray, n: np.ndarray, s: np.ndarray, k: float) -> tuple[float, float]:
    """(lam, loglik) of the Weibull with shape k; exposures scaled by the longest length
    so that (n/lam)^k neither overflows nor underflows at extreme k."""
    top = float(levels[-1])
    # Clipped away from 0: at k = 50 a length ratio past ~1e6 would underflow to exactly 0.
    hz, ll = _hazard_mle(np.maximum((levels / top) ** k, 1e-290), n, s)
    lam = math.inf if hz == 0 else (0.0 if math.isinf(hz) else top * hz ** (-1.0 / k))
    return lam, ll


def _length_data(rows: Iterable[Mapping]) -> dict[str, Any] | None:
    return _arrays(rows, "length")


def _p_of(hz: float) -> float:
    return math.exp(-hz)


def _half(p: float) -> float | None:
    """ln 0.5 / ln p: the length at which S(n) = p^n falls to one half; None if unbounded."""
    if p >= 1.0:
        return None
    if p <= 0.0:
        return 0.0
    return math.log(0.5) / math.log(p)


def constant_hazard_fit(rows: Iterable[Mapping], seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Per-step reliability p under S(n) = p^n, by maximum likelihood.

    Ord 2025 (on METR's data): a constant hazard gives S(t) = 2^(-t/T50), so the half-length
    is ln 0.5 / ln p (p = 0.99 -> 69 steps). With mixed lengths there is no closed form; the
    likelihood sum over trials of s*n*log p + (1 - s)*log(1 - p^n) is maximised over the
    hazard -ln p (see _hazard_mle). The 95% interval is a percentile bootstrap over tasks
    (whole tasks with all their trials), mapped to the half-length, which is monotone in p.

    Returns `per_step_reliability` and `half_length` as {"estimate", "ci_low", "ci_high"}
    (a None half-length bound means unbounded: no failure at all in that replicate),
    `log_likelihood`, n_trials, n_tasks, n_boot, and `reason` when nothing can be fitted.
    """
    d = _length_data(rows)
    out: dict[str, Any] = {"per_step_reliability": _interval(None, None, None),
                           "half_length": _interval(None, None, None), "log_likelihood": None,
                           "n_trials": 0, "n_tasks": 0, "n_boot": int(n_boot), "reason": None}
    if d is None:
        out["reason"] = "no rows with a positive length"
        return out
    out["n_trials"], out["n_tasks"] = int(len(d["y"])), int(d["task"].max() + 1)
    levels = d["levels"]
    n, s = _grouped(d)
    hz, ll = _hazard_mle(levels, n, s)
    p = _p_of(hz)
    rng = np.random.default_rng(seed)
    h = _hierarchy(d["task"])
    boot = []
    for _ in range(n_boot):
        nb, sb = _grouped(d, _draw(h, rng, within=False))
        boot.append(_p_of(_hazard_mle(levels, nb, sb)[0]))
    lo, hi = (np.percentile(boot, [2.5, 97.5]) if boot else (None, None))
    out["per_step_reliability"] = _interval(p, lo, hi)
    hl = lambda v: None if v is None else _half(float(v))
    # The half-length grows with p, so the interval maps end to end.
    # ln 2 / h rather than from p: exp(-h) rounds away the digits of a tiny hazard.
    est = None if hz == 0 else (0.0 if math.isinf(hz) else _LN2 / hz)
    out["half_length"] = {"estimate": est, "ci_low": hl(lo), "ci_high": hl(hi)}
    out["log_likelihood"] = ll
    if s.sum() == n.sum():
        out["reason"] = "every trial succeeded: p = 1 and the half-length is unbounded"
    elif s.sum() == 0:
        out["reason"] = "every trial failed: p = 0"
    return out


def weibull_fit(rows: Iterable[Mapping], alpha: float = 0.05) -> dict[str, Any]:
    """S(n) = exp(-(n/lam)^k) by maximum likelihood, tested against the constant hazard.

    Ord 2025 reports k ~ 0.6 for agents: a hazard that falls with length, as it must when
    tasks differ in difficulty (the hard ones fail early, the survivors are easy). k = 1 is
    the constant hazard, so the two nest: `hazard_check` compares them by AIC and by a
    likelihood-ratio test (1 extra parameter, chi-square with 1 df); `better_fit` is
    "weibull" when the test rejects k = 1 at `alpha`, else "constant". `k_ci_low`/`k_ci_high`
    is the 95% profile-likelihood interval for k (None where it reaches the search bounds).
    Both the test and the interval treat trials as independent, so with many trials per task
    of varying difficulty they are optimistic; the task-bootstrap intervals of
    constant_hazard_fit and logistic_horizon do not have that problem.

    The fit profiles out lam: for fixed k the model is a constant hazard in n^k (a concave
    1-D problem), and the profile is maximised over log k.
    """
    d = _length_data(rows)
    out: dict[str, Any] = {"lam": None, "k": None, "k_ci_low": None, "k_ci_high": None,
                           "k_at_bound": None, "half_length": None, "log_likelihood": None,
                           "hazard_check": None, "n_trials": 0, "reason": None}
    if d is None:
        out["reason"] = "no rows with a positive length"
        return out
    out["n_trials"] = int(len(d["y"]))
    levels = d["levels"]
    n, s = _grouped(d)
    if len(levels) < 2:
        out["reason"] = "fewer than 2 distinct lengths: the shape k is not identified"
        return out
    if s.sum() in (0.0, n.sum()):
        out["reason"] = "every trial " + ("failed" if s.sum() == 0 else "succeeded") + \
                        ": the shape k is not identified"
        return out

    profile = lambda lk: _fixed_k(levels, n, s, math.exp(lk))[1]
    lk_lo, lk_hi = math.log(_K_BOUNDS[0]), math.log(_K_BOUNDS[1])
    # A coarse grid first: the profile is usually unimodal, but a bounded search started in
    # the wrong basin would report a local optimum without complaint.
    grid = np.linspace(lk_lo, lk_hi, 49)
    vals = [profile(g) for g in grid]
    i = int(np.argmax(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(lambda lk: -profile(lk), bounds=(a, b), method="bounded",
                                   options={"xatol": 1e-9})
    lk, ll = (float(res.x), -float(res.fun)) if -res.fun >= vals[i] else (float(grid[i]), vals[i])
    k = math.exp(lk)
    lam, _ = _fixed_k(levels, n, s, k)

    cut = ll - 0.5 * float(stats.chi2.ppf(0.95, 1))
    gap = lambda x: profile(x) - cut
    k_lo = math.exp(optimize.brentq(gap, lk_lo, lk)) if lk > lk_lo and gap(lk_lo) < 0 else None
    k_hi = math.exp(optimize.brentq(gap, lk, lk_hi)) if lk < lk_hi and gap(lk_hi) < 0 else None

    ll_c = profile(0.0)
    lr = max(0.0, 2.0 * (ll - ll_c))
    p_value = float(stats.chi2.sf(lr, 1))
    aic_c, aic_w = 2 * 1 - 2 * ll_c, 2 * 2 - 2 * ll
    better = "weibull" if p_value < alpha else "constant"
    out.update({
        "lam": float(lam), "k": k, "k_ci_low": k_lo, "k_ci_high": k_hi,
        "k_at_bound": bool(min(abs(lk - lk_lo), abs(lk - lk_hi)) < 1e-3),
        "half_length": float(lam * _LN2 ** (1.0 / k)), "log_likelihood": ll,
        "hazard_check": {
            "constant_log_likelihood": ll_c, "weibull_log_likelihood": ll,
            "aic_constant": aic_c, "aic_weibull": aic_w, "delta_aic": aic_c - aic_w,
            "lr_statistic": lr, "p_value": p_value, "alpha": alpha, "better_fit": better,
            # k < 1: the hazard falls with length (each step survived makes the next safer).
            "hazard_trend": "constant" if better == "constant" else
                            ("falling" if k < 1 else "rising"),
        },
    })
    return out
