"""TrialRecords: the versioned result of one trial, and reading them back."""
from __future__ import annotations

import platform
from importlib import metadata
from typing import Any, Literal

from pydantic import BaseModel, Field

# 2: failure_cause (records of version 1 load with it empty: reports fall back to failure_mode)
RECORD_SCHEMA_VERSION = 2
Outcome = Literal["success", "failure", "error", "budget"]


class Check(BaseModel):
    name: str
    passed: bool
    expected: Any = None
    actual: Any = None


class TrialRecord(BaseModel):
    schema_version: int = RECORD_SCHEMA_VERSION
    trial_id: str
    spec: dict
    scenario: str
    agent: str
    profile: str
    seed: int
    replicate: int
    outcome: Outcome
    failure_mode: str | None = Field(None, description="the first uncorrected error in time, else which kind of "
                                      "check failed; or the budget that ran out, or the unhandled error")
    failure_cause: str | None = Field(None, description="the failure mode by cause: the root error (the model's "
                                      "or a fault's) whose taint reached a failed check; absent when none did")
    error: str | None = None
    steps: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    sim_time_s: float = 0.0
    wall_time_s: float = 0.0
    turns_completed: int = 0
    golden_length: int = 0
    checks: list[Check] = Field(default_factory=list)
    answer: str | None = None
    faults_fired: dict[str, int] = Field(default_factory=dict, description="fault id -> firings")
    faults_not_fired: list[str] = Field(default_factory=list, description="configured faults that never fired")
    clarifications: int = Field(0, description="times the agent asked the user instead of guessing")
    guesses: int = Field(0, description="withheld or contradictory values the agent guessed")
    injections_obeyed: int = 0
    reviews: int = Field(0, description="interrupts a human reviewer answered")
    rejections: int = Field(0, description="actions the reviewer rejected (edits not counted)")
    review_s: float = Field(0.0, description="virtual time spent waiting for reviews")
    graph_nodes: list[str] = Field(default_factory=list, description="the agent graph's nodes")
    graph_edges: list[list[str]] = Field(default_factory=list, description="its declared edges")

    @classmethod
    def from_session(cls, spec, s, *, outcome: str, failure_mode: str | None, error: str | None, steps: int,
                     sim_time_s: float, wall_time_s: float, turns_completed: int, answers: list[str],
                     checks: list[Check], graph, failure_cause: str | None = None) -> "TrialRecord":
        """The record of a finished trial, from its spec, its session and what the engine saw."""
        events = s.trace.events
        reviews = [e for e in events if e["event"] == "review"]
        nodes, edges = topology(graph)
        return cls(
            trial_id=spec.id, spec=spec.model_dump(mode="json"), scenario=s.scenario.name, agent=spec.agent,
            profile=spec.profile_label, seed=spec.seed, replicate=spec.replicate, outcome=outcome,
            failure_mode=failure_mode, failure_cause=failure_cause, error=error, steps=steps,
            model_calls=s.model_calls, tool_calls=s.tool_calls, tokens_in=s.tokens_in, tokens_out=s.tokens_out,
            sim_time_s=round(sim_time_s, 6), wall_time_s=round(wall_time_s, 6),
            turns_completed=turns_completed, golden_length=len(s.scenario.golden_path), checks=checks,
            answer=answers[-1] if answers else None, faults_fired=dict(s.fault_runtime.fired),
            faults_not_fired=s.fault_runtime.unfired(),
            clarifications=sum(e["event"] == "clarification_asked" for e in events),
            guesses=sum(len(e.get("guessed") or ()) for e in events if e["event"] == "model_call"),
            injections_obeyed=sum(e["event"] == "injection_obeyed" for e in events),
            reviews=sum(1 for e in reviews if e.get("answered") is not False),
            rejections=sum(d == "reject" for e in reviews for d in e["decisions"]),
            review_s=round(sum(e["latency_s"] for e in reviews), 6),
            graph_nodes=nodes, graph_edges=edges)

    def deterministic(self) -> dict:
        """Everything except wall time: equal for equal specs, whichever machine ran them."""
        return self.model_dump(mode="json", exclude={"wall_time_s"})


def topology(graph) -> tuple[list[str], list[list[str]]]:
    """A compiled graph's nodes and declared edges (START/END included as __start__/__end__)."""
    if graph is None:
        return [], []
    try:
        g = graph.get_graph()
    except Exception:  # a graph LangGraph cannot draw still runs; it just has no topology
        return [], []
    return list(g.nodes), sorted([e.source, e.target] for e in g.edges)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("attrition", "langgraph", "langchain-core", "simpy", "pydantic", "structlog"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
