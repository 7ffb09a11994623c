"""Structured events: one row per decision, tool call, result, check and fault.

Events go through a structlog pipeline bound to one trial (no global logging
configuration is touched), are stamped with the virtual time, a sequence number
and the schema version, and are kept as plain dicts; the results store writes
them as JSON lines. Wall-clock time never appears in an event, so the same spec
gives byte-identical events.

The vocabulary is written down as one pydantic model per kind, joined in the
`Event` union on the `event` field. Emitting never builds a model (the engine's
overhead budget is tight): `Trace.emit` only checks that the kind is known, and
readers that want typed access call `parse_event`. Every model forbids unknown
fields, so a field added at an emission site without being documented here
fails the event tests instead of drifting silently.
"""
from __future__ import annotations

from typing import Annotated, Any, Callable, Literal, Union, get_args

import structlog
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .records import Outcome

EVENT_SCHEMA_VERSION = 1


class EventBase(BaseModel):
    """Fields every event carries, stamped by the trace."""
    # strict: a "3" where an int belongs is a bug at the emission site, not something to coerce
    model_config = ConfigDict(extra="forbid", strict=True)

    v: int = Field(description="event schema version (EVENT_SCHEMA_VERSION)")
    trial: str = Field(description="id of the trial the event belongs to")
    seq: int = Field(description="1-based position of the event in its trial")
    t: float = Field(description="virtual time of the event, in seconds since the simulation started")


# -- the trial -----------------------------------------------------------------

class TrialStart(EventBase):
    """A trial began."""
    event: Literal["trial_start"]
    spec: dict[str, Any] = Field(description="the TrialSpec, as JSON")
    scenario: str = Field(description="name of the resolved scenario")
    golden_length: int = Field(description="number of tool calls on the scenario's golden path")


class Step(EventBase):
    """One step of the agent graph finished (one update of graph.stream)."""
    event: Literal["step"]
    n: int = Field(description="1-based step number within the trial")
    nodes: list[str] = Field(description="graph nodes that ran in this step")
    latency_s: float = Field(description="virtual time charged to the step")


class CheckEvent(EventBase):
    """One success check, judged once the conversation is over."""
    event: Literal["check"]
    name: str = Field(description="what was checked, e.g. 'state invoices' or 'turn[0].answer contains'")
    passed: bool
    expected: Any = Field(None, description="the expected value; absent when it is null")
    actual: Any = Field(None, description="the value found; absent when it is null")


class TrialEnd(EventBase):
    """A trial ended, however it ended."""
    event: Literal["trial_end"]
    outcome: Outcome
    failure_mode: str | None = Field(None, description="why it failed or which budget ran out; absent on success")
    steps: int = Field(description="graph steps taken")


class TrialError(EventBase):
    """The design's factory or graph crashed: a harness-level error, not a fault."""
    event: Literal["trial_error"]
    error: str = Field(description="exception type and message")
    traceback: str = Field(description="the last frames of the traceback")


# -- the simulated user --------------------------------------------------------

class UserTurn(EventBase):
    """The user sent a message."""
    event: Literal["user_turn"]
    turn: int = Field(description="0-based turn of the scenario")
    attempt: int = Field(description="0 for the request, 1 when repeated after a missing answer")
    text: str = Field(description="the message as sent, after any turn fault")
    clarifying: bool | None = Field(None, description="true when answering the agent's clarifying question")


class ClarificationAsked(EventBase):
    """The agent asked the user about an unclear request, and the user will answer."""
    event: Literal["clarification_asked"]
    turn: int
    question: str = Field(description="the agent's reply that asked")
    about: list[str] = Field(description="the values the request left unclear")


class TurnEnd(EventBase):
    """The agent answered a user message."""
    event: Literal["turn_end"]
    turn: int
    attempt: int
    answer: str = Field(description="the agent's final reply of the turn")
    missing: list[Any] | None = Field(None, description="facts the answer should have held but did not")


class UserEnd(EventBase):
    """The user ended the conversation early."""
    event: Literal["user_end"]
    turn: int
    reason: str


# -- the model -----------------------------------------------------------------

class HazardTerms(BaseModel):
    """The draws and fixed terms behind one decision's error log-odds (see profiles.py):
    logit = logit(base_hazard) + difficulty_sd * z_task + step_difficulty_sd * z_step + fixed
            + context term (from context_tokens) + self_conditioning * uncorrected
            + ambiguity_penalty if ambiguous."""
    model_config = ConfigDict(extra="forbid")
    z_task: float = Field(description="the task family's standard-normal difficulty draw")
    z_step: float = Field(description="the golden step's standard-normal difficulty draw (0 with no step)")
    fixed: float = Field(description="the scenario's and the golden step's own difficulty")
    ambiguous: bool = Field(description="the request had typos or loose wording")


class ModelCall(EventBase):
    """One model call. Three shapes: an agent decision (role agent or another acting
    role), `mode="summarize"` (role summarizer) and `mode="plan"` (role planner);
    fields marked "decision", "summarize" or "plan" appear only in that shape."""
    event: Literal["model_call"]
    role: str = Field(description="the model's role: agent, summarizer, planner or a design's own")
    mode: str = Field(description="decision: correct, finish, clarify, an error mode...; or summarize / plan")
    context_tokens: int
    output_tokens: int
    latency_s: float = Field(description="virtual time the call took, including fault latency")
    turn: int | None = Field(None, description="decision: the turn the model believes it is in")
    step: str | None = Field(None, description="decision: the golden step the call was meant for")
    call_id: str | None = Field(None, description="decision: id of the tool call the model made")
    tool: str | None = Field(None, description="decision: the tool called")
    args: dict[str, Any] | None = Field(None, description="decision: the arguments of the call")
    p_error: float | None = Field(None, description="decision: probability of an error mode this call")
    confidence: float | None = Field(None, description="decision: the confidence the model stated")
    uncorrected: int | None = Field(None, description="decision: corrupted results taken in and not corrected")
    filled_missing: list[str] | None = Field(
        None, description="decision: arguments invented for want of a value, as 'arg' or 'arg<-source step'")
    guessed: list[str] | None = Field(None, description="decision: withheld values ('step.arg') guessed")
    skipped: str | None = Field(None, description="decision: the golden step skipped (mode skipped_step)")
    clarify: list[str] | None = Field(None, description="decision: the unclear values it asked the user about")
    verdicts: dict[str, Literal["accept", "reject"]] | None = Field(
        None, description="decision: tool call id -> whether the model took in or rejected its result")
    misremembered: list[str] | None = Field(None, description="decision: facts its answer quoted wrongly "
                                                              "(recall_in_answer)")
    model: str | None = Field(None, description="live: the real model's PROVIDER:NAME (mode live)")
    replayed: bool | None = Field(None, description="live: the answer came from a cassette, not the provider")
    usage: Literal["reported", "estimated"] | None = Field(
        None, description="live: tokens from the provider's usage fields, or estimated where it gave none")
    hazard: HazardTerms | None = Field(None, description="decision: what its error log-odds were made of, "
                                       "less the profile's numbers")
    draws: list[list[Literal["error", "recall"] | int]] | None = Field(
        None, description="decision: each draw against the hazard, in order: [kind, 1 if it erred]; "
                          "recall draws are scaled by recall_in_answer")
    kept: int | None = Field(None, description="summarize: known outputs kept in the summary")
    dropped: int | None = Field(None, description="summarize: known outputs dropped from the summary")
    steps: int | None = Field(None, description="plan: tool calls in the plan")


class ModelError(EventBase):
    """A model call failed: a model-boundary fault, a context past the window, or a real
    model's provider (error ProviderError; the trial is then an error)."""
    event: Literal["model_error"]
    role: str
    error: str = Field(description="exception type name")
    message: str | None = Field(None, description="the exception message (fault errors)")
    faults: list[str] | None = Field(None, description="ids of the faults that fired (fault errors)")
    context_tokens: int | None = Field(None, description="prompt size (context overflow)")
    context_window: int | None = Field(None, description="the model's context window (context overflow)")


class CorruptionAccepted(EventBase):
    """The model took in a corrupted result: where a wrong value enters its work."""
    event: Literal["corruption_accepted"]
    role: str
    step: str | None = Field(None, description="the golden step the result was for")
    call: int | None = Field(None, description="index of the tool call that returned it")
    faults: list[str] | None = Field(None, description="ids of the faults that corrupted it")
    flags: list[str] = Field(description="what was wrong with it, e.g. silent_wrong, stale, malformed")


class InjectionObeyed(EventBase):
    """The model followed an instruction injected into a tool result."""
    event: Literal["injection_obeyed"]
    role: str
    tool: str = Field(description="the tool the injection told it to call")


class InjectionIgnored(EventBase):
    """The model saw an injected instruction and did not follow it."""
    event: Literal["injection_ignored"]
    role: str
    tool: str = Field(description="the tool the injection told it to call")


class GoalChangeMissed(EventBase):
    """The user changed a value mid-session and the model kept the old one."""
    event: Literal["goal_change_missed"]
    role: str
    step: str = Field(description="the golden step whose argument changed")
    arg: str = Field(description="the argument that changed")


# -- tools, the world and time ---------------------------------------------------

class ToolCall(EventBase):
    """One tool call through the gateway. Two shapes: it returned (`result`, ok true or
    a tool-level failure) or it raised (`error`, `message`, ok false)."""
    event: Literal["tool_call"]
    tool: str
    call: int = Field(description="1-based index of the tool call in the trial")
    call_id: str | None = Field(None, description="the model's tool call id")
    args: dict[str, Any]
    ok: bool
    result: Any = Field(None, description="what the tool returned: JSON, or text once a fault broke it")
    error: str | None = Field(None, description="exception type name, when the call raised")
    message: str | None = Field(None, description="exception message, when the call raised")
    start: float = Field(description="virtual time the call started")
    latency_s: float
    faults: list[str] | None = Field(None, description="ids of the faults that fired on this call")
    idempotent_replay: bool | None = Field(None, description="true when an idempotency key replayed a write")
    effect_applied: bool | None = Field(None, description="true when it raised after the write took effect")


class WorldWrite(EventBase):
    """A tool call changed the world."""
    event: Literal["world_write"]
    tool: str
    call: int = Field(description="index of the tool call that wrote")
    paths: list[str] = Field(description="world paths written, e.g. 'refunds.R-1'")


class Fault(EventBase):
    """A fault fired. Its fields depend on the boundary: tool and model faults name a
    target (tool faults also the call, and either the error raised or what they changed);
    turn faults carry the turn and their annotation; history faults what they dropped."""
    event: Literal["fault"]
    fault: str = Field(description="the configured fault's id")
    name: str = Field(description="the fault's registered name, e.g. silent_wrong")
    boundary: Literal["tool", "model", "turn", "history"]
    target: str | None = Field(None, description="tool/model: the tool name or model role hit")
    call: int | None = Field(None, description="tool: index of the tool call hit")
    error: str | None = Field(None, description="tool/model: exception type the call will raise")
    effect: str | None = Field(None, description="tool: comma-separated flags of what the result got")
    field: str | None = Field(None, description="tool: dotted path of the result field changed")
    was: Any = Field(None, description="tool: the value before the fault")
    now: Any = Field(None, description="tool: the value after the fault")
    turn: int | None = Field(None, description="turn/history: the turn")
    annotation: dict[str, Any] | None = Field(None, description="turn: what the fault withheld, changed...")
    kept: int | None = Field(None, description="history: messages kept")
    lost: int | None = Field(None, description="history: messages dropped")


class Sleep(EventBase):
    """A design or a library slept; the time is virtual."""
    event: Literal["sleep"]
    seconds: float
    by: str | None = Field(None, description="who slept, when not the design itself")


class Review(EventBase):
    """A human reviewer answered a graph's interrupt (or nobody did); the wait is virtual time."""
    event: Literal["review"]
    n: int = Field(description="1-based index of the review in the trial")
    request: Literal["hitl_batched", "hitl_per_call", "agent_inbox", "interrupt", "breakpoint"] = Field(
        description="the request's format: LangChain's HumanInTheLoopMiddleware (batched or per call), "
                    "Agent Inbox, another interrupt() value, or a static breakpoint")
    tools: list[str | None] = Field(description="the tool each action under review would call (null: none named)")
    decisions: list[Literal["approve", "edit", "reject"]] = Field(description="the decision on each action")
    wrong: list[bool] = Field(description="per action: whether its call matched no golden step's call")
    latency_s: float = Field(description="virtual time the review took")
    answered: bool | None = Field(None, description="false when nobody answered: the trial ends awaiting_human")


class CredentialsRefreshed(EventBase):
    """The design refreshed expired credentials (ending auth_expired faults)."""
    event: Literal["credentials_refreshed"]
    took_s: float = Field(description="virtual time the refresh took")


MODELS = (TrialStart, Step, CheckEvent, TrialEnd, TrialError, UserTurn, ClarificationAsked, TurnEnd, UserEnd,
          ModelCall, ModelError, CorruptionAccepted, InjectionObeyed, InjectionIgnored, GoalChangeMissed,
          ToolCall, WorldWrite, Fault, Sleep, Review, CredentialsRefreshed)
Event = Annotated[Union[MODELS], Field(discriminator="event")]
EVENT_KINDS: frozenset[str] = frozenset(get_args(m.model_fields["event"].annotation)[0] for m in MODELS)
_ADAPTER: TypeAdapter = TypeAdapter(Event)


def parse_event(d: dict) -> EventBase:
    """The typed model of one event dict; raises pydantic.ValidationError if it breaks the schema."""
    return _ADAPTER.validate_python(d)


def events_json_schema() -> dict:
    """JSON Schema of one event (a line of events.jsonl)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"attrition event (schema version {EVENT_SCHEMA_VERSION})",
            **_ADAPTER.json_schema()}


class _Collect:
    def __init__(self, sink: list[dict]):
        self.sink = sink

    def msg(self, **event: Any) -> None:
        self.sink.append(event)


class Trace:
    def __init__(self, trial_id: str, now: Callable[[], float]):
        self.events: list[dict] = []
        self._seq = 0
        self._now = now

        def stamp(_logger, _name, event: dict) -> dict:
            self._seq += 1
            return {"v": EVENT_SCHEMA_VERSION, "trial": trial_id, "seq": self._seq,
                    "t": round(self._now(), 6), **event}

        self._log = structlog.wrap_logger(
            _Collect(self.events), processors=[stamp],
            wrapper_class=structlog.BoundLogger, cache_logger_on_first_use=True)

    def emit(self, event: str, **fields: Any) -> None:
        if event not in EVENT_KINDS:  # a typo at an emission site fails here, not in a reader
            raise ValueError(f"unknown event kind {event!r}; known: {', '.join(sorted(EVENT_KINDS))}")
        self._log.msg(event, **{k: v for k, v in fields.items() if v is not None})
