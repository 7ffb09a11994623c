"""Library entry points the CLI calls: build specs, run them, summarise, replay."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from .designs import load_factory
from .faults import check_faults, normalize_faults
from .engine import Job, run_jobs
from .profiles import get_profile
from .records import TrialRecord, find_trial
from .store import ResultsStore, build_db, flatten, iter_records
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
    check_budgets(budgets or {})
    fs = normalize_faults(list(sc.faults) + list(faults or []))
    check_faults(fs, sc)
    return [TrialSpec(scenario=ref, agent=agent, agent_params=agent_params or {}, profile=profile,
                      profile_params=profile_params or {}, seed=seed, replicate=r,
                      budgets=budgets or {}, faults=fs) for r in range(trials)]


def check_budgets(budgets: dict) -> None:
    """Budget overrides must name a known budget and hold a positive number."""
    from pydantic import ValidationError

    from .scenario import Budgets
    try:
        Budgets.model_validate(budgets)
    except ValidationError as e:
        raise ValueError("bad budget: " + "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}"
                                                    for x in e.errors())) from None


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
        sc, _ = self._scenarios[key]
        if spec.agent not in self._factories:
            self._factories[spec.agent] = load_factory(spec.agent)
        return Job(spec, sc, self._factories[spec.agent], self.model_factory)

    def digest(self, spec: TrialSpec) -> str:
        """The content digest of the scenario a spec resolves to today."""
        self(spec)
        return self._scenarios[digest(spec.scenario.model_dump())][1]


class Summary:
    """Running totals over records, so a sweep's summary never needs all records at once."""

    def __init__(self) -> None:
        self.n = self.succ = 0
        self.outcomes = {o: 0 for o in OUTCOMES}
        self.modes: dict[str, int] = {}
        self.steps: list[int] = []  # one int per trial: small, and needed for the interval
        self.sims: list[float] = []
        self.sim = self.wall = 0.0
        self.errors: set[str] = set()
        self.faults: dict[str, list[int]] = {}  # id -> [firings, trials hit, successes when hit]
        self.unfired = self.clar = self.guess = self.inj = 0

    def add(self, r: TrialRecord) -> None:
        self.n += 1
        self.succ += r.outcome == "success"
        self.outcomes[r.outcome] += 1
        if r.failure_mode:
            self.modes[r.failure_mode] = self.modes.get(r.failure_mode, 0) + 1
        self.steps.append(r.steps)
        self.sims.append(r.sim_time_s)
        self.sim += r.sim_time_s
        self.wall += r.wall_time_s
        if r.outcome == "error" and r.error and len(self.errors) < 1000:
            self.errors.add(r.error)
        for f in list(r.faults_fired) + r.faults_not_fired:
            c = self.faults.setdefault(f, [0, 0, 0])
            c[0] += r.faults_fired.get(f, 0)
            if r.faults_fired.get(f):
                c[1] += 1
                c[2] += r.outcome == "success"
        self.unfired += bool(r.faults_not_fired)
        self.clar += r.clarifications
        self.guess += r.guesses
        self.inj += r.injections_obeyed

    def result(self) -> dict:
        lo, hi = wilson(self.succ, self.n)
        steps, sim = mean_ci(self.steps), mean_ci(self.sims)
        faults = {}
        for f, (firings, hit, succ) in sorted(self.faults.items()):
            flo, fhi = wilson(succ, hit)
            faults[f] = {"firings": firings, "trials_hit": hit,
                         "success_rate_when_hit": succ / hit if hit else None, "ci_low": flo, "ci_high": fhi}
        return {
            "trials": self.n, "successes": self.succ,
            "success_rate": self.succ / self.n if self.n else 0.0, "ci_low": lo, "ci_high": hi,
            "outcomes": dict(self.outcomes), "failure_modes": dict(sorted(self.modes.items())),
            "mean_steps": steps[0], "mean_steps_ci": [steps[1], steps[2]],
            "mean_sim_time_s": sim[0], "mean_sim_time_ci": [sim[1], sim[2]],
            "sim_time_s": self.sim, "wall_time_s": self.wall, "errors": sorted(self.errors)[:5],
            "faults_fired": faults, "trials_with_unfired_faults": self.unfired,
            "clarifications": self.clar, "guesses": self.guess, "injections_obeyed": self.inj,
        }


def summarize(records) -> dict:
    acc = Summary()
    for r in records:
        acc.add(r)
    return acc.result()


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
        build_db(out)
    return records, summary


def run_sweep(path: str | Path, *, executor: str = "process", workers: int | None = None,
              scheduler: str | None = None, resume: bool = False, out: Path | None = None,
              progress: Callable[[TrialRecord], None] | None = None,
              on_start: Callable[[int, int], None] | None = None) -> tuple[dict, Path]:
    """Expand a sweep file, run what is not yet done, and return (summary, results dir).

    The driver streams: each finished trial is appended to the store and dropped, so
    its memory does not grow with the number of trials."""
    from .executors import execute
    from .sweep import iter_specs, load_sweep, plan
    sweep = load_sweep(path)
    cells, merged, total = plan(sweep, str(path))
    if out is None:
        base = Path("results")
        if resume:
            prior = sorted(base.glob(f"{sweep.name}-*/manifest.json"), key=lambda p: p.stat().st_mtime)
            if not prior:
                raise LookupError(f"nothing to resume: no results/{sweep.name}-* directory; run without --resume")
            out = prior[-1].parent
        else:
            out = base / f"{sweep.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
            n = 1
            while out.exists():  # never reuse a directory: another sweep of that name started this second
                n += 1
                out = out.with_name(f"{out.name.rsplit('~', 1)[0]}~{n}")
    elif resume and not (Path(out) / "records.jsonl").exists():
        raise LookupError(f"nothing to resume in {out}: it has no records.jsonl")
    if resume and (Path(out) / "manifest.json").exists():
        import json
        old = json.loads((Path(out) / "manifest.json").read_text()).get("sweep")
        if old is not None and old != sweep.model_dump(mode="json"):
            raise LookupError(f"{path} has changed since the sweep in {out} started; resuming would mix "
                              "two sweeps (run it without --resume, or with another --out)")
    manifest = {"run_id": Path(out).name, "command": "sweep", "sweep_file": str(path),
                "sweep": sweep.model_dump(mode="json"), "seed": sweep.seed, "trials": total,
                "executor": executor}
    store = ResultsStore(out, manifest, resume=resume)
    done = len(store.done)
    todo = _unfinished_groups(iter_specs(sweep, cells, merged), store.done, sweep.concurrency)
    if on_start:
        on_start(total, done)
    counts = {"trials": 0}
    try:
        for rec, events in execute(todo, executor=executor, workers=workers, scheduler=scheduler,
                                   concurrency=sweep.concurrency):
            if rec.trial_id in store.done:
                continue  # re-run only to rebuild its shared environment; already committed
            store.append(rec, events)
            counts["trials"] += 1
            if progress:
                progress(rec)
    finally:
        store.close()
    summary = summarize(iter_records(out))
    summary["ran_now"] = counts["trials"]
    summary["resumed_from"] = done
    store.finish(summary)
    build_db(out)
    return summary, Path(out)


def _unfinished_groups(specs, done: set[str], concurrency: int):
    """Specs of every environment group with a trial still to run. Sessions that share an
    environment affect each other, so a group is re-run whole, exactly as it first ran."""
    group: list = []
    for s in specs:
        group.append(s)
        if len(group) == concurrency:
            if any(x.id not in done for x in group):
                yield from group
            group = []
    if group and any(x.id not in done for x in group):
        yield from group


def rows_from_records(records) -> tuple[list[dict], int]:
    """Analysis rows (task, trial, success, length, cells) from records; harness errors are
    kept apart, never counted as agent failures. Returns (rows, number of error trials)."""
    rows, errors = [], 0
    for r in records:
        if r.outcome == "error":
            errors += 1
            continue
        f = flatten(r)
        # a task is a scenario with its parameters as one design, profile and fault setting
        # met it (as in tau-bench: pass^k is per agent), so replicates are its trials
        task = f"{f['task']}|{f['agent']}|{r.profile}|{f['fault']}"
        rows.append({"task": task, "pair": f"{f['task']}|{f['agent']}|{r.profile}",
                     "trial": r.replicate, "success": r.outcome == "success",
                     "length": max(1, r.golden_length), "sim_time_s": r.sim_time_s, "agent": f["agent"],
                     "profile": r.profile, "fault": f["fault"], "scenario": f["scenario_ref"],
                     "fault_never_fired": f["fault_never_fired"]})
    return rows, errors


def analyze_results(path: str | Path, *, seed: int = 0, n_boot: int = 1000, exclude_unfired: bool = False) -> dict:
    """Analysis of a results directory (records) or an external table (CSV, JSONL, JSON).
    With exclude_unfired, trials in which a configured fault never fired are left out."""
    from . import analysis
    p = Path(path)
    if p.is_dir():
        if not (p / "records.jsonl").exists():
            raise LookupError(f"{p} is not a results directory (no records.jsonl)")
        rows, errors = rows_from_records(iter_records(p))
        source = "attrition"
        if exclude_unfired:
            rows = [r for r in rows if not r["fault_never_fired"]]
    elif p.exists():
        rows, errors, source = analysis.load_table(p), 0, "table"
    else:
        raise LookupError(f"no such results directory or table: {p}")
    if not rows:
        raise LookupError(f"{p} holds no trials to analyse" + (f" ({errors} harness errors)" if errors else ""))
    # bootstraps draw rows by position: fix the order, whatever order workers finished in
    rows.sort(key=lambda r: (str(r.get("task")), str(r.get("trial"))))
    out = analysis.analyze(rows, seed=seed, n_boot=n_boot)
    out["source"] = source
    out["error_trials_excluded"] = errors
    keys = [k for k in ("agent", "profile", "fault", "scenario") if len({r.get(k) for r in rows}) > 1]
    if keys:
        cells = {}
        for r in rows:
            cells.setdefault(tuple(r.get(k) for k in keys), []).append(r)
        out["cells"] = [{**dict(zip(keys, key)), **_cell(rs, seed, n_boot)} for key, rs in sorted(cells.items(), key=str)]
    if "fault" in keys:
        groups = {}
        for r in rows:
            groups.setdefault((r.get("agent"), r.get("profile")), []).append(r)
        # paired: the same scenario, parameters and replicate under each fault setting (common
        # random numbers), so the task for this comparison leaves the fault setting out
        out["fault_effects"] = [{"agent": a, "profile": pr, "effects": analysis.fault_effects(
            [{**x, "task": x.get("pair", x["task"])} for x in rs],
            baseline="none" if any(x["fault"] == "none" for x in rs) else min(str(x["fault"]) for x in rs),
            seed=seed, n_boot=n_boot)} for (a, pr), rs in sorted(groups.items(), key=str)]
        out["success_by_fault_length"] = analysis.success_by_cell(rows, ["fault", "length"])
    return out


def _cell(rows: list[dict], seed: int, n_boot: int) -> dict:
    from . import analysis
    a = analysis.analyze(rows, seed=seed, n_boot=n_boot)
    keep = ("n_trials", "n_tasks", "successes", "success_rate", "ci_low", "ci_high", "pass_hat_k",
            "horizon_50", "horizon_80", "per_step_reliability", "half_length", "weibull", "by_length")
    cell = {k: a.get(k) for k in keep if k in a}
    # horizons in virtual time: steps times the virtual seconds a successful step takes
    ok = [r for r in rows if r["success"] and r.get("sim_time_s") and r.get("length")]
    per_step = sum(r["sim_time_s"] for r in ok) / sum(r["length"] for r in ok) if ok else None
    if per_step and cell.get("horizon_50") and cell["horizon_50"].get("estimate"):
        cell["seconds_per_step"] = per_step
        for h in ("horizon_50", "horizon_80"):
            if cell.get(h) and cell[h].get("estimate") is not None:
                cell[h + "_time_s"] = {k: (v * per_step if isinstance(v, (int, float)) else v)
                                       for k, v in cell[h].items() if k in ("estimate", "ci_low", "ci_high")}
    return cell


def replay(trial_id: str, roots: list[Path]) -> tuple[TrialRecord, TrialRecord, list[dict], Path]:
    """Re-run one stored trial from its id; return (stored, fresh, events, run dir)."""
    found = find_trial(trial_id, roots)
    if found is None:
        raise LookupError(f"no trial with id {trial_id!r} under {', '.join(map(str, roots))}")
    stored, run_dir = found
    spec = TrialSpec.model_validate(stored.spec)
    make = JobMaker()
    job = make(spec)
    now = make.digest(spec)
    if now != spec.scenario.digest:
        raise LookupError(f"scenario {spec.scenario.ref!r} has changed since trial {stored.trial_id} was "
                          f"recorded (content digest {spec.scenario.digest} then, {now} now); replay needs it "
                          "as it was")
    got: list = []
    run_jobs([job], on_done=lambda r, ev: got.append((r, ev)))
    fresh, events = got[0]
    return stored, fresh, events, run_dir


def shared_environment(run_dir: Path) -> int:
    """How many sessions shared one environment in a run (a replay runs its trial alone)."""
    import json
    try:
        m = json.loads((Path(run_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return 1
    return int((m.get("sweep") or {}).get("concurrency") or m.get("concurrency") or 1)


def propagation_results(path: str | Path) -> dict:
    """Trace every trial of a results directory and aggregate over the agent graph,
    overall and per design. Returns plain data plus networkx graphs under "graph"."""
    from .propagation import aggregate, iter_trial_events, trace_trial
    p = Path(path)
    if not (p / "records.jsonl").exists() or not (p / "events.jsonl").exists():
        raise LookupError(f"{p} is not a results directory with events (records.jsonl, events.jsonl)")
    records = iter_records(p)
    pending: dict[str, TrialRecord] = {}
    traces: list[dict] = []
    for tid, events in iter_trial_events(p / "events.jsonl"):
        # records follow their events in the log, so the two files are read in step
        while tid not in pending:
            r = next(records, None)
            if r is None:
                break
            pending[r.trial_id] = r
        rec = pending.pop(tid, None)
        if rec is not None:
            t = trace_trial(rec, events)
            t.pop("graph")  # per-trial graphs are rebuilt on demand; keep the driver small
            traces.append(t)
    if not traces:
        raise LookupError(f"{p} holds no traced trials")
    out = aggregate(traces)
    out["trials"] = [{k: t[k] for k in ("trial_id", "agent", "profile", "outcome", "failure_mode",
                                         "silent_failure", "roots")} for t in traces]
    groups: dict[str, list] = {}
    several_profiles = len({t["profile"] for t in traces}) > 1
    for t in traces:
        groups.setdefault(t["agent"] + (f" / {t['profile']}" if several_profiles else ""), []).append(t)
    if len(groups) > 1:
        out["by_agent"] = {k: aggregate(v) for k, v in sorted(groups.items())}
    return out
