"""Fault injection: parsing fault settings, checking them against a scenario, and the
per-trial runtime that applies them at each boundary."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .catalogue import CATALOGUE, Call, FaultDef, TurnCall
from .errors import FaultError, is_transient
from .triggers import TRIGGER_KEYS, OutageProcess, Trigger, TriggerState

__all__ = ["CATALOGUE", "FaultConfigError", "FaultError", "FaultRuntime", "is_transient",
           "normalize_faults", "parse_fault_arg", "check_faults", "describe"]


class FaultConfigError(ValueError):
    """A fault setting that cannot work: unknown name, bad parameter, impossible trigger."""


def _split_list(v: str) -> list[str]:
    return [x for x in v.split("|") if x != ""]


def parse_fault_arg(text: str) -> dict:
    """`NAME[:key=value,...]` from the command line; lists use `|` (at_call=2|5),
    windows use `start-end` (windows=100-400|900-1000)."""
    name, _, rest = text.partition(":")
    out: dict[str, Any] = {"name": name.strip()}
    for item in filter(None, rest.split(",")):
        k, eq, v = item.partition("=")
        if not eq:
            raise FaultConfigError(f"--fault {text!r}: {item!r} is not of the form key=value")
        k, v = k.strip(), v.strip()
        if k in ("at_call", "at_turn"):
            out[k] = _split_list(v)
        elif k == "windows":
            try:
                out[k] = [[float(x) for x in w.split("-", 1)] for w in _split_list(v)]
            except ValueError:
                raise FaultConfigError(f"--fault {text!r}: windows must look like 100-400|900-1000") from None
        else:
            out[k] = v
    return out


def _errors(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or 'value'}: {err['msg']}" for err in e.errors())


def normalize_faults(raw: list, where: str = "faults") -> tuple[dict, ...]:
    """Validate fault settings and return them in canonical form:
    {name, id, target, params, trigger}. Raises FaultConfigError naming what is wrong."""
    out, seen, used = [], {}, set()
    for i, item in enumerate(raw or []):
        if isinstance(item, str):
            item = parse_fault_arg(item)
        if not isinstance(item, dict) or "name" not in item:
            raise FaultConfigError(f"{where}[{i}]: a fault needs a `name`")
        item = dict(item)
        if isinstance(item.get("params"), dict) and isinstance(item.get("trigger"), dict):
            item = {**{k: v for k, v in item.items() if k not in ("params", "trigger")},
                    **item["params"], **item["trigger"]}  # already canonical: validate again
        name = item.pop("name")
        if name not in CATALOGUE:
            raise FaultConfigError(f"{where}[{i}]: unknown fault {name!r}; known faults: "
                                   f"{', '.join(sorted(CATALOGUE))}")
        d = CATALOGUE[name]
        target = item.pop("target", None) or ("model" if d.boundaries == ("model",) else
                                               "turn" if d.boundaries == ("turn",) else
                                               "history" if d.boundaries == ("history",) else "tools")
        fid = item.pop("id", None)
        trig = {k: item.pop(k) for k in list(item) if k in TRIGGER_KEYS}
        trig.setdefault("pattern", d.default_pattern)
        try:
            params = d.params.model_validate(item).model_dump(mode="json")
        except ValidationError as e:
            known = ", ".join(sorted(set(d.params.model_fields) | TRIGGER_KEYS | {"target", "id"}))
            raise FaultConfigError(f"{where}[{i}] ({name}): {_errors(e)} (accepted keys: {known})") from None
        try:
            trigger = Trigger.model_validate(trig).model_dump(mode="json", exclude_defaults=True)
        except ValidationError as e:
            raise FaultConfigError(f"{where}[{i}] ({name}): impossible trigger: {_errors(e)}") from None
        if name == "outage" and not (trig.get("windows") or trig.get("mtbf_s")):
            raise FaultConfigError(f"{where}[{i}] (outage): give windows=START-END or mtbf_s and mttr_s")
        if target.startswith("model") and "model" not in d.boundaries:
            raise FaultConfigError(f"{where}[{i}] ({name}): acts on {', '.join(d.boundaries)}, not on the model")
        if not target.startswith("model") and target not in ("turn", "history") and "tool" not in d.boundaries:
            raise FaultConfigError(f"{where}[{i}] ({name}): acts on the {d.boundaries[0]}, not on tools "
                                   f"(drop target={target})")
        n = seen[name] = seen.get(name, 0) + 1
        fid = fid or (name if n == 1 else f"{name}#{n}")
        if fid in used:  # two settings of one fault (say, the scenario's and a sweep's) stay apart
            k = 2
            while f"{name}#{k}" in used:
                k += 1
            fid = f"{name}#{k}"
        used.add(fid)
        out.append({"name": name, "id": fid, "target": target, "params": params, "trigger": trigger})
    return tuple(out)


def check_faults(faults: tuple[dict, ...], scenario, where: str = "faults") -> None:
    """Problems only the scenario can reveal: unknown target tools, turns that do not exist."""
    for i, f in enumerate(faults):
        t = f["target"]
        if t not in ("tools", "reads", "writes", "turn", "history") and not t.startswith("model") \
                and t not in scenario.tools:
            raise FaultConfigError(f"{where}[{i}] ({f['name']}): target tool {t!r} is not in scenario "
                                   f"{scenario.name!r} (tools: {', '.join(sorted(scenario.tools))})")
        turns = f["trigger"].get("at_turn", [])
        bad = [k for k in turns if k >= len(scenario.turns)]
        if bad:
            raise FaultConfigError(f"{where}[{i}] ({f['name']}): at_turn {bad[0]} does not exist; "
                                   f"scenario {scenario.name!r} has {len(scenario.turns)} turns (0-based)")


def describe() -> list[tuple[str, str, str, dict]]:
    """(name, boundaries, summary, {param: 'default — description'}) for listings."""
    rows = []
    for name, d in sorted(CATALOGUE.items()):
        params = {k: f"{f.default!r} — {f.description or ''}".rstrip(" —")
                  for k, f in d.params.model_fields.items()}
        params["default trigger"] = f"rate {d.default_rate:g}, {d.default_pattern}"
        rows.append((name, "/".join(d.boundaries), d.summary, params))
    return rows


class Active:
    """One configured fault inside one trial."""

    def __init__(self, spec: dict, session):
        self.spec, self.id, self.target = spec, spec["id"], spec["target"]
        self.d: FaultDef = CATALOGUE[spec["name"]]
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

    def _fire(self, f: Active, where: str, **detail) -> None:
        f.state.commit()
        self.fired[f.id] = self.fired.get(f.id, 0) + 1
        self.s.trace.emit("fault", fault=f.id, name=f.d.name, boundary=where, **detail)

    def _progress(self) -> float:
        return self.s.tool_calls / max(1, len(self.s.scenario.golden_path))

    def before(self, call: Call) -> list[str]:
        hit = []
        for f in self.active:
            if f.d.before and f.applies(call.kind, call.name, call.writes) and \
                    f.state.check(call.now, self.s.turn, self._progress()):
                if f.d.before(call, f.params, f) is not False:
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
            if f.d.after and f.applies(call.kind, call.name, call.writes) and \
                    f.state.check(call.now, self.s.turn, self._progress()):
                if f.d.after(call, f.params, f) is not False:
                    self._fire(f, call.kind, target=call.name, call=self.s.tool_calls,
                               effect=",".join(k for k in ("corrupted", "malformed", "empty", "drift", "truncated",
                                                           "stale", "flooded", "injection") if call.artifact.get(k)),
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
            if f.d.turn and f.state.check(self.s.clock.now(), k, self._progress()):
                if f.d.turn(t, f.params, f):
                    self._fire(f, "turn", turn=k, annotation=t.ann)
        return t.text, t.ann

    def between_turns(self, k: int, history: list) -> list:
        for f in self.active:
            if f.d.history and f.state.check(self.s.clock.now(), k, self._progress()):
                before = len(history)
                history = f.d.history(history, f.params, f)
                self._fire(f, "history", turn=k, kept=len(history), lost=before - len(history))
        return history

    def refresh_credentials(self) -> float:
        took = 0.0
        for f in self.active:
            if f.d.name == "auth_expired" and f.state.on:
                f.state.reset()
                took = max(took, f.params.refresh_s)
        return took

    def unfired(self) -> list[str]:
        return [f.id for f in self.active if f.id not in self.fired]


def _register() -> None:
    from ..registry import register
    for name, bounds, summary, params in describe():
        register("fault", name, f"[{bounds}] {summary}", CATALOGUE[name], params)


_register()
