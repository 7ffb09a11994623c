"""Faults in what reaches the model: the user's message, the context, the memory kept
between turns.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..values import fabricate
from . import errors as E
from .base import Call, HistoryCall, Params, TurnCall, fault


# -- ambiguous prompts (the user's turn) -------------------------------------------
def _ambiguous(t: TurnCall, p, f) -> bool:
    for step, arg, value in t.literals:
        if isinstance(value, str) and value and value in t.text:
            t.text = t.text.replace(value, "the one you have on file")
            t.ann.setdefault("withheld", []).append(f"{step}.{arg}")
            return True
    return False


def _typo(t: TurnCall, p, f) -> bool:
    words = t.text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    for i in idx[:: max(1, len(idx) // 3 or 1)][:3]:
        w = words[i]
        j = 1 + int(t.rng.random() * (len(w) - 2))
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    t.text = " ".join(words)
    t.ann["noise"] = "typo"
    return True


def _paraphrase(t: TurnCall, p, f) -> bool:
    t.text = "So, basically, what I need is this: " + t.text.replace(". ", "; and ").rstrip(".") + ", if that makes sense."
    t.ann["noise"] = "paraphrase"
    return True


def _conflict(t: TurnCall, p, f) -> bool:
    for step, arg, value in t.literals + t.writes:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            wrong = fabricate(value, t.rng)
            t.text += f" Actually, use {wrong} for the {arg.replace('_', ' ')} — no wait, I'm not sure."
            t.ann.setdefault("conflict", {})[f"{step}.{arg}"] = [value, wrong]
            return True
    return False


class GoalP(Params):
    value: str | None = Field(None, description="the new value (default: a changed version of the old)")


def _goal_change(t: TurnCall, p: GoalP, f) -> bool:
    for step, arg, value in t.writes:
        if isinstance(value, str):
            new = p.value or f"{value}-revised"
            t.text += f" Change of plan: for the {arg.replace('_', ' ')}, use {new} instead of {value}."
            t.ann.setdefault("override", {})[f"{step}.{arg}"] = new
            return True
    return False


for _name, _fn, _summary, _P in [
    ("ambiguous", _ambiguous, "a required value is missing from the request: does the agent ask or guess?", Params),
    ("typo", _typo, "typos in the user's message", Params),
    ("paraphrase", _paraphrase, "the same request in looser words", Params),
    ("conflict", _conflict, "contradictory instructions about one value: does the agent ask or pick?", Params),
    ("goal_change", _goal_change, "the user changes a value of a later write mid-session", GoalP),
]:
    fault(_name, ("turn",), _summary, _P, default_rate=1.0, default_pattern="single", turn=_fn)


# -- the context window --------------------------------------------------------------
class OverflowP(Params):
    window: int = Field(16000, ge=256, description="the provider's context limit in tokens")


def _overflow(c: Call, p: OverflowP, f) -> bool:
    tokens = c.args.get("context_tokens", 0)
    if tokens > p.window:
        c.error = E.ContextLengthExceeded(
            f"This model's maximum context length is {p.window} tokens; the messages resulted in "
            f"{tokens} tokens.", fault_id=f.id)
        c.latency = 0.2
        return True
    return False


fault("context_overflow", ("model",), "the provider rejects prompts past `window` tokens unless the design "
      "trims its context", OverflowP, default_rate=1.0, raises=(E.ContextLengthExceeded,), before=_overflow)


# -- memory between turns -----------------------------------------------------------
class MemoryP(Params):
    mode: Literal["lost", "rollback"] = Field("lost", description="lose the whole conversation, or its tail")
    rollback_messages: int = Field(4, ge=1, description="messages rolled back in rollback mode")


def _memory(h: HistoryCall, p: MemoryP, f) -> bool:
    h.messages = [] if p.mode == "lost" else h.messages[: max(0, len(h.messages) - p.rollback_messages)]
    return True


fault("memory_loss", ("history",), "checkpointed conversation lost or rolled back between turns",
      MemoryP, default_rate=1.0, default_pattern="single", history=_memory)
