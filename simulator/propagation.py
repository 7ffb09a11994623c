"""Error propagation: trace every root cause to what it broke, per trial and per graph node.

A root cause is a fault firing or one of the model's own errors; simulator.taint
follows what it corrupted through a trial's events, simulator.attribution blames
the trial's failed checks and outcome on the roots that reached them, and
simulator.containment adds the trials up per graph node and per root-cause type.
This module puts them together for one trial and for a results directory.

Data flow is inferred by matching values: a later argument equal to an earlier
tainted value is taken to come from it. With the simulated model the origins are
exact (the model's events say which calls were errors); for a real model only
faults are known origins and the flow is inferred from values alone, which is
approximate (a coincidentally equal value can be mistaken for a copy).

All functions here are pure: they read a record and its events and return data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import networkx as nx
from pydantic import ValidationError

from .attribution import attribute, silent_failure
from .containment import aggregate
from .events import ModelCall, Step, parse_event
from .files import ResultsError, numbered_lines
from .records import TrialRecord
from .store import iter_records, results_dir, validation_problem
from .taint import follow_taint

__all__ = ["aggregate", "graph_json", "iter_trial_events", "propagation_results", "trace_trial"]


def trace_trial(record, events: list[dict]) -> dict:
    """Roots, their propagation and the causal graph of one trial."""
    typed = [parse_event(e) for e in events]
    s = follow_taint(typed)
    attribute(s, record)
    steps = [tuple(e.nodes) for e in typed if isinstance(e, Step)]
    transitions = sorted({(a, b) for x, y in zip(steps, steps[1:]) for a in x for b in y})
    # an agent is a node that calls the model: an error whose path joins two of them
    # crossed a handoff (or a supervisor's routing), whatever the graph's shape
    agents = {s.node_of.get(e.seq) for e in typed if isinstance(e, ModelCall)} - {None}
    roots = []
    for r in s.roots.values():
        out = r.summary()
        out["agents"] = [p for p in dict.fromkeys(out["path"]) if p in agents]
        roots.append(out)
    return {"trial_id": record.trial_id, "outcome": record.outcome, "failure_mode": record.failure_mode,
            "failure_cause": record.failure_cause,
            "silent_failure": silent_failure(s, record), "roots": roots, "agent_nodes": sorted(agents),
            "graph": s.graph,
            "agent": (record.spec.get("tags") or {}).get("agent", record.agent), "profile": record.profile,
            "graph_nodes": [n for n in record.graph_nodes if not n.startswith("__")],
            "graph_edges": record.graph_edges, "transitions": [list(t) for t in transitions]}


def _trial_batches(path) -> Iterator[tuple[str, list[dict], list[int]]]:
    current, batch, lines = None, [], []
    for n, e, _ in numbered_lines(path):
        if not isinstance(e.get("trial"), str):  # the key events are grouped by: checked first
            raise ResultsError(f"{path}:{n}: not a valid event: field trial: a trial id is text, "
                               f"not {e.get('trial')!r:.60}")
        if e.get("trial") != current and batch:
            yield current, batch, lines
            batch, lines = [], []
        current = e.get("trial")
        batch.append(e)
        lines.append(n)
    if batch:
        yield current, batch, lines


def iter_trial_events(path) -> Iterable[tuple[str, list[dict]]]:
    """Events grouped by trial, streaming (each trial's events are contiguous in the log)."""
    for tid, events, _ in _trial_batches(path):
        yield tid, events


def _bad_event(path: Path, events: list[dict], lines: list[int]) -> ResultsError:
    """The first event of a trial that breaks the event schema, named by file, line and field."""
    for e, n in zip(events, lines):
        try:
            parse_event(e)
        except ValidationError as err:
            return ResultsError(f"{path}:{n}: not a valid event: {validation_problem(err, (e.get('event'),), 'event')}")
    return ResultsError(f"{path}:{lines[0]}-{lines[-1]}: the events of trial {events[0].get('trial')} "
                        "do not follow the event schema")


def graph_json(g: nx.DiGraph) -> dict:
    return nx.node_link_data(g, edges="edges")


def propagation_results(path: str | Path) -> dict:
    """Trace every trial of a results directory and aggregate over the agent graph,
    overall and per design. Returns plain data plus networkx graphs under "graph"."""
    p = results_dir(path, events=True)
    records = iter_records(p)
    pending: dict[str, TrialRecord] = {}
    traces: list[dict] = []
    for tid, events, lines in _trial_batches(p / "events.jsonl"):
        # records follow their events in the log, so the two files are read in step
        while tid not in pending:
            r = next(records, None)
            if r is None:
                break
            pending[r.trial_id] = r
        rec = pending.pop(tid, None)
        if rec is not None:
            try:
                t = trace_trial(rec, events)
            except ValidationError:
                raise _bad_event(p / "events.jsonl", events, lines) from None
            t.pop("graph")  # per-trial graphs are rebuilt on demand; keep the driver small
            traces.append(t)
    if not traces:
        raise LookupError(f"{p} holds no traced trials")
    out = aggregate(traces)
    out["trials"] = [{k: t[k] for k in ("trial_id", "agent", "profile", "outcome", "failure_mode", "failure_cause",
                                         "silent_failure", "roots")} for t in traces]
    groups: dict[str, list] = {}
    several_profiles = len({t["profile"] for t in traces}) > 1
    for t in traces:
        groups.setdefault(t["agent"] + (f" / {t['profile']}" if several_profiles else ""), []).append(t)
    if len(groups) > 1:
        out["by_agent"] = {k: aggregate(v) for k, v in sorted(groups.items())}
    return out
