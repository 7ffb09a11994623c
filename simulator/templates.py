"""Length-parametric scenario templates and the shipped scenario files.

A scenario reference is one of:
  path/to/file.yaml          a scenario file
  support_refund             a shipped scenario, by name
  chain                      a template with its default parameters
  chain:length=64,turns=2    a template with parameters (also settable with --param)
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable

from .registry import REGISTRY, register
from .scenario import Scenario, ScenarioError, load_scenario_file, parse_scenario
from .spec import ScenarioRef

KINDS = [("ticket", "get_ticket", "a support ticket"),
         ("account", "get_account", "a customer account"),
         ("invoice", "get_invoice", "an invoice")]


def chain(length: int = 8, turns: int = 1, task: int = 0) -> dict:
    """A task of `length` dependent tool calls: follow a trail of linked records across
    three systems (each record names the next one), then file a report quoting the last
    record's code. Every step needs the previous step's output, so one wrong id sends
    the rest of the trail astray; records also list look-alike ids (decoys)."""
    n = int(length)
    if n < 1:
        raise ValueError("length must be >= 1")
    turns = max(1, min(int(turns), n))
    world: dict[str, dict] = {"reports": {}}
    for kind, _, _ in KINDS:
        world[kind + "s"] = {}
    reads = n - 1
    ids = [f"{KINDS[i % 3][0][:3].upper()}-{task:02d}{i:04d}" for i in range(reads + 1)]
    for i in range(reads):
        kind = KINDS[i % 3][0]
        nxt = ids[i + 1]
        world[kind + "s"][ids[i]] = {
            "id": ids[i], "next_id": nxt, "code": f"C{(i * 7919 + task * 31) % 100000:05d}",
            "see_also": [ids[j] for j in (i - 3, i + 3) if 0 <= j < reads],
        }
    tools: dict[str, Any] = {}
    for kind, tool, what in KINDS:
        tools[tool] = {"description": f"Fetch {what} by id; it names the next record to follow.",
                       "args": {f"{kind}_id": {"type": "string"}},
                       "effect": {"read": kind + "s", "key": f"{kind}_id"},
                       "latency": {"median_s": 0.8, "p95_s": 4}}
    tools["file_report"] = {
        "description": "File the final report for a trail, quoting the last record's code.",
        "args": {"source_id": {"type": "string"}, "code": {"type": "string"}},
        "effect": {"insert": "reports", "id_field": "report_id", "id_prefix": "REP-",
                   "set": {"source_id": "$source_id", "code": "$code"}},
        "latency": {"median_s": 1.5, "p95_s": 6}}
    golden = []
    for i in range(reads):
        kind, tool, _ = KINDS[i % 3]
        arg = ids[0] if i == 0 else f"{{s{i - 1}.next_id}}"
        golden.append({"id": f"s{i}", "tool": tool, "args": {f"{kind}_id": arg}})
    if reads:
        golden.append({"id": "report", "tool": "file_report",
                       "args": {"source_id": f"{{s{reads - 1}.id}}", "code": f"{{s{reads - 1}.code}}"}})
    else:
        golden.append({"id": "report", "tool": "file_report",
                       "args": {"source_id": ids[0], "code": "C00000"}})
    bounds = [round(k * n / turns) for k in range(turns + 1)]
    step_ids = [g["id"] for g in golden]
    turn_list = []
    for k in range(turns):
        seg = step_ids[bounds[k]:bounds[k + 1]]
        last = seg[-1]
        fact = "{report.report_id}" if last == "report" else f"{{{last}.code}}"
        text = (f"Please follow the record trail starting at {ids[0]}: fetch each record and go to "
                f"the one it names, then file a report quoting the last record's code."
                if k == 0 else "Thanks. Please carry on along the trail from where you stopped.")
        if turns > 1 and k < turns - 1:
            text += f" Stop after {len(seg)} records this time and tell me the code of the last one."
        turn_list.append({"user": text, "steps": seg, "answer_must_contain": [fact]})
    return {
        "name": f"chain-{n}",
        "description": f"Follow a {n}-call trail of linked records and file a report.",
        "domain": "records",
        "family": f"chain/task-{task}",
        "tools": tools, "world": world, "turns": turn_list, "golden_path": golden,
        "success": {"state": [{"path": "reports"}], "answer_must_contain": ["{report.report_id}"]},
        "user_think_time": {"median_s": 15, "p95_s": 60},
    }


TEMPLATES: dict[str, Callable[..., dict]] = {"chain": chain}


def scenarios_dir() -> Path | None:
    spec = importlib.util.find_spec("attrition_scenarios")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    here = Path(__file__).resolve().parent.parent / "scenarios"
    return here if here.is_dir() else None


def register_builtins() -> None:
    for name, fn in TEMPLATES.items():
        import inspect
        params = {k: repr(v.default) for k, v in inspect.signature(fn).parameters.items()}
        register("template", name, " ".join((fn.__doc__ or "").split("\n\n")[0].split()), fn, params)
    root = scenarios_dir()
    if root:
        for f in sorted(root.glob("*.yaml")):
            import yaml
            try:
                head = yaml.safe_load(f.read_text()) or {}
                summary = head.get("description", "") if isinstance(head, dict) else ""
            except yaml.YAMLError:
                summary = "(does not parse)"
            register("scenario", f.stem, summary, f)


def _coerce(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
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


def resolve_scenario(ref: str, params: dict[str, Any] | None = None) -> tuple[Scenario, ScenarioRef]:
    """Load a scenario from a reference; raise ScenarioError naming what is wrong."""
    from .registry import load_builtins
    load_builtins()
    params = dict(params or {})
    name, _, inline = ref.partition(":") if not Path(ref).exists() else (ref, "", "")
    if inline:
        params = {**parse_params(inline), **params}
    if name in REGISTRY["template"]:
        fn = REGISTRY["template"][name].obj
        import inspect
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
    if params:
        raise ScenarioError(ref, [("params", None, "parameters apply only to templates "
                                   f"({', '.join(sorted(REGISTRY['template']))})")])
    if name in REGISTRY["scenario"] and not Path(ref).exists():
        sc = load_scenario_file(REGISTRY["scenario"][name].obj)
        return sc, ScenarioRef(ref=name, digest=sc.digest())
    if not Path(ref).exists():
        known = sorted(REGISTRY["scenario"]) + sorted(REGISTRY["template"])
        raise ScenarioError(ref, [("", None, "no such file, shipped scenario or template; "
                                   f"known: {', '.join(known)}")])
    sc = load_scenario_file(ref)
    return sc, ScenarioRef(ref=ref, digest=sc.digest())
