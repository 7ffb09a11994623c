"""The explicit world state that scenario tools read and write.

Tools are data: each names one effect over a table of the world (read a row,
find rows, update a row, insert a row). Keeping effects declarative is what lets
the simulator run the golden path itself (to validate a scenario and to know the
expected final state) and judge success by the final world, not by the agent's
words.
"""
from __future__ import annotations

import copy
import datetime
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BeforeValidator

REF = re.compile(r"\{([A-Za-z_][\w-]*)((?:\.[\w-]+)*)\}")
MISSING = object()


def _text_key(v: Any) -> Any:
    # Tools look rows up by the text of an id, so a row keyed by the number 1001 (or the
    # date 2026-10-30) would never be found: read such keys as the text they were written as.
    if isinstance(v, bool):
        raise ValueError(f"key {v!r} is a boolean: quote it (YAML reads yes, no, on, off as booleans)")
    return str(v) if isinstance(v, (int, datetime.date)) else v


Key = Annotated[str, BeforeValidator(_text_key)]
# table name -> row id -> record: every tool effect reads and writes rows of this shape
WorldTables = dict[Key, dict[Key, dict[Key, Any]]]


def split_path(path: str) -> list[str | int]:
    return [int(p) if p.lstrip("-").isdigit() else p for p in path.split(".") if p != ""]


def get_path(obj: Any, path: str | list) -> Any:
    parts = split_path(path) if isinstance(path, str) else path
    for p in parts:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, dict) and str(p) in obj:
            obj = obj[str(p)]
        elif isinstance(obj, list) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return MISSING
    return obj


def refs_in(value: Any) -> list[tuple[str, str]]:
    """(step id, field path) for every `{step.path}` reference in a value."""
    if isinstance(value, str):
        return [(m.group(1), m.group(2).lstrip(".")) for m in REF.finditer(value)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs_in(v)]
    return []


def holds_missing(value: Any) -> bool:
    """Whether a resolved value has an unresolved reference anywhere inside it."""
    if isinstance(value, dict):
        return any(holds_missing(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_missing(v) for v in value)
    return value is MISSING


def unresolved(value: Any, outputs: dict[str, Any]) -> list[str]:
    """The `{step.path}` references in a value that do not resolve, as written."""
    out = []
    for step, path in refs_in(value):
        text = "{" + step + (f".{path}" if path else "") + "}"
        if resolve(text, outputs) is MISSING and text not in out:
            out.append(text)
    return out


def resolve(value: Any, outputs: dict[str, Any]) -> Any:
    """Fill `{step.path}` references from step outputs.

    A string that is exactly one reference keeps the referenced value's type;
    references embedded in text are interpolated. Unresolvable references give
    MISSING so the caller decides what a missing value means (the simulated
    model fabricates one; validation reports it).
    """
    if isinstance(value, dict):
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    if not isinstance(value, str):
        return value
    whole = REF.fullmatch(value)
    if whole:
        step, path = whole.group(1), whole.group(2).lstrip(".")
        if step not in outputs:
            return MISSING
        return get_path(outputs[step], path) if path else outputs[step]
    missing = False

    def sub(m: re.Match) -> str:
        nonlocal missing
        out = resolve(m.group(0), outputs)
        if out is MISSING:
            missing = True
            return m.group(0)
        return str(out)

    text = REF.sub(sub, value)
    return MISSING if missing else text


def _arg(value: Any, args: dict[str, Any]) -> Any:
    # "$name" refers to a tool argument; "$$" escapes a literal dollar.
    if isinstance(value, str) and value.startswith("$$"):
        return value[1:]
    if isinstance(value, str) and value.startswith("$"):
        return args.get(value[1:])
    return value


@dataclass
class ToolOutcome:
    result: dict
    ok: bool
    wrote: list[str] = field(default_factory=list)  # world paths written


def apply_effect(effect, args: dict[str, Any], world: dict) -> ToolOutcome:
    """Run one declarative effect against the world (mutating it)."""
    def project(row: dict) -> dict:
        row = copy.deepcopy(row)
        return {k: row[k] for k in effect.returns if k in row} if effect.returns else row

    def err(code: str, message: str) -> ToolOutcome:
        return ToolOutcome({"error": code, "message": message}, ok=False)

    if effect.read or effect.update:
        table_name = effect.read or effect.update
        table = world.setdefault(table_name, {})
        key = args.get(effect.key)
        row = table.get(str(key)) if key is not None else None
        if row is None:
            return err("not_found", f"no {table_name} record with {effect.key}={key!r}")
        if effect.read:
            return ToolOutcome(project(row), ok=True)
        for f, v in effect.set.items():
            row[f] = _arg(v, args)
        return ToolOutcome(project(row), ok=True, wrote=[f"{table_name}.{key}"])
    if effect.find:
        table = world.get(effect.find, {})
        want = {f: _arg(v, args) for f, v in effect.where.items()}
        rows = [project(r) for r in table.values()
                if all(str(r.get(f)) == str(v) for f, v in want.items())]
        return ToolOutcome({"results": rows, "count": len(rows)}, ok=True)
    if effect.insert:
        table = world.setdefault(effect.insert, {})
        new_id = f"{effect.id_prefix}{len(table) + 1}"
        while new_id in table:  # never overwrite: a duplicate insert must show as a new row
            new_id += "x"
        row = {f: _arg(v, args) for f, v in effect.set.items()}
        row[effect.id_field] = new_id
        table[new_id] = row
        return ToolOutcome(project(row), ok=True, wrote=[f"{effect.insert}.{new_id}"])
    raise AssertionError("effect has no kind")  # schema guarantees one


@dataclass
class GoldenRun:
    """The golden path executed on the initial world: expected outputs and final state."""
    outputs: dict[str, dict]
    args: dict[str, dict]
    world: dict
    problems: list[tuple[tuple, str]]


def run_golden(scenario, overrides: dict[str, Any] | None = None) -> GoldenRun:
    """Run the golden path; `overrides` ("step.arg" -> value) is a goal the user changed."""
    world = copy.deepcopy(scenario.world)
    outputs: dict[str, dict] = {}
    all_args: dict[str, dict] = {}
    problems: list[tuple[tuple, str]] = []
    for i, step in enumerate(scenario.golden_path):
        args = resolve(step.args, outputs)
        for name in args:
            if overrides and f"{step.id}.{name}" in overrides:
                args[name] = overrides[f"{step.id}.{name}"]
        bad = [name for name, v in args.items() if holds_missing(v)]
        for name in bad:
            problems.append((("golden_path", i, "args", name),
                             f"reference {', '.join(unresolved(step.args[name], outputs))} does not "
                             "resolve to a value in the earlier steps' outputs"))
        tool = scenario.tools.get(step.tool)
        # validating, a step with a broken reference is not run: its effect would only add
        # noise to the report; a changed goal (overrides) runs on as it always has
        if tool is None or (overrides is None and bad):
            continue
        out = apply_effect(tool.effect, args, world)
        if not out.ok:
            problems.append((("golden_path", i), f"golden step {step.id!r} fails on the "
                             f"initial world: {out.result['message']}"))
        outputs[step.id] = out.result
        all_args[step.id] = args
    return GoldenRun(outputs, all_args, world, problems)
