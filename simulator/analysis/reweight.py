"""Re-scoring simulated trials under other profile parameters, and fitting them to a table.

Every draw the simulated model makes against its hazard is recorded with what its log-odds
were made of (see events.HazardTerms). A trial simulated under parameters theta0 is then
also a sample under theta, weighted by the likelihood ratio of its draws:

    w(theta) = prod over draws of  q(theta) / q(theta0)           if the draw erred
                                   (1 - q(theta)) / (1 - q(theta0)) otherwise

The task and step draws (z) stay fixed while parameters move, so these weights, and every
figure computed from them, are smooth in theta: common random numbers taken to the limit.
Far from theta0 the weights degenerate, so calibrate.py re-simulates at each new estimate.

Figures per task use the weighted k-subset estimators, the weighted versions of the
unbiased C(c, k) / C(n, k): with equal weights they reduce to it exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .passk import mean_pass_hat

# the parameters a table of outcomes can inform, in the order of a parameter vector
FITTABLE = ("base_hazard", "difficulty_sd", "step_difficulty_sd", "context_rot")
# their search bounds: a hazard from 1e-6 to 0.5 per decision, spreads and rot up to 6
# log-odds (past that every task is either trivial or impossible)
BOUNDS = {"base_hazard": (-13.8, 0.0), "difficulty_sd": (0.0, 6.0), "step_difficulty_sd": (0.0, 6.0),
          "context_rot": (0.0, 6.0)}
# a count no simulated task produced still has this much probability, so that one odd task
# in a table cannot send the log-likelihood to minus infinity
FLOOR = 1e-3
LN2 = math.log(2)
# how far one round of re-scoring may move each parameter from where the trials were
# simulated: within this box the weights stay usable (about half the replicates effective)
TRUST = np.array([1.0, 1.0, 1.0, 0.5])


@dataclass
class Draws:
    """Every hazard draw of a set of simulated trials, flattened (one entry per draw)."""
    trial: np.ndarray      # index of the trial the draw belongs to
    recall: np.ndarray     # a recall draw (scaled by recall_in_answer) rather than an error draw
    z_task: np.ndarray
    z_step: np.ndarray
    fixed: np.ndarray
    ambiguous: np.ndarray
    log2_ctx: np.ndarray   # log2 of the context tokens; -inf for none
    uncorrected: np.ndarray
    hit: np.ndarray
    n_trials: int


def to_vector(values: dict) -> np.ndarray:
    """Profile values -> the vector searched over (base_hazard on the logit scale)."""
    h = values["base_hazard"]
    return np.array([math.log(h / (1 - h)), values["difficulty_sd"], values["step_difficulty_sd"],
                     values["context_rot"]], dtype=float)


def to_values(v: np.ndarray) -> dict:
    return {"base_hazard": float(1 / (1 + math.exp(-v[0]))), "difficulty_sd": float(v[1]),
            "step_difficulty_sd": float(v[2]), "context_rot": float(v[3])}


def bend(u: np.ndarray, width: float) -> np.ndarray:
    """profiles.py's bend, on arrays: max(0, u), or width * log2(1 + 2^(u / width))."""
    if width <= 0:
        return np.maximum(0.0, u)
    return width * np.logaddexp(0.0, u / width * LN2) / LN2


def log_odds(d: Draws, v: np.ndarray, profile) -> np.ndarray:
    """Each draw's error log-odds under parameter vector v and the profile's other fields."""
    x = v[0] + v[1] * d.z_task + v[2] * d.z_step + d.fixed
    x = x + profile.self_conditioning * d.uncorrected + profile.ambiguity_penalty * d.ambiguous
    has_ctx = np.isfinite(d.log2_ctx)
    if v[3] and has_ctx.any():
        u = np.where(has_ctx, d.log2_ctx, 0.0) - math.log2(profile.effective_context)
        x = x + np.where(has_ctx, v[3] * bend(u, profile.context_softness), 0.0)
    return x


def trial_loglik(d: Draws, v: np.ndarray, profile) -> np.ndarray:
    """Log-likelihood of each trial's draws under v (up to terms that do not depend on v)."""
    x = log_odds(d, v, profile)
    # log q and log(1 - q) for q = sigmoid(x), computed without overflow
    log_q, log_not = -np.logaddexp(0.0, -x), -np.logaddexp(0.0, x)
    if d.recall.any():
        r = profile.recall_in_answer
        q = r * np.exp(log_q)
        log_q = np.where(d.recall, math.log(r) + log_q if r > 0 else -np.inf, log_q)
        log_not = np.where(d.recall, np.log1p(-np.minimum(q, 1 - 1e-12)), log_not)
    ll = np.where(d.hit, log_q, log_not)
    return np.bincount(d.trial, weights=ll, minlength=d.n_trials)


def esp(w: np.ndarray, degree: int) -> np.ndarray:
    """Elementary symmetric polynomials e_0..e_degree of each row of w (rows: tasks)."""
    e = np.zeros((w.shape[0], degree + 1))
    e[:, 0] = 1.0
    for j in range(w.shape[1]):
        e[:, 1:] = e[:, 1:] + w[:, j:j + 1] * e[:, :-1]
    return e


def count_probs(w: np.ndarray, s: np.ndarray, n: int) -> np.ndarray:
    """P(c of n trials succeed), c = 0..n, per task, from weighted replicates: the weighted
    n-subsets with exactly c successes (hypergeometric when the weights are equal)."""
    w = w / w.max(axis=1, keepdims=True)
    es, ef, ea = esp(w * s, n), esp(w * (1 - s), n), esp(w, n)[:, n:n + 1]
    return np.stack([es[:, c] * ef[:, n - c] for c in range(n + 1)], axis=1) / ea


def pass_hat(w: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
    """pass^k per task: the weighted share of k-subsets of replicates that all succeed."""
    w = w / w.max(axis=1, keepdims=True)
    return esp(w * s, k)[:, k] / esp(w, k)[:, k]


def weights(logw: np.ndarray) -> np.ndarray:
    """Per-task rows of log weights -> weights, each row scaled so its largest is 1."""
    return np.exp(logw - logw.max(axis=1, keepdims=True))


def ess(w: np.ndarray) -> np.ndarray:
    """Kish's effective number of replicates per task."""
    return w.sum(axis=1) ** 2 / (w ** 2).sum(axis=1)


@dataclass
class Cell:
    """One cell of the table (a length and context): the target's success counts per task
    and the simulated trials' positions, as a tasks x replicates matrix."""
    key: tuple
    counts: list[tuple[int, int]]   # (successes, trials) per target task
    rows: np.ndarray                # sim trial index, shape (sim tasks, replicates)
    success: np.ndarray             # 0/1, same shape


def cell_loglik(c: Cell, lw: np.ndarray, counts: list[tuple[int, int]] | None = None,
                tasks: np.ndarray | None = None) -> float:
    """Log-likelihood of the target's per-task success counts, each a draw from the mixture
    over simulated tasks of P(c of n)."""
    rows = c.rows if tasks is None else c.rows[tasks]
    w, s = weights(lw[rows]), c.success if tasks is None else c.success[tasks]
    total = 0.0
    by_n: dict[int, list[int]] = {}
    for succ, n in (c.counts if counts is None else counts):
        by_n.setdefault(n, []).append(succ)
    for n, succs in by_n.items():
        mix = count_probs(w, s, n).mean(axis=0)
        mix = (1 - FLOOR) * mix + FLOOR / (n + 1)
        total += float(np.log(mix[np.asarray(succs)]).sum())
    return total


def target_pass(counts: list[tuple[int, int]], k: int) -> float | None:
    """pass^k of a table's tasks: the mean over tasks with k or more trials of C(c, k) / C(n, k)."""
    got = [(n, c) for c, n in counts if n >= k]
    return mean_pass_hat(got, k) if got else None


def cell_misfit(c: Cell, lw: np.ndarray, counts: list[tuple[int, int]] | None = None,
                tasks: np.ndarray | None = None) -> float:
    """Squared distance between the table's pass^1..k in a cell and the simulated ones,
    times the cell's number of tasks: what the goodness-of-fit table shows, matched."""
    counts = c.counts if counts is None else counts
    rows = c.rows if tasks is None else c.rows[tasks]
    w, s = weights(lw[rows]), c.success if tasks is None else c.success[tasks]
    total = 0.0
    for k in range(1, max(n for _, n in counts) + 1):
        t = target_pass(counts, k)
        if t is not None:
            total += (float(pass_hat(w, s, k).mean()) - t) ** 2
    return len(counts) * total


OBJECTIVES = ("pass_k", "likelihood")


def fit(cells: list[Cell], draws: Draws, profile, v_sim: np.ndarray, free: list[str], *,
        objective: str = "pass_k",
        start: np.ndarray | None = None,
        resample: list[tuple[list, np.ndarray]] | None = None,
        trust: np.ndarray = TRUST) -> tuple[np.ndarray, float]:
    """The parameter vector that best fits the table by `objective`, moving only `free` parameters
    from `start` (default: v_sim, where the trials were simulated); `resample` swaps in
    bootstrap counts and simulated tasks per cell."""
    idx = [FITTABLE.index(f) for f in free]
    v0 = v_sim if start is None else start
    base = trial_loglik(draws, v_sim, profile)

    def full(u):
        v = v0.copy()
        v[idx] = u
        return v

    # pass_k: least squares on pass^1..k per cell (scaled to read like a log-likelihood);
    # likelihood: the table's per-task success counts under the simulated mixture
    score = cell_loglik if objective == "likelihood" else (lambda *a: -1000 * cell_misfit(*a))

    def neg(u):
        lw = trial_loglik(draws, full(u), profile) - base
        if resample is None:
            return -sum(score(c, lw) for c in cells)
        return -sum(score(c, lw, counts, tasks) for c, (counts, tasks) in zip(cells, resample))

    if not idx:
        return v0, -neg(np.array([]))
    box = [(max(BOUNDS[f][0], v_sim[i] - trust[i]), min(BOUNDS[f][1], v_sim[i] + trust[i]))
           for f, i in zip(free, idx)]
    res = minimize(neg, np.clip(v0[idx], [b[0] for b in box], [b[1] for b in box]), method="L-BFGS-B", bounds=box,
                   options={"eps": 1e-4, "maxiter": 200})
    return full(res.x), -float(res.fun)
