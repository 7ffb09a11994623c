"""Extending attrition from another package: a fault, a design, a profile, a template and an
executor, each one definition, found through entry points and used from the command line.

The plug-in in tests/fixtures/plugin is found the way an installed package is: its
.dist-info declares the entry points, and it is on the path of a fresh process.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import FIXTURES

PLUGIN = FIXTURES / "plugin"


def attrition(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", "from simulator.cli import app; app()", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_plugin_entries_are_listed(tmp_path):
    out = attrition("list", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("blank_field", "prebuilt-react", "careful", "lookups", "counting"):
        assert name in out.stdout, name
    assert "executors" in out.stdout and "serial" in out.stdout
    assert "one field of the result comes back empty" in out.stdout


def test_plugin_fault_design_and_profile_run_from_the_cli(tmp_path):
    out = attrition("run", "support_refund", "--agent", "prebuilt-react", "--profile", "careful",
                    "--fault", "blank_field:field=status,target=get_order", "-n", "3", "--seed", "2",
                    "--out", str(tmp_path / "r"), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["trials"] == 3 and summary["outcomes"]["error"] == 0
    assert summary["faults_fired"]["blank_field"]["trials_hit"] == 3
    records = [json.loads(line) for line in (tmp_path / "r" / "records.jsonl").read_text().splitlines()]
    assert {r["profile"] for r in records} == {"careful"}
    assert {r["agent"] for r in records} == {"prebuilt-react"}
    # the careful profile notices the silently blanked field (notice_silent_wrong 0.99)
    events = [json.loads(line) for line in (tmp_path / "r" / "events.jsonl").read_text().splitlines()]
    verdicts = [v for e in events if e["event"] == "model_call" for v in (e.get("verdicts") or {}).values()]
    assert "reject" in verdicts


def test_plugin_template_and_executor_run_a_sweep(tmp_path):
    (tmp_path / "sweep.yaml").write_text(
        "name: plug\nseed: 1\nreplicates: 2\nscenarios: [{ref: lookups, params: {n: [2, 4]}}]\n"
        "agents: [react, prebuilt-react]\n")
    out = attrition("sweep", "sweep.yaml", "--executor", "counting", "--out", str(tmp_path / "s"), "--json",
                    cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "counting executor: chunk 0" in out.stderr
    summary = json.loads(out.stdout)
    assert summary["trials"] == 8 and summary["outcomes"]["error"] == 0
    # the template's parameter is a grid axis: lookups of 2 and 4 accounts (3 and 5 golden steps)
    assert [c["length"] for c in summary["analysis"]["by_length"]] == [3, 5]
    assert {c["agent"] for c in summary["analysis"]["cells"]} == {"react", "prebuilt-react"}


def test_unknown_plugin_names_are_clear_errors(tmp_path):
    out = attrition("run", "support_refund", "--profile", "careless", "-n", "1", "--out", str(tmp_path / "x"),
                    cwd=tmp_path)
    assert out.returncode == 2
    assert "unknown profile 'careless'; known: careful, strong, tau-airline, weak" in out.stderr
