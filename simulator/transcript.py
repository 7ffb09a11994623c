"""The simulated model's text protocol: what it writes where a real model would write prose,
in a form it can read back.

A real model reads facts from any text in its context: a colleague agent's report, a
summary, a task string that names ids. The simulated model does the same with two
shapes it also writes itself:

  facts   "[step_id] {json}"            a golden step's output it established
  tasks   "Call TOOL with {json args}"  a tool call it asks another agent to make

So a supervisor that only sees a worker's last message, a summarizer's summary wrapped
in a new message, or a planner's task handed to an executor all carry what they know.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable

_DECODER = json.JSONDecoder()
_FACT = re.compile(r"\[([A-Za-z_][\w-]*)\]\s*")
_TASK = re.compile(r"Call ([A-Za-z_][\w-]*) with\s*")


def write_facts(known: dict[str, Any], order: Iterable[str]) -> str:
    """Known step outputs as `[step] json`, in golden order."""
    return " ".join(f"[{k}] {json.dumps(known[k], sort_keys=True, default=str)}" for k in order if k in known)


def read_facts(text: str, steps: Iterable[str]) -> dict[str, Any]:
    """Every `[step] json` in a text whose step is one of `steps`."""
    if "[" not in text:
        return {}
    wanted, out = set(steps), {}
    for m in _FACT.finditer(text):
        if m.group(1) not in wanted:
            continue
        value = _json_at(text, m.end())
        if value is not _NOTHING:
            out[m.group(1)] = value
    return out


_NOTHING = object()


def _json_at(text: str, at: int):
    """The JSON value starting at `at`; also when the text was quoted once more on the way
    (a Python repr of a list of results escapes the inner quotes)."""
    try:
        return _DECODER.raw_decode(text, at)[0]
    except ValueError:
        pass
    rest = text[at:at + 100_000]
    for unquoted in (rest.replace("\\'", "'"), rest.replace('\\"', '"').replace("\\'", "'")):
        try:
            return _DECODER.raw_decode(unquoted)[0]
        except ValueError:
            continue
    return _NOTHING


def write_task(tool: str, args: dict) -> str:
    return f"Call {tool} with {json.dumps(args, sort_keys=True, default=str)}"


def read_tasks(text: str) -> list[tuple[str, dict]]:
    """Every `Call TOOL with {args}` in a text, in order."""
    if "Call " not in text:
        return []
    out = []
    for m in _TASK.finditer(text):
        args = _json_at(text, m.end())
        if isinstance(args, dict):
            out.append((m.group(1), args))
    return out


_XML_CALL = re.compile(r'<tool_call id="[^"]*" name="([A-Za-z_][\w-]*)">')
_XML_RESULT = re.compile(r'<message type="tool"[^>]*>')


def read_transcript(text: str) -> list[tuple[str, dict, Any]]:
    """(tool, args, result) for every tool call and its result in a transcript written the
    way LangChain renders one for a summarizer (get_buffer_string(..., format="xml"))."""
    if "<tool_call" not in text:
        return []
    marks = sorted([(m.start(), "call", m) for m in _XML_CALL.finditer(text)]
                   + [(m.start(), "result", m) for m in _XML_RESULT.finditer(text)], key=lambda x: x[0])
    pending: list[tuple[str, dict]] = []
    out = []
    for _, kind, m in marks:
        value = _json_at(text, m.end())
        if kind == "call":
            pending.append((m.group(1), value if isinstance(value, dict) else {}))
        elif pending:
            tool, args = pending.pop(0)
            out.append((tool, args, None if value is _NOTHING else value))
    return out


def text_of(message) -> str:
    """A message's text, whatever the shape of its content (a string or content blocks)."""
    content = getattr(message, "content", "")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                        if isinstance(b, (str, dict)))
    return str(content)
