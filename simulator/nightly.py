"""A nightly job's library calls: gate a run against a baseline, record it in the history."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .analysis.gate import gate
from .analysis.tables import success_by_cell
from .catalog import CELL, catalog_path, cell_name, history, load_baseline, snapshot
from .propagation import graph_json, iter_trial_events, propagation_results
from .report.html import explorer_lines, render
from .results import analyze_results
from .store import flatten, iter_records, read_manifest, results_dir


def baseline_snapshot(baseline: str, catalog: Path, *, seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """A baseline by name from the catalog, or (when it names one) a results directory."""
    if Path(baseline).is_dir() and (Path(baseline) / "records.jsonl").exists():
        return {**snapshot(baseline, seed=seed, n_boot=n_boot), "baseline": baseline}
    return load_baseline(catalog, baseline)


def gate_results(results: str | Path, baseline: str, catalog: Path, *, seed: int = 0, n_boot: int = 1000,
                 run: dict | None = None, **limits: float) -> dict[str, Any]:
    """The gate's verdicts for a results directory against a baseline (see analysis/gate.py).
    Results of another sweep are refused: their cells would not mean the same."""
    now = run or snapshot(results, seed=seed, n_boot=n_boot)
    base = baseline_snapshot(baseline, catalog, seed=seed, n_boot=n_boot)
    if now["sweep"] != base["sweep"]:
        raise LookupError(f"{results} ran sweep {now['sweep']!r} but baseline {baseline!r} is of sweep "
                          f"{base['sweep']!r}: gate a run of the same sweep, or save a baseline for this one")
    if not set(now["cells"]) & set(base["cells"]):
        raise LookupError(f"{results} shares no cell (design / profile / fault setting) with baseline {baseline!r}")
    out = gate(base["cells"], now["cells"], **limits)
    keep = ("run", "sweep", "code_version", "created", "seed", "trials", "errors")
    out["baseline"] = {"name": base["baseline"], **{k: base.get(k) for k in keep}}
    out["run"] = {"results_dir": str(results), **{k: now.get(k) for k in keep}}
    out["same_seed"] = now.get("seed") == base.get("seed")
    return out


def explorer_trials(path: str | Path, limit: int = 40, max_events: int = 160) -> list[dict]:
    """Up to `limit` failed trials for the report's explorer, taken in turn from each cell
    (so one bad cell does not fill it), each with its events as lines."""
    root = results_dir(path, events=True)
    failed = {}
    for r in iter_records(root):
        if r.outcome != "success":
            f = flatten(r)
            failed[r.trial_id] = {"id": r.trial_id, "cell": cell_name(f["agent"], r.profile, f["fault"]),
                                  "scenario": r.scenario, "outcome": r.outcome, "steps": r.steps,
                                  "cause": r.failure_cause or r.failure_mode or r.error}
    per_cell: dict[str, list[str]] = {}
    for tid, x in sorted(failed.items()):
        per_cell.setdefault(x["cell"], []).append(tid)
    queues, chosen = [q for _, q in sorted(per_cell.items())], set()
    while len(chosen) < limit and any(queues):
        for q in queues:
            if q and len(chosen) < limit:
                chosen.add(q.pop(0))
    out = []
    for tid, events in iter_trial_events(root / "events.jsonl"):
        if tid in chosen:
            lines, cut = explorer_lines(events, max_events)
            out.append({**failed[tid], "events": len(events), "cut": cut, "lines": lines})
    return sorted(out, key=lambda x: (x["cell"], x["id"]))


def build_report(results: str | Path, *, baseline: str | None = None, catalog: Path | None = None,
                 seed: int = 0, n_boot: int = 1000, trials: int = 40, progress=lambda msg: None) -> str:
    """The self-contained HTML report of a results directory; with a baseline, the gate's
    verdicts; with a catalog that has runs of this sweep, the history trend."""
    p = Path(results)
    if not p.is_dir():
        raise LookupError(f"{p}: not a results directory (give the directory `attrition sweep` or `run` wrote)")
    progress("analysing")
    a = analyze_results(p, seed=seed, n_boot=n_boot, cell_keys=CELL)
    progress("tracing errors")
    prop = propagation_results(p)
    done = {tuple(str(c[k]) for k in CELL): c for c in a.get("cells", []) if all(k in c for k in CELL)}
    snap = snapshot(p, seed=seed, n_boot=n_boot, stats=done) if baseline or catalog else None
    g = gate_results(p, baseline, catalog or catalog_path(None), seed=seed, n_boot=n_boot, run=snap) if baseline else None
    h = None
    if catalog is not None and catalog.is_file():
        try:
            h = history(catalog, snap["sweep"])
        except LookupError:  # no runs of this sweep recorded yet: no trend to draw
            h = None
    progress("picking trials")
    m = read_manifest(results_dir(p))
    meta = (f"{snap['sweep'] if snap else m.get('run_id', p.name)}: {p} — created {m.get('created')}, seed "
            f"{m.get('seed')}, code {m.get('code_version')}, attrition {(m.get('versions') or {}).get('attrition')}")
    by_scenario = success_by_cell(({"scenario": r.scenario, "task": r.scenario, "success": r.outcome == "success"}
                                   for r in iter_records(results_dir(p)) if r.outcome != "error"), ["scenario"])
    return render(a, title=f"attrition report: {(m.get('sweep') or {}).get('name') or p.name}", meta=meta,
                  trials=explorer_trials(p, trials), propagation=prop, graph=graph_json(prop["graph"]),
                  gate=g, history=h, by_scenario=by_scenario)
