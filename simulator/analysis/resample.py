"""Trials laid out for resampling, and the hierarchical bootstrap over tasks that uses them.

Intervals in this package come from bootstraps over tasks, the unit that was randomised:
trials of one task share its difficulty, so treating them as independent would make
intervals too narrow ("Adding Error Bars to Evals", Miller 2024). The helpers here index
rows as tasks -> cells -> trials once, then draw replicates as arrays of row indices, so a
replicate costs a few vectorised numpy calls whatever the number of trials.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .tables import normalise_rows


def value_arrays(rows: Iterable[Mapping], key: str) -> dict[str, Any] | None:
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


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c), without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    return np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)


def hierarchy(task: np.ndarray, cell: np.ndarray | None = None) -> dict[str, np.ndarray]:
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


def draw(h: dict[str, np.ndarray], rng: np.random.Generator, within: bool) -> np.ndarray:
    """Row indices of one bootstrap replicate: tasks with replacement, then (if `within`)
    trials with replacement inside each drawn cell, as METR's hierarchical bootstrap."""
    n_tasks = len(h["task_cell_start"])
    tasks = rng.integers(0, n_tasks, n_tasks)
    cells = ranges(h["task_cell_start"][tasks], h["task_cell_count"][tasks])
    sizes = h["cell_size"][cells]
    if within:
        pos = np.repeat(h["cell_start"][cells], sizes) + rng.integers(0, np.repeat(sizes, sizes))
    else:
        pos = ranges(h["cell_start"][cells], sizes)
    return h["order"][pos]


def grouped(d: dict[str, Any], idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(trials, successes) per distinct value, for the rows in idx (all rows if None)."""
    code = d["code"] if idx is None else d["code"][idx]
    y = d["y"] if idx is None else d["y"][idx]
    m = len(d["levels"])
    return (np.bincount(code, minlength=m).astype(float),
            np.bincount(code, weights=y, minlength=m))


def pct95(vals) -> tuple:
    """95% percentile interval of the finite values; (None, None) when there are none (a
    replicate that lost every success has no cost per success: it is left out, not zero)."""
    vals = np.asarray(vals, dtype=float)
    vals = vals[np.isfinite(vals)]
    return (None, None) if vals.size == 0 else tuple(np.percentile(vals, [2.5, 97.5]))


def interval(est: Any, lo: Any, hi: Any) -> dict[str, float | None]:
    """An estimate with its interval as plain floats; None for a missing or infinite end."""
    f = lambda v: None if v is None or not math.isfinite(v) else float(v)
    return {"estimate": f(est), "ci_low": f(lo), "ci_high": f(hi)}
