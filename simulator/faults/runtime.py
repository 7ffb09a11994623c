"""The faults of one trial: which apply at each boundary, when they fire, and what they did.

Every firing is a `fault` event with the fault's id. Whatever a fault needs to know about
its own kind comes from its definition (base.FaultDef), never from its name.
"""
from __future__ import annotations

from ..registry import lookup
from .base import Call, FaultDef, HistoryCall, TurnCall, declared_flags
from .triggers import OutageProcess, Trigger, TriggerState


class Active:
    """One configured fault inside one trial."""

    def __init__(self, spec: dict, session):
        self.spec, self.id, self.target = spec, spec["id"], spec["target"]
        self.d: FaultDef = lookup("fault", spec["name"]).obj
        self.params = self.d.params.model_validate(spec["params"])
        trig = Trigger.model_validate(spec["trigger"])
        outage = None
        if trig.mtbf_s is not None:
            # environment-level: the same outages for every session sharing the clock
            outs = session.shared.setdefault("outages", {})
            outage = outs.setdefault(self.id, OutageProcess(session.seed, self.id, trig.mtbf_s, trig.mttr_s))
        self.state = TriggerState(trig, self.d.default_rate,
                                  (session.seed, session.scenario_key, session.replicate, "fault", self.id), outage)
        sc = session.scenario
        writers = [n for n, t in sc.tools.items() if t.effect.writes]
        self.context = {"first_writer": writers[0] if writers else None,
                        "tool_args": {n: {a: spec.type for a, spec in t.args.items()} for n, t in sc.tools.items()}}

    def applies(self, kind: str, name: str, writes: bool = False) -> bool:
        if kind == "model":  # target "model" hits every role; "model:fallback" only that role
            return self.target in ("model", f"model:{name}")
        return kind == "tool" and (self.target in ("tools", name) or self.target == ("writes" if writes else "reads"))


class FaultRuntime:
    def __init__(self, specs: tuple[dict, ...], session):
        self.s = session
        self.active = [Active(f, session) for f in specs]
        self.fired: dict[str, int] = {}
        self.flags = declared_flags()

    def _fire(self, f: Active, where: str, **detail) -> None:
        f.state.commit()
        self.fired[f.id] = self.fired.get(f.id, 0) + 1
        self.s.trace.emit("fault", fault=f.id, name=f.d.name, boundary=where, **detail)

    def _progress(self) -> float:
        return self.s.tool_calls / max(1, len(self.s.scenario.golden_path))

    def _due(self, f: Active, hook, call: Call) -> bool:
        return hook is not None and f.applies(call.kind, call.name, call.writes) and \
            f.state.check(call.now, self.s.turn, self._progress())

    def before(self, call: Call) -> list[str]:
        hit = []
        for f in self.active:
            if self._due(f, f.d.before, call) and f.d.before(call, f.params, f):
                self._fire(f, call.kind, target=call.name,
                           call=self.s.tool_calls if call.kind == "tool" else None,
                           error=type(call.error).__name__ if call.error else None)
                hit.append(f.id)
                if call.error:
                    break
        return hit

    def after(self, call: Call) -> list[str]:
        hit = []
        for f in self.active:
            if not isinstance(call.result, (dict, list)):
                break  # already cut to broken text by an earlier fault: nothing left to rewrite
            if self._due(f, f.d.after, call) and f.d.after(call, f.params, f):
                self._fire(f, call.kind, target=call.name, call=self.s.tool_calls,
                           effect=",".join(g.name for g in self.flags if call.artifact.get(g.name)),
                           field=call.artifact.get("field"), was=call.artifact.get("was"),
                           now=call.artifact.get("now"))
                hit.append(f.id)
        return hit

    def model_call(self, context_tokens: int, role: str = "agent") -> float:
        """Model-boundary faults: returns extra latency, or raises after charging it."""
        if not any(f.target.startswith("model") for f in self.active):
            return 0.0
        call = Call("model", role, {"context_tokens": context_tokens}, self.s.clock.now(),
                    shared=self.s.shared, rng=self.s.stream("fault-values", "model", self.s.model_calls))
        hit = self.before(call)
        if call.error is not None:
            self.s.clock.charge(call.latency)
            self.s.model_calls += 1
            self.s.trace.emit("model_error", role=role, error=type(call.error).__name__,
                              message=str(call.error), faults=hit)
            raise call.error
        return call.latency

    def user_turn(self, k: int, text: str, literals, writes) -> tuple[str, dict]:
        t = TurnCall(k, text, literals, writes, rng=self.s.stream("fault-values", "turn", k))
        for f in self.active:
            if f.d.turn and f.state.check(self.s.clock.now(), k, self._progress()) and f.d.turn(t, f.params, f):
                self._fire(f, "turn", turn=k, annotation=t.ann)
        return t.text, t.ann

    def between_turns(self, k: int, history: list) -> list:
        h = HistoryCall(k, history)
        for f in self.active:
            if f.d.history and f.state.check(self.s.clock.now(), k, self._progress()):
                before = len(h.messages)
                if f.d.history(h, f.params, f):
                    self._fire(f, "history", turn=k, kept=len(h.messages), lost=before - len(h.messages))
        return h.messages

    def end(self, action: str) -> float:
        """A design action (e.g. refresh_credentials) ends the faults it ends; returns the
        virtual time the longest of them takes to recover."""
        took = 0.0
        for f in self.active:
            if f.d.ends == action and f.state.on:
                f.state.reset()
                if f.d.recovery_param:
                    took = max(took, getattr(f.params, f.d.recovery_param))
        return took

    def unfired(self) -> list[str]:
        return [f.id for f in self.active if f.id not in self.fired]
