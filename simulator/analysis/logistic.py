"""The logistic model behind METR's time horizon: the fit and the horizon it implies.

Shared by logistic_horizon (one set of trials) and fault_effects (one fit per fault
setting in every bootstrap replicate), which is why the fit works on binomial counts per
distinct length rather than on trials (Kwa et al. 2025, arXiv:2503.14499).
"""
from __future__ import annotations

import math

import numpy as np

# A vanishing ridge keeps the logistic MLE finite under perfect separation (every short task
# solved, every long one failed), where the unpenalised slope runs off to -infinity.
_RIDGE = 1e-4


def fit_logistic(x: np.ndarray, n: np.ndarray, s: np.ndarray) -> tuple[float, float, float]:
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


def horizon(b0: float, b1: float, q: float) -> float:
    """h_q = 2^((logit q - b0) / b1); inf when the slope does not point down."""
    if not (b1 < 0 and math.isfinite(b0)):
        return math.inf
    e = (math.log(q / (1 - q)) - b0) / b1
    return 2.0 ** e if e < 1000 else math.inf


def qkey(q: float) -> str:
    """The output key of the horizon at success level q: 0.5 -> "horizon_50"."""
    return f"horizon_{q * 100:g}"


def fit_many(x: np.ndarray, n: np.ndarray, s: np.ndarray, iterations: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """fit_logistic for many count tables at once (bootstrap replicates): n and s are (B, L)
    over the L values of x. Damped Newton with the same ridge, every row in step, so B fits
    cost a few dozen vectorised 2x2 solves. Returns (beta0, beta1), each (B,)."""
    tot = n.sum(axis=1)
    xm = (n * x).sum(axis=1) / np.where(tot > 0, tot, 1)
    xc = x[None, :] - xm[:, None]
    rate = np.clip(s.sum(axis=1) / np.where(tot > 0, tot, 1), 1e-3, 1 - 1e-3)
    b0, b1 = np.log(rate / (1 - rate)), np.zeros(len(n))
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(b0[:, None] + b1[:, None] * xc)))
        r, w = s - n * p, n * p * (1 - p)
        g0, g1 = r.sum(axis=1) - _RIDGE * b0, (r * xc).sum(axis=1) - _RIDGE * b1
        h00, h01 = w.sum(axis=1) + _RIDGE, (w * xc).sum(axis=1)
        h11 = (w * xc * xc).sum(axis=1) + _RIDGE
        det = h00 * h11 - h01 * h01
        d0, d1 = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        # a bounded step keeps separated replicates (slope running off) from overflowing exp()
        scale = np.minimum(1.0, 5.0 / np.maximum(np.abs(d0), np.abs(d1)).clip(1e-12))
        b0, b1 = b0 + scale * d0, b1 + scale * d1
    return b0 - b1 * xm, b1


def horizons(b0: np.ndarray, b1: np.ndarray, q: float) -> np.ndarray:
    """horizon() over arrays; nan where the slope does not point down or the horizon is past 2^1000."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = (math.log(q / (1 - q)) - b0) / b1
        return np.where((b1 < 0) & np.isfinite(b0) & (e < 1000), 2.0 ** np.minimum(e, 1000), np.nan)
