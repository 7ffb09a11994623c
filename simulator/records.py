"""TrialRecords: the versioned result of one trial, and reading them back."""
from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

RECORD_SCHEMA_VERSION = 1
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
    failure_mode: str | None = None
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
    graph_nodes: list[str] = Field(default_factory=list, description="the agent graph's nodes")
    graph_edges: list[list[str]] = Field(default_factory=list, description="its declared edges")

    def deterministic(self) -> dict:
        """Everything except wall time: equal for equal specs, whichever machine ran them."""
        return self.model_dump(mode="json", exclude={"wall_time_s"})


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("attrition", "langgraph", "langchain-core", "simpy", "pydantic", "structlog"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def find_trial(trial_id: str, roots: list[Path]) -> tuple[TrialRecord, Path] | None:
    """The newest stored record whose id starts with `trial_id` (at least 4 characters;
    a prefix two different trials share is refused)."""
    if len(trial_id) < 4:
        raise LookupError(f"a trial id prefix needs at least 4 characters, not {trial_id!r}")
    runs = sorted((p for r in roots if Path(r).is_dir()
                   for p in [Path(r), *Path(r).iterdir()] if (p / "records.jsonl").is_file()),
                  key=lambda p: (p / "records.jsonl").stat().st_mtime, reverse=True)
    found: dict[str, tuple[TrialRecord, Path]] = {}
    for run in runs:
        with open(run / "records.jsonl", encoding="utf-8") as f:
            for line in f:
                if f'"trial_id":"{trial_id}' in line:
                    rec = TrialRecord.model_validate_json(line)
                    found.setdefault(rec.trial_id, (rec, run))
    if len(found) > 1:
        raise LookupError(f"{trial_id!r} matches {len(found)} trials ({', '.join(sorted(found)[:4])}...); "
                          "give more of the id")
    return next(iter(found.values()), None)
