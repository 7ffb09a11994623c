"""Parameter recovery: outcomes simulated with known parameters, then calibrated from another
starting profile, give intervals that hold the known values."""
from __future__ import annotations

import json

import pytest

from simulator.calibrate import calibrate
from simulator.executors import execute
from simulator.jobs import make_specs


def _simulated_table(tmp_path, params: dict, *, length: int, tasks: int, trials: int, seed: int):
    specs = [s for t in range(tasks)
             for s in make_specs("chain", {"length": length, "task": t}, "react", trials=trials, seed=seed,
                                 profile_params=params)]
    rows = [{"task": rec.spec["scenario"]["params"]["task"], "trial": rec.replicate,
             "success": rec.outcome == "success"} for rec, _ in execute(specs, executor="serial")]
    path = tmp_path / "outcomes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _recovers(tmp_path, truth: dict, *, tasks: int, replicates: int, rounds: int):
    table = _simulated_table(tmp_path, truth, length=6, tasks=tasks, trials=4, seed=1000)
    c = calibrate([table], length=6, tasks=tasks, replicates=replicates, rounds=rounds, n_boot=60, seed=0,
                  workers=1)
    assert set(c.free) == {"base_hazard", "difficulty_sd"}
    for k, v in truth.items():
        lo, hi = c.intervals[k]
        assert lo <= v <= hi, (k, v, c.intervals[k], c.values)


def test_recovers_a_harder_and_more_spread_profile(tmp_path):
    _recovers(tmp_path, {"base_hazard": 0.06, "difficulty_sd": 1.6}, tasks=50, replicates=8, rounds=3)


@pytest.mark.slow
@pytest.mark.parametrize("truth", [{"base_hazard": 0.03, "difficulty_sd": 0.5},
                                   {"base_hazard": 0.1, "difficulty_sd": 2.2},
                                   {"base_hazard": 0.015, "difficulty_sd": 1.2}])
def test_recovers_parameters_at_several_true_values(tmp_path, truth):
    _recovers(tmp_path, truth, tasks=120, replicates=8, rounds=6)
