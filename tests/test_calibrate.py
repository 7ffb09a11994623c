"""attrition calibrate: the re-scoring against closed forms, the table checks, and the command."""
from __future__ import annotations

import json
import math
from itertools import combinations

import numpy as np
import pytest
import yaml

from simulator.analysis.reweight import Draws, count_probs, esp, pass_hat, trial_loglik, weights
from simulator.calibrate import read_target, unidentified
from simulator.profile_refs import load_profile_file
from simulator.profiles import get_profile
from typer.testing import CliRunner

from simulator.cli import app


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_elementary_symmetric_polynomials_match_their_definition():
    w = np.array([[0.5, 2.0, 1.5, 0.25]])
    e = esp(w, 3)[0]
    for k in range(4):
        assert e[k] == pytest.approx(sum(math.prod(c) for c in combinations(w[0], k)))


def test_equal_weights_give_the_unbiased_estimators():
    s = np.array([[1, 1, 0, 1, 0, 0, 1, 1]], dtype=float)  # 5 of 8
    w = np.ones_like(s)
    for k in range(1, 6):
        assert pass_hat(w, s, k)[0] == pytest.approx(math.comb(5, k) / math.comb(8, k))
    probs = count_probs(w, s, 4)[0]
    hyper = [math.comb(5, c) * math.comb(3, 4 - c) / math.comb(8, 4) for c in range(5)]
    assert probs == pytest.approx(hyper) and probs.sum() == pytest.approx(1.0)


def test_weighted_k_subsets_are_the_weighted_share_of_subsets():
    s = np.array([[1, 0, 1, 1, 0]], dtype=float)
    w = np.array([[0.2, 1.0, 3.0, 0.5, 2.0]])
    subsets = list(combinations(range(5), 2))
    num = sum(w[0, i] * w[0, j] * s[0, i] * s[0, j] for i, j in subsets)
    den = sum(w[0, i] * w[0, j] for i, j in subsets)
    assert pass_hat(w, s, 2)[0] == pytest.approx(num / den)


def _bernoulli_draws(p0: float, n: int, seed: int) -> Draws:
    rng = np.random.default_rng(seed)
    hit = rng.random(n) < p0
    z = np.zeros(n)
    return Draws(trial=np.arange(n), recall=np.zeros(n, bool), z_task=z, z_step=z, fixed=z,
                 ambiguous=np.zeros(n, bool), log2_ctx=np.full(n, -np.inf), uncorrected=z, hit=hit, n_trials=n)


def test_rescored_trials_estimate_the_other_parameters_error_rate():
    # draws made at p0 = 0.2, re-scored at p = 0.3: the weighted error rate is p
    d, prof = _bernoulli_draws(0.2, 200_000, 1), get_profile("strong")
    v0 = np.array([math.log(0.2 / 0.8), 0, 0, 0])
    v1 = np.array([math.log(0.3 / 0.7), 0, 0, 0])
    w = np.exp(trial_loglik(d, v1, prof) - trial_loglik(d, v0, prof))
    assert (w * d.hit).sum() / w.sum() == pytest.approx(0.3, abs=0.005)
    assert w.mean() == pytest.approx(1.0, abs=0.01)  # a likelihood ratio averages 1


def test_weights_scale_each_task_to_its_largest():
    w = weights(np.array([[0.0, -1.0], [1000.0, 999.0]]))  # no overflow however large
    assert w == pytest.approx(np.array([[1, math.exp(-1)], [1, math.exp(-1)]]))


def _table(tmp_path, rows, name="t.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_the_table_says_what_it_can_identify(tmp_path):
    single = _table(tmp_path, [{"task": i, "success": i % 2} for i in range(10)])
    assert set(unidentified(read_target([single]))) == {"difficulty_sd", "step_difficulty_sd", "context_rot"}
    repeated = _table(tmp_path, [{"task": i, "trial": j, "success": (i + j) % 2} for i in range(10) for j in range(3)])
    assert set(unidentified(read_target([repeated]))) == {"step_difficulty_sd", "context_rot"}
    lengths = _table(tmp_path, [{"task": i, "trial": j, "length": 2 ** (i % 3), "context_tokens": 1000 * (1 + i % 2),
                                 "success": 1} for i in range(10) for j in range(2)])
    t = read_target([lengths])
    assert unidentified(t) == {} and len(t.cells) == 6


@pytest.mark.parametrize("rows, message", [
    ([{"task": 1, "success": 1, "length": 2}, {"task": 1, "success": 0, "length": 4}],
     "task 1: its trials have different lengths"),
    ([{"task": 1, "success": 1, "context_tokens": "lots"}], "field 'context_tokens': expected a number"),
    ([{"task": 1, "success": 1, "profile": "a"}, {"task": 2, "success": 1, "profile": "b"}],
     "the trials mix profiles (a, b); calibrate one at a time, e.g. --where profile=a"),
])
def test_a_table_that_cannot_be_fitted_is_named(tmp_path, rows, message):
    with pytest.raises(ValueError, match=None) as e:
        read_target([_table(tmp_path, rows)])
    assert message in str(e.value) and "t.jsonl" in str(e.value)


@pytest.mark.parametrize("args, message", [
    (["--fit", "base_hazard,speed"], "--fit speed: not a parameter calibration fits"),
    (["--scenario", "support_refund"], "calibration simulates a template"),
    (["--profile", "nope"], "unknown profile 'nope'"),
])
def test_bad_calibrate_options_are_one_line_errors(tmp_path, args, message):
    t = _table(tmp_path, [{"task": i, "trial": j, "success": 1} for i in range(3) for j in range(2)])
    res = invoke("calibrate", t, "--out", tmp_path / "p.yaml", *args)
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "p.yaml").exists()


def test_calibrate_writes_a_profile_that_reads_back(tmp_path):
    rows = [{"task": i, "trial": j, "success": int(i % 3 != 0)} for i in range(12) for j in range(3)]
    out = tmp_path / "fitted.yaml"
    res = invoke("calibrate", _table(tmp_path, rows), "--length", 4, "--tasks", 12, "--replicates", 4,
                 "--rounds", 1, "--bootstrap", 20, "--workers", 1, "--out", out)
    assert res.exit_code == 0, res.output
    doc = yaml.safe_load(out.read_text())
    assert doc["base"] == "strong" and doc["name"] == "fitted"
    assert set(doc["fit"]["fitted"]) == {"base_hazard", "difficulty_sd"}
    assert set(doc["fit"]["left_at_base"]) == {"step_difficulty_sd", "context_rot"}
    lo, hi = doc["fit"]["fitted"]["base_hazard"]["ci95"]
    assert lo <= doc["base_hazard"] <= hi
    assert [r["k"] for r in doc["fit"]["goodness_of_fit"]["pass_hat_k"]] == [1, 2, 3]
    assert load_profile_file(out).params["base_hazard"] == doc["base_hazard"]
    assert "pass^k" in res.output and "not fitted" in res.output
