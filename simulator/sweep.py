"""Sweep files: a grid of scenarios x parameters x fault settings x designs x profiles.

    name: quickstart
    seed: 0
    replicates: 3
    scenarios:
      - ref: chain
        params: {length: [1, 2, 4, 8], task: [0, 1]}   # lists are grid axes
      - ref: support_refund
    agents: [react, {ref: react-retry, params: {idempotency: true}, label: react-retry-idem}]
    profiles: [strong, weak]
    faults:                      # named fault settings; `none` is the baseline
      none: []
      rate_limit: ["rate_limit:rate=0.2"]

Every combination becomes TrialSpecs (one per replicate). Specs differ only in what
the grid varies; streams are keyed by scenario, parameters, replicate and seed, so
every design and profile in one cell row sees the same user and the same faults.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterator

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .design_loader import DesignError, check_params, load_factory
from .faults.config import FaultConfigError, check_faults, normalize_faults
from .jobs import validate_budgets
from .profiles import get_profile
from .scenario import ScenarioError, dotted, line_for, line_index
from .scenario_refs import resolve_scenario
from .spec import TrialSpec


class ScenarioAxis(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str
    params: dict[str, Any] = Field(default_factory=dict, description="a list value is a grid axis")


class AgentAxis(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[\w.-]+$")
    description: str = ""
    seed: int = 0
    replicates: int = Field(3, ge=1)
    scenarios: list[ScenarioAxis] = Field(min_length=1)
    agents: list[AgentAxis] = Field(default_factory=lambda: [AgentAxis(ref="react")])
    profiles: list[str] = Field(default_factory=lambda: ["strong"], min_length=1)
    faults: dict[str, list[Any]] = Field(default_factory=lambda: {"none": []},
                                         description="fault setting name -> faults")
    budgets: dict[str, Any] = Field(default_factory=dict)
    concurrency: int = Field(1, ge=1, description="sessions sharing one virtual environment")

    @field_validator("scenarios", "agents", mode="before")
    @classmethod
    def _strings(cls, v):
        return [{"ref": x} if isinstance(x, str) else x for x in v] if isinstance(v, list) else v


def _grid(params: dict[str, Any]) -> list[dict[str, Any]]:
    keys = sorted(params)
    axes = [params[k] if isinstance(params[k], list) else [params[k]] for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def load_sweep(path: str | Path) -> SweepFile:
    """Parse and validate a sweep file; errors carry the file, line and field path."""
    p = Path(path)
    try:
        text = p.read_text()
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        lines = line_index(node) if node is not None else {}
    except OSError as e:
        raise ScenarioError(str(p), [("", None, f"cannot read file: {e.strerror}")]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ScenarioError(str(p), [("", mark.line + 1 if mark else None, f"malformed YAML: {e}")]) from None
    if not isinstance(data, dict):
        raise ScenarioError(str(p), [("", 1, "a sweep file must be a YAML mapping (name, scenarios, ...)")])
    try:
        return SweepFile.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(str(p), [(dotted(err["loc"]), line_for(lines, err["loc"]), err["msg"])
                                     for err in e.errors()]) from None


def plan(sweep: SweepFile, source: str = "sweep") -> tuple[list, dict, int]:
    """Check every reference of a sweep; return (cells, fault settings per cell, number of trials).
    Raises ScenarioError listing every problem."""
    problems: list[tuple[str, int | None, str]] = []
    try:
        validate_budgets(sweep.budgets)
    except ValueError as e:
        problems.append(("budgets", None, str(e)))
    for what, items in (("profiles", sweep.profiles), ("agents", [a.model_dump_json() for a in sweep.agents]),
                        ("scenarios", [a.model_dump_json() for a in sweep.scenarios])):
        if len(set(items)) != len(items):
            problems.append((what, None, "an entry is listed twice: every cell would run twice"))
    for i, prof in enumerate(sweep.profiles):
        try:
            get_profile(prof)
        except KeyError as e:
            problems.append((f"profiles[{i}]", None, str(e.args[0])))
    settings = {}
    for name, faults in sweep.faults.items():
        try:
            settings[name] = normalize_faults(faults, where=f"faults.{name}")
        except FaultConfigError as e:
            problems.append((f"faults.{name}", None, str(e)))
    for i, a in enumerate(sweep.agents):
        try:
            factory = load_factory(a.ref)
        except DesignError as e:
            problems.append((f"agents[{i}].ref", None, str(e)))
            continue
        try:
            check_params(a.ref, factory, a.params)
        except DesignError as e:
            problems.append((f"agents[{i}].params", None, str(e)))
    cells, merged = [], {}
    for i, axis in enumerate(sweep.scenarios):
        for params in _grid(axis.params):
            try:
                sc, ref = resolve_scenario(axis.ref, params)
            except ScenarioError as e:
                problems.append((f"scenarios[{i}]", None, "; ".join(m for _, _, m in e.problems)))
                continue
            for name, fs in settings.items():
                try:
                    merged[(ref.digest, name)] = normalize_faults(list(sc.faults) + list(fs))
                    check_faults(merged[(ref.digest, name)], sc, where=f"faults.{name}")
                except FaultConfigError as e:
                    problems.append((f"faults.{name}", None, str(e)))
            cells.append(ref)
    if problems:
        raise ScenarioError(source, list(dict.fromkeys(problems)))
    n = len(cells) * len(settings) * len(sweep.agents) * len(sweep.profiles) * sweep.replicates
    return cells, merged, n


def iter_specs(sweep: SweepFile, cells: list, merged: dict) -> Iterator[TrialSpec]:
    """The sweep's TrialSpecs, one at a time and always in the same order: a sweep of a
    million trials never holds a million specs."""
    for ref, fname, agent, prof, rep in itertools.product(
            cells, list(sweep.faults), sweep.agents, sweep.profiles, range(sweep.replicates)):
        yield TrialSpec(
            scenario=ref, agent=agent.ref, agent_params=agent.params, profile=prof, seed=sweep.seed,
            replicate=rep, budgets=sweep.budgets, faults=merged[(ref.digest, fname)],
            tags={"fault": fname, "agent": agent.label or agent.ref})


def expand(sweep: SweepFile, source: str = "sweep") -> list[TrialSpec]:
    """All TrialSpecs of a sweep, in a fixed order; every reference is checked first."""
    cells, merged, _ = plan(sweep, source)
    return list(iter_specs(sweep, cells, merged))
