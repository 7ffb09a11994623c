"""For architects, end to end: sweeps of designs and profiles compared trial by trial, the
scorecard, and the money, latency and confidence figures in analyze --json."""
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.results import analyze_results, compare_results, rows_from_records
from simulator.analysis.compare import compare
from simulator.runs import run_sweep
from simulator.store import iter_records, results_dir

cli = CliRunner()


def invoke(*args):
    res = cli.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in res.output
    return res


def fails(*args, message):
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr, res.stderr
    return res


def sweep(tmp: Path, name: str, body: str) -> Path:
    f = tmp / f"{name}.yaml"
    f.write_text(f"name: {name}\n" + body)
    return run_sweep(f, executor="serial", out=tmp / name)[1]


# strong, and strong with its error hazard doubled: the same task draws (same profile name),
# so the pairs share their difficulty and the difference has a known sign
HAZARD_PAIR = """\
seed: 3
replicates: 4
scenarios:
  - ref: chain
    params: {length: [4, 16], task: [0, 1, 2, 3, 4, 5]}
profiles:
  - strong
  - {ref: strong, params: {base_hazard: 0.06}, label: strong-x4}
faults:
  none: []
  flaky: ["rate_limit:rate=0.2"]
"""


@pytest.fixture(scope="module")
def hazard_pair(tmp_path_factory):
    return sweep(tmp_path_factory.mktemp("cmp"), "hazard", HAZARD_PAIR)


def test_compare_finds_a_known_difference_with_its_sign(hazard_pair):
    res = compare_results([hazard_pair], by=("profile",), baseline="strong", n_boot=400)
    (comp,) = res["comparisons"]
    assert (comp["a"], comp["b"]) == ("strong", "strong-x4")
    overall = comp["cells"][0]
    assert overall["fault"] == "all" and overall["n_pairs"] == 96
    assert overall["diff"]["ci_high"] < 0  # four times the hazard: worse, and the interval says so
    assert overall["p_holm"] < 0.05 and overall["discordant"]["a_only"] > overall["discordant"]["b_only"]
    assert {c["fault"] for c in comp["cells"]} == {"all", "none", "flaky"}
    assert res["pairing"]["complete"]


def test_pairing_tightens_the_interval(hazard_pair):
    overall = compare_results([hazard_pair], by=("profile",), n_boot=400)["comparisons"][0]["cells"][0]
    width = lambda d: d["ci_high"] - d["ci_low"]
    assert width(overall["diff"]) < width(overall["diff_unpaired"])


def test_two_directories_run_with_the_same_seed_pair_up(tmp_path, hazard_pair):
    again = sweep(tmp_path, "again", HAZARD_PAIR)
    res = compare_results([hazard_pair, again], by=("profile",), baseline="hazard:strong", n_boot=100)
    same = next(c for c in res["comparisons"] if c["b"] == "again:strong")
    cell = same["cells"][0]
    # the same design, seed and trials in both: every pair agrees
    assert cell["n_pairs"] == 96 and cell["discordant"] == {"a_only": 0, "b_only": 0}


def test_analyze_and_scorecard_carry_cost_latency_and_calibration(hazard_pair):
    a = analyze_results(hazard_pair, n_boot=200)
    for cell in a["cells"]:
        cost, lat, cal = cell["cost"], cell["latency"], cell["calibration"]
        assert cost["n"] == cell["n_trials"] == 48
        assert cost["cost_per_task"]["ci_low"] <= cost["cost_per_task"]["estimate"] <= cost["cost_per_task"]["ci_high"]
        assert lat["session_s"]["n"] == 48 and lat["session_s"]["p95"]["estimate"] > 0
        assert cal["n_calls"] > 48 and 0 <= cal["ece"]["estimate"] <= 1
        assert cell["silent_failures"]["n"] == 48
    res = invoke("scorecard", hazard_pair)
    assert res.exit_code == 0
    assert "$ per" in res.output and "1k tasks" in res.output and "ECE" in res.output and "strong-x4" in res.output


def test_compare_cli_prints_the_paired_table_and_json(hazard_pair):
    res = invoke("compare", hazard_pair, "--by", "profile", "--bootstrap", "100")
    assert res.exit_code == 0 and "strong-x4 − strong" in res.output and "McNemar" in res.output
    data = json.loads(invoke("compare", hazard_pair, "--by", "profile", "--bootstrap", "100", "--json").output)
    assert data["comparisons"][0]["cells"][0]["n_pairs"] == 96


def test_bad_input_to_compare_is_one_message_and_exit_2(hazard_pair, tmp_path):
    fails("compare", tmp_path / "nowhere", message="not a results directory")
    fails("compare", hazard_pair, "--by", "profile", "--baseline", "gpt-9", message="design 'gpt-9' is not in the results")
    fails("compare", hazard_pair, message="react")  # one design only: nothing to pair, and it says which
    fails("compare", hazard_pair, "--by", "colour", message="--by takes agent, profile and/or fault")
    other = sweep(tmp_path, "other", HAZARD_PAIR.replace("seed: 3", "seed: 4").replace("  - strong\n", ""))
    fails("compare", hazard_pair, other, "--by", "profile", "--baseline", f"{hazard_pair.name}:strong-x4",
          message="different seeds (3 vs 4)")


@pytest.mark.slow
def test_a_a_comparisons_reject_at_most_at_the_nominal_rate(tmp_path):
    """Identical designs (one design, its replicates split in two halves) over 40 seeds: the
    exact McNemar test rejects at 5% at most as often as 5% plus two binomial SEs."""
    body = """\
replicates: 8
scenarios:
  - ref: chain
    params: {length: [4, 8], task: [0, 1, 2, 3]}
profiles: [weak]
"""
    rejected = 0
    for seed in range(40):
        out = sweep(tmp_path, f"aa{seed}", f"seed: {seed}\n" + body)
        rows, _ = rows_from_records(iter_records(results_dir(out)))
        for r in rows:  # replicates 0-3 are design A, 4-7 design B, paired by position
            r["agent"], r["trial"] = ("A", r["trial"]) if r["trial"] < 4 else ("B", r["trial"] - 4)
        cell = compare(rows, by=("agent",), n_boot=50)["comparisons"][0]["cells"][0]
        rejected += cell["p_value"] < 0.05
    assert rejected <= 4  # 0.05 + 2 * sqrt(0.05 * 0.95 / 40) = 0.119 of 40
