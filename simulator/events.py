"""Structured events: one row per decision, tool call, result, check and fault.

Events go through a structlog pipeline bound to one trial (no global logging
configuration is touched), are stamped with the virtual time, a sequence number
and the schema version, and are kept as plain dicts; the results store writes
them as JSON lines. Wall-clock time never appears in an event, so the same spec
gives byte-identical events.
"""
from __future__ import annotations

from typing import Any, Callable

import structlog

EVENT_SCHEMA_VERSION = 1


class _Collect:
    def __init__(self, sink: list[dict]):
        self.sink = sink

    def msg(self, **event: Any) -> None:
        self.sink.append(event)


class Trace:
    def __init__(self, trial_id: str, now: Callable[[], float]):
        self.events: list[dict] = []
        self._seq = 0
        self._now = now

        def stamp(_logger, _name, event: dict) -> dict:
            self._seq += 1
            return {"v": EVENT_SCHEMA_VERSION, "trial": trial_id, "seq": self._seq,
                    "t": round(self._now(), 6), **event}

        self._log = structlog.wrap_logger(
            _Collect(self.events), processors=[stamp],
            wrapper_class=structlog.BoundLogger, cache_logger_on_first_use=True)

    def emit(self, event: str, **fields: Any) -> None:
        self._log.msg(event, **{k: v for k, v in fields.items() if v is not None})
