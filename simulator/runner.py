"""Library entry points the CLI calls: build specs, run them, summarise, replay."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from .designs import load_factory
from .faults import check_faults, normalize_faults
from .engine import Job, run_jobs
from .profiles import get_profile
from .records import ResultsStore, TrialRecord, find_trial
from .spec import TrialSpec, digest
from .stats import mean_ci, wilson
from .templates import resolve_scenario

OUTCOMES = ("success", "failure", "error", "budget")


def make_specs(scenario: str, params: dict | None, agent: str, *, trials: int, seed: int,
               profile: str = "strong", agent_params: dict | None = None,
               profile_params: dict | None = None, budgets: dict | None = None,
               faults: list | None = None) -> list[TrialSpec]:
    """Specs for `trials` replicates. Faults come from the scenario file, then `faults`
    (dicts or `NAME:key=value,...` strings); bad ones raise FaultConfigError."""
    sc, ref = resolve_scenario(scenario, params)
    get_profile(profile, **(profile_params or {}))  # fail early on a bad profile
    fs = normalize_faults(list(sc.faults) + list(faults or []))
    check_faults(fs, sc)
    return [TrialSpec(scenario=ref, agent=agent, agent_params=agent_params or {}, profile=profile,
                      profile_params=profile_params or {}, seed=seed, replicate=r,
                      budgets=budgets or {}, faults=fs) for r in range(trials)]


class JobMaker:
    """Resolves scenarios and factories once per distinct reference."""

    def __init__(self, model_factory: Callable | None = None):
        self._scenarios: dict[str, Any] = {}
        self._factories: dict[str, Callable] = {}
        self.model_factory = model_factory

    def __call__(self, spec: TrialSpec) -> Job:
        key = digest(spec.scenario.model_dump())
        if key not in self._scenarios:
            sc, ref = resolve_scenario(spec.scenario.ref, spec.scenario.params)
            self._scenarios[key] = (sc, ref.digest)
        sc, dig = self._scenarios[key]
        if spec.agent not in self._factories:
            self._factories[spec.agent] = load_factory(spec.agent)
        return Job(spec, sc, self._factories[spec.agent], self.model_factory)


def summarize(records: list[TrialRecord]) -> dict:
    n = len(records)
    succ = sum(r.outcome == "success" for r in records)
    lo, hi = wilson(succ, n)
    steps = mean_ci([r.steps for r in records])
    sim = mean_ci([r.sim_time_s for r in records])
    modes: dict[str, int] = {}
    for r in records:
        if r.failure_mode:
            modes[r.failure_mode] = modes.get(r.failure_mode, 0) + 1
    return {
        "trials": n, "successes": succ,
        "success_rate": succ / n if n else 0.0, "ci_low": lo, "ci_high": hi,
        "outcomes": {o: sum(r.outcome == o for r in records) for o in OUTCOMES},
        "failure_modes": dict(sorted(modes.items())),
        "mean_steps": steps[0], "mean_steps_ci": [steps[1], steps[2]],
        "mean_sim_time_s": sim[0], "mean_sim_time_ci": [sim[1], sim[2]],
        "sim_time_s": sum(r.sim_time_s for r in records),
        "wall_time_s": sum(r.wall_time_s for r in records),
        "errors": sorted({r.error for r in records if r.outcome == "error" and r.error})[:5],
        "faults_fired": _fault_counts(records),
        "trials_with_unfired_faults": sum(bool(r.faults_not_fired) for r in records),
        "clarifications": sum(r.clarifications for r in records),
        "guesses": sum(r.guesses for r in records),
        "injections_obeyed": sum(r.injections_obeyed for r in records),
    }


def _fault_counts(records: list[TrialRecord]) -> dict[str, dict]:
    """Per fault: firings, and the trials it fired in (with their success rate and CI)."""
    ids = sorted({f for r in records for f in list(r.faults_fired) + r.faults_not_fired})
    out = {}
    for f in ids:
        hit = [r for r in records if r.faults_fired.get(f)]
        succ = sum(r.outcome == "success" for r in hit)
        lo, hi = wilson(succ, len(hit))
        out[f] = {"firings": sum(r.faults_fired.get(f, 0) for r in records), "trials_hit": len(hit),
                  "success_rate_when_hit": succ / len(hit) if hit else None, "ci_low": lo, "ci_high": hi}
    return out


def default_run_dir(base: Path, specs: list[TrialSpec]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return Path(base) / f"{stamp}-{digest([s.id for s in specs], 6)}"


def run_specs(specs: list[TrialSpec], *, out: Path | None = None, manifest: dict | None = None,
              concurrency: int = 1, stagger_s: float = 0.0,
              progress: Callable[[TrialRecord], None] | None = None,
              model_factory: Callable | None = None) -> tuple[list[TrialRecord], dict]:
    make = JobMaker(model_factory)
    jobs = [make(s) for s in specs]
    store = ResultsStore(out, manifest or {}) if out else None

    def done(rec: TrialRecord, events: list[dict]) -> None:
        if store:
            store.append(rec, events)
        if progress:
            progress(rec)

    try:
        records = run_jobs(jobs, concurrency=concurrency, on_done=done, stagger_s=stagger_s)
    finally:
        if store:
            store.close()
    summary = summarize(records)
    if store:
        store.finish(summary)
    return records, summary


def replay(trial_id: str, roots: list[Path]) -> tuple[TrialRecord, TrialRecord, list[dict], Path]:
    """Re-run one stored trial from its id; return (stored, fresh, events, run dir)."""
    found = find_trial(trial_id, roots)
    if found is None:
        raise LookupError(f"no trial with id {trial_id!r} under {', '.join(map(str, roots))}")
    stored, run_dir = found
    spec = TrialSpec.model_validate(stored.spec)
    job = JobMaker()(spec)
    got: list = []
    run_jobs([job], on_done=lambda r, ev: got.append((r, ev)))
    fresh, events = got[0]
    return stored, fresh, events, run_dir
