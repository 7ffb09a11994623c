"""Virtual time: the per-trial clock, and library code that sleeps or jitters for real
routed onto it.

LangGraph's RetryPolicy calls `time.sleep` and `random.uniform` inside
`langgraph.pregel._retry` (checked against the pinned langgraph range). While a
trial's graph step runs, the engine sets CURRENT to its session; the shims below
then charge the wait to the virtual clock and draw the jitter from the session's
seeded stream. Outside a trial they behave exactly like the real modules.
"""
from __future__ import annotations

import random as _random
import time as _time
from contextvars import ContextVar

CURRENT: ContextVar = ContextVar("attrition_session", default=None)


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


class _VirtualTime:
    def __getattr__(self, name):
        return getattr(_time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        s = CURRENT.get()
        if s is None:
            return _time.sleep(seconds)
        s.trace.emit("sleep", seconds=round(float(seconds), 6), by="langgraph.RetryPolicy")
        s.clock.charge(float(seconds))


class _SessionRandom:
    def __getattr__(self, name):
        s = CURRENT.get()
        if s is None:
            return getattr(_random, name)
        return getattr(s.library_rng, name)


def install() -> bool:
    """Patch LangGraph's retry loop; returns False if its layout is not the expected one."""
    try:
        from langgraph.pregel import _retry
    except ImportError:
        return False
    if getattr(_retry, "time", None) is not _time and not isinstance(getattr(_retry, "time", None), _VirtualTime):
        return False
    _retry.time = _VirtualTime()
    _retry.random = _SessionRandom()
    return True


install()
