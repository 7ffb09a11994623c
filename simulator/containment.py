"""Containment across trials: per graph node and per root-cause type, from traced trials.

A root's path through the agent graph says where it was born, which nodes it
entered and where it stopped; a node contains a root when the path ends there
without reaching the final state. The flow graph adds up those paths, with the
agent graph's declared edges and the transitions actually taken.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import networkx as nx

from .stats import wilson


def _node_counts() -> dict[str, int]:
    return {"originated": 0, "entered": 0, "escaped": 0, "contained": 0}


def _type_counts() -> dict[str, Any]:
    return {"count": 0, "detected": 0, "contained": 0, "reached_final": 0,
            "depth": [], "blast": [], "steps": [], "time": []}


@dataclass
class Tally:
    nodes: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(_node_counts))
    types: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(_type_counts))
    flow: nx.DiGraph = field(default_factory=nx.DiGraph)
    observed: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))
    topology: set = field(default_factory=set)
    n: int = 0
    silent: int = 0
    errors: int = 0
    failures: int = 0
    multi_agent: int = 0   # trials whose model calls ran in more than one graph node
    roots_in_multi: int = 0
    crossed: int = 0       # of those trials' roots, the ones whose path joined two agents


def _inc(g: nx.DiGraph, a: str, b: str) -> None:
    if g.has_edge(a, b):
        g.edges[a, b]["weight"] += 1
    else:
        g.add_edge(a, b, weight=1)


def count_type(t: dict[str, Any], r: dict) -> None:
    t["count"] += 1
    t["detected"] += r["detected"]
    t["contained"] += r["contained"]
    t["reached_final"] += r["reached_final_state"]
    t["depth"].append(r["depth"])
    t["blast"].append(r["blast_radius"])
    if r["steps_to_detection"] is not None:
        t["steps"].append(r["steps_to_detection"])
        t["time"].append(r["time_to_detection_s"])


def walk_path(acc: Tally, r: dict) -> None:
    """Each node on a root's path either let it through (escaped) or stopped it (contained)."""
    seen = list(dict.fromkeys(p for p in r["path"] if p != "final_state"))
    origin = r["origin_node"]
    _inc(acc.flow, f"{r['kind']}:{r['type']}", origin)
    for i, p in enumerate(seen):
        stats = acc.nodes[p]
        if i == 0 and p == origin:
            stats["originated"] += 1
        else:
            stats["entered"] += 1
        last = i == len(seen) - 1
        if not last or r["reached_final_state"]:
            stats["escaped"] += 1
            _inc(acc.flow, p, seen[i + 1] if not last else "final_state")
        else:
            stats["contained"] += 1
            _inc(acc.flow, p, "contained")


def add_trial(acc: Tally, tr: dict) -> None:
    if tr["outcome"] == "error":  # a harness error says nothing about the design
        acc.errors += 1
        return
    acc.n += 1
    acc.failures += tr["outcome"] == "failure"
    acc.silent += tr["silent_failure"]
    acc.topology.update(tuple(e) for e in tr["graph_edges"])
    for name in tr.get("graph_nodes", []):
        acc.nodes[name]  # every node of the graph is listed, even one no error touched
    for a, b in tr.get("transitions", []):
        acc.observed[(a, b)] += 1
    multi = len(tr.get("agent_nodes", ())) > 1
    acc.multi_agent += multi
    for r in tr["roots"]:
        count_type(acc.types[r["type"]], r)
        walk_path(acc, r)
        if multi:
            acc.roots_in_multi += 1
            acc.crossed += len(r.get("agents", ())) > 1


def node_rates(nodes: dict[str, dict[str, int]]) -> dict[str, dict]:
    out = {}
    for name, s in sorted(nodes.items()):
        total = s["originated"] + s["entered"]
        lo, hi = wilson(s["contained"], total)
        out[name] = {**s, "containment_rate": s["contained"] / total if total else None,
                     "ci_low": lo, "ci_high": hi,
                     "escape_probability": s["escaped"] / total if total else None}
    return out


def type_rates(types: dict[str, dict[str, Any]]) -> dict[str, dict]:
    out = {}
    for name, t in sorted(types.items()):
        c = t["count"]
        lo, hi = wilson(t["contained"], c)
        out[name] = {
            "count": c, "detection_rate": t["detected"] / c, "containment_rate": t["contained"] / c,
            "ci_low": lo, "ci_high": hi, "reached_final_state": t["reached_final"],
            "mean_depth": sum(t["depth"]) / c, "mean_blast_radius": sum(t["blast"]) / c,
            "mean_steps_to_detection": sum(t["steps"]) / len(t["steps"]) if t["steps"] else None,
            "mean_time_to_detection_s": sum(t["time"]) / len(t["time"]) if t["time"] else None,
        }
    return out


def add_topology(acc: Tally) -> None:
    """The agent graph itself: its declared edges and the transitions actually taken."""
    for (a, b), attr, val in [(e, "declared", True) for e in sorted(acc.topology)] + \
                             [(e, "observed", c) for e, c in sorted(acc.observed.items())]:
        if not a.startswith("__") and not b.startswith("__"):
            if not acc.flow.has_edge(a, b):
                acc.flow.add_edge(a, b, weight=0)
            acc.flow.edges[a, b][attr] = val


def aggregate(trials: Iterable[dict]) -> dict:
    """Per graph node and per root-cause type, across trials; harness errors kept apart."""
    acc = Tally()
    for tr in trials:
        add_trial(acc, tr)
    out_nodes, out_types = node_rates(acc.nodes), type_rates(acc.types)
    lo, hi = wilson(acc.silent, acc.n)
    add_topology(acc)
    n, silent = acc.n, acc.silent
    xlo, xhi = wilson(acc.crossed, acc.roots_in_multi)
    return {
        "n_trials": n, "error_trials_excluded": acc.errors, "failures": acc.failures,
        "silent_failures": silent, "silent_failure_rate": silent / n if n else 0.0, "ci_low": lo, "ci_high": hi,
        "root_causes": {k: v["count"] for k, v in out_types.items()},
        "root_cause_detail": out_types, "nodes": out_nodes, "graph": acc.flow,
        "handoffs": {"multi_agent_trials": acc.multi_agent, "roots": acc.roots_in_multi, "crossed": acc.crossed,
                     "crossed_rate": acc.crossed / acc.roots_in_multi if acc.roots_in_multi else None,
                     "ci_low": xlo, "ci_high": xhi},
        "inference": "exact origins from the simulated model; data flow inferred by matching values",
    }
