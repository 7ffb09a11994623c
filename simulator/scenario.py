"""Scenarios as data: the schema, the YAML loader and validation with line numbers."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .faults.config import FaultConfigError, check_faults, normalize_faults
from .spec import MAX_VIRTUAL_S, VIRTUAL_S
from .world import MISSING, WorldTables, get_path, refs_in, resolve, run_golden, unresolved
from .yamlio import (ScenarioError, dotted, line_for, line_index, load_yaml, nonfinite_problems, parse_yaml,
                     validation_problems)

__all__ = ["Scenario", "ScenarioError", "parse_scenario", "load_scenario_file", "load_scenario_text",
           "json_schema", "dotted", "line_for", "line_index"]

# A positive median below a microsecond gives lognormal draws whose spread can
# overflow a float; a latency is 0 (instant) or at least this.
MIN_LATENCY_S = 1e-6


class Strict(BaseModel):
    # NaN passes every comparison-based bound and inf breaks sums of latencies: numbers are finite
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


class Latency(Strict):
    """Lognormal latency given by its median and 95th percentile, in virtual seconds."""
    median_s: float = Field(0.5, ge=0, le=MAX_VIRTUAL_S,
                            description=f"median in virtual seconds: 0, or from 0.000001 to {VIRTUAL_S}")
    p95_s: float | None = Field(None, ge=0, le=MAX_VIRTUAL_S,
                                description=f"95th percentile in virtual seconds, from the median to {VIRTUAL_S}; "
                                            "defaults to 3x the median")

    @model_validator(mode="after")
    def _ordered(self):
        if 0 < self.median_s < MIN_LATENCY_S:
            raise ValueError(f"median_s {self.median_s:g} is below {MIN_LATENCY_S:g} s: give 0 (instant) "
                             "or at least a microsecond")
        if self.p95_s is not None and self.p95_s < self.median_s:
            raise ValueError(f"p95_s {self.p95_s:g} is below median_s {self.median_s:g}: "
                             "a 95th percentile is never below the median")
        return self

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
    difficulty: float = Field(0.0, ge=-10, le=10, allow_inf_nan=False,
                              description="log-odds added to the model's error hazard on this step, -10 to 10 "
                                          "(copying an id is easier than a policy calculation)")


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


LATE_BUDGETS = ("max_model_calls", "max_tool_calls")


class Budgets(Strict):
    # A million graph steps is hours of wall time; beyond it a budget is a typo, not a limit.
    max_steps: int | None = Field(None, gt=0, le=1_000_000,
                                  description="graph supersteps, 1 to 1,000,000; default: no limit (model and "
                                              "tool calls are the budgets that compare across graph shapes)")
    max_model_calls: int | None = Field(None, gt=0, le=1_000_000,
                                        description="model calls, 1 to 1,000,000; default 8 x golden length + 40")
    max_tool_calls: int | None = Field(None, gt=0, le=1_000_000,
                                       description="tool calls, 1 to 1,000,000; default 6 x golden length + 40")
    max_tokens: int | None = Field(None, gt=0, le=10**11,
                                   description="input + output tokens, 1 to 10**11; default 25,000 x max_steps")
    max_sim_time_s: float = Field(7 * 24 * 3600.0, gt=0, le=MAX_VIRTUAL_S,
                                  description=f"virtual seconds, above 0 and at most {VIRTUAL_S}")


# A million dollars per failed trial or per review is past any real cost: above it, a typo.
MAX_USD = 1_000_000.0


def _usd(default: float, what: str):
    return Field(default, ge=0, le=MAX_USD, description=f"{what}; US dollars, 0 to {MAX_USD:,.0f}")


class Impacts(Strict):
    """What one failed trial costs the business, by how it failed (records: `impact`)."""
    silent_wrong: float = _usd(100.0, "a wrong result delivered as if right (a wrong write, a wrong answer), found "
                               "later by a customer or an audit")
    duplicate_write: float = _usd(50.0, "an action carried out twice (a duplicate refund or booking), to undo")
    loud: float = _usd(10.0, "a visible failure handed to a person (gave up, ran out of budget, no answer): "
                       "about ten minutes of an operator at $60 an hour")


class ReviewCosts(Strict):
    """What the human reviewer's time costs."""
    per_review: float = _usd(0.5, "each review answered")
    per_minute: float = _usd(1.0, "each minute a review takes ($60 an hour)")


class Costs(Strict):
    failure: Impacts = Field(default_factory=Impacts)
    review: ReviewCosts = Field(default_factory=ReviewCosts)


class Scenario(Strict):
    name: str
    description: str = ""
    domain: str = "general"
    family: str | None = Field(None, description="task family; trials of one family share a difficulty draw")
    # Past +-10 log-odds every decision is already all but certain (an average 1.5% error
    # rate becomes 99.97% or 0.0007%); larger shifts only push the model's sums to overflow.
    difficulty: float = Field(0.0, ge=-10, le=10,
                              description="shift of the error log-odds for this scenario, from -10 to 10")
    system_prompt: str = "You are a careful assistant. Use the tools to complete the user's request."
    tools: dict[str, Tool]
    world: WorldTables = Field(default_factory=dict, description="tables: table name -> row id -> record, "
                               "each record a mapping of field names to values")
    turns: list[Turn] = Field(min_length=1)
    golden_path: list[GoldenStep] = Field(min_length=1)
    success: Success = Field(default_factory=Success)
    user_think_time: Latency = Field(default_factory=lambda: Latency(median_s=20, p95_s=90))
    budgets: Budgets = Field(default_factory=Budgets)
    faults: list[dict[str, Any]] = Field(
        default_factory=list, description="faults every run of this scenario gets: "
        "{name, target?, trigger keys (rate, at_call, ...), fault parameters}; see `attrition list faults`")
    costs: Costs = Field(default_factory=Costs, description="what failures and human reviews cost, for cost per "
                         "task and per success; defaults: silent_wrong 100, duplicate_write 50, loud 10, "
                         "review 0.5 each plus 1 per minute")

    @property
    def max_steps(self) -> int:
        return self.budgets.max_steps or 6 * len(self.golden_path) + 40

    @property
    def max_tokens(self) -> int:
        return self.budgets.max_tokens or 25_000 * self.max_steps

    def digest(self) -> str:
        data = self.model_dump(mode="json")
        for late in LATE_BUDGETS:  # fields added later enter the digest only when set, so
            if data["budgets"].get(late) is None:  # the trials of existing scenarios keep their ids
                data["budgets"].pop(late, None)
        if data["costs"] == Costs().model_dump(mode="json"):
            data.pop("costs")  # added later, so it enters the digest only when set, as the budgets above
        for step in data["golden_path"]:
            if not step.get("difficulty"):
                step.pop("difficulty", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


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
    probs += turn_text_problems(sc, owner)
    if sc.faults:
        try:
            check_faults(normalize_faults(sc.faults), sc)
        except FaultConfigError as e:
            probs.append((("faults",) + ((e.index,) if e.index is not None else ()), str(e)))
    return probs


def turn_text_problems(sc: Scenario, owner: dict[str, int]) -> list[tuple[tuple, str]]:
    """A turn's text may quote only outputs the user has already seen: those of steps
    asked for in earlier turns. Anything else would fail every trial at that turn."""
    probs: list[tuple[tuple, str]] = []
    for t, turn in enumerate(sc.turns):
        for ref, path in refs_in(turn.user):
            text = "{" + ref + (f".{path}" if path else "") + "}"
            if ref not in owner:
                probs.append((("turns", t, "user"), f"{text} refers to {ref!r}, which is not a step "
                              "of the golden path"))
            elif owner[ref] >= t:
                probs.append((("turns", t, "user"), f"{text} refers to step {ref!r}, which turn "
                              f"{owner[ref]} asks for: a turn may quote only outputs of steps asked for "
                              "in earlier turns"))
    return probs


def golden_problems(sc: Scenario) -> list[tuple[tuple, str]]:
    """Run the golden path: it must solve the task, and every fact and check must resolve."""
    golden = run_golden(sc)
    probs = list(golden.problems)
    for t, turn in enumerate(sc.turns):
        for ref in unresolved(turn.user, golden.outputs):
            probs.append((("turns", t, "user"), f"reference {ref} does not resolve to a value in the "
                          "golden path's outputs"))
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
        got = "nothing (the file is empty)" if data is None else f"a {type(data).__name__}"
        raise ScenarioError(source, [("", 1, "a scenario must be a YAML mapping (name, tools, turns, "
                                     f"golden_path, ...); got {got}")])
    bad = nonfinite_problems(data, lines)  # templates build data in Python, past the YAML loader
    if bad:
        raise ScenarioError(source, bad)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(source, validation_problems(
            e, Scenario, lines, drop=("function-after[_one_kind(), Effect]",))) from None
    probs = semantic_problems(sc)
    if probs:
        raise ScenarioError(source, [(dotted(loc), line_for(lines, loc), msg) for loc, msg in probs])
    return sc


def load_scenario_text(text: str, source: str) -> Scenario:
    data, lines = parse_yaml(text, source)
    return parse_scenario(data, source, lines)


def load_scenario_file(path: str | Path) -> Scenario:
    data, lines = load_yaml(path)
    return parse_scenario(data, str(path), lines)


def json_schema() -> dict:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "attrition scenario"
    return schema
