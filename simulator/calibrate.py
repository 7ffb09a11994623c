"""`attrition calibrate`: fit a profile's hazard parameters to a table of outcomes.

The table is what `analyze` reads: one row per trial with a task id, success (or a reward)
and optionally the task's length and context tokens. Each cell of the table (a length and a
context size) is simulated on a template (`chain` by default) with many task variants and
replicates; every hazard draw of those trials is recorded (events.HazardTerms), so the same
trials can be re-scored under other parameters (analysis/reweight.py) and the parameters that
make the table most likely found by a smooth search. The task and step draws stay fixed
throughout (common random numbers). Each round re-simulates at the new estimate, so the
re-scoring never has to reach far; intervals come from a bootstrap over the table's tasks
and the simulated tasks together.

What a table cannot tell apart is left at the base profile and said so: the spread between
tasks needs repeated trials of a task; the split between task and step difficulty needs
several lengths as well; context rot needs several context sizes.
"""
from __future__ import annotations

import inspect
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .analysis.reweight import (FITTABLE, OBJECTIVES, TRUST, Cell, Draws, ess, fit, log_odds, pass_hat, target_pass,
                                to_values, to_vector, trial_loglik, weights)
from .analysis.tables import load_table
from .profile_refs import resolve_profile
from .profiles import get_profile
from .registry import find
from .results import rows_from_records
from .scenario_refs import parse_params
from .store import iter_records, results_dir

CONTEXT_COLUMNS = ("context_tokens", "context", "input_tokens")
# bootstrap refits may reach twice as far as a round's fit: an interval over 50-100 tasks is
# often wider than one round's box, and only its ends need to be located
BOOT_REACH = 2.0
# past this many distinct lengths or context sizes, values are pooled into half-doubling bins
MAX_LEVELS = 12


@dataclass
class Target:
    cells: dict[tuple, list[tuple[int, int]]]   # (length, context) -> (successes, trials) per task
    source: str
    has_length: bool
    has_context: bool
    trials: int = 0

    @property
    def tasks(self) -> int:
        return sum(len(v) for v in self.cells.values())

    @property
    def max_n(self) -> int:
        return max(n for v in self.cells.values() for _, n in v)


def read_rows(path: str | Path) -> tuple[list[dict], str]:
    p = Path(path)
    if p.is_dir():
        rows, _ = rows_from_records(iter_records(results_dir(p)))
        return rows, "attrition results"
    if not p.exists():
        raise LookupError(f"no such results directory or table: {p}")
    return load_table(p), "table"


def _level(v: float) -> float:
    """A value pooled to the nearest half doubling."""
    return float(round(2 ** (round(2 * math.log2(v)) / 2))) if v > 0 else 0.0


def read_target(paths: list[str | Path], where: dict[str, Any] | None = None) -> Target:
    """The table(s) as success counts per task and cell. Raises ValueError naming the file
    and task for a table that cannot be fitted as it is."""
    rows, sources = [], []
    for p in paths:
        got, kind = read_rows(p)
        sources.append(f"{p} ({kind})")
        rows += [{**r, "_file": str(p), "task": f"{p}|{r['task']}" if len(paths) > 1 else r["task"]} for r in got]
    for k, v in (where or {}).items():
        rows = [r for r in rows if str(r.get(k)) == str(v)]
    name = ", ".join(map(str, paths))
    if not rows:
        raise ValueError(f"{name}: no trials to calibrate on" + (" after --where" if where else ""))
    for k in ("agent", "profile", "fault"):
        seen = sorted({str(r[k]) for r in rows if r.get(k) is not None})
        if len(seen) > 1:
            raise ValueError(f"{name}: the trials mix {k}s ({', '.join(seen[:5])}); calibrate one at a time, "
                             f"e.g. --where {k}={seen[0]}")
    ctx_col = next((c for c in CONTEXT_COLUMNS if any(c in r for r in rows)), None)
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(r)
    lengths = {r.get("length") for r in rows} - {None}
    contexts = {r.get(ctx_col) for r in rows} - {None} if ctx_col else set()
    pool_l, pool_c = len(lengths) > MAX_LEVELS, len(contexts) > MAX_LEVELS
    cells: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for task, trs in sorted(by_task.items()):
        keys = set()
        for r in trs:
            length = r.get("length")
            ctx = r.get(ctx_col) if ctx_col else None
            if ctx is not None:
                try:
                    ctx = float(ctx)
                except (TypeError, ValueError):
                    raise ValueError(f"{r['_file']}: task {task}: field '{ctx_col}': expected a number of "
                                     f"tokens, got {ctx!r}") from None
                if not 0 <= ctx <= 10_000_000:
                    raise ValueError(f"{r['_file']}: task {task}: field '{ctx_col}': expected 0 to "
                                     f"10,000,000 tokens, got {ctx:g}")
            keys.add((_level(length) if pool_l and length else length, _level(ctx) if pool_c and ctx else ctx))
        if len(keys) > 1:
            raise ValueError(f"{trs[0]['_file']}: task {task}: its trials have different lengths or context "
                             "sizes; give each a task id of its own")
        cells[keys.pop()].append((sum(bool(r["success"]) for r in trs), len(trs)))
    return Target(dict(cells), "; ".join(sources), bool(lengths), bool(contexts), trials=len(rows))


def unidentified(t: Target) -> dict[str, str]:
    """Parameter -> why the table cannot inform it."""
    out = {}
    repeated = t.max_n >= 2
    n_len = len({k[0] for k in t.cells})
    n_ctx = len({k[1] for k in t.cells})
    if not repeated:
        out["difficulty_sd"] = "needs repeated trials of a task (the table has one per task)"
    if not repeated or n_len < 2:
        out["step_difficulty_sd"] = ("needs repeated trials at two or more task lengths (the table has "
                                     f"{n_len} length{'s' if n_len != 1 else ''}"
                                     + ("" if repeated else ", one trial per task") + ")")
    if n_ctx < 2:
        out["context_rot"] = "needs two or more context sizes (a context_tokens column)"
    return out


@dataclass
class Sim:
    """Simulated trials of every cell at one parameter vector."""
    v: np.ndarray
    draws: Draws
    cells: list[Cell]
    profile: Any


def template_of(scenario: str) -> tuple[str, dict, set]:
    name, _, rest = scenario.partition(":")
    entry = find("template", name)
    if entry is None:
        raise ValueError(f"--scenario {scenario!r}: calibration simulates a template (e.g. chain, recall), "
                         "which it varies by task and length; see `attrition list templates`")
    return name, parse_params(rest) if rest else {}, set(inspect.signature(entry.obj).parameters)


def plan(t: Target, scenario: str, length: int, tasks: int, replicates: int) -> list[tuple[tuple, dict]]:
    """(cell key, template params) for every simulated task."""
    name, fixed, accepts = template_of(scenario)
    if "task" not in accepts:
        raise ValueError(f"--scenario {scenario}: template {name} has no 'task' parameter to draw task variants from")
    if t.has_length and "length" not in accepts:
        raise ValueError(f"the table has task lengths but template {name} has no 'length' parameter")
    if t.has_context and "context" not in accepts:
        raise ValueError(f"the table has context sizes but template {name} has no 'context' parameter; "
                         "use --scenario recall")
    out = []
    for key in sorted(t.cells, key=str):
        n_tasks = max(tasks, len(t.cells[key]))
        for i in range(n_tasks):
            p = dict(fixed, task=i)
            if "length" in accepts:
                p["length"] = int(key[0]) if key[0] is not None else p.get("length", length)
            if key[1] is not None:
                p["context"] = int(key[1])
            out.append((key, p))
    return out


def simulate(t: Target, tasks: list[tuple[tuple, dict]], scenario: str, v: np.ndarray, *, profile: str, agent: str,
             replicates: int, seed: int, workers: int | None, tick: Callable[[Any], None] | None = None) -> Sim:
    from .executors import execute
    from .jobs import make_specs
    base = resolve_profile(profile)
    params = {k: val for k, val in base.params.items() if k != "name"} | to_values(v)
    prof = get_profile(base.base, **params)
    name = scenario.partition(":")[0]
    specs, where = [], {}
    for ti, (key, p) in enumerate(tasks):
        for spec in make_specs(name, p, agent, trials=replicates, seed=seed, profile=base.base, profile_params=params):
            where[spec.id] = (ti, spec.replicate)
            specs.append(spec)
    cols = {k: [] for k in ("trial", "recall", "z_task", "z_step", "fixed", "ambiguous", "log2_ctx", "uncorrected",
                            "hit", "p")}
    success = np.zeros((len(tasks), replicates))
    index = np.arange(len(tasks) * replicates).reshape(len(tasks), replicates)
    failed = []
    for rec, events in execute(specs, workers=workers):
        ti, r = where[rec.trial_id]
        if rec.outcome == "error":
            failed.append(rec.error or "no message")
        success[ti, r] = rec.outcome == "success"
        _collect(events, int(index[ti, r]), cols)
        if tick:
            tick(rec)
    if failed:
        raise ValueError(f"{len(failed)} of {len(specs)} simulated trials ended in error (the design "
                         f"{agent!r} crashed on template {name!r}), e.g.: {failed[0].splitlines()[0]}")
    logged = np.asarray(cols.pop("p"), dtype=float)
    arr = {k: np.asarray(val, dtype=bool if k in ("recall", "ambiguous", "hit") else float) for k, val in cols.items()}
    arr["trial"] = arr["trial"].astype(int)
    draws = Draws(**arr, n_trials=len(tasks) * replicates)
    _check_rescoring(draws, v, prof, logged)
    cells = []
    for key in sorted(t.cells, key=str):
        mine = np.array([i for i, (k, _) in enumerate(tasks) if k == key])
        cells.append(Cell(key, t.cells[key], index[mine], success[mine]))
    return Sim(v, draws, cells, prof)


def _collect(events, trial: int, cols: dict) -> None:
    lines = events.splitlines() if isinstance(events, str) else events
    for e in lines:
        if isinstance(e, str):
            if '"draws"' not in e:
                continue
            e = json.loads(e)
        if e.get("event", e.get("type")) != "model_call" or not e.get("draws"):
            continue
        h, ctx = e["hazard"], e.get("context_tokens") or 0
        for kind, hit in e["draws"]:
            cols["trial"].append(trial)
            cols["recall"].append(kind == "recall")
            cols["z_task"].append(h["z_task"])
            cols["z_step"].append(h["z_step"])
            cols["fixed"].append(h["fixed"])
            cols["ambiguous"].append(h["ambiguous"])
            cols["log2_ctx"].append(math.log2(ctx) if ctx > 0 else -math.inf)
            cols["uncorrected"].append(e.get("uncorrected") or 0)
            cols["hit"].append(bool(hit))
            cols["p"].append(e["p_error"])


def _check_rescoring(d: Draws, v: np.ndarray, prof, logged: np.ndarray) -> None:
    """The re-scored hazard must be the one the model drew against: if the model's formula
    and the re-scoring ever part, every fit would be wrong, so stop."""
    if not len(logged):
        return
    p = 1 / (1 + np.exp(-log_odds(d, v, prof)))
    worst = float(np.abs(p - logged).max())
    if worst > 1e-5:
        raise RuntimeError(f"re-scoring disagrees with the simulated model's hazard by {worst:.2g}: a bug")


@dataclass
class Calibration:
    profile: str
    values: dict
    intervals: dict
    free: list[str]
    unidentified: dict
    rounds: list[dict]
    fit_table: dict
    target: Target
    settled: bool = True          # the last round moved the estimate only a little
    cut: list = field(default_factory=list)  # intervals cut at the reach of re-scoring
    settings: dict = field(default_factory=dict)


def calibrate(paths: list[str | Path], *, profile: str = "strong", scenario: str = "chain", length: int = 16,
              tasks: int = 200, replicates: int = 8, rounds: int = 3, n_boot: int = 200, seed: int = 0,
              fit_params: list[str] | None = None, objective: str = "pass_k", where: dict | None = None, agent: str = "react",
              workers: int | None = None, on_round: Callable[[int, int], Callable[[Any], None] | None] | None = None
              ) -> Calibration:
    """Fit `fit_params` (default: every parameter the table can inform) of `profile` to the
    table(s). `on_round(round, trials)` may return a tick called with each finished trial's record."""
    if objective not in OBJECTIVES:
        raise ValueError(f"--objective {objective}: use one of {', '.join(OBJECTIVES)}")
    target = read_target(paths, where)
    unknown = [f for f in fit_params or [] if f not in FITTABLE]
    if unknown:
        raise ValueError(f"--fit {unknown[0]}: not a parameter calibration fits; it fits {', '.join(FITTABLE)}")
    cannot = unidentified(target)
    free = [f for f in (fit_params or FITTABLE) if f not in cannot]
    # with only as many replicates as the table's trials, pass^n of a task is one all-or-nothing
    # subset that no re-weighting can move: twice as many keep every k informative
    replicates = max(replicates, 2 * target.max_n)
    plan_ = plan(target, scenario, length, tasks, replicates)
    base = resolve_profile(profile)
    start = get_profile(base.base, **{k: v for k, v in base.params.items() if k != "name"})
    v = to_vector(start.model_dump())
    history = []
    sim = None
    trust, last_move = TRUST.copy(), np.zeros_like(TRUST)
    settled = False
    for rnd in range(1, rounds + 1):
        tick = on_round(rnd, len(plan_) * replicates) if on_round else None
        sim = simulate(target, plan_, scenario, v, profile=profile, agent=agent, replicates=replicates,
                       seed=seed, workers=workers, tick=tick)
        new, ll = fit(sim.cells, sim.draws, sim.profile, v, free, trust=trust, objective=objective)
        lw = trial_loglik(sim.draws, new, sim.profile) - trial_loglik(sim.draws, v, sim.profile)
        share = float(np.mean([ess(weights(lw[c.rows])).mean() for c in sim.cells]) / replicates)
        history.append({"round": rnd, "simulated_at": to_values(v), "estimate": to_values(new),
                        objective: round(ll, 4), "effective_replicates": round(share, 3)})
        move = new - v
        # a parameter that turned back is near its optimum, blurred by simulation noise:
        # narrow its box, so the rounds settle instead of swinging from edge to edge
        trust = np.where(move * last_move < 0, trust / 2, trust)
        last_move, v = move, new
        if not free or np.all(np.abs(move) < 0.1 * TRUST) or np.all(trust < 0.1 * TRUST):
            settled = True
            break
    boots = _bootstrap(sim, free, n_boot, seed, v, objective)
    values = to_values(v)
    intervals = {f: [float(np.percentile(boots[:, FITTABLE.index(f)], q)) for q in (2.5, 97.5)] for f in free}
    # an interval that reaches the edge of what re-scoring may reach from the last simulation
    # is cut there, not found there: say so
    cut = [f for f in free if any(abs(x - edge) < 1e-6 for x in intervals[f]
                                  for edge in (sim.v[FITTABLE.index(f)] - BOOT_REACH * TRUST[FITTABLE.index(f)],
                                               sim.v[FITTABLE.index(f)] + BOOT_REACH * TRUST[FITTABLE.index(f)]))]
    for f in free:
        if f == "base_hazard":
            intervals[f] = [float(1 / (1 + math.exp(-x))) for x in intervals[f]]
    table = goodness_of_fit(sim, target, v, boots, seed)
    return Calibration(profile, values, intervals, free, cannot, history, table, target, settled, cut,
                       settings={"scenario": scenario, "tasks": tasks, "replicates": replicates, "seed": seed,
                                 "agent": agent, "bootstrap": n_boot, "objective": objective,
                                 **({"length": length} if not target.has_length else {})})


def _resample(sim: Sim, rng: np.random.Generator) -> list:
    out = []
    for c in sim.cells:
        pick = rng.integers(0, len(c.counts), len(c.counts))
        out.append(([c.counts[i] for i in pick], rng.integers(0, len(c.rows), len(c.rows))))
    return out


def _bootstrap(sim: Sim, free: list[str], n_boot: int, seed: int, start: np.ndarray, objective: str) -> np.ndarray:
    """Refits on the table's tasks and the simulated tasks, both resampled within cells, each
    free to move as far as re-scoring reaches from where the trials were simulated."""
    rng = np.random.default_rng([seed, 7])
    reps = []
    for _ in range(n_boot):
        v, _ = fit(sim.cells, sim.draws, sim.profile, sim.v, free, start=start, resample=_resample(sim, rng),
                   objective=objective, trust=BOOT_REACH * TRUST)
        reps.append(v)
    return np.array(reps).reshape(-1, len(FITTABLE))


def _sim_pass(sim: Sim, lw: np.ndarray, k: int, tasks: list | None = None) -> float:
    """pass^k over cells, each weighted by its share of the table's tasks."""
    total, n = 0.0, 0
    for i, c in enumerate(sim.cells):
        rows = c.rows if tasks is None else c.rows[tasks[i]]
        succ = c.success if tasks is None else c.success[tasks[i]]
        total += len(c.counts) * float(pass_hat(weights(lw[rows]), succ, k).mean())
        n += len(c.counts)
    return total / n


def goodness_of_fit(sim: Sim, t: Target, v: np.ndarray, boots: np.ndarray, seed: int) -> dict:
    """Target vs simulated pass^1..k overall and success per cell, each with a 95% bootstrap
    interval (target: over its tasks; simulated: over simulated tasks, at the fitted values)."""
    rng = np.random.default_rng([seed, 11])
    base = trial_loglik(sim.draws, sim.v, sim.profile)
    lw = trial_loglik(sim.draws, v, sim.profile) - base
    ks = range(1, t.max_n + 1)
    reps = [_resample(sim, rng) for _ in range(len(boots) or 1)]
    out: dict = {"pass_hat_k": [], "cells": []}
    for k in ks:
        est = target_pass([x for c in sim.cells for x in c.counts], k)
        t_reps = [target_pass([x for cnt, _ in r for x in cnt], k) for r in reps]
        s_reps = [_sim_pass(sim, lw, k, [tk for _, tk in r]) for r in reps]
        out["pass_hat_k"].append({"k": k, "target": est, "target_ci": _ci(t_reps), "simulated": _sim_pass(sim, lw, k),
                                  "simulated_ci": _ci(s_reps), "n_tasks": t.tasks,
                                  "n_simulated_tasks": sum(len(c.rows) for c in sim.cells)})
    for i, c in enumerate(sim.cells):
        succ, trials = sum(x for x, _ in c.counts), sum(n for _, n in c.counts)
        w = weights(lw[c.rows])
        per_task = (w * c.success).sum(axis=1) / w.sum(axis=1)
        t_reps = [sum(x for x, _ in r[i][0]) / max(1, sum(n for _, n in r[i][0])) for r in reps]
        s_reps = [float(per_task[r[i][1]].mean()) for r in reps]
        out["cells"].append({"length": c.key[0], "context_tokens": c.key[1], "target": succ / trials,
                             "target_ci": _ci(t_reps), "n_trials": trials, "simulated": float(per_task.mean()),
                             "simulated_ci": _ci(s_reps), "n_simulated_tasks": len(c.rows)})
    return out


def _ci(vals) -> list[float] | None:
    vals = [x for x in vals if x is not None]
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))] if len(vals) > 1 else None
