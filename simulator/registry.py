"""One registry for the things users refer to by name: scenarios, templates, designs, profiles.

Built-ins register themselves like plugins would; `attrition list` reads it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    name: str
    kind: str
    summary: str
    obj: Any = None
    params: dict[str, str] = field(default_factory=dict)


REGISTRY: dict[str, dict[str, Entry]] = {"scenario": {}, "template": {}, "design": {}, "profile": {}, "fault": {}}


def register(kind: str, name: str, summary: str, obj: Any = None, params: dict | None = None) -> None:
    REGISTRY[kind][name] = Entry(name, kind, summary, obj, params or {})


def entries(kind: str) -> list[Entry]:
    return sorted(REGISTRY[kind].values(), key=lambda e: e.name)


_loaded = False


def load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import designs, faults, profiles, templates  # noqa: F401  (faults register on import)
    for p in profiles.PROFILES.values():
        register("profile", p.name, p.summary, p)
    templates.register_builtins()
    designs.register_builtins()

