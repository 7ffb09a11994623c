"""Fault settings: parsing them from the command line, validating them into canonical form,
and checking them against a scenario."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from ..registry import UnknownName, lookup, names
from ..yamlio import BOUND_ERRORS
from .triggers import TRIGGER_KEYS, Trigger


class FaultConfigError(ValueError):
    """A fault setting that cannot work: unknown name, bad parameter, impossible trigger.
    `index` is the position of the setting in its list, where one setting is to blame."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


def _split_list(v: str) -> list[str]:
    return [x for x in v.split("|") if x != ""]


def parse_fault_arg(text: str) -> dict:
    """`NAME[:key=value,...]` from the command line; lists use `|` (at_call=2|5),
    windows use `start-end` (windows=100-400|900-1000)."""
    name, _, rest = text.partition(":")
    out: dict[str, Any] = {"name": name.strip()}
    for item in filter(None, rest.split(",")):
        k, eq, v = item.partition("=")
        if not eq:
            raise FaultConfigError(f"--fault {text!r}: {item!r} is not of the form key=value")
        k, v = k.strip(), v.strip()
        if k in ("at_call", "at_turn"):
            out[k] = _split_list(v)
        elif k == "windows":
            try:
                out[k] = [[float(x) for x in w.split("-", 1)] for w in _split_list(v)]
            except ValueError:
                raise FaultConfigError(f"--fault {text!r}: windows must look like 100-400|900-1000") from None
        else:
            out[k] = v
    return out


def _errors(e: ValidationError, model: type[BaseModel]) -> str:
    """pydantic's errors in one line; a broken bound quotes the field's description, which
    states the limits."""
    out = []
    for err in e.errors():
        msg = err["msg"].removeprefix("Value error, ")
        f = model.model_fields.get(err["loc"][0]) if err["loc"] else None
        if err["type"] in BOUND_ERRORS and f is not None and f.description:
            msg += f" ({f.description})"
        out.append(f"{'.'.join(map(str, err['loc']))}: {msg}" if err["loc"] else msg)
    return "; ".join(out)


def _one(item: Any, where: str) -> tuple[str, str | None, str, dict, dict]:
    """(name, id, target, params, trigger) of one setting, validated."""
    if isinstance(item, str):
        item = parse_fault_arg(item)
    if not isinstance(item, dict) or "name" not in item:
        raise FaultConfigError(f"{where}: a fault needs a `name`")
    item = dict(item)
    if isinstance(item.get("params"), dict) and isinstance(item.get("trigger"), dict):
        item = {**{k: v for k, v in item.items() if k not in ("params", "trigger")},
                **item["params"], **item["trigger"]}  # already canonical: validate again
    name = item.pop("name")
    for key in ("name", "target", "id"):
        v = name if key == "name" else item.get(key)
        if v is not None and not isinstance(v, str):
            raise FaultConfigError(f"{where}: {key} must be text, not {v!r}")
    try:
        d = lookup("fault", name).obj
    except UnknownName:
        raise FaultConfigError(f"{where}: unknown fault {name!r}; known faults: "
                               f"{', '.join(names('fault'))}") from None
    target = item.pop("target", None) or d.default_target
    fid = item.pop("id", None)
    trig = {k: item.pop(k) for k in list(item) if k in TRIGGER_KEYS}
    trig.setdefault("pattern", d.default_pattern)
    try:
        params = d.params.model_validate(item).model_dump(mode="json")
    except ValidationError as e:
        known = ", ".join(sorted(set(d.params.model_fields) | TRIGGER_KEYS | {"target", "id"}))
        raise FaultConfigError(f"{where} ({name}): {_errors(e, d.params)} (accepted keys: {known})") from None
    try:
        trigger = Trigger.model_validate(trig).model_dump(mode="json", exclude_defaults=True)
    except ValidationError as e:
        raise FaultConfigError(f"{where} ({name}): impossible trigger: {_errors(e, Trigger)}") from None
    if d.timed_only and not (trig.get("windows") or trig.get("mtbf_s")):
        raise FaultConfigError(f"{where} ({name}): give windows=START-END or mtbf_s and mttr_s")
    if target.startswith("model") and "model" not in d.boundaries:
        raise FaultConfigError(f"{where} ({name}): acts on {', '.join(d.boundaries)}, not on the model")
    if not target.startswith("model") and target not in ("turn", "history") and "tool" not in d.boundaries:
        raise FaultConfigError(f"{where} ({name}): acts on the {d.boundaries[0]}, not on tools "
                               f"(drop target={target})")
    return name, fid, target, params, trigger


def normalize_faults(raw: list, where: str = "faults") -> tuple[dict, ...]:
    """Validate fault settings and return them in canonical form:
    {name, id, target, params, trigger}. Raises FaultConfigError naming what is wrong."""
    out, seen, used = [], {}, set()
    for i, item in enumerate(raw or []):
        try:
            name, fid, target, params, trigger = _one(item, f"{where}[{i}]")
        except FaultConfigError as e:
            raise FaultConfigError(str(e), index=i) from None
        n = seen[name] = seen.get(name, 0) + 1
        fid = fid or (name if n == 1 else f"{name}#{n}")
        if fid in used:  # two settings of one fault (say, the scenario's and a sweep's) stay apart
            k = 2
            while f"{name}#{k}" in used:
                k += 1
            fid = f"{name}#{k}"
        used.add(fid)
        out.append({"name": name, "id": fid, "target": target, "params": params, "trigger": trigger})
    return tuple(out)


def check_faults(faults: tuple[dict, ...], scenario, where: str = "faults") -> None:
    """Problems only the scenario can reveal: unknown target tools, turns that do not exist."""
    for i, f in enumerate(faults):
        t = f["target"]
        if t not in ("tools", "reads", "writes", "turn", "history") and not t.startswith("model") \
                and t not in scenario.tools:
            raise FaultConfigError(f"{where}[{i}] ({f['name']}): target tool {t!r} is not in scenario "
                                   f"{scenario.name!r} (tools: {', '.join(sorted(scenario.tools))})")
        turns = f["trigger"].get("at_turn", [])
        bad = [k for k in turns if k >= len(scenario.turns)]
        if bad:
            raise FaultConfigError(f"{where}[{i}] ({f['name']}): at_turn {bad[0]} does not exist; scenario "
                                   f"{scenario.name!r} has {len(scenario.turns)} turns (0-based)", index=i)
