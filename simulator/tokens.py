"""Offline token counting.

No tokenizer is downloaded: a message costs ceil(chars / 4) tokens, the usual
rule of thumb for BPE tokenizers on English text, plus a small per-message
overhead. Counts are cached per message id, so a call costs only its new
messages, not a re-count of the whole history.
"""
from __future__ import annotations

import json

PER_MESSAGE = 4


def count_text(text: str) -> int:
    return (len(text) + 3) // 4


def message_text(msg) -> str:
    content = msg.content if isinstance(msg.content, str) else json.dumps(msg.content, default=str)
    calls = getattr(msg, "tool_calls", None)
    if calls:
        content += json.dumps([{"name": c["name"], "args": c["args"]} for c in calls], default=str)
    return content


class TokenCounter:
    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def message(self, msg) -> int:
        key = msg.id
        if key is not None and key in self._cache:
            return self._cache[key]
        n = PER_MESSAGE + count_text(message_text(msg))
        if key is not None:
            self._cache[key] = n
        return n

    def messages(self, msgs) -> int:
        return sum(self.message(m) for m in msgs)
