"""The nightly job end to end: baselines and history in the catalog, the gate's exit codes,
JUnit and Markdown, bad input (exit 2, never 1), and a catalog that survives a killed writer."""
import json
import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.catalog import baselines, history, load_baseline, record, snapshot
from simulator.cli import app
from simulator.runs import run_sweep

TINY = """\
replicates: 3
scenarios:
  - ref: chain
    params: {{length: [4, 16], task: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}
agents: [react]
profiles:
  - {profile}
faults:
  none: []
seed: {seed}
"""


def invoke(*args):
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in res.output
    return res


def _sweep(tmp: Path, label: str, *, seed: int = 3, name: str = "tiny", profile: str = "strong") -> Path:
    f = tmp / f"{label}.yaml"
    f.write_text(f"name: {name}\n" + TINY.format(seed=seed, profile=profile))
    return run_sweep(f, executor="serial", out=tmp / label)[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nightly")
    return {"base": _sweep(tmp, "base"),
            # the same sweep with the strong profile's hazard raised tenfold: a planted regression
            "worse": _sweep(tmp, "worse", profile="{ref: strong, params: {base_hazard: 0.15}, label: strong}"),
            "other": _sweep(tmp, "other", name="another-sweep"),
            "tmp": tmp}


@pytest.fixture
def catalog(runs, tmp_path):
    path = tmp_path / "history.duckdb"
    assert invoke("baseline", "save", runs["base"], "--name", "main", "--catalog", path,
                  "--bootstrap", 200).exit_code == 0
    return path


def test_gate_passes_the_same_run_and_fails_a_planted_regression(runs, catalog, tmp_path):
    same = invoke("gate", runs["base"], "--baseline", "main", "--catalog", catalog, "--bootstrap", 200)
    assert same.exit_code == 0, same.output
    assert "0 regressed" in same.stdout and "unchanged" in same.stdout
    junit, md = tmp_path / "gate.xml", tmp_path / "gate.md"
    bad = invoke("gate", runs["worse"], "--baseline", "main", "--catalog", catalog, "--junit", junit,
                 "--markdown", md, "--bootstrap", 200, "--json")
    assert bad.exit_code == 1, bad.output
    res = json.loads(bad.stdout)
    (cell,) = res["cells"]
    assert cell["cell"] == "react / strong / none" and cell["verdict"] == "regressed"
    assert cell["success"]["drop"] > 0.2 and res["same_seed"]
    # JUnit: the shape of the common schema (Jenkins' junit-10.xsd): testsuites > testsuite
    # (name, tests, failures, errors required) > testcase (name required) > failure (message, type)
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and {"tests", "failures", "errors"} <= set(root.attrib)
    (suite,) = list(root)
    assert suite.tag == "testsuite" and suite.get("tests") == "1" and suite.get("failures") == "1"
    assert re.fullmatch(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?", suite.get("time"))
    (case,) = suite.findall("testcase")
    assert case.get("name") == "react / strong / none"
    (failure,) = case.findall("failure")
    assert failure.get("type") == "regression" and "success" in failure.get("message")
    assert "detectable" in failure.get("message") and f"n {cell['n_baseline']} baseline" in failure.get("message")
    text = md.read_text()
    assert text.startswith("### attrition gate: ❌ **regression**") and "| react / strong / none | **regressed** |" in text


def test_history_keeps_runs_and_baselines(runs, catalog):
    assert invoke("history", "add", runs["worse"], "--catalog", catalog, "--bootstrap", 200).exit_code == 0
    h = history(catalog)
    assert h["sweep"] == "tiny" and len(h["runs"]) == 2
    assert [r["baseline"] for r in h["runs"]].count("main") == 1
    (series,) = h["cells"].values()
    assert [x["success_rate"] for x in series][0] > [x["success_rate"] for x in series][1]
    shown = invoke("history", "--catalog", catalog)
    assert shown.exit_code == 0 and "2 run(s)" in shown.stdout and "main" in shown.stdout
    as_json = json.loads(invoke("history", "--catalog", catalog, "--json").stdout)
    assert list(as_json["cells"]) == ["react / strong / none"]
    # recording the same run twice replaces it
    record(catalog, snapshot(runs["worse"], n_boot=200))
    assert len(history(catalog)["runs"]) == 2
    assert [b["name"] for b in baselines(catalog)] == ["main"]
    saved = load_baseline(catalog, "main")
    assert saved["cells"]["react / strong / none"]["n_trials"] == 60
    # the unit is the task family: a chain task at lengths 4 and 16 shares one difficulty draw
    assert sorted(saved["cells"]["react / strong / none"]["tasks"]) == sorted(f"chain/task-{i}" for i in range(10))
    assert {n for n, _ in saved["cells"]["react / strong / none"]["tasks"].values()} == {6}


def _fails(*args, message):
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr, res.stderr


def test_bad_input_exits_2_with_one_message(runs, catalog, tmp_path):
    _fails("gate", runs["base"], "--baseline", "nightly", "--catalog", catalog,
           message="no baseline named 'nightly'")
    _fails("gate", runs["base"], "--baseline", "main", "--catalog", tmp_path / "none.duckdb",
           message="no history catalog at")
    _fails("gate", runs["other"], "--baseline", "main", "--catalog", catalog,
           message="ran sweep 'another-sweep' but baseline 'main' is of sweep 'tiny'")
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database\n")
    _fails("gate", runs["base"], "--baseline", "main", "--catalog", junk, message="cannot open the history catalog")
    _fails("history", "--catalog", junk, message="cannot open the history catalog")
    _fails("gate", tmp_path / "nowhere", "--baseline", "main", "--catalog", catalog,
           message="not a results directory")
    _fails("gate", runs["base"], "--baseline", "main", "--catalog", catalog, "--min-effect", "2",
           message="min_effect must be a number from 0 to 1")
    _fails("history", "--catalog", catalog, "--sweep", "nope", message="no runs of sweep 'nope'")


KILLER = """
import os, signal, sys
from simulator import catalog
real = catalog.opened
class Dying:
    def __init__(self, con): self.con = con
    def execute(self, sql, *a):
        got = self.con.execute(sql, *a)
        if sql.startswith("INSERT INTO runs"):  # inside the transaction: die before COMMIT
            os.kill(os.getpid(), signal.SIGKILL)
        return got
    def __getattr__(self, k): return getattr(self.con, k)
from contextlib import contextmanager
@contextmanager
def opened(path, write):
    with real(path, write=write) as con:
        yield Dying(con)
catalog.opened = opened
catalog.record(__import__("pathlib").Path(sys.argv[1]), catalog.snapshot(sys.argv[2], n_boot=100))
"""


def test_a_catalog_written_by_a_killed_run_is_still_readable(runs, catalog, tmp_path):
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    got = subprocess.run([sys.executable, str(script), str(catalog), str(runs["worse"])], capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert got.returncode == -signal.SIGKILL, got.stderr
    h = history(catalog)  # the killed transaction left nothing half-written
    assert len(h["runs"]) == 1 and h["runs"][0]["baseline"] == "main"
    assert invoke("gate", runs["base"], "--baseline", "main", "--catalog", catalog, "--bootstrap", 200).exit_code == 0


def test_the_catalog_and_the_report_agree_on_a_cells_figures(runs):
    from simulator.results import analyze_results
    a = analyze_results(runs["base"], n_boot=200, cell_keys=("agent", "profile", "fault"))
    (cell,) = snapshot(runs["base"], n_boot=200)["cells"].values()
    assert cell["horizon_50"] == a["horizon_50"]  # one cell: the whole run, the same bootstrap draws
    assert cell["cost_per_success"] == a["economics"]["cost"]["cost_per_success"]


def test_a_results_directory_serves_as_a_baseline_without_a_catalog(runs, tmp_path):
    res = invoke("gate", runs["worse"], "--baseline", runs["base"], "--catalog", tmp_path / "none.duckdb",
                 "--bootstrap", 200, "--json")
    assert res.exit_code == 1
    assert json.loads(res.stdout)["baseline"]["name"] == str(runs["base"])
    assert not (tmp_path / "none.duckdb").exists()  # reading a baseline writes no catalog
