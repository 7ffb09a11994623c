from pathlib import Path

import pytest

from simulator.engine import run_jobs
from simulator.jobs import JobMaker, make_specs

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


def run(scenario="support_refund", agent="react", *, trials=1, seed=0, profile="strong",
        params=None, **kw):
    """Run trials in-process; return [(record, events)] in spec order."""
    specs = make_specs(scenario, params, agent, trials=trials, seed=seed, profile=profile, **kw)
    make = JobMaker()
    got = {}
    run_jobs([make(s) for s in specs], on_done=lambda r, ev: got.__setitem__(r.trial_id, (r, ev)))
    return [got[s.id] for s in specs]


@pytest.fixture
def fixtures():
    return FIXTURES
