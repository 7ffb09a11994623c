"""Sweep files: a grid of scenarios x parameters x fault settings x designs x profiles.

    name: quickstart
    seed: 0
    replicates: 3
    scenarios:
      - ref: chain
        params: {length: [1, 2, 4, 8], task: [0, 1]}   # lists are grid axes
      - ref: support_refund
    agents: [react, {ref: react-retry, params: {idempotency: true}, label: react-retry-idem}]
    profiles: [strong, weak, {ref: strong, params: {difficulty_sd: 1.8}, label: strong-spread}]
    models: [simulated, "openai:gpt-4o-mini", {ref: "ollama:llama3.1", base_url: "http://localhost:11434"}]
    faults:                      # named fault settings; `none` is the baseline
      none: []
      rate_limit: ["rate_limit:rate=0.2"]

Every combination becomes TrialSpecs (one per replicate). Specs differ only in what
the grid varies; streams are keyed by scenario, parameters, replicate and seed, so
every design and profile in one cell row sees the same user and the same faults.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Iterator

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_serializer, field_validator,
                      model_serializer, model_validator)

from .design_loader import DesignError, check_params, load_factory
from .faults.config import FaultConfigError, check_faults, normalize_faults
from .jobs import model_tags, validate_budgets
from .live import model_spec
from .profile_refs import ProfileAxis, ResolvedProfile, resolve_profile
from .reviewer import policy
from .scenario import ScenarioError
from .scenario_refs import resolve_scenario
from .spec import Seed, TrialSpec
from .yamlio import dotted, line_for, load_yaml, validation_problems

# Every replicate of every cell is a trial; past this a sweep is a typo (a stray zero).
MAX_REPLICATES = 100_000
# Every cell's scenario is built and checked before the first trial runs (about 2 ms
# each for a short template): ten thousand cells take half a minute to plan.
MAX_CELLS = 10_000
# Ten million trials is weeks of compute on one machine; the count is taken from the
# grid's sizes before anything is expanded, so an astronomic grid fails at once.
MAX_TRIALS = 10_000_000
# Sessions sharing one environment run together in one process and are re-run as a
# group on resume; ten thousand is far past any provider-load test.
MAX_CONCURRENCY = 10_000
SIMULATED = "simulated"


class ScenarioAxis(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    ref: str
    params: dict[str, Any] = Field(default_factory=dict, description="a list value is a grid axis")

    @field_validator("params")
    @classmethod
    def _axes(cls, v: dict) -> dict:
        empty = [k for k, x in v.items() if isinstance(x, list) and not x]
        if empty:
            raise ValueError(f"axis {empty[0]!r} is an empty list: an axis needs at least one value")
        return v

    def cells(self) -> int:
        return math.prod(len(x) if isinstance(x, list) else 1 for x in self.params.values())


class AgentAxis(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    ref: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None


class ModelAxis(BaseModel):
    """`simulated` (the simulated model plays every role, as its profile says), or real models:
    `PROVIDER:NAME` or `ROLE=PROVIDER:NAME,...` (live.py)."""
    model_config = ConfigDict(extra="forbid")
    ref: str
    base_url: str | None = None
    latency: str = "measured"
    label: str | None = Field(None, pattern=r"^[^/]+$")

    def spec(self) -> dict | None:
        return None if self.ref == SIMULATED else model_spec(self.ref, self.base_url, self.latency)


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(pattern=r"^[\w.-]+$")
    description: str = ""
    seed: Seed = Field(0, description="0 to 2**63 - 1")
    replicates: int = Field(3, ge=1, le=MAX_REPLICATES, description=f"trials per cell, 1 to {MAX_REPLICATES:,}")
    scenarios: list[ScenarioAxis] = Field(min_length=1)
    agents: list[AgentAxis] = Field(default_factory=lambda: [AgentAxis(ref="react")], min_length=1)
    profiles: list[ProfileAxis] = Field(default_factory=lambda: [ProfileAxis(ref="strong")], min_length=1,
                                        description="presets, profile files, or {ref, params, label}")
    models: list[ModelAxis] = Field(default_factory=lambda: [ModelAxis(ref=SIMULATED)], min_length=1,
                                    description="simulated, or real models: PROVIDER:NAME, ROLE=PROVIDER:NAME,..., "
                                    "or {ref, base_url, latency, label}")
    faults: dict[str, list[Any]] = Field(default_factory=lambda: {"none": []}, min_length=1,
                                         description="fault setting name -> faults")
    budgets: dict[str, Any] = Field(default_factory=dict)
    reviewer: str | dict[str, Any] | None = Field(None, description="the human reviewer who answers the graph's "
                                                  "interrupts: approve | reject | none | review, or a mapping of "
                                                  "reviewer.Policy keys (reject_rate, catches_errors, ...)")
    concurrency: int = Field(1, ge=1, le=MAX_CONCURRENCY, description="sessions sharing one virtual environment, "
                             f"1 to {MAX_CONCURRENCY:,}")
    _lines: dict = PrivateAttr(default_factory=dict)  # field path -> line, for plan()'s problems
    _profiles: list | None = PrivateAttr(None)

    def resolved_profiles(self) -> list[ResolvedProfile]:
        """Each entry of `profiles` as a base preset, its changes and its label (read once:
        the specs and the manifest must see the same files)."""
        if self._profiles is None:
            self._profiles = [resolve_profile(p.ref, p.params, p.label) for p in self.profiles]
        return self._profiles

    @field_serializer("profiles")
    def _short_profiles(self, v: list[ProfileAxis]):
        # a bare name is written back as one, as it was given (a manifest compares dumps)
        return [p.ref if not p.params and p.label is None else p.model_dump(mode="json") for p in v]

    @field_serializer("models")
    def _short_models(self, v: list[ModelAxis]):
        return [m.ref if m.base_url is None and m.label is None and m.latency == "measured" else
                m.model_dump(mode="json", exclude_none=True) for m in v]

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # the default (simulated) is left out: a manifest written before models existed still matches
        out = handler(self)
        if out.get("models") == [SIMULATED]:
            out.pop("models")
        return out

    @field_validator("scenarios", "agents", "profiles", "models", mode="before")
    @classmethod
    def _strings(cls, v):
        return [{"ref": x} if isinstance(x, str) else x for x in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _size(self):
        if self.cells() > MAX_CELLS:
            raise ValueError(f"the scenario grid has {self.cells():,} cells; a sweep takes at most "
                             f"{MAX_CELLS:,} (split it into several sweeps)")
        if self.size() > MAX_TRIALS:
            raise ValueError(f"the sweep has {self.size():,} trials ({self.cells():,} scenario cells x "
                             f"{len(self.faults)} fault settings x {len(self.agents)} agents x "
                             f"{len(self.profiles)} profiles x "
                             + (f"{len(self.models)} models x " if len(self.models) > 1 else "")
                             + f"{self.replicates:,} replicates); "
                             f"a sweep takes at most {MAX_TRIALS:,}")
        return self

    def cells(self) -> int:
        """Scenario cells of the grid, counted from the axes' lengths without expanding them."""
        return sum(a.cells() for a in self.scenarios)

    def size(self) -> int:
        """Trials in the sweep, counted without expanding anything."""
        return self.cells() * len(self.faults) * len(self.agents) * len(self.profiles) * len(self.models) \
            * self.replicates


def _grid(params: dict[str, Any]) -> list[dict[str, Any]]:
    keys = sorted(params)
    axes = [params[k] if isinstance(params[k], list) else [params[k]] for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def load_sweep(path: str | Path) -> SweepFile:
    """Parse and validate a sweep file; errors carry the file, line and field path."""
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        got = "nothing (the file is empty)" if data is None else f"a {type(data).__name__}"
        raise ScenarioError(str(path), [("", 1, "a sweep file must be a YAML mapping (name, scenarios, ...); "
                                         f"got {got}")])
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(str(path), validation_problems(e, SweepFile, lines)) from None
    sweep._lines = lines
    return sweep


def _check_names(sweep: SweepFile) -> list[tuple[tuple, str]]:
    """Budgets, repeated entries, profiles and designs: what needs no scenario."""
    problems: list[tuple[tuple, str]] = []
    try:
        validate_budgets(sweep.budgets)
    except ValueError as e:
        problems.append((("budgets",), str(e)))
    try:
        policy(sweep.reviewer)
    except ValueError as e:  # "reviewer.KEY: message": the path finds the line
        path, _, msg = str(e).partition(": ")
        problems.append((tuple(path.split(".")) if isinstance(sweep.reviewer, dict) else ("reviewer",), msg))
    for what, items in (("profiles", [p.model_dump_json() for p in sweep.profiles]), ("agents", [a.model_dump_json() for a in sweep.agents]),
                        ("scenarios", [a.model_dump_json() for a in sweep.scenarios])):
        if len(set(items)) != len(items):
            problems.append(((what,), "an entry is listed twice: every cell would run twice"))
    labels: dict[str, int] = {}
    for i, prof in enumerate(sweep.profiles):
        try:
            got = resolve_profile(prof.ref, prof.params, prof.label)
        except KeyError as e:
            problems.append((("profiles", i), str(e.args[0])))
            continue
        except ScenarioError as e:  # a bad profile file: its own file, line and field
            problems.extend((("profiles", i), f"{e.source}:{line or '?'}: {path}: {msg}")
                            for path, line, msg in e.problems)
            continue
        except ValueError as e:
            problems.append((("profiles", i, "params"), str(e)))
            continue
        if got.label in labels:
            problems.append((("profiles", i), f"label {got.label!r} is also profiles[{labels[got.label]}]'s: "
                             "give each profile its own label"))
        labels.setdefault(got.label, i)
    for i, m in enumerate(sweep.models):
        try:
            m.spec()
        except ValueError as e:
            problems.append((("models", i), str(e).replace("--base-url", "base_url").replace("--latency", "latency")
                             .replace("--model", "ref")))
    for i, a in enumerate(sweep.agents):
        try:
            factory = load_factory(a.ref)
        except DesignError as e:
            problems.append((("agents", i, "ref"), str(e)))
            continue
        try:
            check_params(a.ref, factory, a.params)
        except DesignError as e:
            problems.append((("agents", i, "params"), str(e)))
    return problems


def _where(sweep: SweepFile, loc: tuple, msg: str) -> tuple[str, int | None, str]:
    # a fault's message already names its entry (faults.NAME[i]): the path stops at the
    # setting, the line is the entry's
    path = loc[:2] if loc[0] == "faults" else loc
    return dotted(path), line_for(sweep._lines, loc), msg


def plan(sweep: SweepFile, source: str = "sweep") -> tuple[list, dict, int]:
    """Check every reference of a sweep; return (cells, fault settings per cell, number of trials).
    Raises ScenarioError listing every problem."""
    problems = _check_names(sweep)
    settings = {}
    for name, faults in sweep.faults.items():
        try:
            settings[name] = normalize_faults(faults, where=f"faults.{name}")
        except FaultConfigError as e:
            problems.append((("faults", name) + ((e.index,) if e.index is not None else ()), str(e)))
    cells, merged = [], {}
    for i, axis in enumerate(sweep.scenarios):
        for params in _grid(axis.params):
            try:
                sc, ref = resolve_scenario(axis.ref, params)
            except ScenarioError as e:
                problems.append((("scenarios", i), "; ".join(m for _, _, m in e.problems)))
                continue
            for name, fs in settings.items():
                try:
                    merged[(ref.digest, name)] = normalize_faults(list(sc.faults) + list(fs))
                    check_faults(merged[(ref.digest, name)], sc, where=f"faults.{name}")
                except FaultConfigError as e:
                    problems.append((("faults", name), str(e)))
            cells.append(ref)
    if problems:
        raise ScenarioError(source, [_where(sweep, loc, msg) for loc, msg in dict.fromkeys(problems)])
    return cells, merged, sweep.size()


def iter_specs(sweep: SweepFile, cells: list, merged: dict) -> Iterator[TrialSpec]:
    """The sweep's TrialSpecs, one at a time and always in the same order: a sweep of a
    million trials never holds a million specs."""
    review = policy(sweep.reviewer)
    models = [(m, m.spec()) for m in sweep.models]
    several = len(sweep.profiles) > 1
    for ref, fname, agent, prof, (m, live), rep in itertools.product(
            cells, list(sweep.faults), sweep.agents, sweep.resolved_profiles(), models, range(sweep.replicates)):
        tags = {"fault": fname, "agent": agent.label or agent.ref, **prof.tags()}
        if live:
            tags |= model_tags(live, m.label, prof.label if several else None)
        yield TrialSpec(
            scenario=ref, agent=agent.ref, agent_params=agent.params, profile=prof.base,
            profile_params=prof.params, seed=sweep.seed,
            replicate=rep, budgets=sweep.budgets, faults=merged[(ref.digest, fname)],
            tags=tags, reviewer=review, model=live)


def expand(sweep: SweepFile, source: str = "sweep") -> list[TrialSpec]:
    """All TrialSpecs of a sweep, in a fixed order; every reference is checked first."""
    cells, merged, _ = plan(sweep, source)
    return list(iter_specs(sweep, cells, merged))
