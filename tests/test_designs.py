import pytest

from simulator.design_loader import DesignError, load_factory

from conftest import FIXTURES, ROOT, run


def test_load_by_name_file_and_module(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    by_name = load_factory("react")
    by_file = load_factory(f"{ROOT / 'agents' / 'react.py'}:build")
    by_file_default = load_factory(str(ROOT / "agents" / "react.py"))
    by_module = load_factory("userpkg.mydesign:build")
    assert by_name is by_file is by_file_default
    assert by_module.__module__ == "userpkg.mydesign"


def test_all_three_loader_paths_run_a_trial(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    refs = ["react", f"{ROOT / 'agents' / 'react.py'}:build", "userpkg.mydesign:build"]
    runs = [run(agent=ref, seed=7)[0] for ref in refs]
    assert [r.outcome for r, _ in runs] == ["success"] * 3
    # the same model decisions whichever way the design was found
    calls = [[(e["tool"], e["args"]) for e in ev if e["event"] == "tool_call"] for _, ev in runs]
    assert calls[0] == calls[1] == calls[2] and len(calls[0]) == 8


def test_create_agent_graph_runs_unchanged():
    pytest.importorskip("langchain.agents")
    (rec, events), = run(agent=f"{FIXTURES / 'create_agent_design.py'}:build", seed=1)
    (ref, _), = run(agent="react", seed=1)
    assert rec.outcome == "success"
    assert rec.tool_calls == 8
    # same model, same seed, same conversation: the same decisions as the reference loop
    assert [c.passed for c in rec.checks] == [c.passed for c in ref.checks]
    assert rec.tokens_in > 0


@pytest.mark.parametrize("ref, message", [
    ("no_such_design", "unknown agent 'no_such_design'"),
    ("missing/file.py:build", "agent file not found: missing/file.py"),
    (f"{FIXTURES / 'broken_import.py'}:build",
     "failed to import: ModuleNotFoundError: No module named 'definitely_not_a_module_anyone_has' (line 1)"),
    (f"{FIXTURES / 'bad_designs.py'}:nope", "has no attribute 'nope'"),
    ("json:nope", "json has no attribute 'nope'"),
    ("not a ref!", "is not a design name"),
])
def test_bad_references_say_what_is_wrong(ref, message):
    with pytest.raises(DesignError) as e:
        load_factory(ref)
    assert message in str(e.value)
