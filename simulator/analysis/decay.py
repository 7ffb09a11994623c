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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from .logistic import fit_logistic, fit_many, horizon, horizons, qkey
from .resample import draw, grouped, hierarchy, interval, value_arrays
from .tables import normalise_rows

_LN2 = math.log(2.0)
# Weibull shapes searched: far wider than agents show (k ~ 0.6 in Ord 2025).
_K_BOUNDS = (0.02, 50.0)
_LOG_K_BOUNDS = (math.log(_K_BOUNDS[0]), math.log(_K_BOUNDS[1]))


# ---------------------------------------------------------------- logistic horizon (METR)

def _logistic_template(d: dict[str, Any] | None, quantiles: Sequence[float], n_boot: int,
                       unit: str) -> dict[str, Any]:
    """Every key of a logistic_horizon result, in order, holding "nothing fitted yet"."""
    out: dict[str, Any] = {"unit": unit, "x": f"log2({unit})", "n_trials": 0, "n_tasks": 0,
                           "beta0": None, "beta1": None, "beta1_ci": None,
                           "log_likelihood": None}
    for q in quantiles:
        out[qkey(q)] = interval(None, None, None)
    out.update({"range": None, "extrapolated": None, "separated": None, "n_boot": int(n_boot),
                "n_boot_used": 0, "n_boot_dropped": 0,
                "n_skipped": 0 if d is None else d["skipped"], "reason": None})
    return out


def _unidentified(d: dict[str, Any], unit: str) -> str | None:
    """Why the data cannot identify a slope, or None when they can."""
    if len(d["levels"]) < 2:
        return f"fewer than 2 distinct values of {unit}: the slope is not identified"
    if d["y"].min() == d["y"].max():
        return (("every trial succeeded" if d["y"][0] else "every trial failed") +
                ": success does not cross any level inside the data")
    return None


def _bootstrap_horizons(d: dict[str, Any], x: np.ndarray, quantiles: Sequence[float],
                        n_boot: int, seed: int) -> tuple[dict[float, list], list, int]:
    """(horizons per quantile, slopes) of the replicates that have a horizon, and how many
    replicates were dropped for having none."""
    rng = np.random.default_rng(seed)
    h = hierarchy(d["task"])
    counts = [grouped(d, draw(h, rng, within=True)) for _ in range(n_boot)]
    nb, sb = np.array([c[0] for c in counts]), np.array([c[1] for c in counts])
    # A replicate that lost every failure, every success or all but one length has no
    # identified slope; refitting it would only inject the ridge's arbitrary answer.
    ok = ((nb > 0).sum(axis=1) >= 2) & (sb.sum(axis=1) > 0) & (sb.sum(axis=1) < nb.sum(axis=1))
    b0, b1 = fit_many(x, nb[ok], sb[ok])  # every replicate at once: one fit per replicate costs minutes
    hs = {q: horizons(b0, b1, q) for q in quantiles}
    # Replicates whose slope is not negative have no horizon at all; they are dropped and
    # counted, so a reader can see when the interval rests on a minority of replicates.
    kept = np.all([np.isfinite(hs[q]) for q in quantiles], axis=0) if len(b1) else np.zeros(0, bool)
    return {q: hs[q][kept].tolist() for q in quantiles}, b1[kept].tolist(), int(n_boot - kept.sum())


def _put_horizons(out: dict[str, Any], ests: dict[float, float], reps: dict[float, list],
                  quantiles: Sequence[float]) -> None:
    """Fill in each horizon with its percentile interval, and whether it lies outside the
    lengths tried."""
    lo_x, hi_x = out["range"]
    out["extrapolated"] = {}
    for q in quantiles:
        lo = hi = None
        if reps[q]:
            lo, hi = np.percentile(reps[q], [2.5, 97.5])
        out[qkey(q)] = interval(ests[q] if math.isfinite(ests[q]) else None, lo, hi)
        # A horizon outside the lengths tried is an extrapolation of the fitted curve.
        out["extrapolated"][f"{q * 100:g}"] = (None if not math.isfinite(ests[q])
                                                else not (lo_x <= ests[q] <= hi_x))


def _logistic_on(d: dict[str, Any] | None, quantiles: Sequence[float], n_boot: int, seed: int,
                 unit: str) -> dict[str, Any]:
    out = _logistic_template(d, quantiles, n_boot, unit)
    if d is None:
        out["reason"] = f"no rows with a positive {unit}"
        return out
    out["n_trials"] = int(len(d["y"]))
    out["n_tasks"] = int(d["task"].max() + 1)
    out["range"] = [float(d["levels"][0]), float(d["levels"][-1])]
    out["reason"] = _unidentified(d, unit)
    if out["reason"] is not None:
        return out

    x = np.log2(d["levels"])
    n, s = grouped(d)
    b0, b1, ll = fit_logistic(x, n, s)
    out.update({"beta0": b0, "beta1": b1, "log_likelihood": ll})
    # Perfect separation: the data only say the horizon lies between the longest length
    # always solved and the shortest always failed; the ridge picks a point in that gap.
    solved, failed = d["value"][d["y"] == 1], d["value"][d["y"] == 0]
    out["separated"] = bool(solved.max() < failed.min() or failed.max() < solved.min())
    if b1 >= 0:
        out["reason"] = "success does not fall with length (beta1 >= 0): no horizon"
    ests = {q: horizon(b0, b1, q) for q in quantiles}
    reps, slopes, dropped = _bootstrap_horizons(d, x, quantiles, n_boot, seed)
    out["n_boot_used"], out["n_boot_dropped"] = len(slopes), dropped
    _put_horizons(out, ests, reps, quantiles)
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
    out = _logistic_on(value_arrays(rows, "length"), quantiles, n_boot, seed, "length")
    if time_key is not None:
        out["time"] = _logistic_on(value_arrays(rows, time_key), quantiles, n_boot, seed, time_key)
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
    return value_arrays(rows, "length")


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
    out: dict[str, Any] = {"per_step_reliability": interval(None, None, None),
                           "half_length": interval(None, None, None), "log_likelihood": None,
                           "n_trials": 0, "n_tasks": 0, "n_boot": int(n_boot), "reason": None}
    if d is None:
        out["reason"] = "no rows with a positive length"
        return out
    out["n_trials"], out["n_tasks"] = int(len(d["y"])), int(d["task"].max() + 1)
    levels = d["levels"]
    n, s = grouped(d)
    hz, ll = _hazard_mle(levels, n, s)
    p = _p_of(hz)
    rng = np.random.default_rng(seed)
    h = hierarchy(d["task"])
    boot = []
    for _ in range(n_boot):
        nb, sb = grouped(d, draw(h, rng, within=False))
        boot.append(_p_of(_hazard_mle(levels, nb, sb)[0]))
    lo, hi = (np.percentile(boot, [2.5, 97.5]) if boot else (None, None))
    out["per_step_reliability"] = interval(p, lo, hi)
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


def _best_log_k(profile: Callable[[float], float]) -> tuple[float, float]:
    """(log k, log-likelihood) at the maximum of the profile over the searched shapes."""
    lk_lo, lk_hi = _LOG_K_BOUNDS
    # A coarse grid first: the profile is usually unimodal, but a bounded search started in
    # the wrong basin would report a local optimum without complaint.
    grid = np.linspace(lk_lo, lk_hi, 49)
    vals = [profile(g) for g in grid]
    i = int(np.argmax(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(lambda lk: -profile(lk), bounds=(a, b), method="bounded",
                                   options={"xatol": 1e-9})
    return (float(res.x), -float(res.fun)) if -res.fun >= vals[i] else (float(grid[i]), vals[i])


def _k_interval(profile: Callable[[float], float], lk: float,
                ll: float) -> tuple[float | None, float | None]:
    """95% profile-likelihood interval for k; None where it reaches the search bounds."""
    lk_lo, lk_hi = _LOG_K_BOUNDS
    cut = ll - 0.5 * float(stats.chi2.ppf(0.95, 1))
    gap = lambda x: profile(x) - cut
    k_lo = math.exp(optimize.brentq(gap, lk_lo, lk)) if lk > lk_lo and gap(lk_lo) < 0 else None
    k_hi = math.exp(optimize.brentq(gap, lk, lk_hi)) if lk < lk_hi and gap(lk_hi) < 0 else None
    return k_lo, k_hi


def _hazard_check(ll: float, ll_c: float, k: float, alpha: float) -> dict[str, Any]:
    """The Weibull (log-likelihood ll) against its k = 1 special case (ll_c)."""
    lr = max(0.0, 2.0 * (ll - ll_c))
    p_value = float(stats.chi2.sf(lr, 1))
    aic_c, aic_w = 2 * 1 - 2 * ll_c, 2 * 2 - 2 * ll
    better = "weibull" if p_value < alpha else "constant"
    return {
        "constant_log_likelihood": ll_c, "weibull_log_likelihood": ll,
        "aic_constant": aic_c, "aic_weibull": aic_w, "delta_aic": aic_c - aic_w,
        "lr_statistic": lr, "p_value": p_value, "alpha": alpha, "better_fit": better,
        # k < 1: the hazard falls with length (each step survived makes the next safer).
        "hazard_trend": "constant" if better == "constant" else
                        ("falling" if k < 1 else "rising"),
    }


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
    n, s = grouped(d)
    if len(levels) < 2:
        out["reason"] = "fewer than 2 distinct lengths: the shape k is not identified"
        return out
    if s.sum() in (0.0, n.sum()):
        out["reason"] = "every trial " + ("failed" if s.sum() == 0 else "succeeded") + \
                        ": the shape k is not identified"
        return out

    profile = lambda lk: _fixed_k(levels, n, s, math.exp(lk))[1]
    lk, ll = _best_log_k(profile)
    k = math.exp(lk)
    lam, _ = _fixed_k(levels, n, s, k)
    k_lo, k_hi = _k_interval(profile, lk, ll)
    lk_lo, lk_hi = _LOG_K_BOUNDS
    out.update({
        "lam": float(lam), "k": k, "k_ci_low": k_lo, "k_ci_high": k_hi,
        "k_at_bound": bool(min(abs(lk - lk_lo), abs(lk - lk_hi)) < 1e-3),
        "half_length": float(lam * _LN2 ** (1.0 / k)), "log_likelihood": ll,
        "hazard_check": _hazard_check(ll, profile(0.0), k, alpha),
    })
    return out
