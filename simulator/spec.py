"""TrialSpec: frozen, hashable, and identified by a digest of its canonical form; and the
limits every input shares on its way to a TrialSpec (seeds, spans of virtual time)."""
from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_serializer, model_validator

# results.duckdb stores seeds and replicates as BIGINT (signed 64-bit)
MAX_SEED = 2**63 - 1
# The longest span of virtual time any input may give (a latency, a think time, a
# window, a time budget): 30 days is far past any session, and keeping every span
# this small keeps sums of them, and lognormal draws around them, finite.
MAX_VIRTUAL_S = 30 * 24 * 3600.0
VIRTUAL_S = "2592000 s (30 days of virtual time)"


def check_seed(v: int) -> int:
    if not 0 <= v <= MAX_SEED:
        raise ValueError(f"a seed is a whole number from 0 to 2**63 - 1 = {MAX_SEED} "
                         f"(results store it as a 64-bit integer); got {v}")
    return v


Seed = Annotated[int, AfterValidator(check_seed)]


def nonfinite(data: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every float in nested data that is NaN or infinite."""
    if isinstance(data, float) and not math.isfinite(data):
        return [path]
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in nonfinite(v, path + (k,))]
    if isinstance(data, (list, tuple)):
        return [p for i, v in enumerate(data) for p in nonfinite(v, path + (i,))]
    return []


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
    seed: Seed = 0
    replicate: int = Field(0, ge=0, le=MAX_SEED)
    budgets: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict, description="labels of the sweep cell (fault setting, agent)")
    reviewer: dict[str, Any] | None = Field(None, description="the human reviewer's policy (reviewer.Policy); "
                                            "None: one who approves everything")
    model: dict[str, Any] | None = Field(None, description="real models (live.model_spec): roles -> PROVIDER:NAME, "
                                         "base_url, latency; None: the simulated model plays every role")

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # a field added after ids were first published enters the canonical form only when
        # set, so every trial that does not use it keeps its id (and its results stay resumable)
        out = handler(self)
        for name in ("reviewer", "model"):
            if getattr(self, name) is None:
                out.pop(name, None)
        return out

    @model_validator(mode="after")
    def _finite(self):
        # a record holds its spec as JSON, which has no NaN or Infinity
        bad = nonfinite({"agent_params": self.agent_params, "profile_params": self.profile_params,
                         "budgets": self.budgets, "faults": self.faults, "reviewer": self.reviewer})
        if bad:
            raise ValueError(f"{'.'.join(map(str, bad[0]))}: not a finite number")
        return self

    @property
    def profile_label(self) -> str:
        """The profile's name in records and tables: a sweep's label or a profile file's name,
        else the preset's."""
        return self.tags.get("profile", self.profile)

    @property
    def id(self) -> str:
        return digest(self.model_dump(mode="json"))

    def __hash__(self):
        return hash(self.id)
