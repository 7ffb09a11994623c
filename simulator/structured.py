"""Structured output from the simulated model: filling a JSON Schema from what it believes.

Graphs ask models for structured output to route (a field whose values name the next
node or agent), to plan (a list of steps), to judge (a yes/no or pass/fail verdict) and
to answer (a response text). The simulated model fills any schema field by field from
its belief, the way a real model fills it from the conversation:

- a choice (enum or const) names the node or agent that holds the next step's tool, or,
  with nothing left to do, the option that ends (finish, end, respond, done...);
- a list of strings is the plan: one task per remaining step (`Call TOOL with {args}`);
- a text field is the answer, a reason, or a known value of that name;
- a yes/no field says whether the work is done or the result is right;
- a union takes the branch that answers when nothing is left to do, else the one that plans.

An error (drawn with the same hazard as a tool call) makes it pick a wrong choice, drop a
step from the plan or state an unchecked verdict.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .values import values_under

END_WORDS = ("finish", "end", "done", "respond", "response", "answer", "final", "complete", "stop", "none")
ANSWER_WORDS = ("answer", "response", "output", "final", "summary", "content", "message", "result", "text")
REASON_WORDS = ("reason", "justification", "explanation", "thought", "rationale", "feedback", "critique")
DONE_WORDS = ("done", "finished", "complete", "is_done", "should_end", "end")


@dataclass
class Fill:
    """What the model knows when it fills a schema."""
    plan: list[str]                       # one task string per remaining step, in order
    answer: str                           # what it would answer now
    known: dict[str, Any]                 # step outputs it believes
    route_score: Callable[[str], float]   # how well an option names where the next step is done
    verdict: bool                         # whether it judges the work so far right
    err: bool = False                     # this output carries an error
    rng: Any = None
    errors: list[str] = field(default_factory=list)  # the error modes it committed, in order


def _resolve_ref(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if not ref or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}


def _choice(options: list, f: Fill) -> Any:
    if not f.plan:  # nothing left: take the option that ends
        ends = [o for o in options if any(w in str(o).lower() for w in END_WORDS)]
        best = ends[0] if ends else options[-1]
    else:
        best = max(options, key=lambda o: f.route_score(str(o)))
    if f.err and len(options) > 1:
        wrong = f.rng.choice([o for o in options if o != best])
        f.errors.append("wrong_tool")  # a wrong route, like calling the wrong tool
        return wrong
    return best


def _text(name: str, f: Fill) -> str:
    low = name.lower()
    if any(w in low for w in REASON_WORDS):
        return "Based on the results so far." if not f.plan else f"Next: {f.plan[0]}."
    found = values_under(f.known, name)
    if found and not any(w in low for w in ANSWER_WORDS):
        return str(found[-1])
    return f.answer


def _boolean(name: str, f: Fill) -> bool:
    if any(w in name.lower() for w in DONE_WORDS):
        return not f.plan
    return f.verdict


def _number(name: str, f: Fill, integer: bool) -> Any:
    for v in reversed(values_under(f.known, name)):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return int(v) if integer else v
    return 0


def _branch(options: list[dict], root: dict, f: Fill) -> dict:
    """Of a union, the branch that answers when the work is done, else the one that plans."""
    def answers(s: dict) -> bool:
        props = _resolve_ref(s, root).get("properties", {})
        return any(any(w in k.lower() for w in ANSWER_WORDS) for k in props) and not any(
            _resolve_ref(p, root).get("type") == "array" for p in props.values())
    want_answer = not f.plan
    for s in options:
        if answers(s) == want_answer:
            return s
    return options[0]


def fill(schema: dict, f: Fill, name: str = "", root: dict | None = None) -> Any:
    """A value for `schema` (JSON Schema) from what the model knows."""
    root = root if root is not None else schema
    schema = _resolve_ref(schema, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return _choice(list(schema["enum"]), f)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve_ref(s, root).get("type") != "null"]
            consts = [_resolve_ref(s, root).get("const") for s in options]
            if options and all(c is not None for c in consts):
                return _choice(consts, f)
            return fill(_branch(options, root, f) if options else {}, f, name, root)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return fill(schema["allOf"][0], f, name, root)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", props))
        return {k: fill(v, f, k, root) for k, v in props.items() if k in required or "default" not in v}
    if kind == "array":
        items = _resolve_ref(schema.get("items", {}), root)
        if items.get("type", "string") == "string" and "enum" not in items:
            return _plan(f)
        return [fill(items, f, name, root)]
    if kind == "boolean":
        return _boolean(name, f)
    if kind in ("integer", "number"):
        return _number(name, f, kind == "integer")
    return _text(name, f)


def _plan(f: Fill) -> list[str]:
    plan = list(f.plan)
    if f.err and len(plan) > 1:
        plan.pop(f.rng.randrange(len(plan)))
        f.errors.append("skipped_step")  # a step left out of the plan
    return plan
