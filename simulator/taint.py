"""Taint inside one trial: root causes and the data they corrupted, event by event.

A root cause is a fault firing or one of the model's own errors. Its taint follows
the data: a corrupted result's wrong value, or the arguments of a call made in
error, are tainted at their origin; any later call whose arguments carry a tainted
value is tainted too, and so are its result and its world writes. Taint stops
where a step detects it: the model rejects the result, a verifier fetches it again
and replaces it, a retry gets a clean one, or the agent asks the user.

`follow_taint` folds a trial's typed events into one `Taint` state, through one
small handler per event kind; what the taint did to the final state is
attribution's business.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, get_args

import networkx as nx

from .events import (CorruptionAccepted, EventBase, Fault, InjectionObeyed, ModelCall, ModelError, Step, ToolCall,
                     TrialError, WorldWrite, parse_event)
from .faults.base import FaultDef
from .profiles import ROOT_MODES
from .registry import find
from .values import leaves

NO_DATA = {"premature_finish", "give_up", "skipped_step"}   # errors that carry no value forward
TRIVIAL = {"", "none", "null", "true", "false", "ok", "done", "yes", "no"}


def raises(fault_name: str) -> bool:
    """Whether a fault makes the client raise: a raised error surfaces at once."""
    entry = find("fault", fault_name)
    return isinstance(getattr(entry, "obj", None), FaultDef) and bool(entry.obj.raises)


def value_key(v: Any) -> str | None:
    """A value specific enough that finding it again means it was copied."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return None if v in (0, 1, -1) else json.dumps(float(v))
    if isinstance(v, str):
        s = v.strip()
        try:  # "90" and 90.0 are the same value once a tool schema has coerced it
            return value_key(float(s))
        except ValueError:
            pass
        return None if len(s) < 3 or s.lower() in TRIVIAL else json.dumps(s)
    return None


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


@dataclass
class Taint:
    """Everything known about the roots of one trial, so far in its events."""
    node_of: dict[int, str | None]       # event seq -> graph node(s) of the step that followed it
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    roots: dict[str, Root] = field(default_factory=dict)
    tainted: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # value key -> (root, source call)
    call_root: dict[int, str] = field(default_factory=dict)        # tool call index -> root id
    call_depth: dict[int, int] = field(default_factory=dict)
    call_of_id: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # model id -> calls
    model_call_root: dict[str, str] = field(default_factory=dict)  # model tool_call_id -> root of its error
    pending_fault: dict[int, str] = field(default_factory=dict)    # call index -> corrupting fault root
    duplicate_of: dict[str, str] = field(default_factory=dict)     # tool -> root whose write a retry may repeat
    last_turn_fault: str | None = None
    memory_root: str | None = None
    step: int = 0
    surfaced: bool = False               # some error showed itself (raised, rejected, failed call)
    consumed: set[int] = field(default_factory=set)                # corrupted calls the model took in
    call_step: dict[str, str] = field(default_factory=dict)        # model tool_call_id -> golden step
    stuck: dict[str, str] = field(default_factory=dict)            # golden step -> root that kept failing it
    step_root: dict[str, str] = field(default_factory=dict)        # golden step -> root of the result taken in
    refetched: dict[int, tuple] = field(default_factory=dict)      # corrupted call -> (node, step, t) of a refetch

    def new_root(self, kind: str, typ: str, e: EventBase) -> Root:
        rid = f"{kind}:{typ}#{sum(r.type == typ for r in self.roots.values()) + 1}"
        r = Root(rid, kind, typ, self.node_of.get(e.seq) or "user", e.seq, e.t, self.step)
        r.visit(r.node)
        self.roots[rid] = r
        self.graph.add_node(rid, kind="root", type=typ, origin=r.node)
        return r


def nodes_by_seq(events: list[EventBase]) -> dict[int, str | None]:
    """Each event belongs to the graph node(s) of the step that followed it."""
    out, pending = {}, []
    for e in events:
        if isinstance(e, Step):
            node = "+".join(e.nodes) or None
            for s in pending:
                out[s] = node
            pending = []
        else:
            pending.append(e.seq)
    for s in pending:
        out[s] = None
    return out


# -- one handler per event kind ------------------------------------------------

def on_step(s: Taint, e: Step, node: str | None) -> None:
    s.step += 1


def on_fault(s: Taint, e: Fault, node: str | None) -> None:
    r = s.new_root("fault", e.name, e)
    if e.boundary == "turn":
        s.last_turn_fault = r.id
    elif e.boundary == "history":
        s.memory_root = r.id
    elif raises(e.name) and e.error:
        r.raised = True
        r.detect("raised", node, s.step, e.t)  # an exception is an error surfaced at once
    if e.effect and e.call is not None:
        s.pending_fault[e.call] = r.id
        for v in (leaves(e.now) if isinstance(e.now, (dict, list)) else [e.now]):
            if (k := value_key(v)) is not None:
                s.tainted[k] = (r.id, e.call)
                r.values.add(k)


def take_verdicts(s: Taint, e: ModelCall, node: str | None) -> None:
    """The model's verdicts on earlier results: rejected ones are detected, accepted ones carry on."""
    for cid, verdict in (e.verdicts or {}).items():
        for ci in s.call_of_id.get(cid, []):
            rid = s.call_root.get(ci)
            if rid is None or (ci in s.pending_fault and verdict == "accept"):
                continue  # a corrupted result counts as taken in only where the model says so
            if verdict == "reject":
                s.roots[rid].detect("model rejected the result", node, s.step, e.t)
                if s.call_step.get(cid):
                    s.stuck[s.call_step[cid]] = rid
            else:
                s.consumed.add(ci)
                s.roots[rid].visit(node)
                if s.call_step.get(cid):  # the model now holds a tainted output for that step
                    s.step_root.setdefault(s.call_step[cid], rid)
        if verdict == "reject":
            s.surfaced = True


def blame_decision(s: Taint, e: ModelCall, node: str | None) -> None:
    """Which root, if any, the model's decision starts or carries on."""
    mode = e.mode
    if mode in ROOT_MODES and e.call_id:
        if mode == "guessed" and s.last_turn_fault:
            rid = s.last_turn_fault
            s.roots[rid].visit(node)
        else:
            rid = s.new_root("model", mode, e).id
        s.model_call_root[e.call_id] = rid
    elif mode in NO_DATA and e.step in s.stuck:
        # it gave up on a step a tainted value kept failing: a consequence, not a new cause
        r = s.roots[s.stuck[e.step]]
        r.visit(node)
        r.ended_task = True
    elif mode in NO_DATA:
        s.new_root("model", mode, e)
    elif e.filled_missing and e.call_id:
        # it invented a value it did not have: blame the corrupted result it took in for
        # that step, or what made it forget; otherwise the invention is its own error
        sources = [f.split("<-", 1)[1] for f in e.filled_missing if "<-" in f]
        rid = next((s.step_root[x] for x in sources if x in s.step_root), None) or s.memory_root \
            or s.new_root("model", "missing_input", e).id
        s.roots[rid].visit(node)
        s.model_call_root[e.call_id] = rid


def on_model_call(s: Taint, e: ModelCall, node: str | None) -> None:
    take_verdicts(s, e, node)
    if e.call_id and e.step:
        s.call_step[e.call_id] = e.step
    if e.clarify and s.last_turn_fault:
        s.roots[s.last_turn_fault].detect("asked the user", node, s.step, e.t)
    blame_decision(s, e, node)


def on_corruption_accepted(s: Taint, e: CorruptionAccepted, node: str | None) -> None:
    rid = s.pending_fault.get(e.call)
    if rid:
        s.consumed.add(e.call)
        s.roots[rid].visit(node)
        if e.step:
            s.step_root[e.step] = rid


def on_injection_obeyed(s: Taint, e: InjectionObeyed, node: str | None) -> None:
    for r in s.roots.values():
        if r.type == "prompt_injection":
            r.visit(node)


def on_error(s: Taint, e: EventBase, node: str | None) -> None:
    s.surfaced = True


def tainted_inputs(s: Taint, e: ToolCall) -> list[tuple[str, int | None, int]]:
    """(root, call the tainted input came from, depth) for each tainted input of a call."""
    parents = []
    if e.call_id in s.model_call_root:
        parents.append((s.model_call_root[e.call_id], None, 0))
    for v in leaves(e.args or {}):
        k = value_key(v)
        if k in s.tainted:
            rid, src = s.tainted[k]
            parents.append((rid, src, s.call_depth.get(src, 0) + 1 if src is not None else 0))
    return parents


def spread(s: Taint, e: ToolCall, node: str | None, parents: list[tuple[str, int | None, int]]) -> None:
    """A call with tainted inputs is tainted, and so is every specific value it returned."""
    ci, g = e.call, s.graph
    for rid, src, depth in parents:
        r = s.roots[rid]
        r.visit(node)
        r.calls.add(ci)
        r.depth = max(r.depth, depth)
        s.call_root.setdefault(ci, rid)
        s.call_depth[ci] = max(s.call_depth.get(ci, 0), depth)
        g.add_edge(f"call:{src}" if src is not None and g.has_node(f"call:{src}") else rid,
                   f"call:{ci}", relation="argument", root=rid)
        # a failed call's error result spreads nothing: detection depends on the model's verdict
        if e.ok and isinstance(e.result, (dict, list)):
            for v in leaves(e.result):
                if (k := value_key(v)) is not None:
                    s.tainted.setdefault(k, (rid, ci))
                    r.values.add(k)


def on_tool_call(s: Taint, e: ToolCall, node: str | None) -> None:
    ci, cid = e.call, e.call_id
    if cid:
        # a second fetch of the same request: a verifier or a retry looking again
        for prev in s.call_of_id[cid]:
            if prev in s.pending_fault and prev not in s.refetched and prev not in s.consumed:
                s.refetched[prev] = (node, s.step, e.t)
        s.call_of_id[cid].append(ci)
    if not e.ok:
        s.surfaced = True
    s.graph.add_node(f"call:{ci}", kind="call", tool=e.tool, node=node)
    parents = tainted_inputs(s, e)
    if e.effect_applied and any(r.raised and r.type == "timeout" for r in s.roots.values()):
        # the timed-out write happened: a later identical write repeats it
        s.duplicate_of[e.tool] = next(r.id for r in reversed(list(s.roots.values())) if r.type == "timeout")
    if ci in s.pending_fault:
        rid = s.pending_fault[ci]
        s.roots[rid].calls.add(ci)
        s.call_root[ci] = rid
        s.call_depth[ci] = 0
        s.graph.add_edge(rid, f"call:{ci}", relation="corrupted")
    spread(s, e, node, parents)


def on_world_write(s: Taint, e: WorldWrite, node: str | None) -> None:
    ci, g = e.call, s.graph
    rid = s.call_root.get(ci)
    if rid is None and e.tool in s.duplicate_of:
        rid = s.duplicate_of.pop(e.tool)
        s.roots[rid].calls.add(ci)
        s.roots[rid].visit(node)
    elif e.tool in s.duplicate_of:
        s.duplicate_of.pop(e.tool)
    if rid:
        for p in e.paths:
            s.roots[rid].writes.add(p)
            g.add_edge(f"call:{ci}" if g.has_node(f"call:{ci}") else rid, f"write:{p}", relation="wrote")
            g.nodes[f"write:{p}"]["root"] = rid


# keyed by model class, so a handler cannot name a kind that does not exist; other kinds carry no taint
HANDLERS: dict[type[EventBase], Callable[[Taint, Any, str | None], None]] = {
    Step: on_step, Fault: on_fault, ModelCall: on_model_call, CorruptionAccepted: on_corruption_accepted,
    InjectionObeyed: on_injection_obeyed, ModelError: on_error, TrialError: on_error,
    ToolCall: on_tool_call, WorldWrite: on_world_write,
}


# the kinds of event some handler reads, by name: no other event needs parsing to follow taint
KINDS = frozenset(get_args(c.model_fields["event"].annotation)[0] for c in HANDLERS)


def follow_dicts(events: list[dict]) -> Taint:
    """`follow_taint` over event dicts as a trace holds them, parsing only the kinds it reads."""
    return follow_taint([parse_event(e) for e in events if e.get("event") in KINDS])


def follow_taint(events: list[EventBase]) -> Taint:
    """Fold one trial's events into its roots, their taint and the causal graph."""
    s = Taint(node_of=nodes_by_seq(events))
    for e in events:
        handler = HANDLERS.get(type(e))
        if handler is not None:
            handler(s, e, s.node_of.get(e.seq))
    for ci, (where, st, t) in s.refetched.items():
        # fetched again and never taken in by the model: whoever fetched it caught it
        if ci not in s.consumed and where is not None:
            s.roots[s.pending_fault[ci]].detect(f"fetched again in {where}", where, st, t)
    return s
