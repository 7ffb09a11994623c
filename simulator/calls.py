"""How the simulated model fills a call from its belief: which steps remain, whether
something stands in its way (the only time it gives up), the arguments of a step (known,
forgotten, withheld, changed by the user, or invented: one invention per fact in a trial),
a stale value in place of the right one (a value it knows, or a look-alike id it has
seen), the facts of an answer, and how well a route names where the next step is done.

Plain functions over the session, the model's random stream and its belief, so the
order of random draws is the model's own (brain.py calls them in a fixed order).
"""
from __future__ import annotations

import json
import re

from .faults.triggers import uniform
from .oracle import Belief
from .values import fabricate, leaves, values_under
from .world import MISSING, REF, resolve

_DIGITS, _UPPER, _LOWER = re.compile(r"\d"), re.compile(r"[A-Z]"), re.compile(r"[a-z]")


def make_up(s, rng, fact: str, value):
    """A value it makes up in place of `value` for `fact` (a reference such as
    "{order.order_id}", or "step.arg" for a value of the user's request). A model repeats
    its own invention, so within a trial one fact keeps the first value invented for it.
    The draws are made every time, so the random stream does not depend on what was
    invented before."""
    made = fabricate(value, rng)
    return s.invented.setdefault((fact, json.dumps(value, sort_keys=True, default=str)), made)

def fact_of(s, step_id: str, arg: str) -> str:
    """The fact an argument of a golden step states: where its value comes from as written
    ("{order.order_id}"), or "step.arg" for a value of the user's request."""
    v = s.oracle.steps[step_id].args.get(arg)
    return v if isinstance(v, str) and REF.search(v) else f"{step_id}.{arg}"

def steps_left(s, steps: list[str], b: Belief) -> list[str]:
    """The request's steps still to do, after the furthest one it can see done: with a
    trimmed history it carries on from the latest result in view, as a real model would."""
    pos = s.oracle.position
    last = max((pos[x] for x in steps if x in b.done), default=-1)
    return [x for x in steps if x not in b.done and pos[x] > last]

def blocked(b: Belief, step_id: str | None) -> bool:
    """Whether something stands in the way of the step, the only time a model gives up:
    results on the step were rejected (retries), a result in view failed (an error or an
    unreadable reply), or an output it works from is an error result it took in."""
    return bool(b.retries.get(step_id, 0) > 0 or b.broken or any(r.status != "ok" for r in b.unjudged))

def error_weights(weights: dict[str, float], obstacle: bool) -> tuple[list[str], list[float]]:
    """The error modes it can commit and their weights: giving up only with an obstacle. The
    one draw among them is made either way, so the random stream stays aligned; a profile
    that leaves no other way to err keeps giving up."""
    modes = list(weights)
    w = [0.0 if m == "give_up" and not obstacle else weights[m] for m in modes]
    return modes, (w if any(w) else [weights[m] for m in modes])

def unclear_args(s, step_id: str, b: Belief) -> list[str]:
    """Literal arguments of a step that the user withheld or contradicted."""
    step = s.oracle.steps[step_id]
    keys = [f"{step_id}.{a}" for a, v in step.args.items() if not REF.search(str(v))]
    return [k for k in keys if k in b.withheld or k in b.conflict]

def forgotten_source(s, step_id: str, b: Belief) -> str | None:
    """The earliest forgotten read this step depends on (re-reading is safe; re-writing is not)."""
    oracle, seen = s.oracle, set()
    todo, found = [step_id], None
    while todo:
        sid = todo.pop()
        for v in oracle.steps[sid].args.values():
            for ref in sorted({m.group(1) for m in REF.finditer(str(v))}):
                if ref in b.known or ref in seen or ref not in oracle.steps:
                    continue
                seen.add(ref)
                if s.scenario.tools[oracle.steps[ref].tool].effect.writes:
                    return None
                found = ref
                todo.append(ref)
    return found

def args_for(s, rng, role: str, step_id: str, b: Belief) -> tuple[dict, list[str], list[str]]:
    step = s.oracle.steps[step_id]
    args = resolve(step.args, b.known)
    if b.tasks and b.tasks[-1][0] == step.tool:  # the agent that gave the task named the values
        for k, v in b.tasks[-1][1].items():
            if args.get(k) is MISSING and not (isinstance(v, str) and REF.search(v)):
                args[k] = v
    golden = s.oracle.golden.args.get(step_id, {})
    filled, guessed = [], []
    for k, v in list(args.items()):
        key = f"{step_id}.{k}"
        if key in b.override:
            if uniform(s.seed, s.scenario_key, s.replicate, "goal", key) < s.profile.track_goal_change:
                args[k] = b.override[key]
            else:
                s.trace.emit("goal_change_missed", role=role, step=step_id, arg=k)
        elif key in b.withheld:
            args[k] = make_up(s, rng, key, v)
            guessed.append(key)
        elif key in b.conflict:
            args[k] = rng.choice(b.conflict[key])
            guessed.append(key)
        elif v is MISSING:
            args[k] = make_up(s, rng, fact_of(s, step_id, k), golden.get(k, "unknown"))
            src = REF.search(str(step.args[k]))
            filled.append(f"{k}<-{src.group(1)}" if src else k)
    return args, filled, guessed

def stale(s, rng, step_id: str, args: dict, b: Belief) -> tuple[dict, str | None]:
    step = s.oracle.steps[step_id]
    ref_args = [k for k, v in step.args.items() if isinstance(v, str) and REF.search(v)]
    for k in rng.sample(ref_args, len(ref_args)):
        m = REF.search(step.args[k])
        key = (m.group(2).rsplit(".", 1)[-1] or k) if m.group(2) else k
        pool = values_under(b.known, key) + look_alikes(b.known, args[k])
        pool = sorted({json.dumps(v) for v in pool if v != args[k]})
        if pool:
            args = dict(args)
            args[k] = json.loads(rng.choice(pool))
            return args, k
    return args, None

def look_alikes(known: dict, value) -> list:
    """Ids it has seen in results it took in (a record's own id, the ids it lists as related)
    written like `value`: the same pattern of letters, digits and separators. A stale id is
    one of these, not only a value it knows as some step's output."""
    if not isinstance(value, str) or not any(c.isdigit() for c in value):
        return []
    shape = _shape(value)
    return [v for v in leaves(known) if isinstance(v, str) and _shape(v) == shape]

def _shape(v: str) -> str:
    return _LOWER.sub("a", _UPPER.sub("A", _DIGITS.sub("9", v)))

def tool_args(s, rng, tool: dict, b: Belief) -> dict:
    out = {}
    for name in tool["function"].get("parameters", {}).get("required", []):
        pool = values_under(b.known, name)
        fact = f"{tool['function']['name']}.{name}"
        out[name] = rng.choice(pool) if pool else make_up(s, rng, fact, "X-100")
    return out

def answer(s, rng, b: Belief, final_turn: bool, invent: bool = True, misremember: float = 0.0,
           slips: list | None = None, drawn: list | None = None) -> str:
    """The reply's facts: the ones it knows (each misremembered with probability
    `misremember`, noted in `slips`, each draw in `drawn`), and (unless told not to)
    invented ones for the rest."""
    sc = s.scenario
    facts = list(sc.turns[min(b.turn, len(sc.turns) - 1)].answer_must_contain)
    if final_turn:
        facts += list(sc.success.answer_must_contain)
    said = []
    # a fact asked for by the turn and by the task is recalled once: one draw, one value
    for f in {str(f): f for f in facts}.values():
        v = resolve(f, b.known)
        if v is MISSING and not invent:
            continue
        if v is MISSING:
            v = make_up(s, rng, str(f), resolve(f, s.oracle.golden.outputs))
        elif misremember:  # no draw at 0: streams stay aligned
            slip = rng.random() < misremember
            if drawn is not None:
                drawn.append(["recall", int(slip)])
            if slip:
                v = make_up(s, rng, str(f), v)
                if slips is not None:
                    slips.append(str(f))
        said.append(str(v))
    body = "; ".join(dict.fromkeys(said))
    return f"Done. {body}." if body else "Done."


def task_args(s, step_id: str, b: Belief) -> dict:
    """A step's arguments as it would write them in a task for another agent: the values it
    knows, and for the ones it does not yet, where they will come from."""
    step = s.oracle.steps[step_id]
    args = resolve(step.args, b.known)
    return {k: (str(step.args[k]) if v is MISSING else v) for k, v in args.items()}


def route_score(oracle, agents, remaining: list[str]):
    """How well an option (a node, an agent, a route name) names where the next step is done."""
    if not remaining:
        return lambda option: 0.0
    need = oracle.steps[remaining[0]].tool
    holders = agents.holder(need)
    words = set(need.lower().split("_")) | {w for a in holders for w in a.lower().replace("-", "_").split("_")}

    def score(option: str) -> float:
        o = option.lower().replace("-", "_").replace(" ", "_")
        if option in holders or o == need:
            return 3.0
        if o in need or any(o in a.lower() for a in holders):
            return 2.0
        return len(set(o.split("_")) & words) / (1 + len(o.split("_")))
    return score
