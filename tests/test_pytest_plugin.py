"""The pytest plugin as an agent builder uses it: installed through the pytest11 entry
point, the `attrition` fixture runs cells and compares them with baselines."""
import pytest

pytest_plugins = ["pytester"]

SUITE = '''
def test_strong_holds(attrition):
    r = attrition.run("chain", params={"length": 4, "task": 0}, design="react", profile="strong", trials=12)
    assert r.n == 12 and 0 <= r.ci_low <= r.success_rate <= r.ci_high <= 1
    assert r.cell == "react / strong / none"
    assert r.ci_low >= 0.5, str(r)

def test_a_worse_profile_regresses(attrition):
    base = attrition.run("chain", params={"length": 16, "task": 0}, profile="strong", trials=30)
    worse = attrition.run("chain", params={"length": 16, "task": 0}, profile="strong", trials=30,
                          profile_params={"base_hazard": 0.2})
    assert worse.regressed(base)
    assert not base.regressed(base)
    assert "success fell" in worse.gate(base)["findings"][0]

def test_a_saved_baseline(attrition):
    r = attrition.run("chain", params={"length": 4, "task": 0}, trials=6)
    assert not r.regressed(attrition.baseline("main"))

def test_a_missing_baseline_says_so(attrition):
    import pytest
    with pytest.raises(LookupError, match="no baseline named 'nope'"):
        attrition.baseline("nope")
'''


def test_the_fixture_runs_cells_and_gates_them(pytester, tmp_path):
    from simulator.catalog import save_baseline, snapshot
    from simulator.runs import run_cell
    catalog = tmp_path / "history.duckdb"
    out = run_cell("chain", {"length": 4, "task": 0}, "react", trials=6, seed=0, out=tmp_path / "base")[1]
    save_baseline(catalog, "main", snapshot(out, n_boot=100))
    pytester.makepyfile(test_agent=SUITE)
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--attrition-catalog={catalog}",
                                        f"--attrition-results={tmp_path / 'kept'}")
    res.assert_outcomes(passed=4)
    assert (tmp_path / "kept" / "test_strong_holds").is_dir()  # --attrition-results keeps them


def test_the_plugin_is_registered_by_entry_point():
    from importlib.metadata import entry_points
    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "attrition"]
    assert ep.value == "simulator.pytest_plugin"
