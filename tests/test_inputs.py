"""The input boundary: every malformed scenario, sweep, template parameter, fault setting
or profile override ends in one message naming the file, line and field, exit code 2,
and never a traceback."""
import re

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from simulator.cli import app
from simulator.faults.config import FaultConfigError, normalize_faults
from simulator.profiles import ProfileError, get_profile
from simulator.scenario import ScenarioError, load_scenario_text
from simulator.scenario_refs import resolve_scenario
from simulator.spec import MAX_SEED, ScenarioRef, TrialSpec
from simulator.sweep import load_sweep, plan
from simulator.yamlio import MAX_DEPTH

from conftest import ROOT

SR = (ROOT / "scenarios" / "support_refund.yaml").read_text()
SWEEP = "name: x\nscenarios: [chain]\n"
cli = CliRunner()


def invoke(*args):
    return cli.invoke(app, [str(a) for a in args], catch_exceptions=False)


def fails(res, *words):
    """Exit 2, the words in the message, and no traceback."""
    text = res.output
    assert res.exit_code == 2, text
    assert "Traceback" not in text and "Error:" not in text.replace("error:", ""), text
    for w in words:
        assert w in text, (w, text)


def problems(text):
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, "s.yaml")
    return e.value.problems


def sweep_problems(tmp_path, text):
    f = tmp_path / "sweep.yaml"
    f.write_text(text)
    with pytest.raises(ScenarioError) as e:
        plan(load_sweep(f), str(f))
    return e.value.problems


def edit(**fields):
    """support_refund with top-level fields appended (YAML flow text)."""
    return SR + "".join(f"{k}: {v}\n" for k, v in fields.items())


# 1. bytes that are not UTF-8
def test_non_utf8_scenario_names_byte_line_and_column(tmp_path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes(SR.replace("Jane Okafor", "Jan\xe9 Okafor").encode("latin-1"))
    line = SR[: SR.index("Jane Okafor")].count("\n") + 1
    res = invoke("validate", f)
    fails(res, f"{f}:{line}", f"not UTF-8 text (byte 0xe9 at line {line}, column")
    fails(invoke("run", f, "-n", 1, "--out", tmp_path / "o"), "not UTF-8 text (byte 0xe9")


def test_non_utf8_sweep_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_bytes(b"name: x\ndescription: caf\xe9\nscenarios: [chain]\n")
    fails(invoke("sweep", f, "--executor", "serial", "--out", tmp_path / "o"),
          "not UTF-8 text (byte 0xe9 at line 2, column 17)")


# 2. aliases that recurse, nesting past the limit
@pytest.mark.parametrize("text, words", [
    ("a: &a [*a]\n", "recursive aliases are not allowed"),
    ("a: &a {b: [1, {c: *a}]}\n", "alias *a is inside the collection &a"),
    ("name: " + "[" * 500 + "]" * 500 + "\n", f"nested deeper than {MAX_DEPTH} levels"),
    ("name: " + "{a: " * 300 + "1" + "}" * 300 + "\n", f"nested deeper than {MAX_DEPTH} levels"),
])
def test_recursive_alias_and_deep_nesting(tmp_path, text, words):
    (_, line, msg), = problems(text)
    assert words in msg and line == 1
    f = tmp_path / "s.yaml"
    f.write_text(text)
    fails(invoke("validate", f), words)
    fails(invoke("sweep", f, "--executor", "serial", "--out", tmp_path / "o"), words)


@pytest.mark.parametrize("value, words", [
    ("0x_", "'0x_' reads as a whole number but is not a valid one"),
    ("0b_", "'0b_' reads as a whole number"),
    ("2001-13-45", "'2001-13-45' reads as a date but is not a valid one (month must be in 1..12)"),
])
def test_values_yaml_reads_as_numbers_but_cannot_convert(tmp_path, value, words):
    text = f"name: x\ndescription: ok\nseed: {value}\n"
    (_, line, msg), = problems(text)
    assert words in msg and "quote it" in msg and line == 3
    f = tmp_path / "s.yaml"
    f.write_text(text)
    fails(invoke("validate", f), words)


def test_aliases_expanding_past_the_limit():
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdef", "bcdefg"))
    (_, _, msg), = problems(laughs)
    assert "aliases expand to more than 2,000,000 values" in msg


def test_shared_aliases_and_merge_keys_still_work(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\nscenarios:\n  - &c {ref: chain, params: {length: 2}}\n"
                 "  - {<<: *c, params: {length: 3}}\nprofiles: &p [strong]\n")
    cells, _, n = plan(load_sweep(f))
    assert [c.params for c in cells] == [{"length": 2}, {"length": 3}] and n == 6


# 3. the world's shape
@pytest.mark.parametrize("world, path, words", [
    ("{orders: [1, 2]}", "world.orders", "should be a mapping (key: value), not a list"),
    ("{orders: some text}", "world.orders", "should be a mapping (key: value), not text"),
    ("{orders: {O-1: 5}}", "world.orders.O-1", "should be a mapping (key: value), not the value 5"),
    ("[1, 2]", "world", "should be a mapping (key: value), not a list"),
])
def test_world_tables_must_be_mappings_of_records(world, path, words):
    start, end = SR.index("\nworld:\n") + 1, SR.index("\nturns:\n") + 1
    (got_path, line, msg), = problems(SR[:start] + f"world: {world}\n" + SR[end:])
    assert got_path == path and words in msg and line == SR[:start].count("\n") + 1


def test_numeric_row_ids_are_read_as_text():
    # tools look rows up by the text of an id: a row keyed by the number 101 must be found
    text = SR.replace("O-5521", "5521")
    sc = load_scenario_text(text, "s.yaml")
    assert "5521" in sc.world["orders"] and 5521 not in sc.world["orders"]


# 4. think times and latencies: finite, at most 30 days, p95 not below the median
@pytest.mark.parametrize("value, words", [
    ("{median_s: 1e300, p95_s: 1e301}", "less than or equal to 2592000"),
    ("{median_s: .inf, p95_s: .inf}", "not a finite number"),
    ("{median_s: 20, p95_s: 5}", "p95_s 5 is below median_s 20"),
    ("{median_s: 1e-300}", "give 0 (instant) or at least a microsecond"),
])
def test_think_time_limits(tmp_path, value, words):
    probs = problems(edit(user_think_time=value))
    assert all(p[0].startswith("user_think_time") for p in probs)
    assert any(words in p[2] for p in probs), probs
    f = tmp_path / "s.yaml"
    f.write_text(edit(user_think_time=value))
    fails(invoke("run", f, "-n", 3, "--out", tmp_path / "o"), words)


# 5. every number finite and in a stated range
@pytest.mark.parametrize("field, value, words", [
    ("difficulty", ".nan", "not a finite number"),
    ("difficulty", "1e308", "less than or equal to 10 (shift of the error log-odds for this scenario, from -10 to 10)"),
    ("difficulty", "-.inf", "not a finite number"),
    ("budgets", "{max_sim_time_s: .inf}", "not a finite number"),
    ("budgets", "{max_steps: 1.5}", "fractional part"),
])
def test_scenario_numbers(field, value, words):
    probs = problems(edit(**{field: value}))
    assert any(p[0].startswith(field) and words in p[2] for p in probs), probs


def test_tool_latency_must_be_finite():
    probs = problems(SR.replace("latency: {median_s: 0.4, p95_s: 1.5}", "latency: {median_s: 0.4, p95_s: .inf}"))
    assert probs[0][:2] == ("tools.find_customer.latency.p95_s", 17)


@pytest.mark.parametrize("value, shown", [
    ("1.5", "1.5"), ("0", "0"), ("-3", "-3"), ("abc", "'abc'"), ("1000000000", "1000000000"), ("nan", "'nan'"),
])
def test_chain_length_is_a_whole_number_up_to_4096(tmp_path, value, shown):
    with pytest.raises(ScenarioError) as e:
        resolve_scenario(f"chain:length={value}")
    msg = e.value.problems[0][2]
    assert msg == f"length must be >= 1 and at most 4,096, a whole number (the number of tool calls); got {shown}"
    fails(invoke("validate", f"chain:length={value}"), "at most 4,096")


@pytest.mark.parametrize("override, words", [
    ("base_hazard=nan", "base_hazard: Input should be a finite number (per-decision error probability"),
    ("difficulty_sd=1e308", "difficulty_sd: Input should be less than or equal to 10"),
    ("context_window=0", "context_window: Input should be greater than 0"),
    ("no_such=1", "no_such: unknown profile parameter"),
])
def test_profile_overrides(tmp_path, override, words):
    k, v = override.split("=")
    with pytest.raises(ProfileError, match=re.escape(words)):
        get_profile("strong", **{k: float(v) if v[0].isdigit() or v == "nan" else v})
    fails(invoke("run", "chain", "--profile-param", override, "-n", 1, "--out", tmp_path / "o"), words)


def test_profile_error_modes_need_a_known_positive_weight():
    with pytest.raises(ProfileError, match="unknown mode 'typo'"):
        get_profile("strong", error_modes={"typo": 1.0})
    with pytest.raises(ProfileError, match="at least one weight must be above 0"):
        get_profile("strong", error_modes={"wrong_tool": 0.0})


@pytest.mark.parametrize("fault, words", [
    ("rate_limit:retry_after_s=inf", "retry_after_s: Input should be a finite number"),
    ("rate_limit:retry_after_s=1e12", "retry_after_s: must be at most 2592000 s (30 days of virtual time)"),
    ("rate_limit:rate=nan", "rate: Input should be a finite number (probability per eligible call, 0 to 1)"),
    ("outage:windows=0-1e400", "windows.0.1: Input should be a finite number"),
    ("outage:windows=0-1e9", "is empty, negative or ends too late"),
    ("outage:mtbf_s=0.001,mttr_s=1", "mtbf_s: Input should be greater than or equal to 1"),
    ("shared_rate_limit:rpm=1e-320", "rpm: must be at least 1e-06"),
    ("context_flood:tokens=1000000000", "tokens: must be at most 10,000,000"),
    ("timeout:at_call=99999999", "at_call counts eligible calls from 1, up to 1,000,000"),
])
def test_fault_parameters_and_triggers(tmp_path, fault, words):
    with pytest.raises(FaultConfigError) as e:
        normalize_faults([fault])
    assert words in str(e.value)
    fails(invoke("run", "chain", "--fault", fault, "-n", 1, "--out", tmp_path / "o"), words)


# 6. seeds fit a BIGINT
def test_sweep_seed_past_2_63_is_rejected(tmp_path):
    probs = sweep_problems(tmp_path, SWEEP + "seed: 9223372036854775808\n")
    assert probs == [("seed", 3, "a seed is a whole number from 0 to 2**63 - 1 = 9223372036854775807 "
                                  "(results store it as a 64-bit integer); got 9223372036854775808")]


def test_trial_spec_seed_bounds_and_unchanged_ids():
    ref = ScenarioRef(ref="chain", params={"length": 2}, digest="0123456789abcdef")
    assert MAX_SEED == 2**63 - 1
    with pytest.raises(ValidationError, match="a seed is a whole number from 0 to 2\\*\\*63 - 1"):
        TrialSpec(scenario=ref, agent="react", seed=MAX_SEED + 1)
    with pytest.raises(ValidationError, match="a seed is a whole number"):
        TrialSpec(scenario=ref, agent="react", seed=-1)
    with pytest.raises(ValidationError, match="agent_params.x: not a finite number"):
        TrialSpec(scenario=ref, agent="react", agent_params={"x": float("nan")})
    assert TrialSpec(scenario=ref, agent="react", seed=MAX_SEED).seed == MAX_SEED
    # ids of existing specs must not move: resumes and replays find trials by them (values
    # computed with the spec module before the limits were added)
    assert TrialSpec(scenario=ref, agent="react", seed=7, replicate=2).id == "4d07106f5838752d"
    fault = {"name": "rate_limit", "id": "rate_limit", "target": "tools", "params": {"retry_after_s": 2.0},
             "trigger": {"rate": 0.2}}
    assert TrialSpec(scenario=ref, agent="react", seed=7, replicate=2, faults=(fault,), budgets={"max_steps": 5},
                     profile_params={"base_hazard": 0.1}).id == "c88b98497052b2f6"


# 7. sizes are bounded before anything is expanded
@pytest.mark.parametrize("extra, words", [
    ("replicates: 1000000000000\n", "replicates: Input should be less than or equal to 100000"),
    ("scenarios: [{ref: chain, params: {length: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], task: *a, turns: *a, "
     "x: *a, y: *a, z: *a, w: *a, v: *a, u: *a}}]\n", "the scenario grid has 1,000,000,000 cells; a sweep takes "
     "at most 10,000"),
    ("scenarios: [{ref: chain, params: {length: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], task: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}]\n"
     "replicates: 100000\nprofiles: [strong, weak]\n", "the sweep has 20,000,000 trials (100 scenario cells x 1 fault "
     "settings x 1 agents x 2 profiles x 100,000 replicates); a sweep takes at most 10,000,000"),
    ("scenarios: [{ref: chain, params: {length: []}}]\n", "axis 'length' is an empty list"),
    ("concurrency: 100000000\n", "concurrency: Input should be less than or equal to 10000"),
])
def test_sweep_sizes(tmp_path, extra, words):
    text = "name: x\n" + extra + ("" if extra.startswith("scenarios") else "scenarios: [chain]\n")
    probs = sweep_problems(tmp_path, text)
    assert any(words in f"{p}: {m}" for p, _, m in probs), probs


# 8. references in turn text and golden-path arguments
@pytest.mark.parametrize("ref, words", [
    ("{step9.x}", "{step9.x} refers to 'step9', which is not a step of the golden path"),
    ("{refund.refund_id}", "{refund.refund_id} refers to step 'refund', which turn 2 asks for"),
])
def test_turn_text_references(tmp_path, ref, words):
    text = SR.replace("Please go ahead with the refund", f"Please go ahead with the refund {ref}")
    (path, line, msg), = problems(text)
    assert path == "turns[2].user" and line == 107 and msg.startswith(words)
    f = tmp_path / "s.yaml"
    f.write_text(text)
    fails(invoke("validate", f), "turns[2].user", words)


def test_turn_text_reference_that_does_not_resolve():
    text = SR.replace("Please go ahead with the refund", "Please go ahead with the refund on {order.nope}")
    (path, _, msg), = problems(text)
    assert (path, msg) == ("turns[2].user", "reference {order.nope} does not resolve to a value in the "
                                            "golden path's outputs")


def test_bad_reference_inside_a_golden_argument_is_named():
    text = SR.replace('args: {sku: "{order.items.0.sku}"}', 'args: {sku: ["{order.items.9.sku}"]}')
    probs = problems(text)
    assert probs[0][:2] == ("golden_path[4].args.sku", 116)
    assert "reference {order.items.9.sku} does not resolve" in probs[0][2]
    assert not any("object at 0x" in m for _, _, m in probs)


# 9. duplicate keys
def test_duplicate_keys_name_the_key_and_both_lines(tmp_path):
    text = SR.replace("domain: customer-support", "domain: customer-support\ndomain: other")
    assert problems(text) == [("domain", 7, "key 'domain' is given twice (lines 6 and 7); "
                                            "YAML would keep only the last")]
    text = SR.replace("    C-100: {", "    C-101: {}\n    C-100: {", 1)
    first = text[: text.index("    C-101: {}")].count("\n") + 1
    second = text[: text.index("    C-101: {customer_id")].count("\n") + 1
    nested = problems(text)
    assert nested[0][:2] == ("world.customers.C-101", second) and f"(lines {first} and {second})" in nested[0][2]
    f = tmp_path / "s.yaml"
    f.write_text(SWEEP + "seed: 1\nseed: 2\n")
    fails(invoke("sweep", f, "--executor", "serial", "--out", tmp_path / "o"), "key 'seed' is given twice")


# 10. what a new user tries
@pytest.mark.parametrize("text, words", [
    ("", "a scenario must be a YAML mapping (name, tools, turns, golden_path, ...); got nothing (the file is empty)"),
    ("- a\n- b\n", "got a list"),
    ("name: x\nbogus: 1\n", "bogus: unknown field; known fields here: name, description"),
    ("a: 1\n---\nb: 2\n", "malformed YAML: expected a single document in the stream, but found another"),
    ("name: \x00\n", "character #x0000 is not allowed"),
])
def test_scenario_files_a_new_user_writes(tmp_path, text, words):
    f = tmp_path / "s.yaml"
    f.write_text(text)
    fails(invoke("validate", f), str(f), words)


def test_a_directory_as_scenario_or_sweep(tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    fails(invoke("validate", d), "is a directory, not a file")
    fails(invoke("run", d, "-n", 1, "--out", tmp_path / "o"), "is a directory, not a file")
    fails(invoke("sweep", d, "--executor", "serial", "--out", tmp_path / "o"), "is a directory, not a file")


@pytest.mark.parametrize("extra, path, line, words", [
    ("faults: [rate_limit]\n", "faults", 3, "should be a mapping (key: value), not a list"),
    ("bogus: 1\n", "bogus", 3, "unknown field; known fields here: name, description, seed"),
    ("faults: {f: [nosuch]}\n", "faults.f", 3, "unknown fault 'nosuch'"),
    ("faults:\n  f:\n    - rate_limit\n    - {name: rate_limit, retry_after_s: [1]}\n", "faults.f", 6,
     "retry_after_s: Input should be a valid number"),
    ("faults: {f: [{name: rate_limit, target: 5}]}\n", "faults.f", 3, "target must be text, not 5"),
    ("agents: []\n", "agents", 3, "at least 1 item"),
    ("scenarios: [\"chain:length=2,oops\"]\n", "scenarios[0]", 2, "'oops' is not of the form key=value"),
])
def test_sweep_files_a_new_user_writes(tmp_path, extra, path, line, words):
    text = extra if extra.startswith("scenarios") else SWEEP + extra
    probs = sweep_problems(tmp_path, "name: x\n" + text if extra.startswith("scenarios") else text)
    assert any(p == path and ln == line and words in m for p, ln, m in probs), probs
    fails(invoke("sweep", tmp_path / "sweep.yaml", "--executor", "serial", "--out", tmp_path / "o"), words)


def test_valid_inputs_still_load(tmp_path):
    load_scenario_text(SR, "s.yaml")
    f = tmp_path / "s.yaml"
    f.write_text("name: x\nseed: 9223372036854775807\nscenarios: [{ref: chain, params: {length: [1, 4096]}}]\n")
    cells, _, n = plan(load_sweep(f))
    assert len(cells) == 2 and n == 6


@pytest.mark.parametrize("value, words", [
    ("sometimes", "reviewer.mode: Input should be 'review', 'approve', 'reject' or 'none'"),
    ("reject_rate=1.5", "reviewer.reject_rate: Input should be less than or equal to 1"),
    ("median_s=inf", "reviewer.median_s: Input should be a finite number"),
    ("catch=0.9", "reviewer.catch: Extra inputs are not permitted"),
])
def test_bad_reviewer_policy_exits_2_before_any_trial(tmp_path, value, words):
    res = invoke("run", "support_refund", "-n", 1, "--reviewer", value, "--out", tmp_path / "r")
    fails(res, words, "use approve, reject, none")
    assert not (tmp_path / "r").exists()
