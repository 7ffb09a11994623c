"""Replaying one stored trial from its id, and saying how the replay compares."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine import run_jobs
from .jobs import JobMaker
from .records import TrialRecord
from .spec import TrialSpec
from .store import find_trial


@dataclass
class Replay:
    stored: TrialRecord
    fresh: TrialRecord
    events: list[dict]
    run_dir: Path
    shared: int  # sessions that shared the trial's virtual environment when it first ran

    @property
    def same(self) -> bool:
        return self.stored.deterministic() == self.fresh.deterministic()

    def differences(self) -> list[tuple[str, Any, Any]]:
        """(field, stored, replayed) for every field of the record that differs."""
        a, b = self.stored.deterministic(), self.fresh.deterministic()
        return [(k, a[k], b.get(k)) for k in sorted(a) if a[k] != b.get(k)]


def shared_environment(run_dir: Path) -> int:
    """How many sessions shared one environment in a run (a replay runs its trial alone)."""
    try:
        m = json.loads((Path(run_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return 1
    return int((m.get("sweep") or {}).get("concurrency") or m.get("concurrency") or 1)


def replay(trial_id: str, roots: list[Path]) -> Replay:
    """Re-run one stored trial from its id (or a unique prefix of it)."""
    found = find_trial(trial_id, roots)
    if found is None:
        raise LookupError(f"no trial with id {trial_id!r} under {', '.join(map(str, roots))}")
    stored, run_dir = found
    spec = TrialSpec.model_validate(stored.spec)
    make = JobMaker()
    job = make(spec)
    now = make.digest(spec)
    if now != spec.scenario.digest:
        raise LookupError(f"scenario {spec.scenario.ref!r} has changed since trial {stored.trial_id} was "
                          f"recorded (content digest {spec.scenario.digest} then, {now} now); replay needs it "
                          "as it was")
    got: list = []
    run_jobs([job], on_done=lambda r, ev: got.append((r, ev)))
    fresh, events = got[0]
    return Replay(stored, fresh, events, run_dir, shared_environment(run_dir))
