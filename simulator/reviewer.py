"""The scripted human reviewer: answers a graph's interrupts, as the person at the other end
of a human-in-the-loop deployment would, after a review latency on the virtual clock.

It reads the request formats LangChain and LangGraph define, and answers each in its own
format:
  LangChain HumanInTheLoopMiddleware, batched   {"action_requests": [...], "review_configs": [...]}
      -> {"decisions": [{"type": "approve" | "edit" | "reject", ...}, ...]}
  HumanInTheLoopMiddleware, per call            {"type": "tool_approval", "name", "args", ...}
      -> one decision
  Agent Inbox (langgraph.prebuilt.interrupt)    [{"action_request": {"action", "args"}, "config"}]
      -> [{"type": "accept" | "edit" | "response" | "ignore", "args": ...}]
  any other interrupt(value)                    -> one decision in the middleware's format,
      with the keys of LangGraph's "review tool calls" guide beside them:
      {"type": "approve", "action": "continue"}
      | {"type": "edit", "edited_action": {"name", "args"}, "action": "update", "data": args}
      | {"type": "reject", "message": "...", "action": "feedback", "data": "..."};
      the action under review is read from value["tool_call"] (a tool call dict) or
      from value's own "name" and "args"
  a static breakpoint (interrupt_before/after)  -> continue

The reviewer is part of the environment, not of the design: its policy comes with the
trial (`Job.reviewer`), not from the design's parameters. Policy keys:
  mode            review (decide by the rates below) | approve | reject | none (nobody
                  answers: the trial ends waiting for a human)
  reject_rate     probability of rejecting an action that is right
  catches_errors  probability of stopping an action that is wrong (its tool call
                  matches no golden step's call)
  edit_rate       of the wrong actions stopped, the share corrected to the golden
                  call by an edit instead of rejected
  median_s, p95_s review latency, lognormal (default 60 s and 600 s)
  max_reviews     reviews answered per trial; the next request waits forever
Without a policy, a reviewer approves everything (after the review latency).
"""
from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .judge import numbers_equal
from .rng import lognormal
from .spec import MAX_VIRTUAL_S

ALL = ("approve", "edit", "reject")
REJECTED = "The reviewer rejected this action; it was not carried out."


class AwaitingHuman(Exception):
    """The graph asked for a human and nobody answered."""


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    mode: Literal["review", "approve", "reject", "none"] = "review"
    reject_rate: float = Field(0.0, ge=0, le=1)
    catches_errors: float = Field(0.0, ge=0, le=1)
    edit_rate: float = Field(0.0, ge=0, le=1)
    median_s: float = Field(60.0, ge=0, le=MAX_VIRTUAL_S)
    p95_s: float = Field(600.0, ge=0, le=MAX_VIRTUAL_S)
    max_reviews: int = Field(100, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _latency(self):
        if self.p95_s < self.median_s:
            raise ValueError(f"p95_s ({self.p95_s}) is below median_s ({self.median_s})")
        return self


HELP = ("approve, reject, none (nobody answers), review, or key=value,... from mode, reject_rate, "
        "catches_errors, edit_rate, median_s, p95_s, max_reviews (e.g. reject_rate=0.1,catches_errors=0.9)")


def policy(value: Any) -> dict | None:
    """A reviewer policy from a command-line text or a YAML mapping, in its canonical form
    (defaults left out, so equal policies give equal trial ids); None stays None.
    Raises ValueError naming the key that is wrong."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if "=" not in text:
            value = {"mode": text}
        else:
            value = {}
            for pair in (p for p in text.split(",") if p.strip()):
                key, eq, v = pair.partition("=")
                if not eq or not key.strip():
                    raise ValueError(f"reviewer: {pair.strip()!r} is not key=value; use {HELP}")
                value[key.strip()] = v.strip()
    if not isinstance(value, dict):
        raise ValueError(f"reviewer: expected a text or a mapping, got a {type(value).__name__}; use {HELP}")
    try:
        p = Policy.model_validate(value)
    except ValidationError as e:
        x = e.errors()[0]
        where = ".".join(map(str, x["loc"]))
        raise ValueError(f"reviewer{'.' + where if where else ''}: {x['msg']} (got {x.get('input')!r}); "
                         f"use {HELP}") from None
    return p.model_dump(exclude_defaults=True) or {"mode": "review"}


def _allowed_in(schema: Any) -> tuple:
    """The decision types a per-call response schema accepts (LangGraph publishes it as JSON Schema)."""
    found: list = []

    def walk(node):
        if isinstance(node, dict):
            const = ((node.get("properties") or {}).get("type") or {}).get("const")
            if const:
                found.append(const)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(schema)
    return tuple(dict.fromkeys(found)) or ALL


def _inbox_allowed(config: dict) -> tuple:
    c = config or {}
    return tuple(d for d, key in (("approve", "allow_accept"), ("edit", "allow_edit"),
                                  ("reject", "allow_respond"), ("reject", "allow_ignore")) if c.get(key))


def parse(value: Any, schema: Any = None) -> tuple[str, list[tuple]]:
    """(request format, actions as (tool name or None, args, allowed decisions))."""
    if isinstance(value, dict) and "action_requests" in value:
        allowed = {c.get("action_name"): tuple(c.get("allowed_decisions") or ALL)
                   for c in value.get("review_configs") or []}
        return "hitl_batched", [(a.get("name"), a.get("args") or {}, allowed.get(a.get("name"), ALL))
                                for a in value["action_requests"]]
    if isinstance(value, dict) and value.get("type") == "tool_approval":
        return "hitl_per_call", [(value.get("name"), value.get("args") or {}, _allowed_in(schema))]
    if isinstance(value, list) and value and all(isinstance(v, dict) and "action_request" in v for v in value):
        return "agent_inbox", [(v["action_request"].get("action"), v["action_request"].get("args") or {},
                                _inbox_allowed(v.get("config"))) for v in value]
    call = value.get("tool_call") if isinstance(value, dict) else None
    if not isinstance(call, dict) and isinstance(value, dict) and "name" in value and "args" in value:
        call = value
    if isinstance(call, dict) and isinstance(call.get("args"), dict):
        return "interrupt", [(call.get("name"), call["args"], ALL)]
    return "interrupt", [(None, {}, ALL)]


def reply(fmt: str, decisions: list[dict]) -> Any:
    """The answer to one request, in its own format."""
    if fmt == "hitl_batched":
        return {"decisions": decisions}
    if fmt == "agent_inbox":
        out = []
        for d in decisions:
            if d["type"] == "approve":
                out.append({"type": "accept", "args": None})
            elif d["type"] == "edit":
                out.append({"type": "edit", "args": {"action": d["edited_action"]["name"],
                                                     "args": d["edited_action"]["args"]}})
            else:
                out.append({"type": "response", "args": d["message"]})
        return out
    if fmt == "interrupt":
        d = decisions[0]
        guide = {"approve": {"action": "continue"},
                 "edit": {"action": "update", "data": (d.get("edited_action") or {}).get("args")},
                 "reject": {"action": "feedback", "data": d.get("message")}}[d["type"]]
        return {**d, **guide}
    return decisions[0]


class Reviewer:
    """Answers the interrupts of one trial, drawing from its own seeded stream."""

    def __init__(self, session, policy: dict | None):
        self.s = session
        self.p = Policy.model_validate(policy if policy is not None else {"mode": "approve"})
        self.rng = session.stream("reviewer")
        self.n = 0

    def answer(self, interrupts: tuple, can_resume: bool) -> tuple[Any, float]:
        """What to stream next (a Command resuming every pending interrupt, or None past a
        static breakpoint) and the virtual seconds the reviews took."""
        if self.p.mode == "none" or self.n + max(1, len(interrupts)) > self.p.max_reviews:
            self.s.trace.emit("review", n=self.n + 1, request=self._format(interrupts), tools=[],
                              decisions=[], wrong=[], latency_s=0.0, answered=False)
            raise AwaitingHuman(f"the graph is waiting for a human review that never comes "
                                f"(reviewer mode {self.p.mode}, {self.n} reviews answered)")
        if not can_resume:
            raise RuntimeError("the graph called interrupt() but has no checkpointer to resume from; "
                               "compile it with one, e.g. graph.compile(checkpointer=InMemorySaver())")
        if not interrupts:  # a static breakpoint: look, then let it continue
            return None, self._review("breakpoint", [], [])
        answers, waited = {}, 0.0
        for intr in interrupts:
            fmt, actions = parse(intr.value, getattr(intr, "response_schema", None))
            decisions = [self._decide(*a) for a in actions]
            answers[intr.id] = reply(fmt, [d for d, _ in decisions])
            waited += self._review(fmt, actions, decisions)
        return Command(resume=answers), waited

    def _format(self, interrupts: tuple) -> str:
        return parse(interrupts[0].value)[0] if interrupts else "breakpoint"

    def _review(self, fmt: str, actions: list, decisions: list) -> float:
        self.n += 1
        took = lognormal(self.rng, self.p.median_s, self.p.p95_s)
        self.s.trace.emit("review", n=self.n, request=fmt, tools=[a[0] for a in actions],
                          decisions=[d["type"] for d, _ in decisions], wrong=[w for _, w in decisions],
                          latency_s=round(took, 6))
        return took

    def _decide(self, name: str | None, args: dict, allowed: tuple) -> tuple[dict, bool]:
        catch, fix_it = self.rng.random(), self.rng.random()  # always two draws: aligned streams
        wrong, golden = self._check(name, args)
        p, kind = self.p, "approve"
        if p.mode == "reject":
            kind = "reject"
        elif p.mode == "review" and wrong and catch < p.catches_errors:
            kind = "edit" if golden is not None and fix_it < p.edit_rate else "reject"
        elif p.mode == "review" and not wrong and catch < p.reject_rate:
            kind = "reject"
        if kind not in allowed:
            kind = "reject" if kind == "edit" and "reject" in allowed else (
                "approve" if "approve" in allowed else allowed[0])
        if kind == "edit":
            return {"type": "edit", "edited_action": {"name": name, "args": golden}}, wrong
        if kind == "reject":
            return {"type": "reject", "message": REJECTED}, wrong
        return {"type": kind}, wrong

    def _check(self, name: str | None, args: dict) -> tuple[bool, dict | None]:
        """Whether a tool call disagrees with every golden step that uses its tool; and the
        call it should have been (the closest such step), to correct it with."""
        if name is None:
            return False, None
        oracle = self.s.oracle
        steps = [sid for sid in oracle.order if oracle.steps[sid].tool == name]
        given = {k: v for k, v in args.items() if k != "idempotency_key"}

        def agree(sid) -> int:
            want = oracle.golden.args.get(sid, {})
            return sum(k in given and numbers_equal(given[k], v) for k, v in want.items())

        for sid in steps:
            if agree(sid) == len(oracle.golden.args.get(sid, {})) == len(given):
                return False, None
        if not steps:
            return True, None
        best = max(steps, key=agree)  # the first of the closest
        key = {"idempotency_key": args["idempotency_key"]} if "idempotency_key" in args else {}
        return True, {**oracle.golden.args.get(best, {}), **key}
