"""Length-parametric scenario templates: a function of parameters that returns scenario data.

`chain:length=64` (or `--param length=64`) gives a 64-step task. A template is
registered with `@register("template", NAME)`; its keyword parameters and their
defaults are what `attrition list templates` shows and what a reference may set.
"""
from __future__ import annotations

from typing import Any

from .registry import register

# The chain builds its whole world and golden path up front and validation runs the
# golden path: 4096 calls take a few seconds; far longer tasks are a typo, not a test.
MAX_LENGTH = 4096
# record ids carry the task number; a million task variants is far past any sweep
MAX_TASK = 1_000_000

KINDS = [("ticket", "get_ticket", "a support ticket"),
         ("account", "get_account", "a customer account"),
         ("invoice", "get_invoice", "an invoice")]


def _chain_world(reads: int, task: int) -> tuple[list[str], dict]:
    """Record ids along the trail, and the world holding the records (each names the next)."""
    world: dict[str, dict] = {"reports": {}}
    for kind, _, _ in KINDS:
        world[kind + "s"] = {}
    ids = [f"{KINDS[i % 3][0][:3].upper()}-{task:02d}{i:04d}" for i in range(reads + 1)]
    for i in range(reads):
        kind = KINDS[i % 3][0]
        world[kind + "s"][ids[i]] = {
            "id": ids[i], "next_id": ids[i + 1], "code": f"C{(i * 7919 + task * 31) % 100000:05d}",
            "see_also": [ids[j] for j in (i - 3, i + 3) if 0 <= j < reads],
        }
    return ids, world


def _chain_tools() -> dict[str, Any]:
    tools: dict[str, Any] = {}
    for kind, tool, what in KINDS:
        tools[tool] = {"description": f"Fetch {what} by id; it names the next record to follow.",
                       "args": {f"{kind}_id": {"type": "string"}},
                       "effect": {"read": kind + "s", "key": f"{kind}_id"},
                       "latency": {"median_s": 0.8, "p95_s": 4}}
    tools["file_report"] = {
        "description": "File the final report for a trail, quoting the last record's code.",
        "args": {"source_id": {"type": "string"}, "code": {"type": "string"}},
        "effect": {"insert": "reports", "id_field": "report_id", "id_prefix": "REP-",
                   "set": {"source_id": "$source_id", "code": "$code"}},
        "latency": {"median_s": 1.5, "p95_s": 6}}
    return tools


def _chain_golden(reads: int, first_id: str) -> list[dict]:
    golden = []
    for i in range(reads):
        kind, tool, _ = KINDS[i % 3]
        arg = first_id if i == 0 else f"{{s{i - 1}.next_id}}"
        golden.append({"id": f"s{i}", "tool": tool, "args": {f"{kind}_id": arg}})
    if reads:
        golden.append({"id": "report", "tool": "file_report",
                       "args": {"source_id": f"{{s{reads - 1}.id}}", "code": f"{{s{reads - 1}.code}}"}})
    else:
        golden.append({"id": "report", "tool": "file_report",
                       "args": {"source_id": first_id, "code": "C00000"}})
    return golden


def _chain_turns(n: int, turns: int, step_ids: list[str], first_id: str) -> list[dict]:
    """The trail split into `turns` requests; each asks for the code of its last record."""
    bounds = [round(k * n / turns) for k in range(turns + 1)]
    out = []
    for k in range(turns):
        seg = step_ids[bounds[k]:bounds[k + 1]]
        last = seg[-1]
        fact = "{report.report_id}" if last == "report" else f"{{{last}.code}}"
        text = (f"Please follow the record trail starting at {first_id}: fetch each record and go to "
                f"the one it names, then file a report quoting the last record's code."
                if k == 0 else "Thanks. Please carry on along the trail from where you stopped.")
        if turns > 1 and k < turns - 1:
            text += f" Stop after {len(seg)} records this time and tell me the code of the last one."
        out.append({"user": text, "steps": seg, "answer_must_contain": [fact]})
    return out


def whole(name: str, value: object, lo: int, hi: int, what: str) -> int:
    """A whole-number template parameter in [lo, hi], or a ValueError saying so."""
    ok = isinstance(value, int) and not isinstance(value, bool) or \
        isinstance(value, float) and value.is_integer()
    if not ok or not lo <= value <= hi:
        shown = value if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
        raise ValueError(f"{name} must be >= {lo} and at most {hi:,}, a whole number ({what}); got {shown}")
    return int(value)


@register("template", "chain")
def chain(length: int = 8, turns: int = 1, task: int = 0) -> dict:
    """A task of `length` dependent tool calls: follow a trail of linked records across
    three systems (each record names the next one), then file a report quoting the last
    record's code. Every step needs the previous step's output, so one wrong id sends
    the rest of the trail astray; records also list look-alike ids (decoys).
    length: 1 to 4096; turns: 1 to 4096 (at most one per call); task: 0 to 1,000,000."""
    n = whole("length", length, 1, MAX_LENGTH, "the number of tool calls")
    # more turns than calls would leave turns with nothing to ask: at most one call per turn
    turns = min(whole("turns", turns, 1, MAX_LENGTH, "user requests the trail is split into"), n)
    task = whole("task", task, 0, MAX_TASK, "which task of the family")
    ids, world = _chain_world(n - 1, task)
    golden = _chain_golden(n - 1, ids[0])
    return {
        "name": f"chain-{n}",
        "description": f"Follow a {n}-call trail of linked records and file a report.",
        "domain": "records",
        "family": f"chain/task-{task}",
        "tools": _chain_tools(), "world": world,
        "turns": _chain_turns(n, turns, [g["id"] for g in golden], ids[0]), "golden_path": golden,
        "success": {"state": [{"path": "reports"}], "answer_must_contain": ["{report.report_id}"]},
        "user_think_time": {"median_s": 15, "p95_s": 60},
    }


# Filler for the recall template: plain sentences about other accounts, so the one fact the
# user asks for is a needle in a haystack of look-alike notes (as in long-context recall
# benchmarks), and the text is the same on every machine.
_NOTE = ("Note {i}: account AC-{a:05d} was reviewed on day {d} of the quarter; the agent recorded "
         "reference R{r:06d} and closed the review with no further action required. ")
MAX_CONTEXT = 1_000_000


def _haystack(tokens: int, task: int) -> str:
    notes, size, i = [], 0, 0
    while size < tokens - 50:  # chars / 4 is the tokens counted (tokens.py)
        note = _NOTE.format(i=i, a=(i * 7919 + task * 131) % 100000, d=1 + (i * 37) % 90,
                            r=(i * 104729 + task * 17) % 1000000)
        notes.append(note)
        size += len(note) / 4
        i += 1
    return "".join(notes)


@register("template", "recall")
def recall(context: int = 1000, task: int = 0, difficulty: float = 0.0) -> dict:
    """A task whose answer needs recall: fetch one account's history, a document of about
    `context` tokens of look-alike notes, and answer with the one reference code it holds.
    The answer is only right if the code is recalled from deep in the context, so success
    falls as the context grows (the profile's context_rot, context_softness and
    recall_in_answer). `difficulty` shifts every decision's log-odds of error, to set how
    hard the question is when the context is short.
    context: 0 to 1,000,000 tokens; task: 0 to 1,000,000; difficulty: -10 to 10."""
    size = whole("context", context, 0, MAX_CONTEXT, "tokens of history to search")
    task = whole("task", task, 0, MAX_TASK, "which task of the family")
    if isinstance(difficulty, bool) or not isinstance(difficulty, (int, float)) or not -10 <= difficulty <= 10:
        raise ValueError(f"difficulty must be a number from -10 to 10 (log-odds); got {difficulty!r}")
    acct = f"AC-{task:06d}"
    code = f"K{(task * 7919 + 4243) % 1000000:06d}"
    body = _haystack(size, task)
    cut = len(body) // 2  # the needle sits in the middle, where recall is weakest
    history = body[:cut] + f"Key note: the reference code for {acct} is {code}. " + body[cut:]
    return {
        "name": f"recall-{size}",
        "description": f"Recall one code from a {size}-token account history.",
        "domain": "records",
        "family": f"recall/task-{task}",
        "difficulty": float(difficulty),
        "tools": {"get_history": {
            "description": "Fetch an account's full history of notes by account id.",
            "args": {"account_id": {"type": "string"}},
            "effect": {"read": "histories", "key": "account_id"},
            "latency": {"median_s": 1.0, "p95_s": 4}}},
        "world": {"histories": {acct: {"account_id": acct, "code": code, "history": history}}},
        "turns": [{"user": f"What is the reference code recorded for account {acct}? Please check its "
                           "history and tell me.", "steps": ["s0"]}],
        "golden_path": [{"id": "s0", "tool": "get_history", "args": {"account_id": acct}}],
        # the code is asked for once, so it is recalled once (not per check that quotes it)
        "success": {"answer_must_contain": ["{s0.code}"]},
        "user_think_time": {"median_s": 15, "p95_s": 60},
    }
