"""TrialRecords: the versioned result of one trial, and reading them back."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any, Literal

from pydantic import BaseModel, Field

from .profiles import ROOT_MODES

# 2: failure_cause (records of version 1 load with it empty: reports fall back to failure_mode)
# 3: tokens_by_role, first_answer_s, confidence_bins, brier_sum, injections_seen, impact, cost_usd
#    (older records load with them empty: reports show no cost or calibration for them)
RECORD_SCHEMA_VERSION = 3
# stated confidence is binned in tenths: enough for a reliability table, small in every record
CONFIDENCE_BINS = 10
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
    injections_seen: int = Field(0, description="instructions injected into tool results that the model read")
    reviews: int = Field(0, description="interrupts a human reviewer answered")
    rejections: int = Field(0, description="actions the reviewer rejected (edits not counted)")
    review_s: float = Field(0.0, description="virtual time spent waiting for reviews")
    first_answer_s: float | None = Field(None, description="virtual seconds from the start to the agent's "
                                         "first reply to the user; absent when it never replied")
    tokens_by_role: dict[str, list[int]] = Field(default_factory=dict,
                                                 description="model role -> [input tokens, output tokens]")
    confidence_bins: list[list[float]] = Field(
        default_factory=list, description=f"the model's decisions by stated confidence in {CONFIDENCE_BINS} bins "
        "[0, 0.1), ..., [0.9, 1]: [calls, sum of confidence, calls that were right] each")
    brier_sum: float = Field(0.0, description="sum over decisions of (confidence - right)^2")
    impact: str | None = Field(None, description="what the failure costs the business: silent_wrong, "
                               "duplicate_write or loud; absent on success and on harness errors")
    cost_usd: dict[str, float] = Field(default_factory=dict, description="model, review, failure and total, "
                                       "in US dollars at the profile's prices and the scenario's impacts")
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
            injections_seen=sum(e["event"] in ("injection_obeyed", "injection_ignored") for e in events),
            reviews=sum(1 for e in reviews if e.get("answered") is not False),
            rejections=sum(d == "reject" for e in reviews for d in e["decisions"]),
            review_s=round(sum(e["latency_s"] for e in reviews), 6),
            graph_nodes=nodes, graph_edges=edges, **model_figures(events))

    def deterministic(self) -> dict:
        """Everything except wall time: equal for equal specs, whichever machine ran them."""
        return self.model_dump(mode="json", exclude={"wall_time_s"})


def model_figures(events: list[dict]) -> dict:
    """Tokens per role, stated confidence against being right, and time to the first answer."""
    by_role: dict[str, list[int]] = {}
    bins = [[0, 0.0, 0] for _ in range(CONFIDENCE_BINS)]
    brier, start, first = 0.0, None, None
    for e in events:
        kind = e["event"]
        if kind == "model_call":
            t = by_role.setdefault(e["role"], [0, 0])
            t[0] += e["context_tokens"]
            t[1] += e["output_tokens"]
            conf = e.get("confidence")
            if conf is not None:
                right = e["mode"] not in ROOT_MODES
                b = bins[min(int(conf * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)]
                b[0] += 1
                b[1] += conf
                b[2] += right
                brier += (conf - right) ** 2
        elif kind == "trial_start":
            start = e["t"]
        elif kind == "turn_end" and first is None and start is not None:
            first = round(e["t"] - start, 6)
    return {"tokens_by_role": by_role, "first_answer_s": first, "brier_sum": round(brier, 9),
            "confidence_bins": [[n, round(c, 6), k] for n, c, k in bins] if any(b[0] for b in bins) else []}


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


def code_version() -> str | None:
    """What code ran: ATTRITION_CODE_VERSION if set (a CI job can pass its own), else the git
    commit of the working directory (with "-dirty" when tracked files differ), else None."""
    if os.environ.get("ATTRITION_CODE_VERSION"):
        return os.environ["ATTRITION_CODE_VERSION"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):  # no git, or a repository too slow to ask
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
