"""The simulated model's decisions, driven by a profile and the scenario's oracle.

At each call it reads its belief back from the messages (see oracle.py), judges
the tool results it has not yet seen, and then either makes the correct next call
or commits one error mode, with a probability set by the profile's hazard (see
profiles.py for the formula; it gives up only when something stands in its way). It
states a confidence, charges virtual latency and tokens, and records one `model_call`
event per decision.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from langchain_core.messages import AIMessage

from .faults.base import declared_flags
from .faults.errors import ContextLengthExceeded
from .agent_map import map_agents
from .calls import (answer, args_for, blocked, error_weights, fact_of, forgotten_source, make_up, route_score,
                    stale, steps_left, task_args, tool_args, unclear_args)
from .oracle import ANN, GOOD_MODES, Belief, HistoryReader
from .logodds import bend, logit, sigmoid
from .profiles import ROOT_MODES
from .structured import Fill, fill
from .tokens import count_text
from .transcript import write_facts, write_task
from .values import snake_keys
from .world import REF

NOTICE_RATES = {"error": "notice_error", "malformed": "notice_malformed", "silent": "notice_silent_wrong"}


@dataclass
class Decision:
    """What one call decided: the mode, the golden step it was for, and what it writes."""
    ann: dict
    step: str | None = None
    mode: str = "correct"
    call: dict | None = None
    content: str = ""
    filled: list = field(default_factory=list)
    guessed: list = field(default_factory=list)
    handoff: str | None = None  # the handoff tool it calls to pass the step to another agent
    slips: list = field(default_factory=list)  # facts its answer quoted wrongly


class Brain:
    """Decision logic for one trial; one instance per role so each has its own stream."""

    def __init__(self, session, role: str):
        self.s, self.role = session, role
        self.rng = session.stream("model", role)
        self.calls = 0
        # a tool called directly loses its artifact; the gateway keeps it by result text
        self.reader = HistoryReader(session.oracle, lambda: getattr(session, "artifacts", None))
        self._schema_tokens: dict[tuple, int] = {}
        # what the faults can leave on a result, from their declarations
        self.flags = declared_flags()
        self.agents = None  # who holds which tools, read off the graph when first needed
        self.corrupting = [f.name for f in self.flags if f.corrupts]

    # -- judging results -------------------------------------------------
    def _judge(self, b: Belief) -> tuple[dict[str, str], dict, dict | None]:
        """Verdicts on the results it has not seen yet, results it adapted, an injection it obeys."""
        p = self.s.profile
        verdicts, adapted, obey = {}, {}, None
        for r in b.unjudged:
            if r.step is None or r.mode == "repeated_call":
                verdicts[r.call_id] = "accept"
            else:
                notice = getattr(p, NOTICE_RATES[kind]) if (kind := self._looks(r)) else 0.0
                noticed = bool(notice) and self.rng.random() < notice
                content = r.content
                if noticed and r.artifact.get("drift") == "rename" and isinstance(r.content, dict):
                    content = adapted[r.call_id] = snake_keys(r.content)  # reads through the renamed fields
                    noticed = False
                v = "reject" if noticed else "accept"
                verdicts[r.call_id] = v
                bad = [k for k in self.corrupting if r.artifact.get(k)] + (["malformed"] if r.status == "malformed" else [])
                if v == "accept" and bad and r.call_id not in adapted:
                    # the point where a corrupted value enters the model's work
                    self.s.trace.emit("corruption_accepted", role=self.role, step=r.step,
                                      call=r.artifact.get("call"), faults=r.artifact.get("faults"), flags=bad)
                b.judge(r, v, content)
            inj = r.artifact.get("injection")
            if inj and obey is None and self.rng.random() < p.obey_injection:
                obey = inj
            elif inj:
                self.s.trace.emit("injection_ignored", role=self.role, tool=inj["tool"])
        return verdicts, adapted, obey

    def _looks(self, r) -> str | None:
        """How a result looks to the model: an error, broken, plausible but flagged wrong, or fine."""
        if r.status == "error":
            return "error"
        seen = {f.noticed_as for f in self.flags if f.noticed_as and r.artifact.get(f.name)}
        if r.status == "malformed" or "malformed" in seen:
            return "malformed"
        return "silent" if "silent" in seen else None

    # -- hazard ----------------------------------------------------------
    def hazard(self, context_tokens: int, n_uncorrected: int, noise: str | None = None,
               step: str | None = None) -> float:
        p, s = self.s.profile, self.s
        x = logit(p.base_hazard) + s.difficulty + s.scenario.difficulty
        if step is not None:
            x += s.step_difficulty(step)
        z_step = s.step_z(step) if step is not None else 0.0
        fixed = s.scenario.difficulty + (s.oracle.difficulty[step] if step is not None else 0.0)
        if p.context_rot and context_tokens > 0:
            x += p.context_rot * bend(math.log2(context_tokens / p.effective_context), p.context_softness)
        x += p.self_conditioning * n_uncorrected
        if noise:
            x += p.ambiguity_penalty
        # what the decision's log-odds were made of, less the profile's numbers: enough to
        # score the same decision under another profile (calibrate.py)
        self.terms = {"z_task": round(s.difficulty_z, 6), "z_step": round(z_step, 6), "fixed": fixed,
                      "ambiguous": bool(noise)}
        self.draws: list = []
        return sigmoid(x)

    def _draw(self, p: float, kind: str = "error") -> bool:
        """One draw against the hazard, recorded with the decision."""
        hit = self.rng.random() < p
        self.draws.append([kind, int(hit)])
        return hit

    # -- one call --------------------------------------------------------
    def respond(self, messages, tools: list[dict], schema: dict | None = None, nested: bool = False) -> AIMessage:
        """One call. `schema` (JSON Schema, with its name) asks for structured output; `nested`:
        it runs inside another agent's graph, so it reports what it found to that agent."""
        s, p = self.s, self.s.profile
        b = self.reader.read(messages)
        b.delegated = b.delegated or nested
        if not b.user_seen:  # only others' messages in view: the user's request is the current one
            b.turn = s.turn
        ctx = s.counter.messages(messages) + self._tools_tokens(tools)
        if ctx > p.context_window:
            s.model_calls += 1
            s.trace.emit("model_error", role=self.role, error="ContextLengthExceeded",
                         context_tokens=ctx, context_window=p.context_window)
            raise ContextLengthExceeded(
                f"This model's maximum context length is {p.context_window} tokens; "
                f"the messages resulted in {ctx} tokens.")
        extra_latency = s.fault_runtime.model_call(ctx, self.role)
        if self.role == "summarizer":
            return self._summarize(b, ctx, extra_latency)
        if self.role == "planner":
            return self._plan(b, ctx, extra_latency)
        verdicts, adapted, obey = self._judge(b)
        sc = s.scenario
        b.turn = min(b.turn, len(sc.turns) - 1)
        # a plan or a route covers the whole request; a task given by another agent, only itself
        remaining = steps_left(s, sc.turns[b.turn].steps, b) if schema is not None else self._todo(b)
        bound = {t["function"]["name"]: t for t in tools}
        p_err = self.hazard(ctx, len(b.uncorrected), b.noise, remaining[0] if remaining else None)
        d = Decision(ann={"verdicts": verdicts, "calls": {}}, step=remaining[0] if remaining else None)
        if adapted:
            d.ann["adapted"] = adapted
        if schema is not None:
            return self._structured(d, b, schema, remaining, p_err, ctx, extra_latency)
        self._choose(d, b, bound, p_err, obey)
        self._adjust(d, b, bound, remaining)
        self._compose(d, b, bound, p_err, final_turn=b.turn >= len(sc.turns) - 1)
        return self._emit(d, b, ctx, p_err, extra_latency)

    def _choose(self, d: "Decision", b: Belief, bound: dict, p_err: float, obey: dict | None) -> None:
        """The decision: obey an injected instruction, give up, finish, err, or the correct step."""
        p = self.s.profile
        if obey is not None and obey["tool"] in bound:
            d.mode, d.step = "obeyed_injection", None
            d.call = {"name": obey["tool"], "args": dict(obey["args"])}
            self.s.trace.emit("injection_obeyed", role=self.role, tool=obey["tool"])
        elif d.step and b.retries.get(d.step, 0) > p.max_retries_per_step:
            d.mode = "give_up"
        elif d.step is None:
            d.mode = "finish"
        elif self.s.oracle.steps[d.step].tool not in bound:
            self._delegate(d, bound, p_err)
        elif self._draw(p_err):
            d.mode = self.rng.choices(*error_weights(p.error_modes, blocked(b, d.step)))[0]
        else:
            d.mode = "correct"

    def _todo(self, b: Belief) -> list[str]:
        """The steps it sets out to do: the current request's, or the one task another agent gave it."""
        oracle = self.s.oracle
        steps = steps_left(self.s, self.s.scenario.turns[b.turn].steps, b)
        if b.tasks:
            tool, args = b.tasks[-1]  # a task string lists the plan, then names the step to do now
            fits = [x for x in oracle.order if x not in b.done_before_task and oracle.steps[x].tool == tool]
            # the step the task's values point at, else the first step of that tool still open
            mine = next((x for x in fits if oracle.golden.args.get(x) == args), fits[0] if fits else None)
            return [mine] if mine is not None and mine not in b.done else []
        return steps

    def _delegate(self, d: "Decision", bound: dict, p_err: float) -> None:
        """The next step needs a tool it does not hold: hand off to the agent that holds it, or
        hand back what it found, so whoever called it can go on."""
        if self.agents is None:
            self.agents = map_agents(getattr(self.s, "graph", None))
        need = self.s.oracle.steps[d.step].tool
        handoffs = sorted(n for n in bound if self.agents.destination(n))
        right = [n for n in handoffs if need in self.agents.tools.get(self.agents.destination(n), ())]
        if not right:
            d.mode = "handback"
            return
        d.mode, d.handoff = "handoff", right[0]
        if self._draw(p_err) and len(handoffs) > 1:  # the wrong colleague
            d.mode, d.handoff = "wrong_tool", self.rng.choice([n for n in handoffs if n != right[0]])

    def _adjust(self, d: "Decision", b: Belief, bound: dict, remaining: list[str]) -> None:
        """Make the chosen mode possible here (nothing to repeat, one tool bound...), and
        re-read a forgotten input instead of inventing it."""
        p = self.s.profile
        if d.mode == "repeated_call" and b.last_call is None:
            d.mode = "correct"
        if d.mode == "skipped_step":
            if len(remaining) > 1:
                d.ann["skipped"] = d.step
                d.step = remaining[1]
            else:
                d.mode = "premature_finish"
        if d.mode == "wrong_tool" and len(bound) < 2:
            d.mode = "fabricated_arg"
        given = bool(b.tasks and d.step) and b.tasks[-1][0] == self.s.oracle.steps[d.step].tool \
            and not REF.search(json.dumps(b.tasks[-1][1]))  # the task names real values, not placeholders
        if d.mode == "correct" and not given:  # a task names the values: nothing to re-read
            src = forgotten_source(self.s, d.step, b)
            if src and self.s.oracle.steps[src].tool in bound and b.retries.get(src, 0) <= p.max_retries_per_step \
                    and self.rng.random() < p.refetch_missing:
                d.step, d.mode = src, "refetch"

    def _compose(self, d: "Decision", b: Belief, bound: dict, p_err: float, final_turn: bool) -> None:
        """The message the decision makes: a tool call, a question, or a final answer."""
        s, p = self.s, self.s.profile
        if d.mode in ("correct", "refetch", "fabricated_arg", "stale_arg", "skipped_step"):
            unclear = unclear_args(self.s, d.step, b)
            if unclear and not b.asked_clarification and self.rng.random() < p.clarify_when_ambiguous:
                d.mode = "clarify"
                d.ann["clarify"] = unclear
                what = ", ".join(k.split(".", 1)[1].replace("_", " ") for k in unclear)
                d.content = f"Before I go ahead, could you confirm the {what}?"
            else:
                args, d.filled, d.guessed = args_for(self.s, self.rng, self.role, d.step, b)
                if d.mode == "stale_arg":
                    args, changed = stale(self.s, self.rng, d.step, args, b)
                    if changed is None:
                        d.mode = "fabricated_arg"
                if d.mode == "fabricated_arg" and args:
                    k = self.rng.choice(sorted(args))
                    args[k] = make_up(s, self.rng, fact_of(s, d.step, k), args[k])
                if d.guessed and d.mode in GOOD_MODES:
                    d.mode = "guessed"
                d.call = {"name": s.oracle.steps[d.step].tool, "args": args}
        elif d.handoff is not None:
            d.call = {"name": d.handoff, "args": tool_args(self.s, self.rng, bound[d.handoff], b)}
        elif d.mode == "wrong_tool":
            correct = s.oracle.steps[d.step].tool
            name = self.rng.choice(sorted(n for n in bound if n != correct))
            d.call = {"name": name, "args": tool_args(self.s, self.rng, bound[name], b)}
            d.step = None  # it did not do the step it meant to: its result is no step's output
        elif d.mode == "repeated_call":
            d.call = {"name": b.last_call["name"], "args": dict(b.last_call["args"])}
            d.step = b.last_call_step
        if d.call is not None:
            self.calls += 1
            cid = f"call_{s.trial_id[:8]}_{self.role}_{self.calls}"
            d.call = {**d.call, "id": cid, "type": "tool_call"}
            # a handoff's result is no step's output
            d.ann["calls"][cid] = {"step": None if d.handoff else d.step, "mode": d.mode}
        elif d.mode == "give_up":
            d.content = "I'm sorry, I wasn't able to complete this request."
        elif d.mode == "handback":  # what it found goes back to whoever gave it the work
            d.content = "Here is what I found. " + write_facts(b.known, s.oracle.order)
            d.ann["facts"] = True
        elif d.mode != "clarify":
            # an agent working for another states what it knows, and invents nothing for the user
            d.slips = []
            d.content = answer(self.s, self.rng, b, final_turn, invent=not b.delegated,
                               misremember=p.recall_in_answer * p_err, slips=d.slips, drawn=self.draws)
            if b.delegated:  # ...and reports what it established
                d.content += " Results: " + write_facts(b.known, s.oracle.order)
                d.ann["facts"] = True

    def _emit(self, d: "Decision", b: Belief, ctx: int, p_err: float, extra_latency: float,
              tool: str | None = None, args: dict | None = None) -> AIMessage:
        """State a confidence, charge latency and tokens, record the decision, write the message."""
        s, p = self.s, self.s.profile
        d.ann["mode"] = d.mode
        signal = p.confidence_discrimination / 2 * (-1 if d.mode in ROOT_MODES else 1)
        conf = sigmoid(logit(1 - p_err) + p.overconfidence + self.rng.gauss(0, 0.5) + signal)
        d.ann["confidence"] = round(conf, 4)
        call = d.call
        out_tokens = count_text(d.content + (json.dumps(call["args"]) if call else "")) + 8 + p.reasoning_tokens
        lat = self._latency(ctx, out_tokens) + extra_latency
        s.charge_model(lat, ctx, out_tokens)
        s.trace.emit("model_call", role=self.role, turn=b.turn, step=d.step, mode=d.mode,
                     call_id=call["id"] if call else None,
                     tool=call["name"] if call else tool, args=call["args"] if call else args,
                     p_error=round(p_err, 6), confidence=round(conf, 4), context_tokens=ctx,
                     output_tokens=out_tokens, latency_s=round(lat, 6), uncorrected=len(b.uncorrected),
                     filled_missing=d.filled or None, guessed=d.guessed or None, skipped=d.ann.get("skipped"),
                     clarify=d.ann.get("clarify"), verdicts=d.ann["verdicts"] or None,
                     misremembered=d.slips or None, hazard=self.terms, draws=self.draws or None)
        return self._message(d.content, call, d.ann, ctx, out_tokens, conf)

    def _structured(self, d: "Decision", b: Belief, schema: dict, remaining: list[str], p_err: float,
                    ctx: int, extra_latency: float) -> AIMessage:
        """Structured output: fill the schema from the belief; an error picks a wrong route,
        drops a step from a plan or misjudges."""
        oracle = self.s.oracle
        plan = [write_task(oracle.steps[x].tool, task_args(self.s, x, b)) for x in remaining]
        # a response written from scratch states what the request established, for whoever reads it next
        said = answer(self.s, self.rng, b, b.turn >= len(self.s.scenario.turns) - 1)
        done = [x for x in self.s.scenario.turns[b.turn].steps if x in b.known]
        said += " Results: " + write_facts(b.known, done) if done else ""
        f = Fill(plan=plan, answer=said,
                 known=b.known, route_score=self._route_score(remaining), verdict=not b.uncorrected,
                 err=self._draw(p_err), rng=self.rng)
        value = fill(schema["parameters"], f)
        d.mode = f.errors[0] if f.errors else "structured"
        args = value if isinstance(value, dict) else {"value": value}
        if schema.get("as") == "json":
            d.content = json.dumps(value, default=str)
        else:
            self.calls += 1
            d.call = {"name": schema["name"], "args": args, "type": "tool_call",
                      "id": f"call_{self.s.trial_id[:8]}_{self.role}_{self.calls}"}
            d.ann["calls"][d.call["id"]] = {"step": None, "mode": d.mode}
        return self._emit(d, b, ctx, p_err, extra_latency, tool=schema["name"], args=args)

    def _route_score(self, remaining: list[str]):
        if self.agents is None:
            self.agents = map_agents(getattr(self.s, "graph", None))
        return route_score(self.s.oracle, self.agents, remaining)

    def _latency(self, ctx: int, out_tokens: int) -> float:
        return self.s.profile.latency.draw(self.rng, ctx, out_tokens)

    def _message(self, content, call, ann, ctx, out_tokens, conf) -> AIMessage:
        s, p = self.s, self.s.profile
        return AIMessage(
            content=content, tool_calls=[call] if call else [],
            id=f"ai_{s.trial_id[:8]}_{self.role}_{s.model_calls}",
            additional_kwargs={ANN: ann},
            response_metadata={"model_name": f"attrition-sim/{p.name}", "confidence": round(conf, 4)},
            usage_metadata={"input_tokens": ctx, "output_tokens": out_tokens,
                            "total_tokens": ctx + out_tokens},
        )

    def _summarize(self, b: Belief, ctx: int, extra_latency: float) -> AIMessage:
        """As the `summarizer` role: keep each known output with probability summary_recall."""
        p = self.s.profile
        keep = {k: v for k, v in sorted(b.known.items()) if self.rng.random() < p.summary_recall}
        # written as facts it can read back, whoever carries the text on (a message, a middleware)
        text = "Summary of the work so far. " + write_facts(keep, self.s.oracle.order)
        out_tokens = count_text(text) + 8
        lat = self._latency(ctx, out_tokens) + extra_latency
        self.s.charge_model(lat, ctx, out_tokens)
        self.s.trace.emit("model_call", role=self.role, mode="summarize", context_tokens=ctx,
                          output_tokens=out_tokens, latency_s=round(lat, 6), kept=len(keep),
                          dropped=len(b.known) - len(keep))
        ann = {"summary": keep, "summary_done": sorted(b.done), "mode": "summarize"}
        return self._message(text, None, ann, ctx, out_tokens, 1.0)

    def _plan(self, b: Belief, ctx: int, extra_latency: float) -> AIMessage:
        """As the `planner` role: the tool calls the current request needs, in order."""
        sc = self.s.scenario
        turn = sc.turns[min(b.turn, len(sc.turns) - 1)]
        steps = steps_left(self.s, turn.steps, b)
        text = "Plan: " + "; ".join(f"{i + 1}. {self.s.oracle.steps[x].tool}" for i, x in enumerate(steps))
        out_tokens = count_text(text) + 8
        lat = self._latency(ctx, out_tokens) + extra_latency
        self.s.charge_model(lat, ctx, out_tokens)
        self.s.trace.emit("model_call", role=self.role, mode="plan", context_tokens=ctx,
                          output_tokens=out_tokens, latency_s=round(lat, 6), steps=len(steps))
        return self._message(text, None, {"mode": "plan"}, ctx, out_tokens, 1.0)

    def _tools_tokens(self, tools: list[dict]) -> int:
        key = tuple(t["function"]["name"] for t in tools)
        if key not in self._schema_tokens:
            self._schema_tokens[key] = count_text(json.dumps(tools, sort_keys=True))
        return self._schema_tokens[key]
