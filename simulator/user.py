"""The scripted user: delivers the scenario's turns with think time, reacts to replies
(answers a clarifying question, repeats a request, gives up), and keeps what it saw.

It is a generator the engine drives: it yields a number of virtual seconds to wait, or
a message to send, and is sent back the messages the graph produced for that message.
Faults at the user boundary (ambiguous, conflicting or changed requests) and at the
memory kept between turns act here, as they would on a real user's session.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generator, Union

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langgraph.graph.message import REMOVE_ALL_MESSAGES, add_messages

from .judge import fact_in
from .oracle import ANN
from .records import Check
from .rng import lognormal
from .world import MISSING, REF, resolve, run_golden


@dataclass
class Conversation:
    """What the engine carries between turns: the history, and the checkpointer thread
    (a new one once memory was lost, so a checkpointed graph loses its state too)."""
    thread: str
    history: list = field(default_factory=list)

    def merge(self, produced: list) -> list:
        """Take in what a turn produced, by message id, as the graph's own message reducer
        does: a message already held is replaced, not repeated (an entrypoint that returns
        the whole history, a subgraph's full state, a middleware rewriting the model's
        message), and removals apply. Returns the turn's new messages, in order."""
        held = {m.id for m in self.history}
        produced = [m for m in produced if not isinstance(m, RemoveMessage)
                    or m.id in held or m.id == REMOVE_ALL_MESSAGES]  # what it never gave us is gone already
        if not produced:
            return []
        self.history = add_messages(self.history, produced)
        new, seen = [], set()
        for m in produced:
            if not isinstance(m, RemoveMessage) and m.id not in held and m.id not in seen:
                seen.add(m.id)
                new.append(m)
        return new


def user_turn(message, session) -> bool:
    """Whether a message is one the scripted user sent. A HumanMessage a graph wrote itself
    (a critic's feedback, a planner's task, a summary) is not a turn of the user's."""
    return isinstance(message, HumanMessage) and message.id in session.user_ids


Action = Union[float, HumanMessage]  # seconds to wait, or a message to send


def asks(reply: AIMessage) -> bool:
    """Whether the agent's reply asks the user something instead of answering."""
    if (reply.additional_kwargs or {}).get(ANN, {}).get("clarify"):
        return True
    return reply.content.rstrip().endswith("?")


def final_reply(messages: list) -> AIMessage | None:
    return next((m for m in reversed(messages) if isinstance(m, AIMessage)
                 and not m.tool_calls and isinstance(m.content, str)), None)


def turn_literals(sc) -> list[tuple[list, list]]:
    """Per turn: the literal values its request supplies, and literals of writes from it on."""
    out = []
    for k, turn in enumerate(sc.turns):
        lits = [(sid, a, v) for sid in turn.steps for a, v in next(
            g for g in sc.golden_path if g.id == sid).args.items() if not REF.search(str(v))]
        later = {sid for t in sc.turns[k:] for sid in t.steps}
        writes = [(g.id, a, v) for g in sc.golden_path if g.id in later and sc.tools[g.tool].effect.writes
                  for a, v in g.args.items() if not REF.search(str(v))]
        out.append((lits, writes))
    return out


class ScriptedUser:
    def __init__(self, session, conversation: Conversation):
        self.s, self.conv = session, conversation
        self.rng = session.stream("user")
        self.answers: list[str] = []
        self.checks: list[Check] = []
        self.turns_done = 0
        self.overrides: dict = {}

    def script(self) -> Generator[Action, list, None]:
        s, sc = self.s, self.s.scenario
        literals = turn_literals(sc)
        for k, turn in enumerate(sc.turns):
            s.turn = k
            if k > 0:
                think = turn.think_time or sc.user_think_time
                yield lognormal(self.rng, think.median_s, think.p95)
                kept = s.fault_runtime.between_turns(k, self.conv.history)
                if kept is not self.conv.history:
                    self.conv.history = list(kept)
                    self.conv.thread = f"{s.trial_id}-after-{k}"
            missing = yield from self._turn(k, turn, literals[k])
            self.turns_done = k + 1
            if missing and turn.if_answer_missing == "end":
                s.trace.emit("user_end", turn=k, reason="the reply lacked what the user needed")
                break
        if self.overrides:  # the user changed the goal: the task is judged against the changed one
            s.oracle.golden = run_golden(sc, self.overrides)

    def _turn(self, k: int, turn, literals) -> Generator[Action, list, list]:
        """One request, with its clarification and repeat; returns the facts still missing."""
        s = self.s
        base_text = resolve(turn.user, s.oracle.golden.outputs)
        faulted, fault_ann = s.fault_runtime.user_turn(k, base_text, *literals)
        self.overrides.update(fault_ann.get("override", {}))
        unclear = list(fault_ann.get("withheld", [])) + list(fault_ann.get("conflict", {}))
        attempts = 2 if turn.if_answer_missing == "repeat" else 1
        attempt, clarified = 0, 0
        while True:
            if clarified:
                text = base_text + " To be clear: that's everything you need."
                extra = {"provides": unclear}
            else:
                text = faulted if attempt == 0 else "That isn't what I asked for. " + faulted
                extra = fault_ann
            msg = HumanMessage(text, id=f"turn-{k}-{attempt}-{clarified}",
                               additional_kwargs={ANN: {"turn": k, **extra}})
            s.user_ids.add(msg.id)
            self.conv.history.append(msg)
            s.trace.emit("user_turn", turn=k, attempt=attempt, text=text, clarifying=bool(clarified) or None)
            produced = self.conv.merge((yield msg))
            reply = final_reply(produced)
            answer = reply.content if reply else ""
            if unclear and not clarified and reply is not None and asks(reply):
                clarified = 1
                s.trace.emit("clarification_asked", turn=k, question=answer, about=unclear)
                continue
            facts = [resolve(f, s.oracle.golden.outputs) for f in turn.answer_must_contain]
            missing = [f for f in facts if f is not MISSING and not fact_in(f, answer)]
            s.trace.emit("turn_end", turn=k, attempt=attempt, answer=answer, missing=missing or None)
            attempt += 1
            if not missing or attempt >= attempts:
                break
        self.answers.append(answer)
        for f in facts:
            self.checks.append(Check(name=f"turn[{k}].answer contains", passed=fact_in(f, answer), expected=f))
        return missing
