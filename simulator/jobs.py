"""Jobs: TrialSpecs with their scenario and agent factory resolved, ready for the engine.

Below both the engine (which runs jobs) and the executors (which make them in
whichever process runs them).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from pydantic import ValidationError

from .design_loader import check_params, load_factory
from .faults.config import check_faults, normalize_faults
from .live import model_spec
from .profile_refs import resolve_profile
from .reviewer import policy
from .scenario import Budgets
from .scenario_refs import resolve_scenario
from .spec import TrialSpec, digest


@dataclass(frozen=True)
class Job:
    """A TrialSpec with its scenario and factory resolved (resolution is cached by the maker)."""
    spec: Any
    scenario: Any
    factory: Callable
    model_factory: Callable | None = None
    start_at: float = 0.0  # virtual arrival time of the session in a shared environment
    reviewer: dict | None = None  # the human reviewer's policy (reviewer.py); None: approves everything

    def arriving_at(self, t: float) -> "Job":
        return replace(self, start_at=t)


def validate_budgets(budgets: dict) -> None:
    """Budget overrides must name a known budget and hold a positive number."""
    try:
        Budgets.model_validate(budgets)
    except ValidationError as e:
        raise ValueError("bad budget: " + "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}"
                                                    for x in e.errors())) from None


def make_specs(scenario: str, params: dict | None, agent: str, *, trials: int, seed: int,
               profile: str = "strong", agent_params: dict | None = None,
               profile_params: dict | None = None, budgets: dict | None = None,
               faults: list | None = None, reviewer: str | dict | None = None, model: str | None = None,
               base_url: str | None = None, latency: str = "measured") -> list[TrialSpec]:
    """Specs for `trials` replicates. Faults come from the scenario file, then `faults`
    (dicts or `NAME:key=value,...` strings); bad ones raise FaultConfigError. `reviewer`
    is the human reviewer's policy (reviewer.policy); a bad one raises ValueError. `model`
    (`PROVIDER:NAME` or `ROLE=PROVIDER:NAME,...`, live.model_spec) gives roles a real model."""
    sc, ref = resolve_scenario(scenario, params)
    check_params(agent, load_factory(agent), agent_params or {})
    prof = resolve_profile(profile, profile_params, label_params=False)  # fails early on a bad profile
    validate_budgets(budgets or {})
    review = policy(reviewer)
    fs = normalize_faults(list(sc.faults) + list(faults or []))
    check_faults(fs, sc)
    live = model_spec(model, base_url, latency)
    tags = prof.tags() | (model_tags(live, None) if live else {})
    return [TrialSpec(scenario=ref, agent=agent, agent_params=agent_params or {}, profile=prof.base,
                      profile_params=prof.params, seed=seed, replicate=r, budgets=budgets or {}, faults=fs,
                      reviewer=review, tags=tags, model=live) for r in range(trials)]


def model_tags(live: dict, label: str | None, profile_label: str | None = None) -> dict:
    """A real model's cell labels: `model`, and the profile column tables show it under
    (the model's name, after the profile's when a sweep varies profiles too)."""
    roles = live["roles"]
    name = label or (roles["*"] if list(roles) == ["*"] else ",".join(f"{k}={v}" for k, v in sorted(roles.items())))
    return {"model": name, "profile": f"{profile_label}/{name}" if profile_label else name}


class JobMaker:
    """Resolves scenarios and factories once per distinct reference."""

    def __init__(self, model_factory: Callable | None = None):
        self._scenarios: dict[str, Any] = {}
        self._factories: dict[str, Callable] = {}
        self.model_factory = model_factory

    def __call__(self, spec: TrialSpec) -> Job:
        key = digest(spec.scenario.model_dump())
        if key not in self._scenarios:
            sc, ref = resolve_scenario(spec.scenario.ref, spec.scenario.params)
            self._scenarios[key] = (sc, ref.digest)
        sc, _ = self._scenarios[key]
        if spec.agent not in self._factories:
            self._factories[spec.agent] = load_factory(spec.agent)
        return Job(spec, sc, self._factories[spec.agent], self.model_factory, reviewer=spec.reviewer)

    def use_scenario(self, spec: TrialSpec, scenario: Any) -> None:
        """Run `spec` on this scenario content instead of what its reference resolves to now
        (a replay of the content a results directory kept)."""
        self._scenarios[digest(spec.scenario.model_dump())] = (scenario, scenario.digest())
