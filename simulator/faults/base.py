"""What a fault is: one definition that says everything the rest of attrition needs.

A fault is middleware at one boundary: around a tool call or a model call (`before`),
on a tool's result (`after`), on the user's message (`turn`) or on the conversation
kept between turns (`history`). Its definition declares, beside its hook:

- `raises`: the exceptions it makes the client raise (propagation treats a raised
  error as surfaced at once; `attrition list faults` shows them);
- `flags`: the marks it leaves on a result's artifact, and how a model notices each
  (the simulated model's chance of noticing depends on the flag, never on content);
- `ends`: the design action that ends it (`auth_expired` ends at
  `kit.refresh_credentials()`), and `recovery_param`, the parameter saying how much
  virtual time that takes;
- `timed_only`: it only makes sense in windows of virtual time or as a random process;
- its parameters, as a pydantic model that validates them.

Hooks mutate the call they are given and return whether the fault took effect: a
trigger can hold while the fault finds nothing to do (a corruption with no field to
corrupt), and only an effect counts as a firing.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, get_args

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from ..registry import objects, register
from ..spec import MAX_VIRTUAL_S, VIRTUAL_S
from .errors import FaultError

Boundary = Literal["tool", "model", "turn", "history"]
_ORDER = itertools.count()


# The ceiling of a fault's count-like numbers (tokens, requests, messages): ten million is
# past every provider's context window and rate; larger values only exhaust memory.
MAX_PARAM = 10_000_000
# A number that must be positive (a rate, a timeout) is divided by: below this it
# underflows to a division by zero or an infinite wait.
MIN_POSITIVE = 1e-6


def numeric(annotation: Any) -> bool:
    """A plain number field (int or float, maybe optional), not one that takes any value."""
    kinds = set(get_args(annotation) or (annotation,)) - {type(None)}
    return bool(kinds) and kinds <= {int, float}


def ceiling(name: str) -> float:
    """The largest value a fault parameter takes: a span of virtual time (a name ending
    in `_s`) is at most 30 days, any other number at most MAX_PARAM."""
    return MAX_VIRTUAL_S if name.endswith("_s") else MAX_PARAM


class Params(BaseModel):
    # NaN passes every comparison-based bound and inf breaks sums of virtual time: finite only
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _in_range(cls, v: Any, info: ValidationInfo) -> Any:
        # one backstop for every fault's numbers; a fault may declare tighter bounds itself
        f = cls.model_fields[info.field_name]
        if not numeric(f.annotation) or v is None:
            return v
        if abs(v) > ceiling(info.field_name):
            limit = VIRTUAL_S if info.field_name.endswith("_s") else f"{MAX_PARAM:,}"
            raise ValueError(f"must be at most {limit}")
        if any(isinstance(m, Gt) for m in f.metadata) and v < MIN_POSITIVE:
            raise ValueError(f"must be at least {MIN_POSITIVE:g}")
        return v


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def param_range(name: str, f: Any) -> str:
    """A parameter's allowed range, from its declared bounds and the shared ceiling."""
    if not numeric(f.annotation):
        return ""
    hi = min([m.le for m in f.metadata if isinstance(m, Le)] + [m.lt for m in f.metadata if isinstance(m, Lt)]
             + [ceiling(name)])
    lo = [f"from {_num(m.ge)} to" for m in f.metadata if isinstance(m, Ge)] + \
        [f"from {MIN_POSITIVE:g} to" for m in f.metadata if isinstance(m, Gt)] + ["at most"]
    return f" ({lo[0]} {_num(hi)})"


@dataclass(frozen=True)
class Flag:
    """A mark a fault leaves on a tool result's artifact.

    noticed_as: which of the profile's notice rates applies ("malformed": the result looks
    broken; "silent": it looks fine but is wrong; None: nothing to notice). corrupts: a
    model that accepts the result has taken a corrupted value into its work.
    """
    name: str
    noticed_as: Literal["malformed", "silent"] | None = None
    corrupts: bool = False
    order: int = field(default_factory=lambda: next(_ORDER), compare=False)


CORRUPTED = Flag("corrupted", "silent", corrupts=True)
MALFORMED = Flag("malformed", "malformed", corrupts=True)
EMPTY = Flag("empty", "malformed", corrupts=True)
DRIFT = Flag("drift", "malformed", corrupts=True)
TRUNCATED = Flag("truncated", corrupts=True)
STALE = Flag("stale")
FLOODED = Flag("flooded")
INJECTION = Flag("injection")


@dataclass
class Call:
    """One crossing of the tool or model boundary, as the faults see it."""
    kind: str                 # "tool" | "model"
    name: str                 # tool name, or the model's role
    args: dict
    now: float
    latency: float = 0.0
    error: FaultError | None = None
    after_effect: bool = False   # raise `error` only after the effect happened
    result: Any = None
    ok: bool = True
    artifact: dict = field(default_factory=dict)
    writes: bool = False
    shared: dict = field(default_factory=dict)
    rng: Any = None
    call_id: str | None = None


@dataclass
class TurnCall:
    """The user's message for one turn, as the turn faults see it."""
    turn: int
    text: str
    literals: list[tuple[str, str, Any]]  # (step, arg, value) the user's message supplies
    writes: list[tuple[str, str, Any]]    # literals of writing steps from this turn on
    ann: dict = field(default_factory=dict)
    rng: Any = None


@dataclass
class HistoryCall:
    """The conversation carried into turn `turn`; a history fault rewrites `messages`."""
    turn: int
    messages: list


Hook = Callable[[Any, Any, Any], bool]  # (call, params, active fault) -> took effect?


@dataclass(frozen=True)
class FaultDef:
    name: str
    boundaries: tuple[Boundary, ...]
    summary: str
    params: type[Params] = Params
    default_rate: float = 0.3
    default_pattern: str = "intermittent"
    raises: tuple[type[FaultError], ...] = ()
    flags: tuple[Flag, ...] = ()
    ends: str | None = None
    recovery_param: str | None = None   # the parameter holding how long recovery takes
    timed_only: bool = False
    before: Hook | None = None
    after: Hook | None = None
    turn: Hook | None = None
    history: Hook | None = None

    @property
    def default_target(self) -> str:
        if "tool" in self.boundaries:
            return "tools"
        return {"model": "model", "turn": "turn", "history": "history"}[self.boundaries[0]]

    def describe_params(self) -> dict[str, str]:
        out = {k: (f"{f.default!r} — {f.description or ''}".rstrip(" —") + param_range(k, f))
               for k, f in self.params.model_fields.items()}
        out["default trigger"] = f"rate {self.default_rate:g}, {self.default_pattern}"
        if self.raises:
            out["raises"] = ", ".join(e.__name__ for e in self.raises)
        if self.ends:
            out["ends when"] = f"the design calls kit.{self.ends}()"
        return out


def fault(name: str, boundaries: tuple[Boundary, ...], summary: str, params: type[Params] = Params,
          **kw: Any) -> FaultDef:
    """Define a fault and register it under its name."""
    d = FaultDef(name, tuple(boundaries), summary, params, **kw)
    register("fault", name, d, summary=f"[{'/'.join(d.boundaries)}] {summary}", params=d.describe_params(),
             origin=sys._getframe(1).f_globals.get("__name__"))
    return d


def declared_flags() -> list[Flag]:
    """Every flag some registered fault declares, in a fixed order."""
    return sorted({f for d in objects("fault") for f in d.flags}, key=lambda f: f.order)
