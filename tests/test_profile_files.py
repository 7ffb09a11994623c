"""Profiles as data: profile files, sweep overrides, and what a trial keeps of them."""
import json

import pytest

from simulator.jobs import make_specs
from simulator.profile_refs import load_profile_file, resolve_profile
from simulator.profiles import ProfileError, get_profile
from simulator.runs import run_sweep
from simulator.scenario import ScenarioError
from simulator.store import iter_records
from simulator.sweep import expand, load_sweep

from conftest import run

SPREAD = "base: strong\nname: spread\ndifficulty_sd: 1.8\nsummary: wider\nfit: {note: free-form}\n"


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_profile_file_is_its_base_with_its_changes(tmp_path):
    got = load_profile_file(write(tmp_path, "p.yaml", SPREAD))
    assert (got.base, got.params, got.label) == ("strong", {"name": "spread", "difficulty_sd": 1.8}, "spread")
    prof = get_profile(got.base, **got.params)  # what the engine builds from a spec
    assert prof.difficulty_sd == 1.8 and prof.base_hazard == get_profile("strong").base_hazard
    # no name: the file's stem; no base: strong
    got = load_profile_file(write(tmp_path, "my profile.yaml", "base_hazard: 0.05\n"))
    assert got.label == "my-profile" and got.base == "strong"


@pytest.mark.parametrize("text, where", [
    ("difficulty_sd: -1\n", ("difficulty_sd", 1, "greater than or equal to 0")),
    ("x: 1\nbase_hazrd: 0.1\n", ("x", 1, "unknown field")),
    ("base: medium\n", ("base", 1, "unknown preset 'medium'")),
    ("name: weak\nbase_hazard: 0.2\n", ("name", 1, "'weak' is another preset's name")),
    ("error_modes: {typo: 1}\n", (None, None, "unknown mode 'typo'")),
    ("- strong\n", ("", 1, "must be a YAML mapping")),
    ("latency: {first_token_median_s: .inf}\n", ("latency.first_token_median_s", 1, "not a finite number")),
])
def test_bad_profile_files_name_the_line_and_field(tmp_path, text, where):
    with pytest.raises(ScenarioError) as e:
        load_profile_file(write(tmp_path, "bad.yaml", text))
    path, line, msg = e.value.problems[0]
    assert where[2] in msg and (where[0] is None or (path, line) == where[:2]), e.value.problems


def test_unknown_profiles_and_bad_overrides_are_named():
    with pytest.raises(KeyError, match="unknown profile 'medium'; known: strong, tau-airline, weak"):
        resolve_profile("medium")
    with pytest.raises(KeyError, match="no profile file 'gone.yaml'"):
        resolve_profile("gone.yaml")
    with pytest.raises(ProfileError, match="base_hazard"):
        resolve_profile("strong", {"base_hazard": 2})


def test_a_preset_as_it_is_keeps_every_trial_id(tmp_path):
    plain = make_specs("chain", {"length": 4}, "react", trials=2, seed=1)
    assert plain[0].tags == {}
    # the id this trial had before profiles could come from files (tests/golden)
    assert make_specs("support_refund", None, "react", trials=1, seed=1)[0].id == "257e5a66792cdf35"
    filed = make_specs("chain", {"length": 4}, "react", trials=2, seed=1,
                       profile=str(write(tmp_path, "p.yaml", SPREAD)))
    assert filed[0].profile == "strong" and filed[0].profile_params == {"name": "spread", "difficulty_sd": 1.8}
    assert filed[0].tags == {"profile": "spread"} and filed[0].profile_label == "spread"
    # documentation fields never enter the id
    again = make_specs("chain", {"length": 4}, "react", trials=2, seed=1,
                       profile=str(write(tmp_path, "q.yaml", SPREAD.replace("wider", "much wider"))))
    assert [s.id for s in again] == [s.id for s in filed]


def test_a_file_profile_runs_as_the_same_overrides_given_inline(tmp_path):
    (a, _), = run("chain", params={"length": 8}, seed=3, profile=str(write(tmp_path, "p.yaml", SPREAD)))
    (b, _), = run("chain", params={"length": 8}, seed=3, profile="strong",
                  profile_params={"name": "spread", "difficulty_sd": 1.8})
    assert a.profile == "spread" and b.profile == "strong"
    assert {k: v for k, v in a.deterministic().items() if k not in ("trial_id", "spec", "profile")} == \
           {k: v for k, v in b.deterministic().items() if k not in ("trial_id", "spec", "profile")}


def test_sweep_profiles_take_presets_files_and_overrides(tmp_path):
    write(tmp_path, "p.yaml", SPREAD)
    sweep = write(tmp_path, "s.yaml", f"name: s\nscenarios: [{{ref: chain, params: {{length: 2}}}}]\nreplicates: 1\n"
                  f"profiles: [strong, {tmp_path / 'p.yaml'}, {{ref: weak, params: {{base_hazard: 0.2}}}},"
                  f" {{ref: weak, params: {{base_hazard: 0.3}}, label: weaker}}]\n")
    specs = expand(load_sweep(sweep))
    assert [s.profile_label for s in specs] == ["strong", "spread", "weak+base_hazard=0.2", "weaker"]
    assert [s.profile_params for s in specs][2:] == [{"base_hazard": 0.2}, {"base_hazard": 0.3}]
    assert load_sweep(sweep).model_dump(mode="json")["profiles"][0] == "strong"  # written back as given
    summary, out = run_sweep(sweep, executor="serial", out=tmp_path / "r")
    assert sorted(r.profile for r in iter_records(out)) == sorted(["strong", "spread", "weak+base_hazard=0.2", "weaker"])
    # an edited profile file stops a resume from mixing two versions of it
    write(tmp_path, "p.yaml", SPREAD.replace("1.8", "1.9"))
    with pytest.raises(LookupError, match="profile spread has changed since the sweep"):
        run_sweep(sweep, executor="serial", out=out, resume=True)
    assert json.loads((out / "manifest.json").read_text())["profiles"][1]["params"]["difficulty_sd"] == 1.8


@pytest.mark.parametrize("profiles, words", [
    ("[strong, {ref: weak, label: strong}]", "profiles[1]: label 'strong' is also profiles[0]'s"),
    ("[{ref: strong, params: {difficulty_sd: -1}}]", "profiles[0].params: profile 'strong': difficulty_sd"),
])  # an unknown name and a repeated entry: tests/test_sweep.py
def test_bad_sweep_profiles_are_named(tmp_path, profiles, words):
    sweep = write(tmp_path, "s.yaml", f"name: s\nscenarios: [chain]\nprofiles: {profiles}\n")
    with pytest.raises(ScenarioError) as e:
        expand(load_sweep(sweep), str(sweep))
    assert words in str(e.value), str(e.value)
