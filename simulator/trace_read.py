"""Recorded sessions, read from the formats tracing tools write, into one plain shape: the
system prompt, the user's turns, the tools offered (with schemas), and the tool calls made
(name, arguments, result, the turn they served), in the order they ran.

Two formats: OpenTelemetry GenAI spans as OTLP JSON (one ExportTraceServiceRequest, or one
per line as the file exporter writes them), with `chat` spans carrying
`gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions` and
`gen_ai.tool.definitions`, and `execute_tool` spans carrying `gen_ai.tool.name`,
`gen_ai.tool.call.id`, `gen_ai.tool.call.arguments` and `gen_ai.tool.call.result`; and
LangSmith run exports (a list of runs, `{"runs": [...]}`, or one run per line), with `llm`
runs (messages in, generations out, tools in `extra.invocation_params`) and `tool` runs.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


class TraceError(ValueError):
    """A trace file that cannot be read as a session; names the file and what is wrong."""


@dataclass
class ToolCall:
    name: str
    args: dict
    result: Any
    call_id: str | None = None
    start: float = 0.0
    error: bool = False
    turn: int = 0


@dataclass
class Session:
    source: str
    format: str
    system: str | None = None
    turns: list[str] = field(default_factory=list)
    turn_starts: list[float] = field(default_factory=list)
    answers: dict[int, str] = field(default_factory=dict)  # turn -> the last text the model said in it
    calls: list[ToolCall] = field(default_factory=list)
    tools: dict[str, dict] = field(default_factory=dict)  # name -> {description, parameters}
    model: str | None = None
    notes: list[str] = field(default_factory=list)  # what a person should know about the reading


def _one_trace(path: Path, items: list, key, trace: str | None, notes: list[str]) -> list:
    """The items of one trace: the one asked for (by id or its start), else the first."""
    ids = list(dict.fromkeys(key(x) for x in items))
    if trace is not None:
        chosen = [i for i in ids if str(i).startswith(trace)]
        if len(chosen) != 1:
            raise TraceError(f"{path}: {'no' if not chosen else 'more than one'} trace id starts with {trace!r}; "
                             f"it holds {', '.join(map(str, ids[:10]))}")
        return [x for x in items if key(x) == chosen[0]]
    if len(ids) > 1:
        notes.append(f"the file holds {len(ids)} traces; this is the first ({ids[0]}): pick another with --trace")
    return [x for x in items if key(x) == ids[0]]


def maybe_json(v: Any) -> Any:
    """A value that may be JSON (or a Python literal, as LangChain writes tool inputs) in a string."""
    if not isinstance(v, str):
        return v
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(v)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return v


def _records(path: Path) -> list:
    text = path.read_text()
    if not text.strip():
        raise TraceError(f"{path}: the file is empty")
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError as first:
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise TraceError(f"{path}:{i if len(out) else first.lineno}: not JSON or JSON lines "
                                     f"({(e if len(out) else first).msg})") from None
        return out


def read_trace(path: str | Path, fmt: str = "auto", trace: str | None = None) -> Session:
    """The session a trace file records (the first trace in it, or the one whose id starts
    with `trace`); `fmt` is otlp, langsmith or auto (by its shape)."""
    path = Path(path)
    recs = _records(path)
    if fmt == "auto":
        if any(isinstance(r, dict) and "resourceSpans" in r for r in recs):
            fmt = "otlp"
        elif any(isinstance(r, dict) and ("run_type" in r or "runs" in r) for r in recs):
            fmt = "langsmith"
        else:
            raise TraceError(f"{path}: neither OTLP JSON (resourceSpans) nor a LangSmith run export "
                             "(runs with run_type); say which with --format")
    if fmt not in ("otlp", "langsmith"):
        raise TraceError(f"unknown trace format {fmt!r}; use otlp, langsmith or auto")
    try:
        if fmt == "otlp":
            s = _otlp(path, recs, trace)
        else:
            s = _langsmith(path, [x for r in recs for x in (r["runs"] if isinstance(r, dict) and "runs" in r
                                                             and isinstance(r["runs"], list) else [r])], trace)
    except (AttributeError, TypeError, KeyError, ValueError, IndexError) as e:
        if isinstance(e, TraceError):
            raise
        # a field of another shape than the format's: say so, with where it broke
        raise TraceError(f"{path}: not {'OTLP JSON' if fmt == 'otlp' else 'a LangSmith run export'} as this "
                         f"reads it: a field has an unexpected shape ({type(e).__name__}: {e})") from None
    if not s.calls:
        raise TraceError(f"{path}: the trace holds no tool calls: nothing to build a golden path from")
    if not s.turns:
        raise TraceError(f"{path}: the trace holds no user message: nothing to build a turn from")
    for c in s.calls:  # the turn a call served: the last user message that came before it
        c.turn = max([k for k, t in enumerate(s.turn_starts) if t <= c.start] or [0])
    return s


# -- OpenTelemetry GenAI (OTLP JSON) ---------------------------------------------
def _value(v: dict) -> Any:
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: _value(kv.get("value", {})) for kv in v["kvlistValue"].get("values", [])}
    return None


def _attrs(span: dict) -> dict:
    return {a["key"]: _value(a.get("value", {})) for a in span.get("attributes", []) if "key" in a}


def _otlp_messages(raw: Any) -> list[dict]:
    msgs = maybe_json(raw)
    if not isinstance(msgs, list):
        return []
    # a message written with `content` (text) and `tool_calls` instead of `parts`
    return [m if not isinstance(m, dict) or "parts" in m else {**m, "parts": _parts_of(m)} for m in msgs]


def _parts_of(m: dict) -> list[dict]:
    parts = [{"type": "text", "content": m["content"]}] if isinstance(m.get("content"), str) and m["content"] else []
    for c in m.get("tool_calls") or []:
        fn = c.get("function", c) if isinstance(c, dict) else {}
        parts.append({"type": "tool_call", "id": c.get("id"), "name": fn.get("name"), "arguments": fn.get("arguments")})
    if m.get("role") == "tool":
        parts = [{"type": "tool_call_response", "id": m.get("tool_call_id") or m.get("id"), "response": m.get("content")}]
    return parts


def _flattened(a: dict, prefix: str) -> list[dict]:
    """Messages from indexed attributes (gen_ai.prompt.0.role, gen_ai.completion.0.tool_calls.0.name...),
    as earlier instrumentations write them."""
    msgs: dict[int, dict] = {}
    for k, v in a.items():
        if not k.startswith(prefix + "."):
            continue
        rest = k[len(prefix) + 1:].split(".")
        if not rest[0].isdigit():
            continue
        m = msgs.setdefault(int(rest[0]), {})
        if len(rest) == 2:
            m[rest[1]] = v
        elif len(rest) == 4 and rest[1] == "tool_calls" and rest[2].isdigit():
            calls = m.setdefault("tool_calls", {})
            calls.setdefault(int(rest[2]), {})[rest[3]] = v
    out = []
    for _, m in sorted(msgs.items()):
        m["tool_calls"] = [c for _, c in sorted(m.get("tool_calls", {}).items())]
        m.setdefault("role", "assistant" if prefix.endswith("completion") else "user")
        out.append({**m, "parts": _parts_of(m)})
    return out


def _text(parts: list) -> str:
    return " ".join(str(p.get("content", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text")


def _otlp(path: Path, recs: list, trace: str | None) -> Session:
    spans = [sp for r in recs if isinstance(r, dict) for rs in r.get("resourceSpans", [])
             for ss in rs.get("scopeSpans", []) for sp in ss.get("spans", [])]
    if not spans:
        raise TraceError(f"{path}: the OTLP file holds no spans")
    spans.sort(key=lambda sp: int(sp.get("startTimeUnixNano", 0)))
    s = Session(str(path), "otlp")
    spans = _one_trace(path, spans, lambda sp: sp.get("traceId"), trace, s.notes)
    pending: dict[str, ToolCall] = {}  # tool calls seen in model output, by id, until a tool span or result
    for sp in spans:
        try:
            _otlp_span(s, sp, pending)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError) as e:
            s.notes.append(f"span {sp.get('spanId', '?') if isinstance(sp, dict) else '?'} left out: a field "
                           f"has an unexpected shape ({type(e).__name__}: {e})")
    s.calls.sort(key=lambda c: c.start)
    return s


# -- LangSmith run exports -------------------------------------------------------------
def _when(v: Any) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _lc_message(m: Any) -> dict:
    """A message as {role, content, tool_calls}, from LangChain's serialised form, its dict
    form ({type, content}) or the OpenAI form ({role, content})."""
    if not isinstance(m, dict):
        return {"role": "user", "content": str(m)}
    if m.get("lc") and "kwargs" in m:
        kind = (m.get("id") or [""])[-1]
        kw = m["kwargs"]
        role = {"HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system",
                "ToolMessage": "tool"}.get(kind, kw.get("type", "user"))
        return {"role": role, "content": kw.get("content", ""), "tool_calls": kw.get("tool_calls") or []}
    if isinstance(m.get("data"), dict) and "type" in m:  # message_to_dict's {type, data}
        m = {**m["data"], "type": m["type"]}
    role = m.get("role") or {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}.get(
        m.get("type", ""), "user")
    calls = m.get("tool_calls") or []
    calls = [{"name": c.get("name") or c.get("function", {}).get("name"),
              "args": c.get("args") if "args" in c else maybe_json(c.get("function", {}).get("arguments")),
              "id": c.get("id")} for c in calls if isinstance(c, dict)]
    return {"role": role, "content": m.get("content", ""), "tool_calls": calls}


def _content(c: Any) -> str:
    if isinstance(c, list):
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in c)
    return str(c or "")


def _tool_output(out: Any) -> Any:
    if isinstance(out, dict) and "output" in out:
        out = out["output"]
    if isinstance(out, dict) and out.get("lc") and "kwargs" in out:
        out = out["kwargs"].get("content")
    elif isinstance(out, dict) and out.get("type") == "tool" and "content" in out:
        out = out["content"]
    return maybe_json(out)


def _langsmith(path: Path, runs: list, trace: str | None) -> Session:
    runs = [r for r in runs if isinstance(r, dict) and r.get("run_type")]
    if not runs:
        raise TraceError(f"{path}: no runs with a run_type in the export")
    runs.sort(key=lambda r: (_when(r.get("start_time")), str(r.get("dotted_order", ""))))
    s = Session(str(path), "langsmith")
    runs = _one_trace(path, runs, lambda r: r.get("trace_id") or r.get("id"), trace, s.notes)
    for r in runs:
        try:
            _langsmith_run(s, r)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError) as e:
            s.notes.append(f"run {r.get('id', '?')} ({r.get('name', '?')}) left out: a field has an "
                           f"unexpected shape ({type(e).__name__}: {e})")
    return s


def _otlp_span(s: Session, sp: dict, pending: dict) -> None:
    """One span into the session: a tool execution, or a model call's messages."""
    a, t = _attrs(sp), int(sp.get("startTimeUnixNano", 0)) / 1e9
    # older instrumentations leave out the operation: the span's name starts with it
    op = a.get("gen_ai.operation.name") or str(sp.get("name", "")).split(" ")[0]
    if op == "execute_tool":
        name = a.get("gen_ai.tool.name") or str(sp.get("name", "")).removeprefix("execute_tool ").strip()
        cid = a.get("gen_ai.tool.call.id")
        args = maybe_json(a.get("gen_ai.tool.call.arguments"))
        if cid not in pending:  # a tool span without the call's id: the oldest open call of that tool
            cid = next((k for k, c in pending.items() if c.name == name), cid)
        if not isinstance(args, dict):
            args = pending[cid].args if cid in pending else {}
        pending.pop(cid, None)
        err = (sp.get("status") or {}).get("code") in (2, "STATUS_CODE_ERROR") or "error.type" in a
        s.calls.append(ToolCall(name, args, maybe_json(a.get("gen_ai.tool.call.result")), cid, t, err))
        if a.get("gen_ai.tool.description") and name not in s.tools:
            s.tools[name] = {"description": a["gen_ai.tool.description"], "parameters": {}}
    elif op in ("chat", "text_completion", "generate_content"):
        s.model = s.model or a.get("gen_ai.request.model")
        sys_parts = _otlp_messages(a.get("gen_ai.system_instructions"))
        if sys_parts and s.system is None:
            s.system = _text(sys_parts)
        for d in _otlp_messages(a.get("gen_ai.tool.definitions")):
            fn = d.get("function", d) if isinstance(d, dict) else {}
            if fn.get("name"):
                s.tools[fn["name"]] = {"description": fn.get("description", ""),
                                       "parameters": fn.get("parameters") or {}}
        inputs = _otlp_messages(a.get("gen_ai.input.messages")) or _flattened(a, "gen_ai.prompt")
        users = [_text(m.get("parts", [])) for m in inputs if isinstance(m, dict) and m.get("role") == "user"]
        if s.system is None:
            s.system = next((_text(m.get("parts", [])) for m in inputs
                             if isinstance(m, dict) and m.get("role") == "system"), None)
        for u in users[len(s.turns):]:
            s.turns.append(u)
            s.turn_starts.append(t)
        for m in inputs:  # results the model was given, for calls that had no tool span
            for p in m.get("parts", []) if isinstance(m, dict) else []:
                if isinstance(p, dict) and p.get("type") == "tool_call_response" and p.get("id") in pending:
                    c = pending.pop(p["id"])
                    c.result = maybe_json(p.get("response"))
                    s.calls.append(c)
        for m in _otlp_messages(a.get("gen_ai.output.messages")) or _flattened(a, "gen_ai.completion"):
            parts = m.get("parts", []) if isinstance(m, dict) else []
            for p in parts:
                if isinstance(p, dict) and p.get("type") == "tool_call":
                    args = maybe_json(p.get("arguments"))
                    pending[p.get("id")] = ToolCall(p.get("name", ""), args if isinstance(args, dict) else {},
                                                    None, p.get("id"), t)
            if _text(parts):
                s.answers[max(len(s.turns) - 1, 0)] = _text(parts)


def _langsmith_run(s: Session, r: dict) -> None:
    """One run into the session: a tool run, or a model run's messages."""
    t, kind = _when(r.get("start_time")), r["run_type"]
    if kind == "tool":
        inputs = r.get("inputs") or {}
        args = maybe_json(inputs.get("input")) if set(inputs) == {"input"} else inputs
        out = _tool_output(r.get("outputs"))
        cid = (r.get("extra") or {}).get("metadata", {}).get("tool_call_id")
        s.calls.append(ToolCall(r.get("name", ""), args if isinstance(args, dict) else {"input": args}, out,
                                cid, t, bool(r.get("error"))))
    elif kind in ("llm", "chat"):
        extra = (r.get("extra") or {}).get("invocation_params") or {}
        s.model = s.model or extra.get("model") or extra.get("model_name")
        for d in extra.get("tools") or []:
            fn = d.get("function", d) if isinstance(d, dict) else {}
            if fn.get("name"):
                s.tools[fn["name"]] = {"description": fn.get("description", ""),
                                       "parameters": fn.get("parameters") or {}}
        msgs = (r.get("inputs") or {}).get("messages") or []
        if msgs and isinstance(msgs[0], list):  # one list per prompt in the batch
            msgs = msgs[0]
        msgs = [_lc_message(m) for m in msgs]
        if s.system is None:
            s.system = next((_content(m["content"]) for m in msgs if m["role"] == "system"), None)
        users = [_content(m["content"]) for m in msgs if m["role"] == "user"]
        for u in users[len(s.turns):]:
            s.turns.append(u)
            s.turn_starts.append(t)
        gens = (r.get("outputs") or {}).get("generations") or []
        gen = gens[0][0] if gens and isinstance(gens[0], list) and gens[0] else (gens[0] if gens else {})
        msg = _lc_message(gen.get("message")) if isinstance(gen, dict) and gen.get("message") else {}
        text = _content(msg.get("content")) if msg else _content(gen.get("text") if isinstance(gen, dict) else "")
        if text and not (msg.get("tool_calls") if msg else None):
            s.answers[max(len(s.turns) - 1, 0)] = text
