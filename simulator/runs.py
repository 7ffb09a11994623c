"""Running trials into a results directory. `attrition run` (one cell) and `attrition
sweep` (a grid) take one path: specs -> executor -> store -> summary.

The driver streams: each finished trial is appended to the store and dropped, so its
memory does not grow with the number of trials.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .executors import DEFAULT_TRIAL_TIMEOUT_S, check_executor, check_timeout, execute
from .jobs import JobMaker, make_specs
from .live import LiveOptions, options_env
from .records import TrialRecord
from .results import summarize
from .spec import TrialSpec, digest
from .store import ResultsStore, build_db, iter_records, read_manifest
from .sweep import iter_specs, load_sweep, plan
from .workers import warm_up

Progress = Callable[[TrialRecord], None]


def unfinished_groups(specs: Iterable[TrialSpec], done: set[str], concurrency: int) -> Iterator[TrialSpec]:
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


def execute_specs(specs: Iterable[TrialSpec], out: Path, manifest: dict, total: int, *,
                  executor: str = "serial", workers: int | None = None, scheduler: str | None = None,
                  concurrency: int = 1, stagger_s: float = 0.0, resume: bool = False,
                  progress: Progress | None = None, on_start: Callable[[int, int], None] | None = None,
                  trial_timeout_s: float | None = DEFAULT_TRIAL_TIMEOUT_S, **options) -> dict:
    """Run what is not yet in `out`, committing each trial as it ends; return the summary.
    A trial running longer than `trial_timeout_s` of wall time (None: no limit) is stopped
    and recorded as an error."""
    check_timeout(trial_timeout_s)
    check_executor(executor, scheduler)  # before the store: a bad executor writes nothing
    store = ResultsStore(out, manifest, resume=resume)
    done = len(store.done)
    todo = unfinished_groups(specs, store.done, concurrency)
    if on_start:
        on_start(total, done)
    ran = 0
    try:
        for rec, events in execute(todo, executor=executor, workers=workers, scheduler=scheduler,
                                   concurrency=concurrency, stagger_s=stagger_s,
                                   trial_timeout_s=trial_timeout_s, **options):
            if rec.trial_id in store.done:
                continue  # re-run only to rebuild its shared environment; already committed
            store.append(rec, events)
            ran += 1
            if progress:
                progress(rec)
    finally:
        store.close()
    summary = summarize(iter_records(out))
    summary["ran_now"], summary["resumed_from"] = ran, done
    store.finish(summary)
    build_db(out)
    return summary


def run_id(specs: list[TrialSpec]) -> str:
    """A run's directory name: what ran, and a digest of its trials (same trials, same name)."""
    first = specs[0]
    sc_name = Path(first.scenario.ref.replace("/", "_").replace(".yaml", "")).name
    agent = first.agent.replace("/", "_").split(":")[0][-24:]
    label = re.sub(r"[^\w.=-]+", "_", first.profile_label)  # a model's PROVIDER:NAME has no place in a path
    return f"{sc_name}-{agent}-{label}-s{first.seed}-{digest([s.id for s in specs], 8)}"


def run_cell(scenario: str, params: dict | None, agent: str, *, trials: int, seed: int, profile: str = "strong",
             agent_params: dict | None = None, profile_params: dict | None = None, budgets: dict | None = None,
             faults: list | None = None, concurrency: int = 1, stagger_s: float = 0.0, out: Path | None = None,
             progress: Progress | None = None, model_factory: Callable | None = None,
             trial_timeout_s: float | None = DEFAULT_TRIAL_TIMEOUT_S,
             reviewer: str | dict | None = None, model: str | None = None, base_url: str | None = None,
             latency: str = "measured", workers: int = 1, live: LiveOptions | None = None) -> tuple[dict, Path]:
    """`attrition run`: `trials` replicates of one cell, one after another in one worker
    process, or in `workers` at once (in this process with a `model_factory`, which cannot be
    sent to another), into `out` (default results/<run id>: the same command replaces the
    same directory). `model` gives roles a provider's model (live.py); `live` says how to
    reach it (cassettes, rate limit), for every worker."""
    with options_env(live):  # before any worker starts: workers take the driver's environment
        if model_factory is None:
            warm_up()  # the worker server imports the engine while the specs are made
        specs = make_specs(scenario, params, agent, trials=trials, seed=seed, profile=profile,
                           agent_params=agent_params, profile_params=profile_params, budgets=budgets, faults=faults,
                           reviewer=reviewer, model=model, base_url=base_url, latency=latency)
        rid = run_id(specs)
        out = Path(out) if out is not None else Path("results") / rid
        manifest = {"run_id": rid, "command": "run", "argv": sys.argv[1:], "seed": seed, "concurrency": concurrency,
                    "trials": trials, "spec": specs[0].model_dump(mode="json"), "trial_ids": [s.id for s in specs]}
        options = {"maker": JobMaker(model_factory)} if model_factory else {}
        executor = "serial" if workers <= 1 or model_factory else "process"
        options |= {"workers": workers} if executor == "process" else {}
        summary = execute_specs(specs, out, manifest, len(specs), executor=executor, concurrency=concurrency,
                                stagger_s=stagger_s, progress=progress, trial_timeout_s=trial_timeout_s, **options)
        summary["spec"] = manifest["spec"]
        return summary, out


def nothing_written(out: Path) -> bool:
    """A sweep killed before it wrote anything leaves no manifest and no records."""
    try:
        return not any((Path(out) / f).exists() for f in ("manifest.json", "records.jsonl"))
    except OSError:  # a path the system refuses: let the writer say so
        return False


def sweep_dir(name: str, resume: bool) -> Path:
    base = Path("results")
    if resume:
        prior = sorted(base.glob(f"{name}-*/manifest.json"), key=lambda p: p.stat().st_mtime)
        if not prior:
            raise LookupError(f"nothing to resume: no results/{name}-* directory; run without --resume")
        return prior[-1].parent
    out = base / f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    n = 1
    while out.exists():  # never reuse a directory: another sweep of that name started this second
        n += 1
        out = out.with_name(f"{out.name.rsplit('~', 1)[0]}~{n}")
    return out


def _unchanged(before: list | None, now: list, out: Path, changed: Callable[[dict, dict, Path], str]) -> None:
    """A scenario's content or a profile file that changed since the sweep started would give
    its cells new trial ids: resuming would run them again beside the old ones. `changed`
    names what changed, from its entry then and now."""
    if not isinstance(before, list):  # a sweep started before the manifest kept them
        return
    for old, new in zip(before, now):
        new = json.loads(json.dumps(new, default=str))  # as the manifest holds it
        if isinstance(old, dict) and old != new:
            raise LookupError(changed(old, new, out) + "; resuming would mix two versions of it "
                              "(restore it, or run without --resume or with another --out)")


def _scenario_changed(old: dict, new: dict, out: Path) -> str:
    params = f" with {new['params']}" if new["params"] else ""
    return (f"scenario {new['ref']}{params} has changed since the sweep in {out} started "
            f"(content digest {old.get('digest')}, now {new['digest']})")


def _profile_changed(old: dict, new: dict, out: Path) -> str:
    return f"profile {new['label']} has changed since the sweep in {out} started"


def run_sweep(path: str | Path, *, executor: str = "process", workers: int | None = None,
              scheduler: str | None = None, resume: bool = False, out: Path | None = None,
              progress: Progress | None = None, on_start: Callable[[int, int], None] | None = None,
              trial_timeout_s: float | None = DEFAULT_TRIAL_TIMEOUT_S,
              live: LiveOptions | None = None) -> tuple[dict, Path]:
    """Expand a sweep file, run what is not yet done, and return (summary, results dir).
    `live` says how workers reach the real models a sweep's `models` names (live.py)."""
    with options_env(live):  # before any worker starts: workers take the driver's environment
        if executor in ("serial", "process"):
            warm_up()  # the worker server imports the engine while the sweep is expanded
        sweep = load_sweep(path)
        cells, merged, total = plan(sweep, str(path))
        if out is None:
            out = sweep_dir(sweep.name, resume)
        elif resume and nothing_written(Path(out)):
            resume = False  # stopped before its first file: run it all
        digests = [ref.model_dump(mode="json") for ref in cells]
        profiles = [{"label": p.label, "base": p.base, "params": p.params} for p in sweep.resolved_profiles()]
        if resume and (Path(out) / "manifest.json").exists():
            prior = read_manifest(out)  # a damaged manifest is named, not a traceback
            old = prior.get("sweep")
            if old is not None and old != sweep.model_dump(mode="json"):
                raise LookupError(f"{path} has changed since the sweep in {out} started; resuming would mix "
                                  "two sweeps (run it without --resume, or with another --out)")
            _unchanged(prior.get("scenarios"), digests, out, _scenario_changed)
            _unchanged(prior.get("profiles"), profiles, out, _profile_changed)
        manifest = {"run_id": Path(out).name, "command": "sweep", "sweep_file": str(path),
                    "sweep": sweep.model_dump(mode="json"), "seed": sweep.seed, "trials": total,
                    "executor": executor, "scenarios": digests,
                    "profiles": profiles}
        summary = execute_specs(iter_specs(sweep, cells, merged), Path(out), manifest, total, executor=executor,
                                workers=workers, scheduler=scheduler, concurrency=sweep.concurrency,
                                resume=resume, progress=progress, on_start=on_start,
                                trial_timeout_s=trial_timeout_s)
        return summary, Path(out)
