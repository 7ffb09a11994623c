import json

import pytest

from simulator.scenario import ScenarioError, json_schema, load_scenario_file, load_scenario_text
from simulator.scenario_refs import resolve_scenario
from simulator.world import run_golden

from conftest import ROOT

SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))

GOOD = """\
name: tiny
tools:
  get_user:
    description: Get a user.
    args: {user_id: {type: string}}
    effect: {read: users, key: user_id}
  set_email:
    description: Set a user's email.
    args: {user_id: {type: string}, email: {type: string}}
    effect: {update: users, key: user_id, set: {email: $email}}
world: {users: {U-1: {id: U-1, email: a@x.org}}}
turns:
  - user: Change U-1's email to b@x.org.
    steps: [get, set]
golden_path:
  - {id: get, tool: get_user, args: {user_id: U-1}}
  - {id: set, tool: set_email, args: {user_id: "{get.id}", email: b@x.org}}
success:
  state: [{path: users.U-1.email, equals: b@x.org}]
"""


def problems(text):
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, "s.yaml")
    return e.value.problems, str(e.value)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_are_realistic(path):
    sc = load_scenario_file(path)
    assert len(sc.turns) >= 2
    assert len(sc.golden_path) >= 8
    assert len({s.tool for s in sc.golden_path}) >= 5
    assert sc.success.state, "success must be judged on the final world state"


def test_at_least_three_domains():
    domains = {load_scenario_file(p).domain for p in SHIPPED}
    assert len(domains) >= 3


def test_good_scenario_golden_path_solves_it():
    sc = load_scenario_text(GOOD, "s.yaml")
    g = run_golden(sc)
    assert g.world["users"]["U-1"]["email"] == "b@x.org"
    assert sc.world["users"]["U-1"]["email"] == "a@x.org"  # the golden run works on a copy


def test_malformed_yaml_names_the_line():
    probs, msg = problems(GOOD.replace("turns:", "turns: [oops", 1))
    assert "malformed YAML" in msg
    assert probs[0][1] is not None


def test_unknown_tool_in_golden_path_names_field_and_line():
    probs, msg = problems(GOOD.replace("tool: set_email", "tool: set_mail"))
    (path, line, text), = probs
    assert path == "golden_path[1].tool"
    assert line == 17
    assert "unknown tool 'set_mail'" in text and "set_email" in text


def test_reference_to_missing_earlier_output():
    probs, _ = problems(GOOD.replace("{get.id}", "{lookup.id}"))
    assert probs[0][0] == "golden_path[1].args.user_id"
    assert "not a step of the golden path" in probs[0][2]


def test_reference_to_a_later_step():
    text = GOOD.replace('args: {user_id: U-1}', 'args: {user_id: "{set.id}"}')
    probs, _ = problems(text)
    assert any("not an earlier step" in p[2] for p in probs)


def test_reference_to_a_field_the_output_lacks():
    probs, _ = problems(GOOD.replace("{get.id}", "{get.no_such_field}"))
    assert probs[0][0] == "golden_path[1].args.user_id"
    assert "does not resolve" in probs[0][2]


def test_schema_errors_report_every_problem_with_paths():
    text = GOOD.replace("type: string}}\n    effect: {read", "type: strng}}\n    effect: {read")
    text = text.replace("    description: Set a user's email.\n", "")
    probs, msg = problems(text)
    paths = {p[0] for p in probs}
    assert "tools.get_user.args.user_id.type" in paths
    assert "tools.set_email.description" in paths
    assert all(p[1] for p in probs), "every problem should carry a line number"


def test_effect_needs_exactly_one_kind():
    probs, _ = problems(GOOD.replace("{read: users, key: user_id}", "{read: users, find: users, key: user_id}"))
    assert "exactly one of read, find, update, insert" in probs[0][2]


def test_unowned_golden_step_is_reported():
    probs, _ = problems(GOOD.replace("steps: [get, set]", "steps: [get]"))
    assert "not asked for by any turn: set" in probs[0][2]


def test_json_schema_exports():
    schema = json_schema()
    assert schema["title"] == "attrition scenario"
    assert "golden_path" in schema["properties"]
    json.dumps(schema)


@pytest.mark.parametrize("n", [1, 2, 3, 64, 512])
def test_chain_template_gives_n_dependent_calls(n):
    sc, ref = resolve_scenario("chain", {"length": n})
    assert len(sc.golden_path) == n
    assert ref.params == {"length": n}
    # every step after the first consumes the previous step's output
    for prev, step in zip(sc.golden_path, sc.golden_path[1:]):
        assert any(f"{{{prev.id}." in str(v) for v in step.args.values())


def test_template_inline_params_and_errors():
    sc, ref = resolve_scenario("chain:length=5,turns=2")
    assert len(sc.golden_path) == 5 and len(sc.turns) == 2
    with pytest.raises(ScenarioError, match="unknown parameter"):
        resolve_scenario("chain", {"lenght": 5})
    with pytest.raises(ScenarioError, match="length must be >= 1"):
        resolve_scenario("chain", {"length": 0})
    with pytest.raises(ScenarioError, match="no such file, shipped scenario or template"):
        resolve_scenario("no_such_scenario")
