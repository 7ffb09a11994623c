"""Cassettes: what a real model was asked and what it answered, so a run can be replayed
without a network and without paying again.

A request is keyed by a digest of what decides the answer: the model, the messages (their
kind, text, tool calls and tool call ids; never LangGraph's random message ids), the tools
bound, the call's parameters, the trial's replicate and how many times the same request
came before in that trial (a retry of an identical request is a new call). One file per
request, written whole and renamed into place, so a crash or a concurrent worker never
leaves half an entry. Secrets never reach a cassette: keys whose names look like
credentials are dropped, and the values of credential-like environment variables are
masked wherever they appear.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from .spec import canonical, digest

CASSETTE_VERSION = 1
SECRET_NAME = re.compile(r"api[_-]?key|authori[sz]ation|secret|password|passwd|token|cookie|credential|"
                         r"x-api-key|bearer", re.I)
# usage counts are named *_tokens: they are figures, not credentials
NOT_SECRET = re.compile(r"(input|output|total|prompt|completion|reasoning|cached|audio|read|creation|max)_tokens?"
                        r"(_details)?$|token_usage$|tokens?_remaining$|remaining[_-]tokens$", re.I)
MASK = "<redacted>"


def _secret_name(key: str) -> bool:
    return bool(SECRET_NAME.search(key)) and not NOT_SECRET.search(key)


def secret_values(environ: dict | None = None) -> list[str]:
    """Values of environment variables named like credentials (OPENAI_API_KEY, ...), longest first."""
    env = os.environ if environ is None else environ
    vals = {v for k, v in env.items() if _secret_name(k) and isinstance(v, str) and len(v) >= 6}
    return sorted(vals, key=len, reverse=True)


def scrub(data: Any, secrets: list[str]) -> Any:
    """`data` without credential-named keys, with every known secret value masked."""
    if isinstance(data, dict):
        return {k: scrub(v, secrets) for k, v in data.items() if not (isinstance(k, str) and _secret_name(k))}
    if isinstance(data, list):
        return [scrub(v, secrets) for v in data]
    if isinstance(data, str):
        for s in secrets:
            data = data.replace(s, MASK)
    return data


def message_key(m: BaseMessage) -> dict:
    """What of a message decides a model's answer (no message ids: LangGraph makes them up)."""
    out: dict[str, Any] = {"type": m.type, "content": m.content}
    for name in ("tool_calls", "tool_call_id", "name"):
        v = getattr(m, name, None)
        if v:
            out[name] = [{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in v] \
                if name == "tool_calls" else v
    return out


def request_of(model: str, messages: list[BaseMessage], params: dict) -> dict:
    """The request as a cassette keys and stores it."""
    return {"model": model, "messages": [message_key(m) for m in messages],
            "params": json.loads(canonical(params))}


def request_key(request: dict, replicate: int, occurrence: int) -> str:
    return digest({"v": CASSETTE_VERSION, "request": request, "replicate": replicate, "n": occurrence}, 32)


class Cassette:
    """A directory of recorded requests: a recording run writes them, a replay serves them
    (and adds the ones it had to call for)."""

    def __init__(self, root: str | Path, must_exist: bool = False):
        self.root = Path(root)
        if must_exist and not self.root.is_dir():
            raise FileNotFoundError(f"--replay {self.root}: no such cassette directory")

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def load(self, key: str) -> dict | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            entry = json.loads(p.read_text())
            entry["message"] = messages_from_dict([entry["response"]])[0]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{p}: not a readable cassette entry ({type(e).__name__}: {e})") from None
        return entry

    def save(self, key: str, request: dict, message: BaseMessage, latency_s: float) -> Path:
        secrets = secret_values()
        entry = scrub({"v": CASSETTE_VERSION, "key": key, "request": request,
                       "response": message_to_dict(message), "latency_s": round(latency_s, 6)}, secrets)
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(entry, indent=1, default=str, sort_keys=True))
        os.replace(tmp, p)
        return p
