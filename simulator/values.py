"""Walking JSON-like values, and inventing plausible wrong ones.

Shared by the faults (which corrupt results), the simulated model (which fabricates
what it does not know) and propagation (which follows values through a trial).
"""
from __future__ import annotations

import re

from typing import Any, Iterator


def fabricate(value: Any, rng) -> Any:
    """A plausible-looking wrong value of the same shape."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        wrong = value * (1 + rng.choice([-1, 1]) * rng.uniform(0.05, 0.5))
        wrong = int(round(wrong)) if isinstance(value, int) else round(wrong, 2)
        return wrong if wrong != value else value + 1
    if isinstance(value, str):
        digits = [i for i, c in enumerate(value) if c.isdigit()]
        if digits:
            i = rng.choice(digits)
            return value[:i] + rng.choice([d for d in "0123456789" if d != value[i]]) + value[i + 1:]
        return value + "-2" if value else "unknown"
    return "unknown"


def leaf_paths(obj: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) for every scalar inside dicts and lists."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaf_paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaf_paths(v, path + (i,))
    else:
        yield path, obj


def leaves(obj: Any) -> Iterator[Any]:
    """Every scalar inside dicts and lists."""
    for _, v in leaf_paths(obj):
        yield v


def values_under(obj: Any, key: str) -> list:
    """Every scalar stored under `key`, at any depth."""
    out: list = []
    _collect(obj, key, out)
    return out


def _collect(obj: Any, key: str, out: list) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key and not isinstance(v, (dict, list)):
                out.append(v)
            _collect(v, key, out)
    elif isinstance(obj, list):
        for v in obj:
            _collect(v, key, out)


def set_path(obj: Any, path: tuple, value: Any) -> None:
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def snake_keys(obj: Any) -> Any:
    """Undo a camelCase rename (what a model that notices schema drift reads through)."""
    if isinstance(obj, dict):
        return {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): snake_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [snake_keys(v) for v in obj]
    return obj
