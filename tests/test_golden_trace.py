"""Golden traces: the full event stream of fixed trials, committed.

Any change in what the simulated model decides, what the tools return or what the
engine records shows up here as the first differing event. After an intended
change, regenerate with ATTRITION_UPDATE_GOLDEN=1 and review the diff.
"""
import json
import os
from pathlib import Path

import pytest

from conftest import run

GOLDEN = Path(__file__).parent / "golden"
CASES = [("support_refund", None, "strong", 1), ("chain", {"length": 12}, "weak", 4)]


@pytest.mark.parametrize("scenario, params, profile, seed", CASES)
def test_event_stream_matches_golden(scenario, params, profile, seed):
    (rec, events), = run(scenario, params=params, profile=profile, seed=seed)
    lines = [json.dumps(e, sort_keys=True, default=str) for e in events]
    lines.append(json.dumps(rec.deterministic(), sort_keys=True, default=str))
    path = GOLDEN / f"{scenario}-{profile}-seed{seed}.jsonl"
    if os.environ.get("ATTRITION_UPDATE_GOLDEN"):
        path.write_text("\n".join(lines) + "\n")
    expected = path.read_text().splitlines()
    for i, (got, want) in enumerate(zip(lines, expected)):
        assert got == want, f"event {i} differs from {path.name}"
    assert len(lines) == len(expected)
