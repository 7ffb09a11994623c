"""One registry for everything users refer to by name: faults, designs, profiles, templates,
executors and shipped scenarios. Lookups and `attrition list` both read it.

Built-ins register like plug-ins: attrition's own entry points name the modules that
define them, and those modules fill the registry with `register` when imported. Another
package adds its own through the entry-point groups `attrition.faults`,
`attrition.designs`, `attrition.profiles`, `attrition.templates`, `attrition.executors`
and `attrition.scenarios`. An entry point names either a module (imported for the
registrations it makes) or an object (registered under the entry point's name).

This module imports nothing of the project, so every other module may import it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

KINDS = ("fault", "design", "profile", "template", "executor", "scenario")


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    obj: Any
    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)
    origin: str = ""  # the module or entry point that registered it


class UnknownName(LookupError):
    """A name that no built-in or plug-in registered."""


_ENTRIES: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
_LOADED: set[str] = set()
PROBLEMS: list[str] = []  # plug-ins that failed to load; shown by `attrition list`


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) if callable(obj) else None
    return " ".join(doc.split("\n\n")[0].split()) if doc else ""


def register(kind: str, name: str | None = None, obj: Any = None, *, summary: str | None = None,
             params: dict[str, str] | None = None, origin: str | None = None) -> Any:
    """Register `obj` under (kind, name). Without `obj`, a decorator:

        @register("template", "chain")
        def chain(length: int = 8) -> dict: ...
    """
    if kind not in _ENTRIES:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")

    def add(o: Any) -> Any:
        n = name or getattr(o, "name", None) or getattr(o, "__name__", None)
        if not n:
            raise ValueError(f"a {kind} needs a name")
        where = origin or getattr(o, "__module__", "") or ""
        old = _ENTRIES[kind].get(n)
        if old is not None and old.obj is not o and old.origin != where:
            PROBLEMS.append(f"{kind} {n!r} is defined twice ({old.origin} and {where}); keeping {old.origin}")
            return o
        if params is None and inspect.isfunction(o):
            shown = signature_params(o)
        else:
            shown = dict(params or {})
        _ENTRIES[kind][n] = Entry(kind, n, o, summary if summary is not None else _summary(o), shown, where)
        return o

    return add if obj is None else add(obj)


def _load(kind: str) -> None:
    """Import the entry points of one group, once per process."""
    if kind in _LOADED:
        return
    _LOADED.add(kind)
    for ep in entry_points(group=f"attrition.{kind}s"):
        try:
            obj = ep.load()
        except Exception as e:  # a broken plug-in must not take the built-ins down with it
            PROBLEMS.append(f"entry point {ep.name} = {ep.value} (attrition.{kind}s) failed to load: "
                            f"{type(e).__name__}: {e}")
            continue
        if ep.attr:  # an object: registered under the entry point's name
            register(kind, ep.name, obj)


def lookup(kind: str, name: str) -> Entry:
    _load(kind)
    try:
        return _ENTRIES[kind][name]
    except KeyError:
        known = ", ".join(names(kind)) or "none"
        raise UnknownName(f"unknown {kind} {name!r}; known: {known}") from None


def find(kind: str, name: str) -> Entry | None:
    _load(kind)
    return _ENTRIES[kind].get(name)


def names(kind: str) -> list[str]:
    _load(kind)
    return sorted(_ENTRIES[kind])


def entries(kind: str) -> list[Entry]:
    _load(kind)
    return [_ENTRIES[kind][n] for n in sorted(_ENTRIES[kind])]


def objects(kind: str) -> list[Any]:
    return [e.obj for e in entries(kind)]


def signature_params(fn: Callable) -> dict[str, str]:
    """A function's keyword parameters and defaults, for listings."""
    return {k: repr(v.default) for k, v in inspect.signature(fn).parameters.items()
            if v.default is not inspect.Parameter.empty}
