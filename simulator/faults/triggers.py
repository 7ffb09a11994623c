"""When a fault fires.

Every firing decision is a pure function of (seed, scenario, replicate, fault id,
eligible-call index) or of virtual time, never of a shared sequential stream: two
designs on the same seed therefore see the same fault schedule (call 3 fails for
both), however many other calls either of them makes.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..rng import derive_seed, stream

TRIGGER_KEYS = {"rate", "at_call", "at_turn", "position", "pattern", "burst", "windows",
                "mtbf_s", "mttr_s", "max_fires"}


def uniform(*keys: object) -> float:
    return derive_seed(*keys) / 2.0 ** 64


class Trigger(BaseModel):
    """When a fault fires. All conditions given must hold; `rate` is then the chance."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float | None = Field(None, ge=0, le=1, description="probability per eligible call")
    at_call: tuple[int, ...] = Field((), description="only these eligible calls (1-based)")
    at_turn: tuple[int, ...] = Field((), description="only during these user turns (0-based)")
    position: Literal["early", "middle", "late"] | None = Field(
        None, description="only in this third of the task (calls so far / golden length)")
    pattern: Literal["single", "persistent", "intermittent", "burst"] = Field(
        "intermittent", description="single: once; persistent: every call from the first firing on; "
                                    "intermittent: each call independently; burst: `burst` calls in a row")
    burst: int = Field(3, ge=1, description="length of a burst")
    windows: tuple[tuple[float, float], ...] = Field((), description="virtual-time windows [start, end) in seconds")
    mtbf_s: float | None = Field(None, gt=0, description="mean time between failures of a random outage process")
    mttr_s: float | None = Field(None, gt=0, description="mean time to repair of that process")
    max_fires: int | None = Field(None, ge=1, description="stop after this many firings")

    @model_validator(mode="after")
    def _possible(self):
        if any(c < 1 for c in self.at_call):
            raise ValueError("at_call counts eligible calls from 1")
        if any(t < 0 for t in self.at_turn):
            raise ValueError("at_turn counts turns from 0")
        for a, b in self.windows:
            if not (0 <= a < b):
                raise ValueError(f"window [{a}, {b}) is empty or negative: need 0 <= start < end")
        if (self.mtbf_s is None) != (self.mttr_s is None):
            raise ValueError("a random outage process needs both mtbf_s and mttr_s")
        if self.rate == 0:
            raise ValueError("rate=0 can never fire")
        return self

    @property
    def timed(self) -> bool:
        return bool(self.windows) or self.mtbf_s is not None


class OutageProcess:
    """Alternating up/down periods with exponential durations, as a function of time.

    Keyed by (seed, fault id) only, not by trial: every session sharing one
    environment sees the same outages at the same virtual times.
    """

    def __init__(self, seed: int, fault_id: str, mtbf: float, mttr: float):
        self.rng = stream(seed, "outage", fault_id)
        self.mtbf, self.mttr = mtbf, mttr
        self.downs: list[tuple[float, float]] = []
        self._t = 0.0

    def down(self, t: float) -> tuple[float, float] | None:
        while self._t <= t:
            start = self._t + self.rng.expovariate(1 / self.mtbf)
            end = start + self.rng.expovariate(1 / self.mttr)
            self.downs.append((start, end))
            self._t = end
        for a, b in self.downs:
            if a <= t < b:
                return a, b
        return None


class TriggerState:
    """One fault's firing state within one trial."""

    def __init__(self, trigger: Trigger, default_rate: float, key: tuple, outage: OutageProcess | None):
        self.t = trigger
        # pinned to a call, a position or a time window, a fault fires there unless a rate says otherwise
        self.rate = trigger.rate if trigger.rate is not None else (
            1.0 if (trigger.at_call or trigger.position or trigger.timed) else default_rate)
        self.key = key
        self.outage = outage
        self.eligible = 0
        self.fired = 0
        self.streak = 0   # calls left in a burst
        self.on = False   # persistent and on

    def window(self, now: float) -> tuple[float, float] | None:
        for a, b in self.t.windows:
            if a <= now < b:
                return a, b
        if self.outage:
            return self.outage.down(now)
        return None

    def check(self, now: float, turn: int, progress: float) -> bool:
        """Whether the trigger's conditions hold for this eligible call (a firing is
        registered by commit(), once the fault's hook says it took effect)."""
        t = self.t
        self.eligible += 1
        if t.max_fires is not None and self.fired >= t.max_fires:
            return False
        if (t.pattern == "persistent" and self.on) or (t.pattern == "burst" and self.streak > 0):
            return True
        if t.pattern in ("single", "burst") and self.fired:
            return False
        if t.at_call and self.eligible not in t.at_call:
            return False
        if t.at_turn and turn not in t.at_turn:
            return False
        if t.position and t.position != ("early" if progress < 1 / 3 else "middle" if progress < 2 / 3 else "late"):
            return False
        if t.timed and self.window(now) is None:
            return False
        return self.rate >= 1 or uniform(*self.key, self.eligible) < self.rate

    def commit(self) -> None:
        self.fired += 1
        if self.t.pattern == "persistent":
            self.on = True
        elif self.t.pattern == "burst":
            self.streak = self.streak - 1 if self.streak > 0 else self.t.burst - 1

    def reset(self) -> None:
        """End a persistent firing (e.g. the credential was refreshed)."""
        self.on = False


__all__ = ["Trigger", "TriggerState", "OutageProcess", "TRIGGER_KEYS", "uniform"]
