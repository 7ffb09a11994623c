"""Everything one trial owns: its clock, world, random streams, counters, trace and faults.

Built by the engine; read by the simulated model, the tool gateway, the scripted user
and the judge. Every stream is keyed by (seed, scenario name and parameters,
replicate, source), so a scenario file moved elsewhere gives the same trials.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .events import Trace
from .faults.runtime import FaultRuntime
from .oracle import Oracle
from .rng import stream
from .spec import canonical
from .tokens import TokenCounter
from .vclock import Clock


def stream_key(scenario, params: dict) -> str:
    """What keys a trial's random streams: the scenario's name and parameters (not its
    file path, so a moved or re-cloned scenario file gives the same results)."""
    return f"{scenario.name}|{canonical(params)}"


@dataclass
class Session:
    trial_id: str
    seed: int
    replicate: int
    scenario: Any
    profile: Any
    clock: Clock
    world: dict = field(default_factory=dict)
    model_calls: int = 0
    tool_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    scenario_key: str = ""  # the scenario reference with its parameters: keys every stream
    faults: tuple = ()
    shared: dict = field(default_factory=dict)  # state shared by every session of one environment
    turn: int = 0
    graph: Any = None  # the compiled agent graph, once built
    # content -> artifact of tool calls made without a tool call id (the graph called the
    # tool itself and kept only the content); the model side recovers the fault flags here
    artifacts: dict = field(default_factory=dict)
    user_ids: set = field(default_factory=set)  # ids of the messages the scripted user sent
    # (fact, true value) -> the value the model made up for it: it repeats its own inventions
    invented: dict = field(default_factory=dict)
    provider_error: str | None = None  # a real model's provider failed a call: the trial is an error

    def __post_init__(self):
        self.scenario_key = self.scenario_key or self.scenario.name
        self.trace = Trace(self.trial_id, self.clock.now)
        self.oracle = Oracle(self.scenario)
        self.counter = TokenCounter()
        self.world = copy.deepcopy(self.scenario.world)
        self.family = self.scenario.family or self.scenario.name
        # Difficulty is drawn per task family, not per replicate: repeated trials of
        # one task share it, which is why pass^k falls slower than p^k.
        # The standard-normal draws are kept apart from their scale, so the record of a
        # decision can be re-scored under another profile (see calibrate.py).
        self.difficulty_z = stream(self.seed, "difficulty", self.family, self.profile.name).gauss(0.0, 1.0)
        self.difficulty = self.difficulty_z * self.profile.difficulty_sd
        self.tool_rng = self.stream("tool-latency")
        self.library_rng = self.stream("library-jitter")
        self.fault_runtime = FaultRuntime(tuple(self.faults), self)
        self._step_z: dict[str, float] = {}

    def step_z(self, step: str) -> float:
        """The standard-normal draw behind a golden step's difficulty: fixed per task family
        and step, so every replicate meets the same hard steps."""
        got = self._step_z.get(step)
        if got is None:
            got = self._step_z[step] = stream(self.seed, "step-difficulty", self.family, step,
                                              self.profile.name).gauss(0.0, 1.0)
        return got

    def step_difficulty(self, step: str) -> float:
        """The golden step's difficulty (its own, plus what combining sources adds: see
        oracle.py) plus the profile's spread times its draw."""
        return self.oracle.difficulty[step] + self.profile.step_difficulty_sd * self.step_z(step)

    def stream(self, *keys):
        return stream(self.seed, self.scenario_key, self.replicate, *keys)

    def charge_model(self, latency: float, tokens_in: int, tokens_out: int) -> None:
        self.model_calls += 1
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.clock.charge(latency)
