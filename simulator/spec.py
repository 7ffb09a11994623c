"""TrialSpec: frozen, hashable, and identified by a digest of its canonical form."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


class ScenarioRef(BaseModel):
    """Where the scenario comes from: a YAML file, a built-in name or a template with params."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    ref: str
    params: dict[str, Any] = Field(default_factory=dict)
    digest: str = Field(description="digest of the scenario's content; replay checks it")

    def __hash__(self):
        return hash(canonical(self.model_dump()))


class TrialSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    scenario: ScenarioRef
    agent: str
    agent_params: dict[str, Any] = Field(default_factory=dict)
    profile: str = "strong"
    profile_params: dict[str, Any] = Field(default_factory=dict)
    faults: tuple[dict, ...] = ()
    seed: int = 0
    replicate: int = 0
    budgets: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict, description="labels of the sweep cell (fault setting, agent)")

    @property
    def id(self) -> str:
        return digest(self.model_dump(mode="json"))

    def __hash__(self):
        return hash(self.id)
