"""Error propagation: trace every root cause to what it broke, per trial and per graph node.

A root cause is a fault firing or one of the model's own errors. Its taint follows
the data: a corrupted result's wrong value, or the arguments of a call made in
error, are tainted at their origin; any later call whose arguments carry a tainted
value is tainted too, and so are its result and its world writes. Taint stops
where a step detects it: the model rejects the result, a verifier fetches it again
and replaces it, a retry gets a clean one, or the agent asks the user.

Data flow is inferred by matching values: a later argument equal to an earlier
tainted value is taken to come from it. With the simulated model the origins are
exact (the model's events say which calls were errors); for a real model only
faults are known origins and the flow is inferred from values alone, which is
approximate (a coincidentally equal value can be mistaken for a copy).

All functions here are pure: they read a record and its events and return data.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import networkx as nx

from .profiles import ERROR_MODES
from .stats import wilson

MODEL_ROOTS = set(ERROR_MODES) | {"guessed", "obeyed_injection"}
NO_DATA = {"premature_finish", "give_up", "skipped_step"}   # errors that carry no value forward
RAISING = {"rate_limit", "server_error", "timeout", "connection_reset", "auth_expired", "quota_exhausted",
           "outage", "shared_rate_limit", "concurrency_cap", "context_overflow", "latency"}
TRIVIAL = {"", "none", "null", "true", "false", "ok", "done", "yes", "no"}


def _key(v: Any) -> str | None:
    """A value specific enough that finding it again means it was copied."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return None if v in (0, 1, -1) else json.dumps(float(v))
    if isinstance(v, str):
        s = v.strip()
        try:  # "90" and 90.0 are the same value once a tool schema has coerced it
            return _key(float(s))
        except ValueError:
            pass
        return None if len(s) < 3 or s.lower() in TRIVIAL else json.dumps(s)
    return None


def _leaves(obj: Any) -> Iterable[Any]:
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _leaves(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _leaves(v)
    else:
        yield obj


@dataclass
class Root:
    id: str
    kind: str                 # "fault" or "model"
    type: str                 # fault name or error mode
    node: str
    seq: int
    t: float
    step: int
    path: list[str] = field(default_factory=list)
    calls: set[int] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)
    depth: int = 0
    detected: bool = False
    detected_by: str | None = None
    detected_node: str | None = None
    detect_step: int | None = None
    detect_t: float | None = None
    reached_final: bool = False
    raised: bool = False
    ended_task: bool = False  # detected, but the agent gave up on the step it kept breaking

    def visit(self, node: str | None) -> None:
        if node and (not self.path or self.path[-1] != node):
            self.path.append(node)

    def detect(self, how: str, node: str | None, step: int, t: float) -> None:
        if not self.detected:
            self.detected, self.detected_by, self.detected_node = True, how, node
            self.detect_step, self.detect_t = step, t
            self.visit(node)

    def summary(self) -> dict:
        return {
            "id": self.id, "kind": self.kind, "type": self.type, "origin_node": self.node,
            "detected": self.detected, "detected_by": self.detected_by, "detected_node": self.detected_node,
            "steps_to_detection": None if self.detect_step is None else self.detect_step - self.step,
            "time_to_detection_s": None if self.detect_t is None else round(self.detect_t - self.t, 6),
            "contained": not self.reached_final, "reached_final_state": self.reached_final,
            "depth": self.depth, "blast_radius": len(self.calls) + len(self.writes),
            "calls": sorted(self.calls), "writes": sorted(self.writes), "path": self.path,
        }


def _nodes_by_seq(events: list[dict]) -> dict[int, str]:
    """Each event belongs to the graph node(s) of the step that followed it."""
    out, pending = {}, []
    for e in events:
        if e["event"] == "step":
            node = "+".join(e.get("nodes") or []) or None
            for s in pending:
                out[s] = node
            pending = []
        else:
            pending.append(e["seq"])
    for s in pending:
        out[s] = None
    return out


def trace_trial(record, events: list[dict]) -> dict:
    """Roots, their propagation and the causal graph of one trial."""
    node_of = _nodes_by_seq(events)
    g = nx.DiGraph()
    roots: dict[str, Root] = {}
    tainted: dict[str, tuple[str, int | None]] = {}  # value key -> (root id, call it came from)
    call_root: dict[int, str] = {}        # tool call index -> root id
    call_depth: dict[int, int] = {}
    call_of_id: dict[str, list[int]] = defaultdict(list)   # model tool_call_id -> harness call indices
    model_call_root: dict[str, str] = {}  # model tool_call_id -> root of the error that made it
    pending_fault: dict[int, str] = {}    # call index -> corrupting fault root
    duplicate_of: dict[str, str] = {}     # tool name -> root whose write a retry may repeat
    last_turn_fault: str | None = None
    memory_root: str | None = None
    step, surfaced = 0, False
    consumed: set[int] = set()
    call_step: dict[str, str] = {}        # model tool_call_id -> golden step it was for
    stuck: dict[str, str] = {}            # golden step -> root whose tainted calls kept failing there
    step_root: dict[str, str] = {}        # golden step -> root of the corrupted result taken in for it
    refetched: dict[int, tuple] = {}      # corrupted call -> (node, step, t) of a later fetch of it

    def new_root(kind: str, typ: str, e: dict) -> Root:
        rid = f"{kind}:{typ}#{sum(r.type == typ for r in roots.values()) + 1}"
        r = Root(rid, kind, typ, node_of.get(e["seq"]) or "user", e["seq"], e["t"], step)
        r.visit(r.node)
        roots[rid] = r
        g.add_node(rid, kind="root", type=typ, origin=r.node)
        return r

    for e in events:
        ev = e["event"]
        node = node_of.get(e["seq"])
        if ev == "step":
            step += 1
        elif ev == "fault":
            r = new_root("fault", e["name"], e)
            if e.get("boundary") in ("turn",):
                last_turn_fault = r.id
            elif e.get("boundary") == "history":
                memory_root = r.id
            elif e["name"] in RAISING and e.get("error"):
                r.raised = True
                r.detect("raised", node, step, e["t"])  # an exception is an error surfaced at once
            if e.get("effect") and e.get("call") is not None:
                pending_fault[e["call"]] = r.id
                now = e.get("now")
                for v in (_leaves(now) if isinstance(now, (dict, list)) else [now]):
                    if (k := _key(v)) is not None:
                        tainted[k] = (r.id, e["call"])
                        r.values.add(k)
        elif ev == "model_call":
            for cid, verdict in (e.get("verdicts") or {}).items():
                for ci in call_of_id.get(cid, []):
                    rid = call_root.get(ci)
                    if rid is None or (ci in pending_fault and verdict == "accept"):
                        continue  # a corrupted result counts as taken in only where the model says so
                    if verdict == "reject":
                        roots[rid].detect("model rejected the result", node, step, e["t"])
                        if call_step.get(cid):
                            stuck[call_step[cid]] = rid
                    else:
                        consumed.add(ci)
                        roots[rid].visit(node)
                        if call_step.get(cid):  # the model now holds a tainted output for that step
                            step_root.setdefault(call_step[cid], rid)
                if verdict == "reject":
                    surfaced = True
            mode = e.get("mode")
            if e.get("call_id") and e.get("step"):
                call_step[e["call_id"]] = e["step"]
            if e.get("clarify") and last_turn_fault:
                roots[last_turn_fault].detect("asked the user", node, step, e["t"])
            if mode in MODEL_ROOTS and e.get("call_id"):
                if mode == "guessed" and last_turn_fault:
                    rid = last_turn_fault
                    roots[rid].visit(node)
                else:
                    rid = new_root("model", mode, e).id
                model_call_root[e["call_id"]] = rid
            elif mode in NO_DATA and e.get("step") in stuck:
                # it gave up on a step a tainted value kept failing: a consequence, not a new cause
                r = roots[stuck[e["step"]]]
                r.visit(node)
                r.ended_task = True
            elif mode in NO_DATA:
                new_root("model", mode, e)
            elif e.get("filled_missing") and e.get("call_id"):
                # it invented a value it did not have: blame the corrupted result it took in for
                # that step, or what made it forget; otherwise the invention is its own error
                sources = [f.split("<-", 1)[1] for f in e["filled_missing"] if "<-" in f]
                rid = next((step_root[x] for x in sources if x in step_root), None) or memory_root \
                    or new_root("model", "missing_input", e).id
                roots[rid].visit(node)
                model_call_root[e["call_id"]] = rid
        elif ev == "corruption_accepted":
            rid = pending_fault.get(e.get("call"))
            if rid:
                consumed.add(e["call"])
                roots[rid].visit(node)
                if e.get("step"):
                    step_root[e["step"]] = rid
        elif ev == "injection_obeyed":
            for r in roots.values():
                if r.type == "prompt_injection":
                    r.visit(node)
        elif ev == "model_error" or ev == "trial_error":
            surfaced = True
        elif ev == "tool_call":
            ci, cid = e["call"], e.get("call_id")
            if cid:
                # a second fetch of the same request: a verifier or a retry looking again
                for prev in call_of_id[cid]:
                    if prev in pending_fault and prev not in refetched and prev not in consumed:
                        refetched[prev] = (node, step, e["t"])
                call_of_id[cid].append(ci)
            if not e.get("ok", True):
                surfaced = True
            g.add_node(f"call:{ci}", kind="call", tool=e["tool"], node=node)
            parents = []  # (root, call the tainted input came from, depth)
            if cid in model_call_root:
                parents.append((model_call_root[cid], None, 0))
            for v in _leaves(e.get("args") or {}):
                k = _key(v)
                if k in tainted:
                    rid, src = tainted[k]
                    parents.append((rid, src, call_depth.get(src, 0) + 1 if src is not None else 0))
            if e.get("effect_applied") and any(r.raised and r.type == "timeout" for r in roots.values()):
                # the timed-out write happened: a later identical write repeats it
                duplicate_of[e["tool"]] = next(r.id for r in reversed(list(roots.values())) if r.type == "timeout")
            if ci in pending_fault:
                rid = pending_fault[ci]
                roots[rid].calls.add(ci)
                call_root[ci] = rid
                call_depth[ci] = 0
                g.add_edge(rid, f"call:{ci}", relation="corrupted")
            for rid, src, depth in parents:
                r = roots[rid]
                r.visit(node)
                r.calls.add(ci)
                r.depth = max(r.depth, depth)
                call_root.setdefault(ci, rid)
                call_depth[ci] = max(call_depth.get(ci, 0), depth)
                g.add_edge(f"call:{src}" if src is not None and g.has_node(f"call:{src}") else rid,
                           f"call:{ci}", relation="argument", root=rid)
                if e.get("ok") and isinstance(e.get("result"), (dict, list)):
                    for v in _leaves(e["result"]):
                        if (k := _key(v)) is not None:
                            tainted.setdefault(k, (rid, ci))
                            r.values.add(k)
                elif not e.get("ok", True):
                    pass  # surfaced as an error result: detection depends on the model's verdict
        elif ev == "world_write":
            ci = e["call"]
            rid = call_root.get(ci)
            tool = e.get("tool")
            if rid is None and tool in duplicate_of:
                rid = duplicate_of.pop(tool)
                roots[rid].calls.add(ci)
                roots[rid].visit(node)
            elif tool in duplicate_of:
                duplicate_of.pop(tool)
            if rid:
                for p in e.get("paths", []):
                    roots[rid].writes.add(p)
                    g.add_edge(f"call:{ci}" if g.has_node(f"call:{ci}") else rid, f"write:{p}", relation="wrote")
                    g.nodes[f"write:{p}"]["root"] = rid
    for ci, (where, st, t) in refetched.items():
        # fetched again and never taken in by the model: whoever fetched it caught it
        if ci not in consumed and where is not None:
            roots[pending_fault[ci]].detect(f"fetched again in {where}", where, st, t)
    # the final state: failed checks and the outcome
    outcome = f"outcome:{record.outcome}" + (f":{record.failure_mode}" if record.failure_mode else "")
    g.add_node(outcome, kind="outcome")
    failed = [c for c in record.checks if not c.passed]
    for c in failed:
        cn = f"check:{c.name}"
        g.add_node(cn, kind="check")
        g.add_edge(cn, outcome, relation="failed")
        hit = False
        if c.name.startswith("state "):
            path = c.name[len("state "):]
            for r in roots.values():
                if any(w == path or w.startswith(path + ".") or path.startswith(w + ".") for w in r.writes):
                    r.reached_final = hit = True
                    for w in r.writes:
                        if w == path or w.startswith(path + ".") or path.startswith(w + "."):
                            g.add_edge(f"write:{w}", cn, relation="breaks")
        else:
            answer = record.answer or ""
            for r in roots.values():
                if any(k.startswith('"') and json.loads(k) in answer for k in r.values):
                    r.reached_final = hit = True
                    g.add_edge(r.id, cn, relation="in the answer")
        if not hit:
            for r in roots.values():
                if r.type in NO_DATA or r.type == "goal_change":
                    r.reached_final = True
                    g.add_edge(r.id, cn, relation="left undone")
    if record.outcome == "failure" and (record.failure_mode or "").startswith("unhandled_"):
        raising = [r for r in roots.values() if r.raised]
        if raising:
            raising[-1].reached_final = True
            g.add_edge(raising[-1].id, outcome, relation="unhandled")
    if record.outcome == "failure":
        for r in roots.values():
            if r.type in NO_DATA or r.ended_task:
                r.reached_final = True
                g.add_edge(r.id, outcome, relation="ended the task")
    for r in roots.values():
        if r.reached_final:
            r.visit("final_state")
    steps = [tuple(e.get("nodes") or ()) for e in events if e["event"] == "step"]
    transitions = sorted({(a, b) for x, y in zip(steps, steps[1:]) for a in x for b in y})
    silent = (record.outcome == "failure" and not surfaced
              and any(not c.passed and c.name.startswith("state ") for c in record.checks))
    return {"trial_id": record.trial_id, "outcome": record.outcome, "failure_mode": record.failure_mode,
            "silent_failure": silent, "roots": [r.summary() for r in roots.values()], "graph": g,
            "agent": (record.spec.get("tags") or {}).get("agent", record.agent), "profile": record.profile,
            "graph_nodes": [n for n in record.graph_nodes if not n.startswith("__")],
            "graph_edges": record.graph_edges, "transitions": [list(t) for t in transitions]}


def aggregate(trials: Iterable[dict]) -> dict:
    """Per graph node and per root-cause type, across trials; harness errors kept apart."""
    nodes: dict[str, dict[str, int]] = defaultdict(lambda: {"originated": 0, "entered": 0, "escaped": 0,
                                                             "contained": 0})
    types: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "detected": 0, "contained": 0,
                                                             "reached_final": 0, "depth": [], "blast": [],
                                                             "steps": [], "time": []})
    flow = nx.DiGraph()
    observed: dict[tuple, int] = defaultdict(int)
    n = silent = errors = failures = 0
    topology = set()
    for tr in trials:
        if tr["outcome"] == "error":
            errors += 1
            continue
        n += 1
        failures += tr["outcome"] == "failure"
        silent += tr["silent_failure"]
        topology.update(tuple(e) for e in tr["graph_edges"])
        for name in tr.get("graph_nodes", []):
            nodes[name]  # every node of the graph is listed, even one no error touched
        for a, b in tr.get("transitions", []):
            observed[(a, b)] += 1
        for r in tr["roots"]:
            t = types[r["type"]]
            t["count"] += 1
            t["detected"] += r["detected"]
            t["contained"] += r["contained"]
            t["reached_final"] += r["reached_final_state"]
            t["depth"].append(r["depth"])
            t["blast"].append(r["blast_radius"])
            if r["steps_to_detection"] is not None:
                t["steps"].append(r["steps_to_detection"])
                t["time"].append(r["time_to_detection_s"])
            path = [p for p in r["path"] if p != "final_state"]
            seen = []
            for p in path:
                if p not in seen:
                    seen.append(p)
            origin = r["origin_node"]
            label = f"{r['kind']}:{r['type']}"
            _inc(flow, label, origin)
            for i, p in enumerate(seen):
                stats = nodes[p]
                if i == 0 and p == origin:
                    stats["originated"] += 1
                else:
                    stats["entered"] += 1
                last = i == len(seen) - 1
                if not last or r["reached_final_state"]:
                    stats["escaped"] += 1
                    _inc(flow, p, seen[i + 1] if not last else "final_state")
                else:
                    stats["contained"] += 1
                    _inc(flow, p, "contained")
    out_nodes = {}
    for name, s in sorted(nodes.items()):
        total = s["originated"] + s["entered"]
        lo, hi = wilson(s["contained"], total)
        out_nodes[name] = {**s, "containment_rate": s["contained"] / total if total else None,
                           "ci_low": lo, "ci_high": hi,
                           "escape_probability": s["escaped"] / total if total else None}
    out_types = {}
    for name, t in sorted(types.items()):
        c = t["count"]
        lo, hi = wilson(t["contained"], c)
        out_types[name] = {
            "count": c, "detection_rate": t["detected"] / c, "containment_rate": t["contained"] / c,
            "ci_low": lo, "ci_high": hi, "reached_final_state": t["reached_final"],
            "mean_depth": sum(t["depth"]) / c, "mean_blast_radius": sum(t["blast"]) / c,
            "mean_steps_to_detection": sum(t["steps"]) / len(t["steps"]) if t["steps"] else None,
            "mean_time_to_detection_s": sum(t["time"]) / len(t["time"]) if t["time"] else None,
        }
    lo, hi = wilson(silent, n)
    # the agent graph itself: its declared edges and the transitions actually taken
    for (a, b), attr, val in [(e, "declared", True) for e in sorted(topology)] + \
                             [(e, "observed", c) for e, c in sorted(observed.items())]:
        if not a.startswith("__") and not b.startswith("__"):
            if not flow.has_edge(a, b):
                flow.add_edge(a, b, weight=0)
            flow.edges[a, b][attr] = val
    return {
        "n_trials": n, "error_trials_excluded": errors, "failures": failures,
        "silent_failures": silent, "silent_failure_rate": silent / n if n else 0.0, "ci_low": lo, "ci_high": hi,
        "root_causes": {k: v["count"] for k, v in out_types.items()},
        "root_cause_detail": out_types, "nodes": out_nodes, "graph": flow,
        "inference": "exact origins from the simulated model; data flow inferred by matching values",
    }


def _inc(g: nx.DiGraph, a: str, b: str) -> None:
    if g.has_edge(a, b):
        g.edges[a, b]["weight"] += 1
    else:
        g.add_edge(a, b, weight=1)


def iter_trial_events(path) -> Iterable[tuple[str, list[dict]]]:
    """Events grouped by trial, streaming (each trial's events are contiguous in the log)."""
    from .store import iter_jsonl
    current, batch = None, []
    for e in iter_jsonl(path):
        if e.get("trial") != current and batch:
            yield current, batch
            batch = []
        current = e.get("trial")
        batch.append(e)
    if batch:
        yield current, batch


def graph_json(g: nx.DiGraph) -> dict:
    return nx.node_link_data(g, edges="edges")
