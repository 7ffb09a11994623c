"""Reading input files: one strict YAML loader for scenarios, sweeps and shipped summaries.

`load_yaml` returns a file's data with the line of every field, or raises ScenarioError
naming the file, the line and the field for everything a YAML library accepts but a
user almost never means: bytes that are not UTF-8, a key given twice (YAML keeps the
last one silently), an alias inside the collection it names (it would recurse forever),
nesting deeper than MAX_DEPTH, aliases expanding past MAX_NODES values, and numbers
that are not finite (.nan, .inf: records are JSON, which has neither).
"""
from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from .spec import nonfinite

# Hand-written scenarios nest about 6 levels; 100 is far beyond any real file and far
# below Python's recursion limit, which the composer and every walk over the data use.
MAX_DEPTH = 100
# Aliases share one node many times over ("billion laughs"); every later step (line
# index, validation, JSON digests) walks the expanded tree, so bound its size.
MAX_NODES = 2_000_000
# A scenario or sweep file is hand-written; anything larger is the wrong file (say, a
# results log) and would take minutes to parse.
MAX_BYTES = 16 * 2**20
MERGE_TAG = "tag:yaml.org,2002:merge"


class ScenarioError(Exception):
    """Every problem found in one input source, each with its field path and line."""

    def __init__(self, source: str, problems: list[tuple[str, int | None, str]]):
        self.source, self.problems = source, problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s)"]
        for path, line, msg in self.problems:
            lines.append(f"  {self.source}:{line or '?'}: {path or '<root>'}: {msg}" if line
                         else f"  {self.source}: {path or '<root>'}: {msg}")
        return "\n".join(lines)


class _Problem(yaml.YAMLError):
    """A problem found while composing, carried out to load_yaml with its line."""

    def __init__(self, line: int, message: str):
        self.line, self.message = line, message
        super().__init__(message)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses recursive aliases and nesting deeper than MAX_DEPTH."""

    def __init__(self, stream):
        super().__init__(stream)
        self.open_nodes: list = []  # collections being composed, outermost first

    def compose_node(self, parent, index):
        # The composer hands each child its parent: every collection in the stack up to
        # that parent is still open, and the ones after it are finished.
        if parent is None:
            self.open_nodes = []
        elif any(n is parent for n in self.open_nodes):
            while self.open_nodes[-1] is not parent:
                self.open_nodes.pop()
        else:
            self.open_nodes.append(parent)
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if any(n is target for n in self.open_nodes):
                raise _Problem(event.start_mark.line + 1, f"alias *{event.anchor} is inside the collection "
                               f"&{event.anchor} it names: recursive aliases are not allowed")
        elif len(self.open_nodes) >= MAX_DEPTH:
            raise _Problem(event.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels "
                           "(the limit for scenario and sweep files)")
        return super().compose_node(parent, index)

    def construct_object(self, node, deep=False):
        # PyYAML resolves `0x_` to an int and `2001-13-45` to a date by their shape, then
        # fails converting them with a bare ValueError: say where, and how to keep the text
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, KeyError, AttributeError, TypeError) as e:
            # PyYAML's converters fail with whatever they hit (!!bool maybe: KeyError)
            if isinstance(e, yaml.YAMLError) or not isinstance(node, yaml.ScalarNode):
                raise
            kind = {"int": "a whole number", "timestamp": "a date", "float": "a number",
                    "bool": "true or false"}.get(node.tag.rsplit(":", 1)[-1], node.tag)
            why = "" if isinstance(e, (KeyError, AttributeError, TypeError)) else f" ({e})"
            raise _Problem(node.start_mark.line + 1, f"{node.value!r} reads as {kind} but is not a valid "
                           f"one{why}; quote it to keep it as text") from None


def expanded_size(node, memo: dict | None = None) -> int:
    """Values in the tree once every alias is expanded (the node graph is acyclic here)."""
    memo = {} if memo is None else memo
    if id(node) not in memo:
        kids = [x for kv in node.value for x in kv] if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        memo[id(node)] = 1 + sum(expanded_size(k, memo) for k in kids)
    return memo[id(node)]


def _scalar_key(node) -> Any:
    """A mapping key as YAML reads it (so `1` and `01` are one key), or None if not a scalar."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == MERGE_TAG:
        return None
    if node.tag == "tag:yaml.org,2002:str":
        return (node.value,)
    try:
        return (yaml.constructor.SafeConstructor().construct_object(node),)
    except yaml.YAMLError:
        return (node.value,)


def line_index(node, path=(), out=None, dups=None) -> dict[tuple, int]:
    """The line of every field path; a key given twice in one mapping goes to `dups`."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.start_mark.line + 1)
            line_index(v, path + (key,), out, dups)
            out[path + (key,)] = k.start_mark.line + 1  # a field's line is its key's
            norm = _scalar_key(k)
            if norm is not None and dups is not None and norm in seen:
                dups.append((path + (key,), seen[norm], k.start_mark.line + 1))
            seen.setdefault(norm, k.start_mark.line + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            line_index(v, path + (i,), out, dups)
    return out


def line_for(lines: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(str(p) if not isinstance(p, int) else p for p in loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def dotted(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def nonfinite_problems(data: Any, lines: dict) -> list[tuple[str, int | None, str]]:
    return [(dotted(p), line_for(lines, p), "not a finite number: inputs take finite numbers only "
             "(no .nan or .inf; results are JSON, which has neither)") for p in nonfinite(data)]


def read_text(path: str | Path) -> str:
    """A file's text, decoded as UTF-8; ScenarioError says what is wrong with it."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise ScenarioError(source, [("", None, "is a directory, not a file")]) from None
    except OSError as e:
        raise ScenarioError(source, [("", None, f"cannot read file: {e.strerror or e}")]) from None
    if len(raw) > MAX_BYTES:
        raise ScenarioError(source, [("", None, f"file is larger than {MAX_BYTES // 2**20} MiB, "
                                      "the limit for scenario and sweep files")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - raw.rfind(b"\n", 0, e.start)
        raise ScenarioError(source, [("", line, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at line {line}, "
                                      f"column {col}); save the file as UTF-8")]) from None


def _yaml_problem(e: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    if isinstance(e, _Problem):
        return e.line, e.message
    if isinstance(e, yaml.reader.ReaderError):
        return text.count("\n", 0, e.position) + 1, f"malformed YAML: {e.reason}: character #x{e.character:04x} " \
            "is not allowed in YAML text"
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    context = getattr(e, "context", None)
    return mark.line + 1 if mark else None, f"malformed YAML: {context + ', ' if context else ''}{problem}"


def parse_yaml(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """(data, line of every field path) of one YAML document; ScenarioError otherwise."""
    try:
        loader = StrictLoader(text)  # reading the text already rejects control characters
    except yaml.YAMLError as e:
        raise ScenarioError(source, [("", *_yaml_problem(e, text))]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        if expanded_size(node) > MAX_NODES:
            raise _Problem(1, f"aliases expand to more than {MAX_NODES:,} values (the limit for one file)")
        dups: list = []
        lines = line_index(node, dups=dups)
        data = loader.construct_document(node)
    except yaml.YAMLError as e:
        raise ScenarioError(source, [("", *_yaml_problem(e, text))]) from None
    finally:
        loader.dispose()
    # an aliased mapping is walked once per alias: report each duplicate once
    once = {(first, second): p for p, first, second in dups}
    problems = [(dotted(p), second, f"key {p[-1]!r} is given twice (lines {first} and {second}); "
                 "YAML would keep only the last") for (first, second), p in once.items()]
    problems += nonfinite_problems(data, lines)
    if problems:
        raise ScenarioError(source, problems)
    return data, lines


def load_yaml(path: str | Path) -> tuple[Any, dict[tuple, int]]:
    """Read and parse one YAML file: (data, line of every field path)."""
    return parse_yaml(read_text(path), str(path))


# pydantic's messages for these state the violated bound; the field's description says why
BOUND_ERRORS = {"finite_number", "greater_than", "greater_than_equal", "less_than", "less_than_equal",
                 "int_from_float", "int_parsing", "float_parsing", "int_type", "float_type", "dict_type"}


def _unwrap(ann: Any) -> Any:
    while get_origin(ann) in (Union, UnionType, Annotated):
        ann = next(a for a in get_args(ann) if a is not type(None))
    return ann


def _field_at(model: Any, loc: tuple) -> tuple[Any, Any]:
    """(the innermost model field on a validation error's path, the type at its end)."""
    info, ann = None, model
    for p in loc:
        ann = _unwrap(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel) and p in ann.model_fields:
            info = ann.model_fields[p]
            ann = info.annotation
        elif get_origin(ann) in (list, tuple) and isinstance(p, int):
            ann = get_args(ann)[0]
        elif get_origin(ann) is dict:
            ann = get_args(ann)[1]
        else:
            return info, None
    return info, _unwrap(ann)


def validation_problems(e: ValidationError, model: type[BaseModel], lines: dict,
                        drop: tuple = ()) -> list[tuple[str, int | None, str]]:
    """A pydantic error as (field path, line, message) problems; a broken bound also
    quotes the field's description, which states the limits and their reason."""
    out = []
    for err in e.errors():
        loc = tuple(p for p in err["loc"] if p not in drop)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            _, ann = _field_at(model, loc[:-1])
            known = isinstance(ann, type) and issubclass(ann, BaseModel)
            msg = "unknown field" + (f"; known fields here: {', '.join(ann.model_fields)}" if known else "")
        elif err["type"] in BOUND_ERRORS:
            if err["type"] == "dict_type":
                msg = f"should be a mapping (key: value), not {_kind(err.get('input'))}"
            info, _ = _field_at(model, loc)
            if info is not None and info.description:
                msg += f" ({info.description})"
        out.append((dotted(loc), line_for(lines, loc), msg))
    return out


def _kind(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "a list"
    return "text" if isinstance(value, str) else f"the value {value!r}"
