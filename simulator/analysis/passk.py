"""Reliability over repeated trials of the same task: pass^k and pass@k.

Both are means over tasks of an unbiased per-task estimate from n trials with c successes,
computed with exact integer binomials (math.comb) and exact fractions, so that the
tau-bench leaderboard figures are reproduced to the last digit rather than approximately.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from math import comb

import numpy as np

from .tables import normalise_rows


def task_counts(rows: Iterable[Mapping]) -> dict[str, tuple[int, int]]:
    """task -> (n trials, c successes)."""
    out: dict[str, tuple[int, int]] = {}
    for r in normalise_rows(rows):
        n, c = out.get(r["task"], (0, 0))
        out[r["task"]] = (n + 1, c + int(r["success"]))
    return out


def _eligible(counts: dict[str, tuple[int, int]], k: int) -> list[tuple[int, int]]:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    # A task with fewer than k trials has no unbiased estimate at k; it is left out
    # rather than guessed, as tau-bench does by running every task the same number of times.
    got = [nc for nc in counts.values() if nc[0] >= k]
    if not got:
        most = max((n for n, _ in counts.values()), default=0)
        raise ValueError(f"no task has at least k={k} trials (most trials on one task: {most})")
    return got


def pass_hat_k(rows: Iterable[Mapping], k: int) -> float:
    """pass^k: the chance that k independent trials of a task all succeed.

    tau-bench (sierra-research/tau-bench): mean over tasks of C(c, k) / C(n, k). It falls
    far more slowly than p^k when tasks differ in difficulty, which is the point of
    reporting it: it measures consistency, not average skill. Tasks with n < k are excluded.
    """
    return mean_pass_hat(_eligible(task_counts(rows), k), k)


def mean_pass_hat(counts: list[tuple[int, int]], k: int) -> float:
    """The mean over (n trials, c successes) pairs, all with n >= k, of C(c, k) / C(n, k)."""
    return float(sum(Fraction(comb(c, k), comb(n, k)) for n, c in counts) / len(counts))


def pass_at_k(rows: Iterable[Mapping], k: int) -> float:
    """pass@k: the chance that at least one of k trials succeeds.

    Chen et al. 2021 (Codex): mean over tasks of 1 - C(n - c, k) / C(n, k), the unbiased
    estimator from n >= k samples. Tasks with n < k are excluded.
    """
    got = _eligible(task_counts(rows), k)
    return float(sum(1 - Fraction(comb(n - c, k), comb(n, k)) for n, c in got) / len(got))


def _curve(rows: Iterable[Mapping], fn, max_k: int | None) -> dict[str, float]:
    rows = normalise_rows(rows)
    counts = task_counts(rows)
    if not counts:
        raise ValueError("no rows")
    # Up to the largest k every task allows, so each point of the curve averages the same tasks.
    top = min(n for n, _ in counts.values())
    if max_k is not None:
        top = min(top, max_k)
    return {str(k): fn(rows, k) for k in range(1, top + 1)}


def pass_hat_k_curve(rows: Iterable[Mapping], max_k: int | None = None) -> dict[str, float]:
    """{"1": pass^1, ..., "K": pass^K}, K = the fewest trials any task has (capped by max_k)."""
    return _curve(rows, pass_hat_k, max_k)


def pass_at_k_curve(rows: Iterable[Mapping], max_k: int | None = None) -> dict[str, float]:
    """{"1": pass@1, ..., "K": pass@K}, K as in pass_hat_k_curve."""
    return _curve(rows, pass_at_k, max_k)


def pass_hat_k_interval(rows: Iterable[Mapping], k: int, seed: int = 0, n_boot: int = 1000) -> dict:
    """pass^k with a 95% percentile interval from a bootstrap over tasks, and its n (tasks).

    Each task contributes its own unbiased estimate C(c, k) / C(n, k); tasks are the unit that
    was randomised, so resampling them carries both sampling and between-task spread."""
    got = _eligible(task_counts(rows), k)
    per_task = np.array([comb(c, k) / comb(n, k) for n, c in got])
    rng = np.random.default_rng(seed)
    boot = per_task[rng.integers(0, len(per_task), (n_boot, len(per_task)))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"k": k, "n_tasks": len(got), "estimate": mean_pass_hat(got, k), "ci_low": float(lo), "ci_high": float(hi)}
