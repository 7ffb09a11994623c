"""The kit a design's `build(kit)` receives: a model per role, the scenario's tools, the
design's parameters, and the virtual clock."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .brain import Brain
from .model import SimulatedChatModel


@dataclass
class Kit:
    """model(role) gives a chat model (simulated unless the caller or --model supplied one);
    tools are the scenario's tools; params are the design's parameters; sleep()
    waits on the virtual clock (use it as tenacity's `sleep`)."""
    session: Any
    tools: list
    params: dict
    model_factory: Callable[[str], Any] | None = None
    models: dict = field(default_factory=dict)

    @property
    def system_prompt(self) -> str:
        return self.session.scenario.system_prompt

    def model(self, role: str = "agent"):
        if role not in self.models:
            made = self.model_factory(role) if self.model_factory is not None else None
            # a factory that does not play this role (None) leaves it to the simulated model
            self.models[role] = made if made is not None else SimulatedChatModel(brain=Brain(self.session, role))
        return self.models[role]

    def refresh_credentials(self) -> None:
        """Refresh expired API credentials (ends an `auth_expired` fault); takes virtual time."""
        took = self.session.fault_runtime.end("refresh_credentials")
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
