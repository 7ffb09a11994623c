"""Scenarios as data: the schema, the YAML loader and validation with line numbers."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .faults.config import FaultConfigError, check_faults, normalize_faults
from .world import MISSING, get_path, refs_in, resolve, run_golden


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Latency(Strict):
    """Lognormal latency given by its median and 95th percentile, in virtual seconds."""
    median_s: float = Field(0.5, ge=0)
    p95_s: float | None = Field(None, ge=0, description="defaults to 3x the median")

    @property
    def p95(self) -> float:
        return self.p95_s if self.p95_s is not None else 3 * self.median_s


class Arg(Strict):
    type: Literal["string", "integer", "number", "boolean"] = "string"
    description: str = ""


class Effect(Strict):
    """Exactly one of read / find / update / insert names the table it acts on.

    Values in `set` and `where` that start with `$` name a tool argument.
    """
    read: str | None = Field(None, description="return the row of TABLE whose id is the `key` argument")
    find: str | None = Field(None, description="return the rows of TABLE matching `where`")
    update: str | None = Field(None, description="set fields on the row of TABLE whose id is the `key` argument")
    insert: str | None = Field(None, description="add a row to TABLE with a generated id")
    key: str | None = Field(None, description="argument holding the row id (read, update)")
    where: dict[str, Any] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    id_field: str = "id"
    id_prefix: str = ""
    returns: list[str] | None = Field(None, description="fields to return (default: the whole row)")

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("read", "find", "update", "insert") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("an effect needs exactly one of read, find, update, insert"
                             + (f" (got {', '.join(kinds)})" if kinds else ""))
        if kinds[0] in ("read", "update") and not self.key:
            raise ValueError(f"a {kinds[0]} effect needs `key`: the argument holding the row id")
        return self

    @property
    def writes(self) -> bool:
        return bool(self.update or self.insert)


class Tool(Strict):
    description: str
    args: dict[str, Arg] = Field(default_factory=dict)
    effect: Effect
    latency: Latency = Field(default_factory=Latency)


class GoldenStep(Strict):
    id: str = Field(pattern=r"^[A-Za-z_][\w-]*$")
    tool: str
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="literal values come from the user's request; '{step.path}' takes a value "
                    "from an earlier step's output")


class Turn(Strict):
    user: str = Field(description="what the user says; may reference golden outputs as {step.path}")
    steps: list[str] = Field(default_factory=list, description="golden steps this turn asks for")
    answer_must_contain: list[Any] = Field(default_factory=list)
    if_answer_missing: Literal["continue", "repeat", "end"] = Field(
        "continue", description="what the user does when the reply lacks a required fact")
    think_time: Latency | None = None


class StateCheck(Strict):
    path: str = Field(description="dotted path into the final world state")
    equals: Any = Field(None, description="expected value; omitted: must equal the golden path's final state")
    name: str | None = None


class Success(Strict):
    state: list[StateCheck] = Field(default_factory=list)
    answer_must_contain: list[Any] = Field(default_factory=list)


class Budgets(Strict):
    max_steps: int | None = Field(None, gt=0, description="graph steps; default 6 x golden length + 40")
    max_tokens: int | None = Field(None, gt=0, description="input + output tokens; default 25,000 x max_steps")
    max_sim_time_s: float = Field(7 * 24 * 3600.0, gt=0)


class Scenario(Strict):
    name: str
    description: str = ""
    domain: str = "general"
    family: str | None = Field(None, description="task family; trials of one family share a difficulty draw")
    difficulty: float = Field(0.0, description="shift of the error log-odds for this scenario")
    system_prompt: str = "You are a careful assistant. Use the tools to complete the user's request."
    tools: dict[str, Tool]
    world: dict[str, Any] = Field(default_factory=dict)
    turns: list[Turn] = Field(min_length=1)
    golden_path: list[GoldenStep] = Field(min_length=1)
    success: Success = Field(default_factory=Success)
    user_think_time: Latency = Field(default_factory=lambda: Latency(median_s=20, p95_s=90))
    budgets: Budgets = Field(default_factory=Budgets)
    faults: list[dict[str, Any]] = Field(
        default_factory=list, description="faults every run of this scenario gets: "
        "{name, target?, trigger keys (rate, at_call, ...), fault parameters}; see `attrition list faults`")

    @property
    def max_steps(self) -> int:
        return self.budgets.max_steps or 6 * len(self.golden_path) + 40

    @property
    def max_tokens(self) -> int:
        return self.budgets.max_tokens or 25_000 * self.max_steps

    def digest(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ScenarioError(Exception):
    """Every problem found in one scenario source, each with its field path and line."""

    def __init__(self, source: str, problems: list[tuple[str, int | None, str]]):
        self.source, self.problems = source, problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s)"]
        for path, line, msg in self.problems:
            lines.append(f"  {self.source}:{line or '?'}: {path or '<root>'}: {msg}" if line
                         else f"  {self.source}: {path or '<root>'}: {msg}")
        return "\n".join(lines)


def line_index(node, path=(), out=None) -> dict[tuple, int]:
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            line_index(v, path + (k.value,), out)
            out[path + (k.value,)] = k.start_mark.line + 1  # a field's line is its key's
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            line_index(v, path + (i,), out)
    return out


def line_for(lines: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(str(p) if not isinstance(p, int) else p for p in loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def dotted(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def semantic_problems(sc: Scenario) -> list[tuple[tuple, str]]:
    """Problems pydantic cannot see: cross-references and an unsolvable golden path."""
    return reference_problems(sc) or golden_problems(sc)


def reference_problems(sc: Scenario) -> list[tuple[tuple, str]]:
    """Names that point nowhere: tools, arguments, steps, turns, faults."""
    probs: list[tuple[tuple, str]] = []
    seen: list[str] = []
    for i, step in enumerate(sc.golden_path):
        if step.tool not in sc.tools:
            probs.append((("golden_path", i, "tool"),
                          f"unknown tool {step.tool!r}; the scenario defines: {', '.join(sorted(sc.tools))}"))
        else:
            declared = sc.tools[step.tool].args
            for a in step.args:
                if a not in declared:
                    probs.append((("golden_path", i, "args", a),
                                  f"tool {step.tool!r} has no argument {a!r}"))
        for a, v in step.args.items():
            for ref, _ in refs_in(v):
                if ref not in seen:
                    later = ref in [s.id for s in sc.golden_path]
                    probs.append((("golden_path", i, "args", a),
                                  f"refers to {ref!r}, which is " +
                                  ("not an earlier step (steps may only use outputs of steps before them)"
                                   if later else "not a step of the golden path")))
        if step.id in seen:
            probs.append((("golden_path", i, "id"), f"duplicate step id {step.id!r}"))
        seen.append(step.id)
    for name, tool in sc.tools.items():
        eff = tool.effect
        for a in ([eff.key] if eff.key else []) + [v[1:] for v in list(eff.set.values()) + list(eff.where.values())
                                                    if isinstance(v, str) and v.startswith("$") and not v.startswith("$$")]:
            if a not in tool.args:
                probs.append((("tools", name, "effect"), f"uses argument {a!r}, which the tool does not declare"))
    owner: dict[str, int] = {}
    for t, turn in enumerate(sc.turns):
        for s in turn.steps:
            if s not in seen:
                probs.append((("turns", t, "steps"), f"unknown golden step {s!r}"))
            elif s in owner:
                probs.append((("turns", t, "steps"), f"step {s!r} is already asked for in turn {owner[s]}"))
            owner[s] = t
    unowned = [s for s in seen if s not in owner]
    if unowned:
        probs.append((("turns",), f"golden steps not asked for by any turn: {', '.join(unowned)}"))
    if sc.faults:
        try:
            check_faults(normalize_faults(sc.faults), sc)
        except FaultConfigError as e:
            m = re.match(r"faults\[(\d+)\]", str(e))
            probs.append((("faults", int(m.group(1))) if m else ("faults",), str(e)))
    return probs


def golden_problems(sc: Scenario) -> list[tuple[tuple, str]]:
    """Run the golden path: it must solve the task, and every fact and check must resolve."""
    golden = run_golden(sc)
    probs = list(golden.problems)
    for t, turn in enumerate(sc.turns):
        for j, fact in enumerate(turn.answer_must_contain):
            if resolve(fact, golden.outputs) is MISSING:
                probs.append((("turns", t, "answer_must_contain", j), f"{fact!r} does not resolve"))
    for j, fact in enumerate(sc.success.answer_must_contain):
        if resolve(fact, golden.outputs) is MISSING:
            probs.append((("success", "answer_must_contain", j), f"{fact!r} does not resolve"))
    for j, chk in enumerate(sc.success.state):
        if chk.equals is None and get_path(golden.world, chk.path) is MISSING:
            probs.append((("success", "state", j, "path"),
                          f"{chk.path!r} does not exist in the golden final state"))
    return probs


def parse_scenario(data: Any, source: str = "<scenario>", lines: dict | None = None) -> Scenario:
    lines = lines or {}
    if not isinstance(data, dict):
        raise ScenarioError(source, [("", 1, "a scenario must be a YAML mapping")])
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        probs = []
        for err in e.errors():
            loc = tuple(p for p in err["loc"] if p not in ("function-after[_one_kind(), Effect]",))
            probs.append((dotted(loc), line_for(lines, loc), err["msg"]))
        raise ScenarioError(source, probs) from None
    probs = semantic_problems(sc)
    if probs:
        raise ScenarioError(source, [(dotted(loc), line_for(lines, loc), msg) for loc, msg in probs])
    return sc


def load_scenario_text(text: str, source: str) -> Scenario:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        msg = f"malformed YAML: {getattr(e, 'problem', None) or e}"
        raise ScenarioError(source, [("", line, msg)]) from None
    lines = line_index(node) if node is not None else {}
    return parse_scenario(data, source, lines)


def load_scenario_file(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ScenarioError(str(path), [("", None, f"cannot read file: {e.strerror}")]) from None
    return load_scenario_text(text, str(path))


def json_schema() -> dict:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "attrition scenario"
    return schema
