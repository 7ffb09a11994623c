"""The per-trial session (clock, world, streams, counters) and the kit a design is built from."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable

from langchain_core.tools import InjectedToolCallId, StructuredTool
from pydantic import create_model

from .events import Trace
from .faults import FaultRuntime
from .faults.catalogue import Call
from .model import Brain, SimulatedChatModel
from .oracle import Oracle
from .rng import lognormal, stream
from .tokens import TokenCounter
from .world import apply_effect

PY_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}


class Clock:
    """Virtual time: the engine's SimPy clock plus latency charged inside the current step.

    LangGraph runs a step in zero virtual time; model and tool calls inside it
    charge their latency here, and the engine advances SimPy by `take()` after the
    step. `now()` includes the pending latency, so a call late in a step sees the
    time it would really have started.
    """

    def __init__(self, env=None):
        self.env = env
        self.pending = 0.0

    def now(self) -> float:
        return (self.env.now if self.env is not None else 0.0) + self.pending

    def charge(self, seconds: float) -> None:
        self.pending += max(0.0, seconds)

    def take(self) -> float:
        dt, self.pending = self.pending, 0.0
        return dt


@dataclass
class Session:
    """Everything one trial owns. Built by the engine; read by the model and the tools."""
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

    def __post_init__(self):
        self.scenario_key = self.scenario_key or self.scenario.name
        self.trace = Trace(self.trial_id, self.clock.now)
        self.oracle = Oracle(self.scenario)
        self.counter = TokenCounter()
        self.world = copy.deepcopy(self.scenario.world)
        family = self.scenario.family or self.scenario.name
        # Difficulty is drawn per task family, not per replicate: repeated trials of
        # one task share it, which is why pass^k falls slower than p^k.
        self.difficulty = stream(self.seed, "difficulty", family, self.profile.name).gauss(
            0.0, self.profile.difficulty_sd)
        self._tool_rng = self.stream("tool-latency")
        self.library_rng = self.stream("library-jitter")
        self.fault_runtime = FaultRuntime(tuple(self.faults), self)
        self._idempotent: dict[tuple, tuple[dict, bool]] = {}

    def stream(self, *keys):
        return stream(self.seed, self.scenario_key, self.replicate, *keys)

    def charge_model(self, latency: float, tokens_in: int, tokens_out: int) -> None:
        self.model_calls += 1
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.clock.charge(latency)

    def call_tool(self, name: str, args: dict, idempotency_key: str | None = None,
                  tool_call_id: str | None = None) -> tuple[str, dict]:
        """One tool call through the fault middleware: faults before the call may raise
        (some only after the effect happened), faults after it may rewrite the result."""
        tool = self.scenario.tools[name]
        self.tool_calls += 1
        index = self.tool_calls
        start = self.clock.now()
        call = Call("tool", name, dict(args), start, latency=lognormal(
            self._tool_rng, tool.latency.median_s, tool.latency.p95), writes=tool.effect.writes,
            shared=self.shared, rng=self.stream("fault-values", index), call_id=tool_call_id)
        faults = self.fault_runtime.before(call)
        if call.error is not None and not call.after_effect:
            return self._fail(call, index, start, faults)
        key = (name, idempotency_key) if idempotency_key and tool.effect.writes else None
        wrote: list[str] = []
        if key and key in self._idempotent:  # the service already did this: return what it returned
            call.result, call.ok = self._idempotent[key]
            replayed = True
        else:
            out = apply_effect(tool.effect, args, self.world)
            call.result, call.ok, replayed = out.result, out.ok, False
            if key:
                self._idempotent[key] = (out.result, out.ok)
            wrote = out.wrote
        if call.error is not None:
            return self._fail(call, index, start, faults, wrote if not replayed else [])
        if call.ok:
            faults += self.fault_runtime.after(call)
        self.clock.charge(call.latency)
        content = call.result if isinstance(call.result, str) else json.dumps(call.result, sort_keys=True, default=str)
        self.trace.emit("tool_call", tool=name, call=index, call_id=tool_call_id, args=args, ok=call.ok,
                        result=call.result,
                        start=round(start, 6), latency_s=round(call.latency, 6), faults=faults or None,
                        idempotent_replay=replayed or None)
        if wrote:
            self.trace.emit("world_write", tool=name, call=index, paths=wrote)
        art = {k: v for k, v in call.artifact.items() if k != "faults"}
        return content, {"call": index, "ok": call.ok, **art, **({"faults": faults} if faults else {})}

    def _fail(self, call: Call, index: int, start: float, faults: list[str], wrote: list[str] = ()):
        self.clock.charge(call.latency)
        self.trace.emit("tool_call", tool=call.name, call=index, call_id=call.call_id, args=call.args, ok=False,
                        error=type(call.error).__name__, message=str(call.error), start=round(start, 6),
                        latency_s=round(call.latency, 6), faults=faults or None,
                        effect_applied=call.after_effect or None)
        if wrote:  # the operation ran even though the client saw an error
            self.trace.emit("world_write", tool=call.name, call=index, paths=list(wrote))
        raise call.error


def make_tools(session: Session) -> list[StructuredTool]:
    tools = []
    for name, spec in session.scenario.tools.items():
        fields = {a: (PY_TYPES[s.type], ...) for a, s in spec.args.items()}
        if spec.effect.writes:
            # like payment APIs: a retry that repeats the key is not applied twice
            fields["idempotency_key"] = (str | None, None)
        # injected by LangChain, hidden from the model: ties each call to the model's request
        fields["tool_call_id"] = (Annotated[str | None, InjectedToolCallId], None)
        schema = create_model(f"{name}_args", **fields)
        for a, s in spec.args.items():
            schema.model_fields[a].description = s.description or None
        if spec.effect.writes:
            schema.model_fields["idempotency_key"].description = (
                "optional; a retry with the same key returns the first result instead of writing again")
        schema.model_rebuild(force=True)

        def run(_name=name, idempotency_key: str | None = None, tool_call_id: str | None = None, **kwargs):
            return session.call_tool(_name, kwargs, idempotency_key, tool_call_id)

        tools.append(StructuredTool.from_function(
            func=run, name=name, description=spec.description, args_schema=schema,
            response_format="content_and_artifact"))
    return tools


@dataclass
class Kit:
    """What a design's `build(kit)` receives.

    model(role) gives a chat model (simulated unless the caller supplied one);
    tools are the scenario's tools; params are the design's parameters; sleep()
    waits on the virtual clock (use it as tenacity's `sleep`).
    """
    session: Session
    tools: list
    params: dict
    model_factory: Callable[[str], Any] | None = None
    _models: dict = field(default_factory=dict)

    @property
    def system_prompt(self) -> str:
        return self.session.scenario.system_prompt

    def model(self, role: str = "agent"):
        if role not in self._models:
            if self.model_factory is not None:
                self._models[role] = self.model_factory(role)
            else:
                self._models[role] = SimulatedChatModel(brain=Brain(self.session, role))
        return self._models[role]

    def refresh_credentials(self) -> None:
        """Refresh expired API credentials (ends an `auth_expired` fault); takes virtual time."""
        took = self.session.fault_runtime.refresh_credentials()
        self.session.trace.emit("credentials_refreshed", took_s=took)
        self.session.clock.charge(took)

    def sleep(self, seconds: float) -> None:
        self.session.trace.emit("sleep", seconds=round(float(seconds), 6))
        self.session.clock.charge(float(seconds))

    def now(self) -> float:
        return self.session.clock.now()

    def rng(self, name: str):
        """A seeded stream for the design's own randomness (e.g. back-off jitter)."""
        return self.session.stream("design", name)
