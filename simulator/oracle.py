"""What the simulated model believes, read back from the conversation it is given.

The model is stateless between calls, like a real one: everything it knows is in
the messages the graph passes in. Each AIMessage it writes carries a small
annotation (which golden step it was attempting, in which mode, and its verdict on
the tool results it had just read), so its belief can be rebuilt deterministically
from history. If a memory policy trims the history, the belief shrinks with it:
forgotten outputs must be fabricated, which is exactly how trimming hurts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from .agent_map import HANDOFF_METADATA
from .transcript import read_facts, read_tasks, read_transcript, text_of
from .values import leaves
from .world import REF, run_golden

ANN = "attrition"
GOOD_MODES = ("correct", "refetch")
# A step that copies one earlier output (the id a record names, to the next read) is the
# kind every profile's figures were measured on, and it adds nothing. Each further source a
# step's arguments combine (another step's output, or a value from the user's request) is
# one more thing to get right: this many log-odds more hazard, added to the step's own
# `difficulty`. Kept small: it separates copying from combining, it is not a calibration.
COMBINE_DIFFICULTY = 0.2


def sources(step) -> int:
    """How many places a golden step's arguments come from: each earlier step they
    reference, and the user's request for literal values (or text around a reference)."""
    steps, request = set(), False
    for v in leaves(step.args):
        refs = [m.group(1) for m in REF.finditer(v)] if isinstance(v, str) else []
        steps.update(refs)
        request = request or not refs or bool(REF.sub("", v).strip())
    return len(steps) + request


@dataclass
class Oracle:
    """The scenario's answer key: golden steps, which turn asks for which, expected outputs."""
    scenario: Any

    def __post_init__(self):
        sc = self.scenario
        self.steps = {s.id: s for s in sc.golden_path}
        self.order = [s.id for s in sc.golden_path]
        self.position = {s: i for i, s in enumerate(self.order)}
        self.golden = run_golden(sc)
        # the log-odds each step adds to the hazard: its own, plus what it combines
        self.difficulty = {st.id: st.difficulty + COMBINE_DIFFICULTY * max(0, sources(st) - 1)
                           for st in sc.golden_path}


@dataclass
class Result:
    call_id: str
    step: str | None
    mode: str
    content: Any          # parsed JSON, or None if unparseable
    raw: str
    status: str           # "ok" | "error" | "malformed"
    artifact: dict


@dataclass
class Belief:
    turn: int = 0
    known: dict[str, Any] = field(default_factory=dict)      # step id -> output it believes
    done: set[str] = field(default_factory=set)
    retries: dict[str, int] = field(default_factory=dict)    # step id -> rejected results
    unjudged: list[Result] = field(default_factory=list)     # results since its last message
    uncorrected: set[str] = field(default_factory=set)       # steps done in an error mode, still in context
    broken: set[str] = field(default_factory=set)            # steps whose output it took is an error result
    last_call: dict | None = None
    last_call_step: str | None = None
    asked_clarification: bool = False
    withheld: set[str] = field(default_factory=set)          # "step.arg" the user has not given
    conflict: dict[str, list] = field(default_factory=dict)  # "step.arg" -> [value, contradicting value]
    override: dict[str, Any] = field(default_factory=dict)   # "step.arg" -> changed goal
    noise: str | None = None                                 # typo / paraphrase in the current request
    user_seen: bool = False                                  # a request from the scripted user is in view
    tasks: list[tuple[str, dict]] = field(default_factory=list)  # calls another agent asked it to make
    done_before_task: set[str] = field(default_factory=set)  # what was done when the task arrived
    delegated: bool = False                                  # it works for another agent (a handoff or a task)

    def judge(self, r: "Result", verdict: str, content: Any = None) -> None:
        """Take a verdict on one result into the belief: an accepted result is the step's
        output (an error or a bad one stays in context as an uncorrected error); a rejected
        one counts as a retry of the step. Used both live and when reading history back."""
        if verdict == "reject":
            self.retries[r.step] = self.retries.get(r.step, 0) + 1
            return
        if r.mode == "repeated_call":
            return
        self.known[r.step] = r.content if content is None else content
        self.done.add(r.step)
        if r.status != "ok":
            self.broken.add(r.step)
        else:
            self.broken.discard(r.step)
        if r.mode not in GOOD_MODES or r.status != "ok" or r.artifact.get("corrupted"):
            self.uncorrected.add(r.step)
        else:
            self.uncorrected.discard(r.step)


def classify(msg: ToolMessage) -> tuple[Any, str]:
    raw = msg.content if isinstance(msg.content, str) else json.dumps(msg.content, default=str)
    if getattr(msg, "status", "success") == "error":
        return None, "error"
    try:
        content = json.loads(raw)
    except (ValueError, TypeError):
        return None, "malformed"
    if isinstance(content, dict) and "error" in content:
        return content, "error"
    return content, "ok"


def user_turn(msg: HumanMessage) -> int | None:
    """The turn of a message the scripted user sent, or None for anyone else's."""
    t = (msg.additional_kwargs or {}).get(ANN, {}).get("turn")
    return t if isinstance(t, int) else None


def is_handoff_result(msg: ToolMessage) -> bool:
    meta = getattr(msg, "response_metadata", None) or {}
    return HANDOFF_METADATA in meta or text_of(msg).startswith("Successfully transferred to")


class HistoryReader:
    """Rebuilds the belief message by message, resuming from the longest prefix it has seen.

    Graphs pass the whole history on every call; re-reading it each time would make
    a long session quadratic, so the reader keeps its state and only reads what is new.
    """

    def __init__(self, oracle: Oracle, artifacts=None):
        self.oracle = oracle
        self.artifacts = artifacts  # () -> {result text: artifact}, for tools called directly
        self._keys: list = []
        self._reset()

    def _reset(self) -> None:
        self.b = Belief()
        self.pending: dict[str, tuple[str | None, str, dict]] = {}
        self.results: dict[str, Result] = {}
        self._keys = []

    @staticmethod
    def _key(m):
        return m.id if m.id is not None else (m.type, str(m.content))

    def read(self, messages) -> Belief:
        keys = self._keys
        n = len(keys)
        if len(messages) < n or any(self._key(messages[i]) != keys[i] for i in range(n - 1, -1, -1)):
            self._reset()
            n = 0
        for m in messages[n:]:
            self._feed(m)
            self._keys.append(self._key(m))
        b = self.b
        return Belief(turn=b.turn, known=dict(b.known), done=set(b.done), retries=dict(b.retries),
                      unjudged=list(b.unjudged), uncorrected=set(b.uncorrected), broken=set(b.broken),
                      last_call=b.last_call, last_call_step=b.last_call_step,
                      asked_clarification=b.asked_clarification, withheld=set(b.withheld), conflict=dict(b.conflict),
                      override=dict(b.override), noise=b.noise, user_seen=b.user_seen, tasks=list(b.tasks),
                      done_before_task=set(b.done_before_task), delegated=b.delegated)

    def _feed(self, m) -> None:
        if isinstance(m, HumanMessage):
            self._human(m)
        elif isinstance(m, AIMessage):
            self._ai(m)
        elif isinstance(m, ToolMessage):
            self._tool(m)
        elif isinstance(m, SystemMessage):
            self._facts(text_of(m))

    def _facts(self, text: str) -> None:
        """Facts stated in text (a report, a summary) count as known and done."""
        for step, value in read_facts(text, self.oracle.steps).items():
            self.b.known[step] = value
            self.b.done.add(step)
            self.b.broken.discard(step)

    def _transcript(self, text: str) -> None:
        """Tool results in a transcript it is asked to read, taken for the steps their tools serve."""
        oracle, b = self.oracle, self.b
        for tool, _, result in read_transcript(text):
            step = next((x for x in oracle.order if x not in b.done and oracle.steps[x].tool == tool), None)
            if step is not None and isinstance(result, dict) and "error" not in result:
                b.known[step] = result
                b.done.add(step)

    def _human(self, m: HumanMessage) -> None:
        b = self.b
        turn = user_turn(m)
        b.unjudged = []
        b.asked_clarification = False
        if turn is None:  # feedback or a task from inside the graph, not a new request
            text = text_of(m)
            self._facts(text)
            self._transcript(text)
            b.tasks = read_tasks(text)
            b.done_before_task = set(b.done)
            b.delegated = b.delegated or bool(b.tasks)
            return
        ann = (m.additional_kwargs or {}).get(ANN, {})
        b.turn, b.user_seen, b.tasks = turn, True, []
        b.withheld.update(ann.get("withheld", []))
        b.conflict.update(ann.get("conflict", {}))
        b.override.update(ann.get("override", {}))
        b.noise = ann.get("noise")
        for k in ann.get("provides", []):
            b.withheld.discard(k)
            b.conflict.pop(k, None)

    def _ai(self, m: AIMessage) -> None:
        b, oracle = self.b, self.oracle
        ann = (m.additional_kwargs or {}).get(ANN, {})
        for cid, verdict in ann.get("verdicts", {}).items():
            r = self.results.get(cid)
            if r is not None and r.step is not None:
                b.judge(r, verdict)
        b.unjudged = []
        b.asked_clarification = bool(ann.get("clarify"))
        if "summary" in ann:  # a summary stands in for the messages it replaced
            b.known.update(ann["summary"])
            b.done.update(ann.get("summary_done", []))
        elif not ann or ann.get("facts"):  # another agent's report, or its own
            self._facts(text_of(m))
        for cid, content in ann.get("adapted", {}).items():  # results it read despite drift
            if cid in self.results and self.results[cid].step:
                b.known[self.results[cid].step] = content
        if ann.get("skipped"):  # it believes it did the step it skipped
            b.done.add(ann["skipped"])
            b.uncorrected.add(ann["skipped"])
        calls = ann.get("calls", {})
        for tc in m.tool_calls or []:
            info = calls.get(tc["id"])
            if info is None:  # a message this model did not write: attribute by tool name
                step = next((s for s in oracle.order if s not in b.done
                             and oracle.steps[s].tool == tc["name"]), None)
                info = {"step": step, "mode": "correct"}
            self.pending[tc["id"]] = (info["step"], info["mode"], tc)
            b.last_call, b.last_call_step = tc, info["step"]

    def _tool(self, m: ToolMessage) -> None:
        step, mode, _ = self.pending.get(m.tool_call_id, (None, "unknown", None))
        if is_handoff_result(m):
            self.b.delegated = True
        content, status = classify(m)
        art = m.artifact if isinstance(getattr(m, "artifact", None), dict) else {}
        if not art and self.artifacts is not None and isinstance(m.content, str):
            art = (self.artifacts() or {}).get(m.content, {})  # a tool called directly: flags by content
        if step is None:  # another agent's answer, returned as a tool's result
            self._facts(text_of(m))
        r = Result(m.tool_call_id, step, mode, content, m.content if isinstance(m.content, str) else "",
                   status, art)
        self.results[m.tool_call_id] = r
        self.b.unjudged.append(r)
