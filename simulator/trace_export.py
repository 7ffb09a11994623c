"""attrition's events as OpenTelemetry GenAI spans (OTLP JSON), so a run opens in the
tracing tools people already use.

One trace per trial: an `invoke_agent` span for the session, a `chat` span per model call
(model, provider, token usage, the tool call it made, the user's messages so far, the turn's
answer) and an `execute_tool` span per tool call (arguments, result, error), on the
virtual clock from the run's start. Faults, budgets and the outcome are span events and
`attrition.*` attributes. Trace and span ids are digests of the trial id, so the same run
exports the same file.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from .spec import digest
from .store import iter_jsonl, iter_records, read_manifest, results_dir, stored_scenario

SCOPE = {"name": "attrition", "version": "1"}
INTERNAL, CLIENT = 1, 3


def attr(key: str, value: Any) -> dict:
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    elif isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value):
        v = {"arrayValue": {"values": [{"stringValue": x} for x in value]}}
    elif isinstance(value, (dict, list, tuple)):
        v = {"stringValue": json.dumps(value, default=str)}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


def _attrs(d: dict) -> list[dict]:
    return [attr(k, v) for k, v in d.items() if v is not None]


def tool_definitions(scenario) -> list[dict]:
    """The scenario's tools as GenAI tool definitions (JSON Schema parameters)."""
    if scenario is None:
        return []
    return [{"type": "function", "name": name, "description": t.description,
             "parameters": {"type": "object", "required": list(t.args),
                            "properties": {a: {"type": x.type, **({"description": x.description} if x.description else {})}
                                           for a, x in t.args.items()}}}
            for name, t in scenario.tools.items()]


class _Trial:
    def __init__(self, record, base_ns: int, tools: list[dict]):
        self.r, self.base, self.tools = record, base_ns, tools
        self.trace_id = digest(["trace", record.trial_id], 32)
        self.root_id = digest(["span", record.trial_id, 0], 16)
        self.spans: list[dict] = []
        self.users: list[dict] = []  # the user's messages so far, as GenAI input messages
        self.last_chat: dict | None = None
        self.events: list[dict] = []  # the root span's events: faults, errors, budgets

    def ns(self, t: float) -> str:
        return str(self.base + int(round(t * 1e9)))

    def span(self, seq: int, name: str, kind: int, start: float, end: float, attrs: dict,
             error: str | None = None) -> dict:
        sp = {"traceId": self.trace_id, "spanId": digest(["span", self.r.trial_id, seq], 16),
              "parentSpanId": self.root_id, "name": name, "kind": kind, "startTimeUnixNano": self.ns(start),
              "endTimeUnixNano": self.ns(max(start, end)), "attributes": _attrs(attrs),
              "status": {"code": 2, "message": error} if error else {}}
        self.spans.append(sp)
        return sp

    def event(self, e: dict) -> None:
        kind, t = e["event"], float(e["t"])
        if kind == "user_turn":
            self.users.append({"role": "user", "parts": [{"type": "text", "content": e["text"]}]})
        elif kind == "model_call":
            model = e.get("model") or f"attrition-sim/{self.r.profile}"
            provider = model.partition(":")[0] if e.get("model") else "attrition"
            out = [{"role": "assistant", "parts": [{"type": "tool_call", "id": e.get("call_id"), "name": e["tool"],
                                                    "arguments": e.get("args") or {}}] if e.get("tool") else [],
                    "finish_reason": "tool_call" if e.get("tool") else "stop"}]
            a = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                 "gen_ai.request.model": model.partition(":")[2] or model, "gen_ai.agent.name": e.get("role"),
                 "gen_ai.usage.input_tokens": e.get("context_tokens"), "gen_ai.usage.output_tokens": e.get("output_tokens"),
                 "gen_ai.input.messages": list(self.users), "gen_ai.output.messages": out,
                 "attrition.mode": e.get("mode"), "attrition.step": e.get("step"), "attrition.p_error": e.get("p_error")}
            if self.tools:  # the definitions once per trace: every chat span offered the same tools
                a["gen_ai.tool.definitions"], self.tools = self.tools, []
            self.last_chat = self.span(e["seq"], f"chat {a['gen_ai.request.model']}", CLIENT,
                                       t - float(e.get("latency_s") or 0.0), t, a)
        elif kind == "turn_end" and self.last_chat is not None:
            # the turn's answer is what its last model call said
            msgs = [{"role": "assistant", "parts": [{"type": "text", "content": e.get("answer", "")}],
                     "finish_reason": "stop"}]
            self.last_chat["attributes"] = [x for x in self.last_chat["attributes"]
                                            if x["key"] != "gen_ai.output.messages"] + [attr("gen_ai.output.messages", msgs)]
        elif kind == "tool_call":
            err = e.get("error") or (None if e.get("ok") else "tool_error")
            self.span(e["seq"], f"execute_tool {e['tool']}", INTERNAL, float(e["start"]),
                      float(e["start"]) + float(e.get("latency_s") or 0.0),
                      {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": e["tool"], "gen_ai.tool.type": "function",
                       "gen_ai.tool.call.id": e.get("call_id"), "gen_ai.tool.call.arguments": e.get("args") or {},
                       "gen_ai.tool.call.result": e.get("result"), "error.type": err,
                       "attrition.faults": e.get("faults")}, error=e.get("message") or err)
        elif kind in ("fault", "model_error", "budget_exceeded", "trial_error"):
            self.events.append({"timeUnixNano": self.ns(t), "name": f"attrition.{kind}",
                                "attributes": _attrs({k: v for k, v in e.items()
                                                      if k not in ("v", "trial", "seq", "t", "event", "traceback")})})

    def build(self, events: list[dict]) -> list[dict]:
        for e in events:
            self.event(e)
        r = self.r
        start = min((float(e["t"]) for e in events), default=0.0)
        root = {"traceId": self.trace_id, "spanId": self.root_id, "name": f"invoke_agent {r.agent}", "kind": INTERNAL,
                "startTimeUnixNano": self.ns(start), "endTimeUnixNano": self.ns(start + r.sim_time_s),
                "attributes": _attrs({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": r.agent,
                                      "gen_ai.conversation.id": r.trial_id, "attrition.scenario": r.scenario,
                                      "attrition.profile": r.profile, "attrition.seed": r.seed,
                                      "attrition.replicate": r.replicate, "attrition.outcome": r.outcome,
                                      "attrition.failure_mode": r.failure_mode, "attrition.error": r.error}),
                "events": self.events, "status": {"code": 2, "message": r.error} if r.outcome == "error" else {}}
        return [root] + self.spans


def _base_ns(run_dir: Path) -> int:
    created = read_manifest(run_dir).get("created")
    try:
        return int(datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp() * 1e9)
    except (TypeError, ValueError):
        return 0


def export_run(run_dir: str | Path, trials: Iterable[str] | None = None) -> dict:
    """OTLP JSON (one ExportTraceServiceRequest) for the trials of a results directory (all,
    or those whose ids start with one of `trials`)."""
    root = results_dir(run_dir, events=True)
    want = list(trials or [])
    records = [r for r in iter_records(root) if not want or any(r.trial_id.startswith(w) for w in want)]
    if not records:
        raise LookupError(f"no trial in {root} matches {', '.join(want)}" if want else f"{root} holds no trials")
    ids = {r.trial_id for r in records}
    by_trial: dict[str, list] = {i: [] for i in ids}
    for e in iter_jsonl(root / "events.jsonl"):
        if e.get("trial") in by_trial:
            by_trial[e["trial"]].append(e)
    base = _base_ns(root)
    spans = []
    for r in records:
        found = stored_scenario(root, str((r.spec.get("scenario") or {}).get("digest", "")))
        spans += _Trial(r, base, tool_definitions(found[0] if found else None)).build(
            sorted(by_trial[r.trial_id], key=lambda e: e["seq"]))
    resource = {"attributes": _attrs({"service.name": "attrition", "attrition.run": root.name})}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": SCOPE, "spans": spans}]}]}
