"""A recorded session (trace_read.py) as a scenario: its tools with their schemas, the world
rows their results show, the user's turns, the observed tool calls as the golden path, and
checks on the final writes.

A scenario's tools are declarative effects over world tables, so each observed tool is
read as one: a name that starts with a writing verb (create, issue, update, cancel...)
inserts or updates a row; any other reads one (by the argument whose value the result
holds) or finds rows (a result that is a list). Rows come from the results. The golden
path keeps the observed calls in order; an argument whose value an earlier result held
becomes a reference to it (`{step.path}`), so the golden path follows the data as the
agent did. Whatever was guessed is listed for a person to review.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any

from .scenario import Scenario, Tool
from .trace_read import Session, TraceError
from .world import apply_effect, resolve, run_golden

INSERT_VERBS = {"create", "add", "insert", "issue", "book", "send", "open", "file", "submit", "post", "place",
                "make", "register", "schedule", "log", "new", "refund", "reserve", "generate", "start"}
UPDATE_VERBS = {"update", "set", "cancel", "change", "modify", "edit", "mark", "close", "assign", "approve",
                "reject", "patch", "move", "rename", "reschedule", "rebook", "confirm", "apply", "delete", "remove"}
ARG_TYPES = {"string", "integer", "number", "boolean"}


def _words(name: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)] or [name.lower()]


def _plural(noun: str) -> str:
    if noun.endswith("s"):
        return noun
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"


def table_of(tool: str) -> str:
    w = _words(tool)
    return _plural("_".join(w[1:]) if len(w) > 1 else w[0])


def kind_of(tool: str) -> str:
    verb = _words(tool)[0]
    return "insert" if verb in INSERT_VERBS else "update" if verb in UPDATE_VERBS else "read"


def _arg_type(schema: dict, values: list) -> str:
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t in ARG_TYPES:
        return t
    if values and all(isinstance(v, bool) for v in values):
        return "boolean"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    return "string"


LIST_KEYS = {"results", "items", "data", "rows", "records", "matches", "hits"}


def _rows_in(result: Any, table: str = "") -> list[dict] | None:
    """The rows of a result that lists records: a list, or a mapping with no id of its own
    whose one list of records is named like one (results, data, the table's name)."""
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        return result
    if isinstance(result, dict) and _id_field(result) is None:
        lists = [k for k, v in result.items() if isinstance(v, list) and all(isinstance(r, dict) for r in v)]
        if len(lists) == 1 and (lists[0] in LIST_KEYS or lists[0] == table):
            return result[lists[0]]
    return None


def _as_rows(result: Any, table: str) -> list[dict]:
    """A result's rows; a single record (or text) is one row."""
    rows = _rows_in(result, table)
    if rows is not None:
        return rows
    return [result if isinstance(result, dict) else {"result": result}]


def _id_field(row: dict, avoid: set = frozenset()) -> str | None:
    ids = [k for k in row if (k == "id" or k.endswith("_id") or k.endswith("Id")) and k not in avoid]
    return ids[0] if ids else None


class Builder:
    def __init__(self, session: Session, name: str):
        self.s, self.name = session, name
        self.review: list[str] = list(session.notes)
        self.tools: dict[str, dict] = {}
        self.world: dict[str, dict] = {}
        self.mapped: dict = {}  # an id the trace's insert made -> the id the scenario's makes

    def note(self, text: str) -> None:
        if text not in self.review:
            self.review.append(text)

    # -- tools and world -----------------------------------------------------
    def tool(self, name: str) -> dict:
        if name in self.tools:
            return self.tools[name]
        calls = [c for c in self.s.calls if c.name == name]
        for c in calls:  # a result that says it failed is a failed call, whatever the span said
            if not c.error and isinstance(c.result, dict) and "error" in c.result and len(c.result) <= 3:
                c.error = True
                self.note(f"call {name}({json.dumps(c.args, default=str)[:80]}) answered an error: "
                          "left out of the world and the golden path")
        spec = self.s.tools.get(name) or {}
        props = (spec.get("parameters") or {}).get("properties") or {}
        if not spec:
            self.note(f"tool {name}: no schema in the trace; argument types are read off the calls")
        names = list(props) + [a for c in calls for a in c.args if a not in props]
        args = {}
        for a in dict.fromkeys(names):
            vals = [c.args[a] for c in calls if a in c.args]
            args[a] = {"type": _arg_type(props.get(a, {}), vals)}
            if props.get(a, {}).get("description"):
                args[a]["description"] = props[a]["description"]
            if any(isinstance(v, (dict, list)) for v in vals):
                self.note(f"tool {name}: argument {a} holds structured values; the scenario passes it as text")
        desc = spec.get("description") or f"{name.replace('_', ' ')} (imported from the trace)"
        self.tools[name] = {"description": desc, "args": args, "effect": self.effect(name, calls)}
        return self.tools[name]

    def _key(self, call, row: dict) -> str | None:
        """The argument whose value the row holds (the key it was looked up by)."""
        for a, v in call.args.items():
            if a in row and str(row[a]) == str(v):
                return a
        for a, v in call.args.items():
            if any(str(x) == str(v) for x in row.values() if not isinstance(x, (dict, list))):
                return a
        return None

    def effect(self, name: str, calls: list) -> dict:
        table, kind = table_of(name), kind_of(name)
        # a write that answered nothing still wrote; a read that answered nothing shows no row
        ok = [c for c in calls if not c.error and (c.result is not None or kind != "read")]
        first = ok[0] if ok else None
        if first is None:
            self.note(f"tool {name}: no successful call to learn from; it reads table {table} by its first argument")
            key = next(iter(calls[0].args), None) if calls else None
            return {"read": table, "key": key or "id"}
        if kind == "insert":
            return self._insert(name, table, first)
        if kind == "update":
            return self._update(name, table, first, ok)
        rows = _rows_in(first.result, table)
        if rows is None and not first.args:  # nothing to look a row up by: the tool lists its table
            rows = _as_rows(first.result, table)
        if rows is not None:
            return self._find(name, table, first, ok, rows)
        if not isinstance(first.result, dict):
            self.note(f"tool {name}: returned {type(first.result).__name__}, not a record; "
                      "the scenario returns it as {result: ...}")
        key = (self._key(first, first.result) if isinstance(first.result, dict) else None) or next(iter(first.args), "id")
        for c in ok:
            res = c.result if isinstance(c.result, dict) else {"result": c.result}
            self.add_row(table, str(c.args.get(key)), {**res, **({key: c.args[key]} if key in c.args else {})})
        returns = list(first.result) if isinstance(first.result, dict) else ["result"]
        return {"read": table, "key": key, "returns": returns}

    def _insert(self, name: str, table: str, first) -> dict:
        result = first.result if isinstance(first.result, dict) else {}
        if not result:
            self.note(f"tool {name}: returned {type(first.result).__name__}, not the new record; the scenario "
                      "returns the record it inserts")
        idf = _id_field(result, set(first.args)) or "id"
        made = str(result.get(idf, ""))
        prefix = re.sub(r"\d+$", "", made) if made else table[:2].upper() + "-"
        const = {k: v for k, v in result.items() if k != idf and k not in first.args}
        self.note(f"tool {name}: inserts into {table}; new ids are {prefix}1, {prefix}2... "
                  f"(the trace's {made or 'id'} is mapped to them)")
        return {"insert": table, "id_field": idf, "id_prefix": prefix,
                "set": {**{a: f"${a}" for a in first.args}, **const}}

    def _update(self, name: str, table: str, first, ok: list) -> dict:
        result = first.result if isinstance(first.result, dict) else {}
        if not result:
            self.note(f"tool {name}: returned {type(first.result).__name__}, not the record; the scenario "
                      "returns the record it updates")
        key = self._key(first, result) or next(iter(first.args), "id")
        sets = {a: f"${a}" for a in first.args if a != key}
        # the row may live in another tool's table (update_booking on reservations): the one that holds the key
        rid = str(first.args.get(key))
        table = next((t for t, rows in self.world.items() if rid in rows), table)
        before = self.world.get(table, {}).get(rid)
        if before is not None:  # what else the update changed, against the row as read before it
            sets |= {k: v for k, v in result.items() if k not in first.args and before.get(k) != v}
        else:
            self.note(f"tool {name}: no earlier read shows the {table} row it updates; the row is made from "
                      "its result, less the fields it sets: check the starting values")
        for c in ok:  # rows no read showed: as the result shows them, less what the update set
            rid = str(c.args.get(key))
            res = c.result if isinstance(c.result, dict) else {}
            if rid not in self.world.get(table, {}):
                self.add_row(table, rid, {k: v for k, v in {key: c.args.get(key), **res}.items()
                                          if k not in sets or k == key})
        return {"update": table, "key": key, "set": sets, **({"returns": list(result)} if result else {})}

    def _find(self, name: str, table: str, first, ok: list, rows: list) -> dict:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        where, hidden = {}, []
        for a, v in first.args.items():
            if rows and all(str(r.get(a)) == str(v) for r in rows):
                where[a] = f"${a}"
            elif all(a not in r for r in rows):  # the rows do not show it: kept on them, out of the result
                where[a] = f"${a}"
                hidden.append(a)
        for c in ok:
            for r in _as_rows(c.result, table):
                idf = _id_field(r)
                row = {**r, **{a: c.args[a] for a in hidden if a in c.args}}
                self.add_row(table, str(r[idf]) if idf else f"{table}-{len(self.world.get(table, {})) + 1}", row)
        if isinstance(first.result, dict) and sorted(first.result) == ["count", "results"]:
            pass  # already the shape a find returns
        elif not isinstance(first.result, list):
            self.note(f"tool {name}: returns rows as {{results: [...], count: N}}; the trace's "
                      f"{sorted(first.result)} shape is not kept")
        else:
            self.note(f"tool {name}: returns {{results: [...], count: N}} where the trace had a bare list")
        if hidden:
            self.note(f"tool {name}: its rows carry {', '.join(hidden)} (not in the trace's results) so that "
                      "the search finds them")
        return {"find": table, "where": where, "returns": fields}

    def add_row(self, table: str, rid: str, row: dict) -> None:
        tab = self.world.setdefault(table, {})
        tab[rid] = {**tab.get(rid, {}), **row}

    # -- golden path and turns -------------------------------------------------
    def build(self) -> tuple[dict, list[str]]:
        for c in self.s.calls:
            self.tool(c.name)
        for name, t in self.tools.items():  # a table only written to starts empty
            tab = t["effect"].get("insert")
            if tab:
                self.world.setdefault(tab, {})
        world0 = copy.deepcopy(self.world)
        tools = {n: Tool.model_validate(t) for n, t in self.tools.items()}
        steps, outputs, ids = [], {}, {}
        sim = copy.deepcopy(world0)
        for c in self.s.calls:
            if c.error:
                self.note(f"call {c.name} failed in the trace; it is left out of the golden path")
                continue
            base = re.sub(r"[^\w-]", "_", _words(c.name)[-1] if len(_words(c.name)) > 1 else c.name)
            base = base if re.match(r"[A-Za-z_]", base) else f"s_{base}"  # a step id starts with a letter
            sid = base if base not in ids else f"{base}_{ids[base] + 1}"
            ids[base] = ids.get(base, 0) + 1
            args = {a: self.reference(self.mapped.get(_hashable(v), v), outputs) for a, v in c.args.items()}
            steps.append({"id": sid, "tool": c.name, "args": args, "_turn": c.turn})
            out = apply_effect(tools[c.name].effect, resolve(args, outputs), sim)
            outputs[sid] = out.result
            eff = self.tools[c.name]["effect"]
            if "insert" in eff and isinstance(c.result, dict) and eff["id_field"] in c.result:
                # later calls name the trace's new id: they will name the scenario's
                self.mapped[_hashable(c.result[eff["id_field"]])] = out.result.get(eff["id_field"])
        turns = []
        for k, text in enumerate(self.s.turns):
            t: dict[str, Any] = {"user": text, "steps": [st["id"] for st in steps if st["_turn"] == k]}
            said = self.s.answers.get(k, "")
            for old, new in self.mapped.items():
                said = said.replace(str(old), str(new))
            must = self.answer_checks(said, [st["id"] for st in steps if st["_turn"] == k], outputs,
                                      " ".join(self.s.turns[:k + 1]))
            if must:
                t["answer_must_contain"] = must
            turns.append(t)
        for st in steps:
            st.pop("_turn")
        state = []
        for st in steps:
            eff = self.tools[st["tool"]]["effect"]
            if "insert" in eff and {"path": eff["insert"]} not in state:
                state.append({"path": eff["insert"]})
            elif "update" in eff:
                rid = str(resolve(st["args"].get(eff["key"]), outputs))
                state += [{"path": f"{eff['update']}.{rid}.{f}"} for f in eff["set"]
                          if {"path": f"{eff['update']}.{rid}.{f}"} not in state]
        if not state:
            self.note("the trace writes nothing: success is judged only on the answers")
        data = {"name": self.name, "description": f"Imported from {self.s.source} ({self.s.format})",
                "domain": "imported", "system_prompt": self.s.system or Scenario.model_fields["system_prompt"].default,
                "tools": self.tools, "world": world0, "turns": turns, "golden_path": steps,
                "success": {"state": state}}
        return data, self.review

    def reference(self, value: Any, outputs: dict) -> Any:
        """`{step.path}` for a value an earlier result held (the most recent one), else the value."""
        if isinstance(value, bool) or value is None or (isinstance(value, str) and len(value) < 3) \
                or (isinstance(value, (int, float)) and value in (0, 1)) or isinstance(value, (dict, list)):
            return value
        for sid in reversed(list(outputs)):
            path = _find(outputs[sid], value)
            if path is not None:
                return "{" + ".".join([sid, *map(str, path)]) + "}"
        return value

    def answer_checks(self, answer: str, step_ids: list[str], outputs: dict, told: str = "") -> list[str]:
        """References to what this turn's results established and the final answer quoted: per
        step, the first value no earlier result held and the user did not say (ids first)."""
        out = []
        order = list(outputs)
        for sid in step_ids:
            res = outputs.get(sid)
            before = {str(v) for s in order[:order.index(sid)] for _, v in _leaves(outputs[s])} if sid in order else set()
            flat = [(p, v) for p, v in _leaves(res) if isinstance(v, (str, int, float)) and not isinstance(v, bool)
                    and len(str(v)) >= 3 and str(v) not in before and str(v) not in told]
            flat.sort(key=lambda pv: not str(pv[0][-1]).endswith("id"))
            for path, v in flat:
                if str(v) in answer:
                    ref = "{" + ".".join([sid, *map(str, path)]) + "}"
                    if ref not in out:
                        out.append(ref)
                    break
        if out:
            self.note(f"answer checks {', '.join(out)} were read off the model's answers: keep only what a "
                      "correct answer must say")
        return out[:3]


def _hashable(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool, type(None))) else json.dumps(v, sort_keys=True, default=str)


def _leaves(obj: Any, path: tuple = ()) -> list:
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _leaves(v, path + (k,))]
    if isinstance(obj, list):
        return [x for i, v in enumerate(obj) for x in _leaves(v, path + (i,))]
    return [(path, obj)]


def _find(obj: Any, value: Any) -> tuple | None:
    for path, v in _leaves(obj):
        if path and type(v) is type(value) and v == value:
            return path
    return None


def to_scenario(session: Session, name: str) -> tuple[dict, list[str], dict]:
    """(scenario data, what a person should review, the trace's new ids -> the scenario's).
    TraceError when the calls' values cannot make a scenario (a tool's arguments of another shape)."""
    b = Builder(session, name)
    try:
        data, review = b.build()
    except (AttributeError, TypeError, KeyError, ValueError) as e:
        raise TraceError(f"{session.source}: the recorded calls cannot make a scenario ({type(e).__name__}: "
                         f"{validation_text(e)})") from None
    return data, review, b.mapped


def validation_text(e: Exception) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):  # pydantic: the field paths and messages, not the class's banner
        return "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in errors())
    return str(e)


def differences(scenario, session: Session, mapped: dict | None = None) -> list[str]:
    """Where the scenario's golden path, run on its world, does not make the trace's calls
    (ids the trace's inserts made read as the scenario's)."""
    g = run_golden(scenario)
    out = [f"golden path: {msg}" for _, msg in g.problems]
    calls = [c for c in session.calls if not c.error]
    mapped = mapped or {}
    for step, call in zip(scenario.golden_path, calls):
        got = g.args.get(step.id)
        want = {a: mapped.get(_hashable(v), v) for a, v in call.args.items()}
        if step.tool != call.name or got != want:
            out.append(f"golden step {step.id}: makes {step.tool}({json.dumps(got, default=str)}), the trace "
                       f"called {call.name}({json.dumps(call.args, default=str)})")
    return out


def dump_yaml(data: dict, review: list[str]) -> str:
    import yaml
    head = "".join(f"# review: {line}\n" for line in review)
    return head + yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False, allow_unicode=True,
                                 width=100)
