"""Scenario references: what `SCENARIO` on the command line and `ref` in a sweep mean.

  path/to/file.yaml          a scenario file
  support_refund             a shipped scenario, by name
  chain                      a template with its default parameters
  chain:length=64,turns=2    a template with parameters (also settable with --param)
"""
from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

from .registry import find, names
from .scenario import Scenario, ScenarioError, load_scenario_file, parse_scenario
from .spec import ScenarioRef


def _coerce(v: str) -> Any:
    for cast in (int, float):
        try:
            x = cast(v)
        except ValueError:
            continue
        # "nan", "inf" and "1e999" stay text, so the check that rejects them quotes what was typed
        return x if isinstance(x, int) or math.isfinite(x) else v
    return {"true": True, "false": False}.get(v.lower(), v)


def parse_params(items: list[str] | str | None) -> dict[str, Any]:
    """`k=v` items (or one comma-separated string) into a dict with numbers coerced."""
    if not items:
        return {}
    if isinstance(items, str):
        items = [i for i in items.split(",") if i]
    out = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq or not k.strip():
            raise ValueError(f"parameter {item!r} is not of the form key=value")
        out[k.strip()] = _coerce(v.strip())
    return out


def _from_template(name: str, fn, params: dict[str, Any]) -> tuple[Scenario, ScenarioRef]:
    allowed = set(inspect.signature(fn).parameters)
    unknown = set(params) - allowed
    if unknown:
        raise ScenarioError(f"template {name}", [(f"params.{u}", None,
                            f"unknown parameter; {name} takes {', '.join(sorted(allowed))}")
                            for u in sorted(unknown)])
    try:
        data = fn(**params)
    except (TypeError, ValueError) as e:
        raise ScenarioError(f"template {name}", [("params", None, str(e))]) from None
    sc = parse_scenario(data, f"template {name}")
    return sc, ScenarioRef(ref=name, params=params, digest=sc.digest())


def resolve_scenario(ref: str, params: dict[str, Any] | None = None) -> tuple[Scenario, ScenarioRef]:
    """Load a scenario from a reference; raise ScenarioError naming what is wrong."""
    params = dict(params or {})
    if not ref.strip():
        raise ScenarioError("SCENARIO", [("", None, f"the scenario reference {ref!r} is empty: give a scenario file, "
                                                   f"a shipped scenario's name or a template ({', '.join(names('template'))})")])
    try:
        is_file = Path(ref).exists()
    except (OSError, ValueError):  # a NUL byte or a name too long for the file system: not a file
        is_file = False
    name, _, inline = ref.partition(":") if not is_file else (ref, "", "")
    if inline:
        try:
            params = {**parse_params(inline), **params}
        except ValueError as e:
            raise ScenarioError(ref, [("params", None, str(e))]) from None
    template = find("template", name)
    if template is not None:
        return _from_template(name, template.obj, params)
    if params:
        raise ScenarioError(ref, [("params", None, "parameters apply only to templates "
                                   f"({', '.join(names('template'))})")])
    shipped = None if is_file else find("scenario", name)
    if shipped is not None:
        sc = load_scenario_file(shipped.obj)
        return sc, ScenarioRef(ref=name, digest=sc.digest())
    if not is_file:
        known = names("scenario") + names("template")
        raise ScenarioError(ref, [("", None, "no such file, shipped scenario or template; "
                                   f"known: {', '.join(known)}")])
    sc = load_scenario_file(ref)
    return sc, ScenarioRef(ref=ref, digest=sc.digest())
