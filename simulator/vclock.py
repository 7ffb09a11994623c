"""Virtual time: the per-trial clock, and library code that sleeps or jitters for real
routed onto it.

While a trial's graph step runs, the engine sets CURRENT to its session (asyncio tasks
and LangChain's executor threads copy it); the shims below then charge the wait to the
virtual clock, record a `sleep` event naming who slept, and draw the jitter from the
session's seeded stream. Outside a trial they behave exactly like the real modules.
Checked against the installed versions, each patch replaces only a module global:

  langgraph.pregel._retry        RetryPolicy: `time.sleep` (sync), `asyncio.sleep` in
                                 `arun_with_retry` only (the same module's timeout
                                 watchdogs keep real sleeps), `random.uniform` jitter
  langchain.agents.middleware    ModelRetryMiddleware / ToolRetryMiddleware: `time.sleep`
                                 and `asyncio.sleep` in model_retry / tool_retry, jitter
                                 from `random.uniform` in _retry.calculate_delay
"""
from __future__ import annotations

import asyncio as _asyncio
import importlib
import random as _random
import sys
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


def _charge(s, seconds: float, by: str) -> None:
    s.trace.emit("sleep", seconds=round(float(seconds), 6), by=by)
    s.clock.charge(float(seconds))


class _VirtualTime:
    """A module's `time`, whose sleep waits on the trial's virtual clock."""

    def __init__(self, by: str):
        self.by = by

    def __getattr__(self, name):
        return getattr(_time, name)

    def sleep(self, seconds: float) -> None:
        s = CURRENT.get()
        if s is None:
            return _time.sleep(seconds)
        _charge(s, seconds, self.by)


class _VirtualAsyncio:
    """A module's `asyncio`, whose sleep in the named functions waits on the virtual clock."""

    def __init__(self, by: str, callers: frozenset | None = None):
        self.by, self.callers = by, callers

    def __getattr__(self, name):
        return getattr(_asyncio, name)

    def sleep(self, seconds: float, result=None):
        s = CURRENT.get()
        # the caller's name tells a retry back-off (virtual) from a timeout watchdog in the
        # same module, which must keep racing on the wall clock
        if s is None or (self.callers is not None and sys._getframe(1).f_code.co_name not in self.callers):
            return _asyncio.sleep(seconds, result)
        _charge(s, seconds, self.by)
        return _asyncio.sleep(0, result)


class _SessionRandom:
    def __getattr__(self, name):
        s = CURRENT.get()
        if s is None:
            return getattr(_random, name)
        return getattr(s.library_rng, name)


def _patch(module: str, by: str, *, time=True, asyncio=True, random=False, callers=None) -> bool:
    """Route one module's sleeps (and jitter) onto the virtual clock; False if the module is
    not loaded or its globals are not the ones this was written against."""
    mod = sys.modules.get(module)
    if mod is None:
        return False
    wanted = {"time": (time, _time, _VirtualTime), "asyncio": (asyncio, _asyncio, _VirtualAsyncio),
              "random": (random, _random, _SessionRandom)}
    for name, (on, real, shim) in wanted.items():
        if on and not (getattr(mod, name, None) is real or isinstance(getattr(mod, name, None), shim)):
            return False
    if all(isinstance(getattr(mod, n), shim) for n, (on, _, shim) in wanted.items() if on):
        return True
    if time:
        mod.time = _VirtualTime(by)
    if asyncio:
        mod.asyncio = _VirtualAsyncio(by, callers)
    if random:
        mod.random = _SessionRandom()
    return True


def install() -> dict[str, bool]:
    """Patch every library retry loop this knows that is loaded; says which ones it patched.
    Importing LangChain's middleware just to patch it would slow every start, so the
    engine calls this again once a design is built (a design that uses the middleware
    has imported it by then); patching twice is harmless."""
    importlib.import_module("langgraph.pregel._retry")
    return {
        "langgraph.RetryPolicy": _patch("langgraph.pregel._retry", "langgraph.RetryPolicy", random=True,
                                        callers=frozenset({"arun_with_retry"})),
        "langchain.ModelRetryMiddleware": _patch("langchain.agents.middleware.model_retry",
                                                 "langchain.ModelRetryMiddleware"),
        "langchain.ToolRetryMiddleware": _patch("langchain.agents.middleware.tool_retry",
                                                "langchain.ToolRetryMiddleware"),
        "langchain.retry_jitter": _patch("langchain.agents.middleware._retry", "langchain.retry_jitter",
                                         time=False, asyncio=False, random=True),
    }


install()
