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
from ..spec import MAX_VIRTUAL_S, VIRTUAL_S

TRIGGER_KEYS = {"rate", "at_call", "at_turn", "position", "pattern", "burst", "windows",
                "mtbf_s", "mttr_s", "max_fires"}


def uniform(*keys: object) -> float:
    return derive_seed(*keys) / 2.0 ** 64


# No trial makes a million calls or turns (the step budget is at most a million), so a
# larger index could never match: it is a typo.
MAX_INDEX = 1_000_000
# An outage process draws one up and one down period per mean time between failures up
# to the session's end: below a second apart, that is millions of draws per trial.
MIN_MTBF_S = 1.0
# a repair quicker than a millisecond is no outage at all
MIN_MTTR_S = 0.001


class Trigger(BaseModel):
    """When a fault fires. All conditions given must hold; `rate` is then the chance."""
    # NaN passes every comparison-based bound and inf never ends a window: finite only
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    rate: float | None = Field(None, ge=0, le=1, description="probability per eligible call, 0 to 1")
    at_call: tuple[int, ...] = Field((), description=f"only these eligible calls (1-based, 1 to {MAX_INDEX:,})")
    at_turn: tuple[int, ...] = Field((), description=f"only during these user turns (0-based, 0 to {MAX_INDEX:,})")
    position: Literal["early", "middle", "late"] | None = Field(
        None, description="only in this third of the task (calls so far / golden length)")
    pattern: Literal["single", "persistent", "intermittent", "burst"] = Field(
        "intermittent", description="single: once; persistent: every call from the first firing on; "
                                    "intermittent: each call independently; burst: `burst` calls in a row")
    burst: int = Field(3, ge=1, le=MAX_INDEX, description=f"length of a burst, 1 to {MAX_INDEX:,}")
    windows: tuple[tuple[float, float], ...] = Field(
        (), description=f"virtual-time windows [start, end) in seconds, 0 <= start < end <= {VIRTUAL_S}")
    mtbf_s: float | None = Field(None, ge=MIN_MTBF_S, le=MAX_VIRTUAL_S, description="mean time between failures "
                                 f"of a random outage process, from 1 s to {VIRTUAL_S}")
    mttr_s: float | None = Field(None, ge=MIN_MTTR_S, le=MAX_VIRTUAL_S, description="mean time to repair of that "
                                 f"process, from 0.001 s to {VIRTUAL_S}")
    max_fires: int | None = Field(None, ge=1, le=MAX_INDEX, description=f"stop after this many firings "
                                  f"(1 to {MAX_INDEX:,})")

    @model_validator(mode="after")
    def _possible(self):
        if any(not 1 <= c <= MAX_INDEX for c in self.at_call):
            raise ValueError(f"at_call counts eligible calls from 1, up to {MAX_INDEX:,}")
        if any(not 0 <= t <= MAX_INDEX for t in self.at_turn):
            raise ValueError(f"at_turn counts turns from 0, up to {MAX_INDEX:,}")
        for a, b in self.windows:
            if not (0 <= a < b <= MAX_VIRTUAL_S):
                raise ValueError(f"window [{a}, {b}) is empty, negative or ends too late: need "
                                 f"0 <= start < end <= {VIRTUAL_S}")
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
