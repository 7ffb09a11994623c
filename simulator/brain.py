"""The simulated model's decisions, driven by a profile and the scenario's oracle.

At each call it reads its belief back from the messages (see oracle.py), judges
the tool results it has not yet seen, and then either makes the correct next call
or commits one error mode, with a probability set by the profile's hazard (see
profiles.py for the formula). It states a confidence, charges virtual latency and
tokens, and records one `model_call` event per decision.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage

from .faults.base import declared_flags
from .faults.errors import ContextLengthExceeded
from .faults.triggers import uniform
from .oracle import ANN, GOOD_MODES, Belief, HistoryReader
from .rng import lognormal
from .tokens import count_text
from .values import fabricate, values_under
from .world import MISSING, REF, resolve

NOTICE_RATES = {"error": "notice_error", "malformed": "notice_malformed", "silent": "notice_silent_wrong"}


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _snake(obj: Any) -> Any:
    """Undo a camelCase rename (what a model that notices schema drift reads through)."""
    if isinstance(obj, dict):
        return {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): _snake(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_snake(v) for v in obj]
    return obj


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


class Brain:
    """Decision logic for one trial; one instance per role so each has its own stream."""

    def __init__(self, session, role: str):
        self.s, self.role = session, role
        self.rng = session.stream("model", role)
        self.calls = 0
        self.reader = HistoryReader(session.oracle)
        self._schema_tokens: dict[tuple, int] = {}
        # what the faults can leave on a result, from their declarations
        self.flags = declared_flags()
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
                    content = adapted[r.call_id] = _snake(r.content)  # reads through the renamed fields
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
    def hazard(self, context_tokens: int, n_uncorrected: int, noise: str | None = None) -> float:
        p, s = self.s.profile, self.s
        x = _logit(p.base_hazard) + s.difficulty + s.scenario.difficulty
        if context_tokens > p.effective_context:
            x += p.context_rot * math.log2(context_tokens / p.effective_context)
        x += p.self_conditioning * n_uncorrected
        if noise:
            x += p.ambiguity_penalty
        return _sigmoid(x)

    # -- building calls --------------------------------------------------
    def _remaining(self, steps: list[str], b: Belief) -> list[str]:
        """The request's steps still to do, after the furthest one it can see done: with a
        trimmed history it carries on from the latest result in view, as a real model would."""
        pos = self.s.oracle.position
        last = max((pos[x] for x in steps if x in b.done), default=-1)
        return [x for x in steps if x not in b.done and pos[x] > last]

    def _unclear(self, step_id: str, b: Belief) -> list[str]:
        """Literal arguments of a step that the user withheld or contradicted."""
        step = self.s.oracle.steps[step_id]
        keys = [f"{step_id}.{a}" for a, v in step.args.items() if not REF.search(str(v))]
        return [k for k in keys if k in b.withheld or k in b.conflict]

    def _forgotten_source(self, step_id: str, b: Belief) -> str | None:
        """The earliest forgotten read this step depends on (re-reading is safe; re-writing is not)."""
        oracle, seen = self.s.oracle, set()
        todo, found = [step_id], None
        while todo:
            sid = todo.pop()
            for v in oracle.steps[sid].args.values():
                for ref in sorted({m.group(1) for m in REF.finditer(str(v))}):
                    if ref in b.known or ref in seen or ref not in oracle.steps:
                        continue
                    seen.add(ref)
                    if self.s.scenario.tools[oracle.steps[ref].tool].effect.writes:
                        return None
                    found = ref
                    todo.append(ref)
        return found

    def _args_for(self, step_id: str, b: Belief) -> tuple[dict, list[str], list[str]]:
        step = self.s.oracle.steps[step_id]
        args = resolve(step.args, b.known)
        golden = self.s.oracle.golden.args.get(step_id, {})
        filled, guessed = [], []
        for k, v in list(args.items()):
            key = f"{step_id}.{k}"
            if key in b.override:
                if uniform(self.s.seed, self.s.scenario_key, self.s.replicate, "goal", key) < self.s.profile.track_goal_change:
                    args[k] = b.override[key]
                else:
                    self.s.trace.emit("goal_change_missed", role=self.role, step=step_id, arg=k)
            elif key in b.withheld:
                args[k] = fabricate(v, self.rng)
                guessed.append(key)
            elif key in b.conflict:
                args[k] = self.rng.choice(b.conflict[key])
                guessed.append(key)
            elif v is MISSING:
                args[k] = fabricate(golden.get(k, "unknown"), self.rng)
                src = REF.search(str(step.args[k]))
                filled.append(f"{k}<-{src.group(1)}" if src else k)
        return args, filled, guessed

    def _stale(self, step_id: str, args: dict, b: Belief) -> tuple[dict, str | None]:
        step = self.s.oracle.steps[step_id]
        ref_args = [k for k, v in step.args.items() if isinstance(v, str) and REF.search(v)]
        for k in self.rng.sample(ref_args, len(ref_args)):
            m = REF.search(step.args[k])
            key = (m.group(2).rsplit(".", 1)[-1] or k) if m.group(2) else k
            pool = values_under(b.known, key)
            pool = sorted({json.dumps(v) for v in pool if v != args[k]})
            if pool:
                args = dict(args)
                args[k] = json.loads(self.rng.choice(pool))
                return args, k
        return args, None

    def _tool_args(self, tool: dict, b: Belief) -> dict:
        out = {}
        for name in tool["function"].get("parameters", {}).get("required", []):
            pool = values_under(b.known, name)
            out[name] = self.rng.choice(pool) if pool else fabricate("X-100", self.rng)
        return out

    def _answer(self, b: Belief, final_turn: bool) -> str:
        sc = self.s.scenario
        facts = list(sc.turns[b.turn].answer_must_contain)
        if final_turn:
            facts += list(sc.success.answer_must_contain)
        said = []
        for f in facts:
            v = resolve(f, b.known)
            if v is MISSING:
                v = fabricate(resolve(f, self.s.oracle.golden.outputs), self.rng)
            said.append(str(v))
        body = "; ".join(dict.fromkeys(said))
        return f"Done. {body}." if body else "Done."

    # -- one call --------------------------------------------------------
    def respond(self, messages, tools: list[dict]) -> AIMessage:
        s, p = self.s, self.s.profile
        b = self.reader.read(messages)
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
        turn = sc.turns[min(b.turn, len(sc.turns) - 1)]
        remaining = self._remaining(turn.steps, b)
        bound = {t["function"]["name"]: t for t in tools}
        p_err = self.hazard(ctx, len(b.uncorrected), b.noise)
        d = Decision(ann={"verdicts": verdicts, "calls": {}}, step=remaining[0] if remaining else None)
        if adapted:
            d.ann["adapted"] = adapted
        self._choose(d, b, bound, p_err, obey)
        self._adjust(d, b, bound, remaining)
        self._compose(d, b, bound, final_turn=b.turn >= len(sc.turns) - 1)
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
        elif d.step is None or self.s.oracle.steps[d.step].tool not in bound:
            d.mode = "finish"
        elif self.rng.random() < p_err:
            modes = list(p.error_modes)
            d.mode = self.rng.choices(modes, weights=[p.error_modes[m] for m in modes])[0]
        else:
            d.mode = "correct"

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
        if d.mode == "correct":
            src = self._forgotten_source(d.step, b)
            if src and self.s.oracle.steps[src].tool in bound and b.retries.get(src, 0) <= p.max_retries_per_step \
                    and self.rng.random() < p.refetch_missing:
                d.step, d.mode = src, "refetch"

    def _compose(self, d: "Decision", b: Belief, bound: dict, final_turn: bool) -> None:
        """The message the decision makes: a tool call, a question, or a final answer."""
        s, p = self.s, self.s.profile
        if d.mode in ("correct", "refetch", "fabricated_arg", "stale_arg", "skipped_step"):
            unclear = self._unclear(d.step, b)
            if unclear and not b.asked_clarification and self.rng.random() < p.clarify_when_ambiguous:
                d.mode = "clarify"
                d.ann["clarify"] = unclear
                what = ", ".join(k.split(".", 1)[1].replace("_", " ") for k in unclear)
                d.content = f"Before I go ahead, could you confirm the {what}?"
            else:
                args, d.filled, d.guessed = self._args_for(d.step, b)
                if d.mode == "stale_arg":
                    args, changed = self._stale(d.step, args, b)
                    if changed is None:
                        d.mode = "fabricated_arg"
                if d.mode == "fabricated_arg" and args:
                    k = self.rng.choice(sorted(args))
                    args[k] = fabricate(args[k], self.rng)
                if d.guessed and d.mode in GOOD_MODES:
                    d.mode = "guessed"
                d.call = {"name": s.oracle.steps[d.step].tool, "args": args}
        elif d.mode == "wrong_tool":
            correct = s.oracle.steps[d.step].tool
            name = self.rng.choice(sorted(n for n in bound if n != correct))
            d.call = {"name": name, "args": self._tool_args(bound[name], b)}
        elif d.mode == "repeated_call":
            d.call = {"name": b.last_call["name"], "args": dict(b.last_call["args"])}
            d.step = b.last_call_step
        if d.call is not None:
            self.calls += 1
            cid = f"call_{s.trial_id[:8]}_{self.role}_{self.calls}"
            d.call = {**d.call, "id": cid, "type": "tool_call"}
            d.ann["calls"][cid] = {"step": d.step, "mode": d.mode}
        elif d.mode == "give_up":
            d.content = "I'm sorry, I wasn't able to complete this request."
        elif d.mode != "clarify":
            d.content = self._answer(b, final_turn)

    def _emit(self, d: "Decision", b: Belief, ctx: int, p_err: float, extra_latency: float) -> AIMessage:
        """State a confidence, charge latency and tokens, record the decision, write the message."""
        s, p = self.s, self.s.profile
        d.ann["mode"] = d.mode
        conf = _sigmoid(_logit(1 - p_err) + p.overconfidence + self.rng.gauss(0, 0.5))
        d.ann["confidence"] = round(conf, 4)
        call = d.call
        out_tokens = count_text(d.content + (json.dumps(call["args"]) if call else "")) + 8 + p.reasoning_tokens
        lat = self._latency(ctx, out_tokens) + extra_latency
        s.charge_model(lat, ctx, out_tokens)
        s.trace.emit("model_call", role=self.role, turn=b.turn, step=d.step, mode=d.mode,
                     call_id=call["id"] if call else None,
                     tool=call["name"] if call else None, args=call["args"] if call else None,
                     p_error=round(p_err, 6), confidence=round(conf, 4), context_tokens=ctx,
                     output_tokens=out_tokens, latency_s=round(lat, 6), uncorrected=len(b.uncorrected),
                     filled_missing=d.filled or None, guessed=d.guessed or None, skipped=d.ann.get("skipped"),
                     clarify=d.ann.get("clarify"), verdicts=d.ann["verdicts"] or None)
        return self._message(d.content, call, d.ann, ctx, out_tokens, conf)

    def _latency(self, ctx: int, out_tokens: int) -> float:
        p = self.s.profile
        return (lognormal(self.rng, p.latency.first_token_median_s, p.latency.first_token_p95_s)
                + out_tokens * p.latency.per_output_token_s + ctx / 1000 * p.latency.per_1k_input_tokens_s)

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
        text = "Summary of the work so far. " + " ".join(
            f"[{k}] {json.dumps(v, sort_keys=True, default=str)[:300]}" for k, v in keep.items())
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
        steps = self._remaining(turn.steps, b)
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
