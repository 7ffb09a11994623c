"""Fuzzing the input boundary with Hypothesis: scenario files, sweep files, `--fault` strings,
command-line options, damaged results directories, awkward paths and external result tables.

Every case runs the real command line in this process and holds it to the contract of
tests/test_inputs.py: no traceback (an exception other than SystemExit is one), exit code 0
or 2, on exit 2 a message naming the file, option or field, and no existing result lost:
readers never change the logs, a command that fails leaves the results directory as it
found it, and a resume keeps every good record line it found.

Inputs start from the shipped files (scenarios/*.yaml, scenarios/sweeps/*.yaml, real results
directories made once per session) and are mutated at random field paths, at the text level
(duplicate keys, aliases, tags, bytes that are not UTF-8, deep nesting, torn lines), or
generated as junk. Jobs stay tiny: valid trial counts are 1 or 2, sweeps that state more than
SWEEP_TRIAL_CAP trials or chains longer than MAX_FUZZ_LENGTH are not run.

Nine properties, each twice:
  test_<property>        short profile: 12-40 examples, derandomized (the same examples on
                         every run, for CI), about a minute for the file; with ATTRITION_FUZZ=long
                         the long profile instead
  test_<property>_long   marked slow (run with -m slow): the long profile, random, 500 examples
                         (ATTRITION_FUZZ_EXAMPLES=N to change it)
test_regression_*: the smallest input of each failure the properties found, kept as examples.
ATTRITION_FUZZ_LIMIT=S   wall-clock seconds one command may take before it counts as a hang (60)
ATTRITION_FUZZ_TIMES=F   append each command's wall time to the file F
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import shlex
import shutil
import signal
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, note, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from typer.testing import CliRunner

from simulator.cli import app

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_TEXTS = {p.stem: p.read_text() for p in sorted((ROOT / "scenarios").glob("*.yaml"))}
SWEEP_TEXTS = {p.stem: p.read_text() for p in sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml"))}
RUNNER = CliRunner()
STORE_FILES = ("records.jsonl", "events.jsonl", "manifest.json", "results.duckdb", "scenarios")

# ---------------------------------------------------------------------------------------------
# profiles

_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
           HealthCheck.filter_too_much, HealthCheck.large_base_example]
settings.register_profile("attrition-fuzz-short", deadline=None, derandomize=True, database=None,
                          suppress_health_check=_HEALTH, print_blob=False,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
settings.register_profile("attrition-fuzz-long", deadline=None, derandomize=False, database=None,
                          suppress_health_check=_HEALTH, print_blob=True,
                          max_examples=int(os.environ.get("ATTRITION_FUZZ_EXAMPLES", "500")))
SHORT = settings.get_profile("attrition-fuzz-short")
LONG = settings.get_profile("attrition-fuzz-long")
LONG_MODE = os.environ.get("ATTRITION_FUZZ", "").lower() == "long"
CMD_LIMIT_S = float(os.environ.get("ATTRITION_FUZZ_LIMIT", "60"))
TIMES = os.environ.get("ATTRITION_FUZZ_TIMES")  # a file: each command's wall time is appended to it


def twins(body, short_examples: int):
    """Two tests of one property: the default one (short profile, or the long one with
    ATTRITION_FUZZ=long) and a slow-marked one with the long profile."""
    def make(suffix: str, prof: settings):
        def test(fz, data):
            body(fz, data)
        test.__name__ = test.__qualname__ = f"test_{body.__name__}{suffix}"
        return settings(prof)(given(data=st.data())(test))
    default = make("", LONG if LONG_MODE else settings(SHORT, max_examples=short_examples))
    return default, pytest.mark.slow(make("_long", LONG))


# ---------------------------------------------------------------------------------------------
# running the command line in this process


class Hang(BaseException):
    """A command that did not answer within CMD_LIMIT_S (a BaseException: nothing swallows it)."""


@contextmanager
def time_limit(seconds: float):
    def alarm(signum, frame):
        raise Hang(f"no answer after {seconds:g} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Outcome:
    args: list[str]
    code: int
    stdout: str
    stderr: str
    output: str
    tb: str | None  # the traceback of an exception other than SystemExit

    @property
    def cmd(self) -> str:
        return "attrition " + shlex.join(self.args)


def attrition(*args) -> Outcome:
    argv = [str(a) for a in args]
    try:
        note(f"$ attrition {shlex.join(argv)}")
    except InvalidArgument:  # outside a property (the regression examples): nothing to note
        pass
    t0 = time.monotonic()
    try:
        with time_limit(CMD_LIMIT_S):
            res = RUNNER.invoke(app, argv, catch_exceptions=True)
    except Hang as e:
        pytest.fail(f"attrition {shlex.join(argv)}: {e}")
    if TIMES:
        with open(TIMES, "a") as log:
            log.write(f"{time.monotonic() - t0:8.3f} {res.exit_code} {shlex.join(argv)[:300]}\n")
    tb = None
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        tb = "".join(traceback.format_exception(*res.exc_info))
    return Outcome(argv, res.exit_code, res.stdout, res.stderr, res.output, tb)


def mentions(msg: str, name: str) -> bool:
    """`name` in `msg` as a whole word (so the option `out` is not found in `about`)."""
    return re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", msg) is not None


def check(o: Outcome, names=(), allow_1: str | None = None) -> None:
    """No traceback; exit 0 or 2 (1 only when `allow_1` is in the message); on exit 2 a
    message that names one of `names` (the file, option or field the input came from)."""
    tail = o.output[-4000:]
    assert o.tb is None, f"{o.cmd}\nraised (exit {o.code}):\n{o.tb[-6000:]}\noutput:\n{tail}"
    assert "Traceback" not in o.output, f"{o.cmd}\nprinted a traceback (exit {o.code}):\n{tail}"
    ok = {0, 2} | ({1} if allow_1 and allow_1 in o.output else set())
    assert o.code in ok, f"{o.cmd}\nexit {o.code}:\n{tail}"
    if o.code == 2:
        msg = o.stderr.strip()
        assert msg, f"{o.cmd}\nexit 2 with no message; stdout:\n{o.stdout[-2000:]}"
        names = [str(n) for n in names if n is not None and str(n).strip()]
        assert not names or any(mentions(msg, n) for n in names), \
            f"{o.cmd}\nexit 2, but the message names none of {names[:12]}:\n{msg[-3000:]}"


@pytest.fixture(scope="session")
def fz_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    (base / "cwd").mkdir()
    return base


@pytest.fixture
def fz(fz_base, monkeypatch):
    """The session's scratch folder; commands run from an empty folder of it (results/ that a
    command writes by default lands there, never in the repository)."""
    monkeypatch.chdir(fz_base / "cwd")
    return fz_base


@contextmanager
def scratch(base: Path):
    d = Path(tempfile.mkdtemp(dir=base, prefix="ex-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def is_dir(p: Path | None) -> bool:
    try:
        return p is not None and p.is_dir()
    except OSError:  # a name too long for the file system
        return False


def snapshot(d: Path) -> dict[str, bytes | None]:
    """The bytes of a results directory's logs and manifest (None: not a readable file)."""
    out = {}
    for name in ("records.jsonl", "events.jsonl", "manifest.json"):
        p = d / name
        try:
            out[name] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
        except OSError:
            out[name] = None
    return out


def lines_of(blob: bytes | None) -> list[bytes]:
    return [] if blob is None else [ln for ln in blob.splitlines(keepends=True) if ln.endswith(b"\n")]


def assert_unchanged(d: Path, before: dict, o: Outcome, only=None) -> None:
    after = snapshot(d)
    for name, was in before.items():
        if only and name not in only:
            continue
        assert after[name] == was, f"{o.cmd}\nexit {o.code} changed {d / name}:\n{o.output[-2000:]}"


# ---------------------------------------------------------------------------------------------
# values: the kinds of wrong a user (or a broken tool) writes

BAD_NUMBERS = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324, 1e-7, -0.0, 0, -1, 1,
                     0.5, 1.5, 2, 3, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -2**63 - 1, 10**30, 10**400,
                     4096, 4097, 100_000, 100_001, 1_000_000, 1_000_001, 10_000_000, 10_000_001,
                     2_592_000, 2_592_001, 10**11 + 1]),
    st.integers(), st.floats())
BAD_STRINGS = st.one_of(
    st.text(max_size=16),
    st.sampled_from(["", " ", "\t", "null", "~", "yes", "no", "on", ".nan", ".inf", "1e400", "-1", "{", "}",
                     "{x}", "{customer}", "{customer.results.0}", "{order.items.99.sku}", "{{x}}", "{s0.next_id}",
                     "$", "$email", "$nosuch", "$$", "a" * 5000, "é✓💥", "\u202e", "\x00", "\x7f", "\x85", "-", "*",
                     "&", "!tag", "%", "@", "`", "C-100", "O-5521", "chain", "chain:length=2", "react", "strong",
                     "weak", "rate_limit", "rate_limit:rate=nan", "support_refund", "../../etc/passwd", "/", ".",
                     "none", "tools", "reads", "writes", "model", "model:agent", "find_customer"]))
SCALARS = st.one_of(st.none(), st.booleans(), BAD_NUMBERS, BAD_STRINGS)
KEYS = st.one_of(BAD_STRINGS, st.integers(-3, 3), st.booleans(), st.none(), st.just(1.5))
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(KEYS, c, max_size=3),
                      max_leaves=6)


def num_text(valid: list[str], count_max: int | None = None) -> st.SearchStrategy[str]:
    """An option value: a valid one or a number (or not) as typed. For a count (`count_max`:
    its largest valid value) no valid value above 2 is drawn: the fuzzer runs tiny jobs only."""
    ints = st.integers()
    junk = ["nan", "-nan", "inf", "-inf", "1e400", "-1e400", "1e-400", "0", "-0", "-1", "1.5", "0x10", "1_000",
            " 1", "1 ", "", "abc", "2**63", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
            "18446744073709551616", "1" * 400, "١٢", "true", "None"]
    if count_max is not None:
        ints = ints.filter(lambda x: x <= 2 or x > count_max)
        junk = [j for j in junk if j not in ("1_000", "١٢")]  # int() reads both: 1000 and 12 trials
    return st.one_of(st.sampled_from(valid), st.sampled_from(junk), ints.map(str), st.floats().map(repr))


# ---------------------------------------------------------------------------------------------
# mutating YAML documents


def all_paths(node, prefix=()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += all_paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += all_paths(v, prefix + (i,))
    return out


def get_at(node, path):
    for p in path:
        node = node[p]
    return node


def nested(depth: int, leaf="x"):
    v = leaf
    for _ in range(depth):
        v = [v]
    return v


@st.composite
def mutated(draw, doc, known: dict):
    """`doc` with 1-4 random edits at random field paths, plus (sometimes) one shared or
    recursive alias; the edits are noted for the reproduction."""
    doc = copy.deepcopy(doc)
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        paths = all_paths(doc)
        path = draw(st.sampled_from(paths))
        node = get_at(doc, path)
        op = draw(st.sampled_from(["replace", "number", "string", "delete", "add_key", "add_known", "rename_key",
                                   "dup_item", "empty", "wrap", "deep"]))
        parent, key = (get_at(doc, path[:-1]), path[-1]) if path else (None, None)
        if op == "replace" and path:
            parent[key] = draw(VALUES)
        elif op == "number" and path:
            parent[key] = draw(BAD_NUMBERS)
        elif op == "string" and path:
            parent[key] = draw(BAD_STRINGS)
        elif op == "delete" and path:
            del parent[key]
        elif op == "add_key" and isinstance(node, dict):
            node[draw(KEYS)] = draw(VALUES)
        elif op == "add_known":
            field = draw(st.sampled_from(sorted(known)))
            target = node if isinstance(node, dict) else doc if isinstance(doc, dict) else None
            if target is None:
                continue
            target[field] = draw(known[field])
        elif op == "rename_key" and path and isinstance(parent, dict):
            new = draw(KEYS)
            parent[new] = parent.pop(key)
        elif op == "dup_item" and isinstance(node, list) and node:
            node.insert(draw(st.integers(0, len(node))), copy.deepcopy(draw(st.sampled_from(node))))
        elif op == "empty" and path:
            parent[key] = type(node)() if isinstance(node, (dict, list, str)) else None
        elif op == "wrap" and path:
            parent[key] = draw(st.sampled_from([[node], {"value": node}]))
        elif op == "deep" and path:
            parent[key] = nested(draw(st.sampled_from([5, 98, 99, 100, 101, 150])))
        else:
            continue
        edits.append((op, path))
    if draw(st.integers(0, 5)) == 0:  # one alias: the same node in two places, or inside itself
        paths = [p for p in all_paths(doc) if p]
        if paths:
            a, b = draw(st.sampled_from(paths)), draw(st.sampled_from(paths))
            src = get_at(doc, a)
            if isinstance(src, (dict, list)) and b[:len(a)] == a:
                get_at(doc, b[:-1])[b[-1]] = src  # a collection inside itself: a recursive alias
            elif isinstance(src, (dict, list)):
                get_at(doc, b[:-1])[b[-1]] = src
            edits.append(("alias", a, b))
    note(f"edits: {edits!r}")
    return doc


def dump(doc) -> bytes:
    try:
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100).encode("utf-8")
    except (yaml.YAMLError, RecursionError, TypeError, ValueError):
        try:
            return json.dumps(doc, default=str).encode()  # JSON is YAML too
        except (TypeError, ValueError, RecursionError):
            return repr(doc).encode("utf-8", "surrogatepass")


TAGS = ['!!python/object/apply:os.system ["true"]', "!!binary aGk=", "!!set {a, b}", "!!timestamp 2001-12-14",
        "!!omap [a: 1]", "!custom x", "!!str 5", '!!int "x"', "!!float abc", "!!null x", "!!bool maybe",
        "!!python/name:os.system", "!!map [1]", "!!seq {a: 1}", "!!timestamp 2001-12-14t21:59:43.10-05:00",
        "!!timestamp x", "!!timestamp 2001-13-45", "!!binary '@@@'", "!!int 0x_", "!!float 1_e"]
TOP_SNIPPETS = ["<<: {name: merged}", "<<: 5", "<<: [1, 2]", "<<: *nosuch", "? [a, b]\n: 1", "? {a: 1}\n: 2",
                "[1]: 2", "{a: 1}: 3", "zz: &n x\nzz2: *n", "zz: *undefined", "zz: &a [*a]", "zz: &a {b: *a}",
                "%YAML 1.1", "---", "...", "zz: !!binary aGk=", "zz: !!set {a, b}", "zz: 2001-12-14",
                "zz: 0o17", "zz: 1_000", "zz: 0x1F", "zz: '\\ud800'", 'zz: "\\ud800"', "zz: \"\\x00\"",
                "zz: |\n  block\n   text", "zz: >-\n  folded", "zz: [a, b", "zz: {a: 1", "zz: 'open",
                "\tzz: tab", "zz:  - a\n - b", "- list after mapping"]


def laughs(levels: int) -> str:
    """Aliases that expand to 10**levels values (a bounded billion laughs)."""
    lines = ["zzl0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"zzl{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines)


@st.composite
def damaged_text(draw, blob: bytes):
    """Text-level damage to a YAML file: what no data structure can express."""
    op = draw(st.sampled_from(["none", "none", "dup_key", "non_utf8", "bom", "truncate", "flip", "tag", "snippet",
                               "deep_text", "laughs", "control", "crlf", "cr"]))
    lines = blob.split(b"\n")
    at = draw(st.integers(0, max(0, len(blob))))
    keyed = [i for i, ln in enumerate(lines) if re.match(rb"^\s*[A-Za-z_][\w-]*:", ln)]
    if op == "dup_key" and keyed:
        i = draw(st.sampled_from(keyed))
        j = draw(st.integers(i + 1, len(lines)))
        lines.insert(j, lines[i].split(b":")[0] + b": duplicate")
        blob = b"\n".join(lines)
    elif op == "non_utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\x80", b"\xfe\xff", b"\xed\xa0\x80", b"\xc0\xaf"]))
        blob = blob[:at] + bad + blob[at:]
    elif op == "bom":
        blob = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])) + blob
        if blob.startswith(b"\xff\xfe"):
            blob = b"\xff\xfe" + blob[2:].decode("utf-8", "replace").encode("utf-16-le")
    elif op == "truncate":
        blob = blob[:at]
    elif op == "flip" and blob:
        i = min(at, len(blob) - 1)
        blob = blob[:i] + bytes([draw(st.integers(0, 255))]) + blob[i + 1:]
    elif op == "tag" and keyed:
        i = draw(st.sampled_from(keyed))
        lines[i] = lines[i].split(b":")[0] + b": " + draw(st.sampled_from(TAGS)).encode()
        blob = b"\n".join(lines)
    elif op == "snippet":
        blob = blob.rstrip(b"\n") + b"\n" + draw(st.sampled_from(TOP_SNIPPETS)).encode() + b"\n"
    elif op == "deep_text" and keyed:
        n = draw(st.sampled_from([99, 100, 101, 1000, 100_000]))
        i = draw(st.sampled_from(keyed))
        deep = draw(st.sampled_from([b"[" * n + b"]" * n, b"{a: " * n + b"1" + b"}" * n]))
        lines[i] = lines[i].split(b":")[0] + b": " + deep
        blob = b"\n".join(lines)
    elif op == "laughs":
        blob = blob.rstrip(b"\n") + b"\n" + laughs(draw(st.integers(1, 7))).encode() + b"\n"
    elif op == "control":
        c = draw(st.sampled_from(["\x00", "\x1b", "\x85", "\ufeff", "\u2028", "\x07", "\ufffe"])).encode()
        blob = blob[:at] + c + blob[at:]
    elif op == "crlf":
        blob = blob.replace(b"\n", b"\r\n")
    elif op == "cr":
        blob = blob.replace(b"\n", b"\r")
    note(f"text damage: {op} at {at}")
    return blob


YAML_TOKENS = ["name:", "x", " ", "  ", "\n", "- ", "[", "]", "{", "}", ",", ":", ": ", "&a ", "*a", "!!str ", "? ",
               "---\n", "...\n", "#", "'", '"', "|", ">", "%YAML 1.1\n", "<<: ", "tools", "turns", "golden_path",
               "world", "scenarios", "faults", "1", "-1", ".nan", ".inf", "1e400", "\t", "null", "true", "\\",
               "\x00", "é", "\ufeff"]
JUNK_FILES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(st.one_of(st.sampled_from(YAML_TOKENS).map(str.encode), st.binary(max_size=2)), max_size=60)
    .map(b"".join))


# ---------------------------------------------------------------------------------------------
# fault strings

def _fault_names():
    from simulator.registry import names
    return names("fault")


def _fault_keys():
    from simulator.faults.triggers import TRIGGER_KEYS
    from simulator.registry import entries
    keys = set(TRIGGER_KEYS) | {"target", "id"}
    try:
        for e in entries("fault"):
            keys |= set(getattr(getattr(e.obj, "params", None), "model_fields", {}))
    except Exception:  # the registry's shape is not this test's business: names are enough
        pass
    return sorted(keys)


FAULT_NAMES = _fault_names()
FAULT_KEYS = _fault_keys()
FAULT_VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e400", "1e-400", "5e-324", "-1", "0", "1", "0.5", "0.3", "2", "1e9",
                     "1e12", "abc", "", "true", "false", "2|5", "1|", "|", "||", "0|1", "1-2", "5-1", "0-1e400",
                     "100-400|900-1000", "-5-3", "1--2", "a-b", "early", "late", "mid", "single", "persistent",
                     "intermittent", "burst", "model", "model:agent", "model:", "tools", "reads", "writes",
                     "turn", "history", "get_ticket", "find_customer", "nosuch", "rename", "drop", "lost",
                     "rollback", "1000000", "1000001", "10000000", "10000001", "2592000", "2592001", "256",
                     "255", "a" * 300, "é", "\x00", "=", ":", ","]),
    st.integers().map(str), st.floats().map(repr), st.text(max_size=8))


@st.composite
def fault_text(draw):
    name = draw(st.one_of(st.sampled_from(FAULT_NAMES), st.sampled_from(FAULT_NAMES).map(str.upper),
                          st.sampled_from(["", " ", "rate-limit", "nosuch", "rate_limit ", ":", "model:agent"]),
                          st.text(max_size=10)))
    items = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 9))
        key = draw(st.one_of(st.sampled_from(FAULT_KEYS), st.text(max_size=6)))
        if kind == 0:
            items.append(key)  # no `=`
        elif kind == 1:
            items.append(f"{key}=={draw(FAULT_VALUES)}")
        else:
            items.append(f"{key}={draw(FAULT_VALUES)}")
    sep = draw(st.sampled_from([":", ":", ":", "::", " : ", ""])) if items else draw(st.sampled_from(["", ":", ":,"]))
    return name + sep + ",".join(items)


# ---------------------------------------------------------------------------------------------
# 1. scenario files


def _scenario_known():
    from simulator.scenario import Scenario
    known = {f: VALUES for f in Scenario.model_fields}
    known["faults"] = st.lists(st.one_of(fault_text(), st.dictionaries(
        st.sampled_from(FAULT_KEYS + ["name"]), st.one_of(st.sampled_from(FAULT_NAMES), SCALARS), max_size=4)),
        max_size=3)
    known["budgets"] = st.dictionaries(st.sampled_from(["max_steps", "max_model_calls", "max_tool_calls",
                                                        "max_tokens", "max_sim_time_s", "max_nope"]),
                                       BAD_NUMBERS, max_size=3)
    known["user_think_time"] = st.dictionaries(st.sampled_from(["median_s", "p95_s", "mean_s"]), BAD_NUMBERS,
                                               max_size=2)
    known["difficulty"] = BAD_NUMBERS
    return known


SCENARIO_KNOWN = _scenario_known()


def scenario_files(fz, data):
    """Mutated shipped scenarios: `validate FILE` and `run FILE -n 1` agree and fail cleanly."""
    base = data.draw(st.sampled_from(sorted(SCENARIO_TEXTS)), label="shipped scenario")
    doc = data.draw(mutated(yaml.safe_load(SCENARIO_TEXTS[base]), SCENARIO_KNOWN), label="mutated")
    blob = data.draw(damaged_text(dump(doc)), label="file bytes")
    with scratch(fz) as d:
        f = d / f"{base}-fuzzed.yaml"
        f.write_bytes(blob)
        v = attrition("validate", f)
        check(v, [f.name])
        r = attrition("run", f, "-n", 1, "--out", d / "out")
        check(r, [f.name])
        assert (v.code == 0) == (r.code == 0), \
            f"validate and run disagree on {f.name}:\n{v.cmd} -> {v.code}\n{v.output[-1500:]}\n" \
            f"{r.cmd} -> {r.code}\n{r.output[-1500:]}"


def junk_scenario_files(fz, data):
    """Bytes that are barely (or not) YAML, as a scenario and as a sweep."""
    blob = data.draw(JUNK_FILES, label="file bytes")
    with scratch(fz) as d:
        f = d / "junk.yaml"
        f.write_bytes(blob)
        v = attrition("validate", f)
        check(v, [f.name])
        r = attrition("run", f, "-n", 1, "--out", d / "out")
        check(r, [f.name])
        s = attrition("sweep", f, "--executor", "serial", "--out", d / "sweep")
        check(s, [f.name])


test_scenario_files, test_scenario_files_long = twins(scenario_files, 16)
test_junk_scenario_files, test_junk_scenario_files_long = twins(junk_scenario_files, 20)


# ---------------------------------------------------------------------------------------------
# 2. sweep files

SWEEP_TRIAL_CAP = 12  # a mutated sweep that states more trials than this is not run
MAX_FUZZ_LENGTH = 32  # nor one with a longer chain


def small_sweep(text: str) -> dict:
    """A shipped sweep cut down to a few trials, every kind of entry kept."""
    d = yaml.safe_load(text)
    d["replicates"] = 1
    axes = []
    for ax in d["scenarios"]:
        ax = dict(ax) if isinstance(ax, dict) else {"ref": ax}
        if "params" in ax:
            ax["params"] = {k: ([x for x in v if x <= 4][:2] or v[:1] if k == "length" else v[:1])
                            if isinstance(v, list) else v for k, v in ax["params"].items()}
        axes.append(ax)
    d["scenarios"] = [a for a in axes if a["ref"] == "chain"][:1] + [a for a in axes if a["ref"] != "chain"][:1]
    agents = d.get("agents", ["react"])
    d["agents"] = agents[:1] + [a for a in agents if isinstance(a, dict)][:1]
    d["profiles"] = d.get("profiles", ["strong"])[:2]
    faults = d.get("faults", {"none": []})
    d["faults"] = dict(list(faults.items())[:2])
    while _trials(d) > 8 and len(d["scenarios"]) > 1:
        d["scenarios"].pop()
    return d


def _trials(d: dict) -> int:
    cells = sum(math.prod(len(v) if isinstance(v, list) else 1 for v in a.get("params", {}).values())
                for a in d["scenarios"])
    return cells * len(d["agents"]) * len(d["profiles"]) * len(d["faults"]) * d["replicates"]


SMALL_SWEEPS = {name: small_sweep(text) for name, text in SWEEP_TEXTS.items()}


def _sweep_known():
    from simulator.sweep import SweepFile
    known = {f: VALUES for f in SweepFile.model_fields}
    known["faults"] = st.dictionaries(BAD_STRINGS, st.lists(fault_text(), max_size=2), max_size=2)
    known["scenarios"] = st.lists(st.one_of(
        st.sampled_from(["chain", "chain:length=2", "support_refund", "nosuch", "chain:length=1e400", "chain:x=1"]),
        st.fixed_dictionaries({"ref": st.sampled_from(["chain", "support_refund", "nosuch", ""])},
                              optional={"params": st.dictionaries(st.sampled_from(["length", "task", "turns", "x"]),
                                                                  st.one_of(BAD_NUMBERS, st.lists(BAD_NUMBERS,
                                                                                                  max_size=2)),
                                                                  max_size=2)})), max_size=2)
    known["agents"] = st.lists(st.one_of(st.sampled_from(["react", "react-retry", "nosuch", "", "math:pi"]),
                                         st.fixed_dictionaries({"ref": st.sampled_from(["react", "react-retry",
                                                                                        "circuit-breaker"])},
                                                               optional={"params": st.dictionaries(
                                                                   st.sampled_from(["idempotency", "max_attempts",
                                                                                    "initial_s", "threshold", "x"]),
                                                                   SCALARS, max_size=2),
                                                                   "label": BAD_STRINGS})), max_size=2)
    known["replicates"] = BAD_NUMBERS
    known["seed"] = BAD_NUMBERS
    known["concurrency"] = BAD_NUMBERS
    known["budgets"] = SCENARIO_KNOWN["budgets"]
    return known


SWEEP_KNOWN = _sweep_known()


def too_big(path: Path) -> bool:
    """Whether a sweep file, if it is valid, states more work than the fuzzer may run."""
    from simulator.sweep import load_sweep
    try:
        sw = load_sweep(path)
    except Exception:  # invalid (or a crash): the command must say so, and it runs nothing
        return False
    if sw.size() > SWEEP_TRIAL_CAP:
        return True
    for ax in sw.scenarios:
        for k, v in ax.params.items():
            for x in v if isinstance(v, list) else [v]:
                if k in ("length", "turns") and not (isinstance(x, (int, float)) and x <= MAX_FUZZ_LENGTH):
                    return True
    return False


def sweep_files(fz, data):
    """Mutated shipped sweeps (cut to a few trials): `sweep FILE --out DIR` fails cleanly and a
    failing sweep leaves the results already in DIR untouched."""
    base = data.draw(st.sampled_from(sorted(SMALL_SWEEPS)), label="shipped sweep")
    doc = data.draw(mutated(SMALL_SWEEPS[base], SWEEP_KNOWN), label="mutated")
    blob = data.draw(damaged_text(dump(doc)), label="file bytes")
    onto_results = data.draw(st.booleans(), label="--out is an existing results directory")
    with scratch(fz) as d:
        f = d / f"{base}-fuzzed.yaml"
        f.write_bytes(blob)
        if too_big(f):
            reject()
        out = d / "out"
        if onto_results:
            shutil.copytree(good_results(fz)["run"], out)
        before = snapshot(out)
        o = attrition("sweep", f, "--out", out, "--executor", "serial")
        check(o, [f.name, "--out", out])
        if o.code == 2 and onto_results:
            assert_unchanged(out, before, o)


test_sweep_files, test_sweep_files_long = twins(sweep_files, 12)


# ---------------------------------------------------------------------------------------------
# 3. fault strings


def fault_strings(fz, data):
    """`run --fault TEXT` (one to three of them) on a template and a shipped scenario."""
    faults = data.draw(st.lists(fault_text(), min_size=1, max_size=3), label="--fault values")
    scenario = data.draw(st.sampled_from(["chain:length=3", "chain:length=2,turns=2", "support_refund"]))
    agent = data.draw(st.sampled_from(["react", "react-retry", "circuit-breaker"]))
    conc = data.draw(st.sampled_from([1, 1, 2]))
    args = ["run", scenario, "-n", conc, "--concurrency", conc, "--agent", agent]
    for f in faults:
        args += ["--fault", f]
    with scratch(fz) as d:
        o = attrition(*args, "--out", d / "out")
        words = ["--fault", "fault"] + [f.partition(":")[0].strip() for f in faults]
        check(o, words)


test_fault_strings, test_fault_strings_long = twins(fault_strings, 30)


# ---------------------------------------------------------------------------------------------
# 4. command-line options


def _profile_keys():
    from simulator.profiles import get_profile
    return sorted(type(get_profile("strong")).model_fields)


def _design_keys():
    keys = set()
    for f in (ROOT / "agents").glob("*.py"):
        m = re.search(r"^PARAMS[^=]*=\s*(\{.*?\})\s*$", f.read_text(), re.S | re.M)
        if m:
            keys |= set(re.findall(r'"(\w+)":', m.group(1)))
    return sorted(keys)


PROFILE_KEYS = _profile_keys()
DESIGN_KEYS = _design_keys()
BUDGET_KEYS = ["max_steps", "max_model_calls", "max_tool_calls", "max_tokens", "max_sim_time_s"]
LONG_NAME = "n" * 300  # past NAME_MAX (255)


def kv(keys: list[str]) -> st.SearchStrategy[str]:
    key = st.one_of(st.sampled_from(keys), st.sampled_from(["", " ", "x", "a=b", "é"]), st.text(max_size=5))
    value = st.one_of(FAULT_VALUES, st.sampled_from(["true", "false", "none", "window", "summary", "reads_writes",
                                                     "per_tool", "full_history", "all", "writes", "{}", "[1]"]))
    return st.one_of(st.tuples(key, value).map(lambda kv_: f"{kv_[0]}={kv_[1]}"), key)


AGENT_REFS = st.one_of(
    st.sampled_from(["react", "react-retry", "circuit-breaker", "plan-execute-verify", "react-memory", "supervisor",
                     "swarm", "human-approval"]),
    st.sampled_from(["", " ", "nosuch", "React", "react:build", "react-retry:nope", "nosuchmod:build",
                     "nosuch.mod.deep:build", "json:nosuch", "math:pi", "simulator:build", "a b c", "a;b", "..:x",
                     "../nofile.py:build", "/dev/null:build", "nofile.py:build", "agents/react.py:build",
                     "agents/react.py:nope", ":build", "::", "x" * 300, LONG_NAME + ".py:build", "\x00",
                     "é:build"]))
SCENARIO_ARGS = st.one_of(
    st.sampled_from(["chain:length=2", "chain:length=2", "support_refund", "chain:length=2,turns=2",
                     "chain:length=1,task=999999"]),
    st.sampled_from(["", " ", "nosuch", "chain:", "chain:length", "chain:length=", "chain:length=1e400",
                     "chain:length=nan", "chain:length=2,length=3", "chain:,", ":", "::", "support_refund:x=1",
                     "nosuch.yaml", "/", ".", "..", "/dev/null", "/proc/self/status", "x" * 300, LONG_NAME,
                     LONG_NAME + ".yaml", "a\x00b", "é", "-", "--help"]))

RUN_OPTIONS = {
    "--trials": num_text(["1", "2"], 1_000_000),
    "-n": num_text(["1"], 1_000_000),
    "--seed": num_text(["0", "7", "9223372036854775807"]),
    "--profile": st.one_of(st.sampled_from(["strong", "weak", "nosuch", "", "Strong"]), st.text(max_size=5)),
    "--param": kv(["length", "turns", "task"]),
    "--agent": AGENT_REFS,
    "--agent-param": kv(DESIGN_KEYS),
    "--profile-param": kv(PROFILE_KEYS),
    "--budget": kv(BUDGET_KEYS),
    "--fault": fault_text(),
    "--concurrency": num_text(["1", "2"], 1_000),
    "--stagger": num_text(["0", "5", "2592000"]),
    "--trial-timeout": num_text(["0", "60", "1e9"]),
    "--json": st.none(),
    "--out": st.sampled_from(["fresh", "results", "file", "under-file", "nested/deep", "long"]),
}
ALIASES = {"-n": "--trials", "-a": "--agent", "-s": "--seed", "-p": "--param", "-f": "--fault",
           "-e": "--executor", "-w": "--workers"}


def out_path(kind: str, d: Path, fz) -> Path:
    """An --out directory of some kind; `results` is a copy of a real results directory."""
    if kind == "results":
        if not (d / "existing").exists():
            shutil.copytree(good_results(fz)["run"], d / "existing")
        return d / "existing"
    if kind in ("file", "under-file"):
        (d / "a-file").write_text("x")
        return d / "a-file" / ("out" if kind == "under-file" else "")
    if kind == "long":
        return d / LONG_NAME
    return d / kind


def option_names(args: list[str]) -> list[str]:
    """What a message about these arguments may name: each option (both spellings, and its
    bare name) and each value given (as typed or quoted; for `key=value` and `name:params`
    values, their parts)."""
    out = []
    for a in args:
        if a.startswith("-") and len(a) > 1 and not a[1:2].isdigit():
            long = ALIASES.get(a, a)
            bare = long.lstrip("-")
            out += [a, long, bare, bare.replace("-", "_"), bare.replace("-", " ")]
            continue
        if not a.strip():  # a blank value can only be named quoted
            out.append(repr(a))
        for x in dict.fromkeys([a, *re.split(r"[:=,]", a)]):
            if x.strip():  # quoted, or as `x:` (a message's source), or bare when not a single letter
                out += [repr(x), f"'{x}'", f'"{x}"', f"{x}:"] + ([x] if len(x.strip()) >= 2 or not x.isalnum() else [])
    return out


@st.composite
def options(draw, table: dict):
    picked = draw(st.lists(st.sampled_from(sorted(table)), max_size=5))
    return [(opt, draw(table[opt])) for opt in picked]


def run_options(fz, data):
    """`run` with random option values: trials stay tiny whenever they are valid."""
    scenario = data.draw(SCENARIO_ARGS, label="SCENARIO")
    opts = data.draw(options(RUN_OPTIONS), label="options")
    with scratch(fz) as d:
        args, out = ["run", scenario], None
        if not any(o in ("--trials", "-n") for o, _ in opts):
            args += ["-n", "1"]
        for opt, val in opts:
            if opt == "--out":
                out = out_path(val, d, fz)
                args += ["--out", out]
            else:
                args += [opt] if val is None else [opt, val]
        if out is None:
            args += ["--out", d / "fresh"]
        before = snapshot(out) if is_dir(out) else None
        o = attrition(*args)
        check(o, option_names([str(a) for a in args[1:]]))
        if o.code == 2 and before is not None:
            assert_unchanged(out, before, o)


test_run_options, test_run_options_long = twins(run_options, 25)


SWEEP_OPTIONS = {
    "--executor": st.sampled_from(["serial", "serial", "process", "dask", "nosuch", "", "Serial"]),
    "--workers": num_text(["1", "2"], 256),
    "-w": num_text(["1"], 256),
    "--scheduler": st.sampled_from(["tcp://127.0.0.1:1", "127.0.0.1:1", "", "not an address", "tcp://", "::",
                                    "tcp://127.0.0.1:99999", "inproc://nowhere"]),
    "--resume": st.none(),
    "--trial-timeout": num_text(["0", "60"]),
    "--json": st.none(),
    "--out": st.sampled_from(["fresh", "results", "file", "under-file", "long"]),
}


def sweep_options(fz, data):
    """`sweep` with random option values on a two-trial sweep (or a file that is not one)."""
    which = data.draw(st.sampled_from(["small", "small", "small", "missing", "dir", "long"]), label="SWEEP_FILE")
    opts = data.draw(options(SWEEP_OPTIONS), label="options")
    with scratch(fz) as d:
        f = {"small": d / "small.yaml", "missing": d / "nosuch.yaml", "dir": d, "long": d / LONG_NAME}[which]
        if which == "small":
            f.write_text("name: small\nreplicates: 1\nscenarios: [{ref: chain, params: {length: [1, 2]}}]\n")
        args, out, executor = ["sweep", f], None, None
        for opt, val in opts:
            if opt == "--out":
                out = out_path(val, d, fz)
                args += ["--out", out]
            else:
                executor = val if opt == "--executor" else executor
                args += [opt] if val is None else [opt, val]
        if executor is None:
            args += ["--executor", "serial"]
        if executor == "dask":
            args += ["--scheduler", "tcp://127.0.0.1:1"]  # never start a local cluster here (last one wins)
        if out is None:
            args += ["--out", d / "fresh"]
        before = snapshot(out) if is_dir(out) else None
        o = attrition(*args)
        check(o, option_names([str(a) for a in args[1:]]) + [f.name])
        if o.code == 2 and before is not None:
            assert_unchanged(out, before, o)


test_sweep_options, test_sweep_options_long = twins(sweep_options, 10)


# ---------------------------------------------------------------------------------------------
# 5. damaged results directories (and 6. awkward paths)

_GOOD: dict[str, Path] = {}
GOOD_SWEEP = ("name: fuzzbase\nseed: 3\nreplicates: 2\nprofiles: [strong, weak]\n"
              "scenarios: [{ref: chain, params: {length: 2}}]\n")


def good_results(fz: Path) -> dict[str, Path]:
    """Real results, made once per session: a run (with a fault, of a scenario file deleted
    since, so replay needs the kept copy) and a sweep (to resume)."""
    if not _GOOD or not all(p.exists() for p in _GOOD.values()):
        base = fz / "good"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir()
        sc = base / "gone.yaml"
        sc.write_text(SCENARIO_TEXTS["support_refund"])
        o = attrition("run", sc, "-n", 3, "--seed", 1, "--agent", "react-retry", "--fault",
                      "rate_limit:rate=0.3", "--out", base / "run")
        assert o.code == 0 and o.tb is None, o.output
        sc.unlink()
        sw = base / "fuzzbase.yaml"
        sw.write_text(GOOD_SWEEP)
        o = attrition("sweep", sw, "--executor", "serial", "--out", base / "sweep")
        assert o.code == 0 and o.tb is None, o.output
        _GOOD.update(run=base / "run", sweep=base / "sweep", sweep_file=sw)
    return _GOOD


def _json_line_values():
    return st.one_of(VALUES, st.sampled_from(["error", "success", "failure", "budget", "", "x" * 17, "deadbeef",
                                              -1, 2**64, 1e308, None, [], {}]))


@st.composite
def damage(draw, d: Path):
    """One to three kinds of damage to the results directory `d`, done in place."""
    done = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(["records.jsonl", "records.jsonl", "records.jsonl", "events.jsonl",
                                     "events.jsonl", "manifest.json", "results.duckdb", "scenarios"]))
        p = d / name
        if name == "scenarios" and p.is_dir():
            kept = sorted(p.glob("*.json"))
            if kept and draw(st.booleans()):
                p = kept[0]
        op = draw(st.sampled_from(["truncate", "garble_line", "field", "drop_line", "dup_line", "swap_lines",
                                   "blank_line", "no_final_newline", "crlf", "delete", "dir", "symlink_loop",
                                   "dangling", "junk", "empty", "newer"]))
        exists = p.exists() and not p.is_symlink()
        if op == "delete" and (exists or p.is_symlink()):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        elif op == "dir":
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
                p.write_text("not a directory")
            else:
                if p.exists() or p.is_symlink():
                    p.unlink()
                p.mkdir()
                (p / "inside").write_text("{}\n")
        elif op == "symlink_loop":
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
            p.symlink_to(p.name)
        elif op == "dangling":
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
            p.symlink_to(d / "nowhere" / p.name)
        elif exists and p.is_file():
            blob = p.read_bytes()
            lines = blob.splitlines(keepends=True)
            at = draw(st.integers(0, 10**6))
            i = at % len(lines) if lines else 0
            if op == "truncate":
                blob = blob[:at % (len(blob) + 1)]
            elif op == "garble_line" and lines:
                junk = draw(st.one_of(
                    st.binary(max_size=40),
                    st.sampled_from([b"[]", b"null", b"1", b"{}", b'"text"', b"{", b"\xff\xfe", b"NaN",
                                     b'{"trial_id": 5}', b'{"trial_id": "x"}', b'{"trial": null}', b"[" * 100_000,
                                     b'{"a":' * 50_000, b"1e999", b'{"trial_id": "' + b"\xed\xa0\x80" + b'"}',
                                     b'{"x": 1, "x": 2}', b"\x00" * 10, b"\"\\ud800\""]),
                    st.just(lines[i][: len(lines[i]) // 2].rstrip(b"\n"))))
                lines[i] = junk + b"\n"
                blob = b"".join(lines)
            elif op == "field" and lines:
                try:
                    obj = json.loads(lines[i])
                except ValueError:
                    obj = None
                if isinstance(obj, dict) and obj:
                    paths = [q for q in all_paths(obj) if q]
                    q = draw(st.sampled_from(paths))
                    value = draw(_json_line_values())
                    if draw(st.integers(0, 4)) == 0:
                        del get_at(obj, q[:-1])[q[-1]]
                    else:
                        get_at(obj, q[:-1])[q[-1]] = value
                    lines[i] = json.dumps(obj, default=str).encode() + b"\n"  # NaN/Infinity as JSON tokens
                    blob = b"".join(lines)
            elif op == "drop_line" and lines:
                del lines[i]
                blob = b"".join(lines)
            elif op == "dup_line" and lines:
                lines.insert(draw(st.integers(0, len(lines))), lines[i])
                blob = b"".join(lines)
            elif op == "swap_lines" and len(lines) > 1:
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
                blob = b"".join(lines)
            elif op == "blank_line":
                lines.insert(i, draw(st.sampled_from([b"\n", b"   \n", b"\r\n", b"\t\n"])))
                blob = b"".join(lines)
            elif op == "no_final_newline":
                blob = blob.rstrip(b"\n")
            elif op == "crlf":
                blob = blob.replace(b"\n", b"\r\n")
            elif op == "junk":
                blob = draw(st.binary(max_size=200))
            elif op == "empty":
                blob = b""
            if op != "newer":
                p.write_bytes(blob)
            if name in ("results.duckdb",) or op == "newer":  # the database looks fresher than the log
                t = (d / "records.jsonl").stat().st_mtime + 10 if (d / "records.jsonl").is_file() else None
                if t and p.is_file():
                    os.utime(p, (t, t))
        else:
            continue
        done.append((name if p.parent == d else f"{p.parent.name}/{p.name}", op))
    note(f"damage: {done}")
    return done


QUERIES = ["SELECT agent, profile, fault, count(*) AS n, avg(success::INT) AS success_rate FROM trials GROUP BY ALL",
           "SELECT * FROM events LIMIT 3", "SELECT event, count(*) FROM events GROUP BY ALL",
           "SELECT json->>'nope' AS x FROM events LIMIT 2", "SELECT count(*) FROM trials WHERE success",
           "SELECT max(seq), min(t) FROM events", "SELECT * FROM trials"]


def damaged_results(fz, data):
    """A real results directory, damaged; every reader, `sweep --resume` and a new run or sweep
    into it fail cleanly; readers never change the logs, a command that fails leaves the
    directory as it found it, and a resume keeps every good record line."""
    good = good_results(fz)
    kind = data.draw(st.sampled_from(["run", "sweep"]), label="results of")
    with scratch(fz) as d:
        r = d / "res"
        shutil.copytree(good[kind], r, symlinks=True)
        original = lines_of((r / "records.jsonl").read_bytes())
        ids = [json.loads(ln)["trial_id"] for ln in original]
        data.draw(damage(r), label="damage")
        before = snapshot(r)
        surviving = [ln for ln in original if ln in set(lines_of(before["records.jsonl"]))]
        cmd = data.draw(st.sampled_from(["analyze", "propagation", "query", "export", "replay", "run-over",
                                         "sweep-over"] + (["resume", "resume"] if kind == "sweep" else [])),
                        label="command")
        flags = data.draw(st.lists(st.sampled_from(["--json", "--exclude-unfired", "--graphml", "--trials",
                                                    "--csv"]), max_size=2, unique=True))
        out = d / "out"
        out.mkdir()
        names = [r, r.name, out] + list(STORE_FILES)
        allow_1 = None
        if cmd == "analyze":
            args = ["analyze", r, "--bootstrap", 50] + [f for f in flags if f in ("--json", "--exclude-unfired")]
        elif cmd == "propagation":
            args = ["propagation", r] + (["--json"] if "--json" in flags else [])
            args += ["--graphml", out / "flow.graphml"] if "--graphml" in flags else []
            args += ["--trials", out / "trials.jsonl"] if "--trials" in flags else []
        elif cmd == "query":
            args = ["query", r, data.draw(st.sampled_from(QUERIES), label="SQL")] + \
                (["--json"] if "--json" in flags else [])
        elif cmd == "export":
            args = ["export", r, out / ("rows.csv" if "--csv" in flags else "rows.parquet")]
        elif cmd == "replay":
            tid = data.draw(st.one_of(st.sampled_from(ids).map(lambda t: t[:8]), st.sampled_from(ids),
                                      st.sampled_from(["dead", "0000", "", "x" * 20])), label="trial id")
            names += [tid, "trial id"]
            args = ["replay", tid, "--results", r] + (["--json"] if "--json" in flags else [])
            allow_1 = "replay DIFFERS from the stored record"  # a record damaged into another valid one
        elif cmd == "run-over":  # a new run into the directory: replaces it if it runs, else keeps it
            args = ["run", "chain:length=1", "-n", 1, "--out", r]
        elif cmd == "sweep-over":
            args = ["sweep", good["sweep_file"], "--out", r, "--executor", "serial"]
            names.append(good["sweep_file"].name)
        else:
            args = ["sweep", good["sweep_file"], "--resume", "--out", r, "--executor", "serial"]
            names.append(good["sweep_file"].name)
            if b'"outcome":"error"' in (before["records.jsonl"] or b"") or \
                    b'"outcome": "error"' in (before["records.jsonl"] or b""):
                allow_1 = "ended in error"  # a record damaged into an error trial: exit 1 is the contract
        o = attrition(*args)
        check(o, names, allow_1=allow_1)
        if cmd in ("run-over", "sweep-over"):  # a command that fails leaves what it found
            if o.code == 2:
                assert_unchanged(r, before, o)
        elif cmd != "resume":  # readers never write the logs, whatever their exit code
            assert_unchanged(r, before, o, only=("records.jsonl", "events.jsonl"))
        elif o.code == 2:  # a resume that fails changes nothing
            assert_unchanged(r, before, o)
        elif (r / "records.jsonl").is_file():
            now = set(lines_of((r / "records.jsonl").read_bytes()))
            lost = [ln for ln in surviving if ln not in now]
            assert not lost, f"{o.cmd} lost {len(lost)} good record line(s), e.g. {lost[0][:200]!r}"


test_damaged_results, test_damaged_results_long = twins(damaged_results, 40)


PATH_KINDS = ["long", "long-nested", "missing", "missing-parent", "empty", "space", "file", "empty-file", "empty-dir",
              "junk-dir", "nul", "devnull", "proc", "symlink-loop", "dangling", "root", "dot", "results", "sweep-file"]


def odd_path(kind: str, d: Path, fz) -> str:
    """A path argument of some awkward kind."""
    if kind == "long":
        return str(d / LONG_NAME)
    if kind == "long-nested":
        return str(d / LONG_NAME / "x.yaml")
    if kind == "missing":
        return str(d / "nosuch.yaml")
    if kind == "missing-parent":
        return str(d / "no" / "such" / "x")
    if kind in ("empty", "space"):
        return "" if kind == "empty" else " "
    if kind in ("file", "empty-file"):
        (d / "f.txt").write_text("" if kind == "empty-file" else "x: 1\n")
        return str(d / "f.txt")
    if kind in ("empty-dir", "junk-dir"):
        (d / "dd").mkdir(exist_ok=True)
        if kind == "junk-dir":
            (d / "dd" / "records.jsonl").mkdir(exist_ok=True)
        return str(d / "dd")
    if kind == "nul":
        return str(d / "a\x00b")
    if kind == "devnull":
        return "/dev/null"
    if kind == "proc":
        return "/proc/self/status"
    if kind in ("symlink-loop", "dangling"):
        link = d / "link"
        if not link.is_symlink():
            link.symlink_to("link" if kind == "symlink-loop" else d / "nowhere")
        return str(link)
    if kind == "root":
        return "/"
    if kind == "dot":
        return "."
    if kind == "results":
        if not (d / "res").exists():
            shutil.copytree(good_results(fz)["run"], d / "res")
        return str(d / "res")
    return str(good_results(fz)["sweep_file"])


def reader_paths(fz, data):
    """Every command's path arguments, given awkward paths: names too long, missing, a file
    where a folder belongs (and the reverse), a NUL byte, /dev/null, links that loop."""
    cmd = data.draw(st.sampled_from(["validate", "run", "analyze", "query", "propagation", "propagation --graphml",
                                     "propagation --trials", "export FROM", "export TO", "replay", "schema",
                                     "sweep", "sweep --out", "sweep --resume"]), label="command")
    writes = cmd in ("propagation --graphml", "propagation --trials", "export TO", "schema", "sweep --out",
                     "sweep --resume")
    # outputs stay inside the scratch folder: never /, /dev or /proc (the tests may run as root)
    kind = data.draw(st.sampled_from([k for k in PATH_KINDS
                                      if not (writes and k in ("devnull", "proc", "root", "sweep-file"))]),
                     label="path kind")
    with scratch(fz) as d:
        p = odd_path(kind, d, fz)
        good = good_results(fz)
        run_dir, sweep_file = str(good["run"]), str(good["sweep_file"])
        out = d / "out"
        args = {"validate": ["validate", p], "run": ["run", p, "-n", 1, "--out", out],
                "analyze": ["analyze", p, "--bootstrap", 50], "query": ["query", p],
                "propagation": ["propagation", p],
                "propagation --graphml": ["propagation", run_dir, "--graphml", p],
                "propagation --trials": ["propagation", run_dir, "--trials", p],
                "export FROM": ["export", p, d / "rows.csv"], "export TO": ["export", run_dir, p],
                "replay": ["replay", "abcd", "--results", p], "schema": ["schema", "--out", p],
                "sweep": ["sweep", p, "--executor", "serial", "--out", out],
                "sweep --out": ["sweep", sweep_file, "--executor", "serial", "--out", p],
                "sweep --resume": ["sweep", sweep_file, "--executor", "serial", "--resume", "--out", p]}[cmd]
        before = snapshot(Path(run_dir))
        o = attrition(*args)
        positional = ["'results'", "'output'", "'sweep_file'", "'files'", "'scenario'"]  # as click names them
        check(o, option_names([str(a) for a in args[1:]]) + [Path(p).name] + positional)
        assert snapshot(Path(run_dir)) == before, f"{o.cmd} changed {run_dir}"


test_reader_paths, test_reader_paths_long = twins(reader_paths, 25)


# ---------------------------------------------------------------------------------------------
# 7. result tables from elsewhere (analyze FILE)

TABLE_KEYS = st.one_of(st.sampled_from(["task", "task_id", "trial", "trial_id", "run", "success", "reward", "score",
                                        "length", "steps", "n_steps", "sim_time_s", "agent", "fault"]),
                       st.text(max_size=5))
TABLE_VALUES = st.one_of(SCALARS, st.sampled_from(["1", "0", "true", "pass", "3.0", "007", "NaN", "-0", "1e999"]))


@st.composite
def table_file(draw):
    rows = draw(st.lists(st.dictionaries(TABLE_KEYS, TABLE_VALUES, max_size=5), max_size=8))
    fmt = draw(st.sampled_from(["csv", "jsonl", "json", "txt", "tsv", ""]))
    if fmt == "csv" or fmt == "tsv":
        cols = sorted({str(k) for r in rows for k in r})
        sep = "," if fmt == "csv" else "\t"
        text = sep.join(cols) + "\n" + "".join(
            sep.join(str(r.get(c, "")) for c in cols) + "\n" for r in rows)
        blob = text.encode("utf-8", "surrogatepass")
    elif fmt == "jsonl":
        blob = "".join(json.dumps(r, default=str) + "\n" for r in rows).encode("utf-8", "surrogatepass")
    else:
        wrap = draw(st.sampled_from(["list", "object", "scalar"]))
        doc = rows if wrap == "list" else {"trials": rows} if wrap == "object" else draw(SCALARS)
        blob = json.dumps(doc, default=str).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:
        blob = draw(damaged_text(blob))
    return fmt, blob


def analysis_tables(fz, data):
    """`analyze FILE` on tables (CSV, JSONL, JSON) of trials that attrition did not produce."""
    fmt, blob = data.draw(table_file(), label="table")
    with scratch(fz) as d:
        f = d / f"table.{fmt}" if fmt else d / "table"
        f.write_bytes(blob)
        o = attrition("analyze", f, "--bootstrap", 50, "--json")
        check(o, [f.name])
        assert f.read_bytes() == blob


test_analysis_tables, test_analysis_tables_long = twins(analysis_tables, 20)


# ---------------------------------------------------------------------------------------------
# Regression examples: the smallest input of each distinct failure the properties found
# (F1-F10), held to the same contract as the properties.

@pytest.mark.parametrize("text", ["name: !!bool maybe\n", "name: x\ndifficulty: !!timestamp x\n"])
def test_regression_bad_scalar_tag_validate(fz, tmp_path, text):
    f = tmp_path / "tag.yaml"
    f.write_text(text)
    check(attrition("validate", f), [f.name])


def test_regression_bad_scalar_tag_sweep(fz, tmp_path):
    f = tmp_path / "tagged.yaml"
    f.write_text("name: x\nscenarios: [chain]\nreplicates: !!bool maybe\n")
    check(attrition("sweep", f, "--executor", "serial", "--out", tmp_path / "o"), [f.name])


@pytest.mark.parametrize("cmd", ["validate", "analyze", "query", "propagation", "replay", "resume"])
def test_regression_name_too_long(fz, tmp_path, cmd):
    long = tmp_path / ("n" * 300)
    good = good_results(fz)
    args = {"validate": ["validate", long], "analyze": ["analyze", long], "query": ["query", long],
            "propagation": ["propagation", long], "replay": ["replay", "abcd", "--results", long],
            "resume": ["sweep", good["sweep_file"], "--resume", "--out", long, "--executor", "serial"]}[cmd]
    check(attrition(*args), [long.name, str(long)])


@pytest.mark.parametrize("looped, cmd", [("events.jsonl", "query"), ("events.jsonl", "export"),
                                         ("manifest.json", "propagation --graphml")])
def test_regression_symlink_loop(fz, tmp_path, looped, cmd):
    r = tmp_path / "res"
    shutil.copytree(good_results(fz)["run"], r)
    (r / looped).unlink()
    (r / looped).symlink_to(looped)
    args = {"query": ["query", r], "export": ["export", r, tmp_path / "rows.csv"],
            "propagation --graphml": ["propagation", r, "--graphml", tmp_path / "flow.graphml"]}[cmd]
    check(attrition(*args), [r, looped])


@pytest.mark.parametrize("cmd", ["run", "sweep"])
def test_regression_trial_timeout_overflow(fz, tmp_path, cmd):
    if cmd == "run":
        args = ["run", "chain:length=1", "-n", 1, "--out", tmp_path / "o"]
    else:
        (tmp_path / "s.yaml").write_text("name: s\nreplicates: 1\nscenarios: [{ref: chain, params: {length: 1}}]\n")
        args = ["sweep", tmp_path / "s.yaml", "--executor", "serial", "--out", tmp_path / "o"]
    check(attrition(*args, "--trial-timeout", "3000000"), ["--trial-timeout"])


@pytest.mark.parametrize("cmd, blocked", [("run", "events.jsonl"), ("run", "results.duckdb"),
                                          ("sweep", "results.duckdb")])
def test_regression_failed_run_deletes_logs(fz, tmp_path, cmd, blocked):
    good = good_results(fz)
    r = tmp_path / "res"
    shutil.copytree(good["run"], r)
    (r / blocked).unlink()
    (r / blocked).mkdir()
    before = snapshot(r)
    args = ["run", "chain:length=1", "-n", 1, "--out", r] if cmd == "run" else \
        ["sweep", good["sweep_file"], "--executor", "serial", "--out", r]
    o = attrition(*args)
    check(o, [r, blocked])
    if o.code == 2:
        assert_unchanged(r, before, o)


def test_regression_scenarios_is_a_file(fz, tmp_path):
    r = tmp_path / "res"
    shutil.copytree(good_results(fz)["run"], r)
    shutil.rmtree(r / "scenarios")
    (r / "scenarios").write_text("not a directory")
    before = snapshot(r)
    o = attrition("run", "chain:length=1", "-n", 1, "--out", r)
    check(o, [r, "scenarios"])
    if o.code == 2:
        assert_unchanged(r, before, o)


def test_regression_resume_into_unwritable_store(fz, tmp_path):
    good = good_results(fz)
    r = tmp_path / "res"
    shutil.copytree(good["sweep"], r)
    (r / "results.duckdb").unlink()
    (r / "results.duckdb").mkdir()
    lines = (r / "records.jsonl").read_bytes().splitlines(keepends=True)
    (r / "records.jsonl").write_bytes(b"".join(lines[:2]))  # an interrupted sweep: two trials to go
    before = snapshot(r)
    o = attrition("sweep", good["sweep_file"], "--resume", "--out", r, "--executor", "serial")
    check(o, [r, "results.duckdb"])
    if o.code == 2:
        assert_unchanged(r, before, o)


@pytest.mark.parametrize("cmd", ["query", "export"])
def test_regression_corrupt_database(fz, tmp_path, cmd):
    import duckdb
    r = tmp_path / "res"
    shutil.copytree(good_results(fz)["sweep"], r)
    db = r / "results.duckdb"
    blob = db.read_bytes()
    at = blob.find(b"\n", 274432) + 1  # four bytes into the trials' data block: the checksums no longer match
    db.write_bytes(blob[:at] + b"   \n" + blob[at:])
    t = (r / "records.jsonl").stat().st_mtime + 10
    os.utime(db, (t, t))
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SELECT * FROM trials").fetchall()
        pytest.skip("this DuckDB build lays the file out differently: the damage did not corrupt it")
    except duckdb.Error:
        pass
    finally:
        con.close()  # an open connection in this process would stop the rebuild
    args = ["query", r, "SELECT * FROM trials"] if cmd == "query" else ["export", r, tmp_path / "rows.csv"]
    o = attrition(*args)
    check(o, [r, "results.duckdb"])
    assert o.code == 0, f"{o.cmd}: the log is intact, so the table can be rebuilt from it:\n{o.output}"


@pytest.mark.parametrize("args, names", [
    (["run", "", "-n", 1], ["SCENARIO", "empty", "''"]),
    (["run", " ", "-n", 1], ["SCENARIO", "empty", "blank", "' '"]),
    (["run", "chain:length=1", "-n", 1, "--budget", ""], ["--budget"]),
    (["run", "chain:length=1", "-n", 1, "--agent-param", " "], ["--agent-param"]),
    (["propagation", "RUN", "--graphml", ""], ["--graphml"]),
])
def test_regression_blank_arguments(fz, tmp_path, args, names):
    args = [good_results(fz)["run"] if a == "RUN" else a for a in args]
    check(attrition(*args, *(["--out", tmp_path / "o"] if args[0] == "run" else [])), names)


def test_regression_tiny_trial_timeout(fz, tmp_path):
    o = attrition("run", "chain:length=1", "-n", 1, "--trial-timeout", "1e-9", "--out", tmp_path / "o")
    check(o, ["--trial-timeout"])
