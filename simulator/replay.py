"""Replaying one stored trial from its id, and saying how the replay compares."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .engine import run_jobs
from .files import ResultsError
from .jobs import JobMaker
from .records import TrialRecord
from .scenario import ScenarioError
from .scenario_refs import resolve_scenario
from .spec import TrialSpec
from .store import find_trial, read_manifest, stored_scenario, validation_problem


@dataclass
class Replay:
    stored: TrialRecord
    fresh: TrialRecord
    events: list[dict]
    run_dir: Path
    shared: int  # sessions that shared the trial's virtual environment when it first ran
    scenario_note: str = ""  # which scenario content the replay ran on, in words

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
        m = read_manifest(run_dir)
    except ResultsError:  # a damaged manifest should not stop a replay: assume the trial ran alone
        return 1
    sweep = m.get("sweep") if isinstance(m.get("sweep"), dict) else {}
    n = sweep.get("concurrency") or m.get("concurrency") or 1
    return n if isinstance(n, int) and n >= 1 else 1


def _check_roots(roots: list[Path]) -> None:
    for r in map(Path, roots):
        if r.exists() and not r.is_dir():
            raise ResultsError(f"{r} is a file, not a results directory (or a folder of them)")
    if not any(Path(r).is_dir() for r in roots):
        raise ResultsError(f"no such results directory: {', '.join(map(str, roots))} (give --results DIR: "
                           "a results directory, or a folder of them)")


def _scenario(spec: TrialSpec, make: JobMaker, run_dir: Path, trial_id: str) -> str:
    """Give `make` the scenario the trial ran: its reference's content if that still has the
    recorded digest, else the copy its results directory kept; say which, in words."""
    ref, want = spec.scenario.ref, spec.scenario.digest
    try:
        sc, now = resolve_scenario(ref, spec.scenario.params)
        why = None if now.digest == want else (f"has changed since the trial was recorded (content digest "
                                               f"{want} then, {now.digest} now)")
    except ScenarioError as e:
        reason = e.problems[0][2].split(";")[0] if e.problems else str(e)
        why = f"no longer resolves here ({reason})"
    if why is None:
        make.use_scenario(spec, sc)
        return f"scenario {ref!r}: from its reference"
    kept = stored_scenario(run_dir, want)
    if kept is None:
        raise LookupError(f"cannot replay trial {trial_id}: scenario {ref!r} {why}, and {run_dir} keeps no "
                          "copy of it")
    make.use_scenario(spec, kept[0])
    return f"scenario {ref!r}: from the copy kept in {kept[1]}, as the reference {why}"


def replay(trial_id: str, roots: list[Path]) -> Replay:
    """Re-run one stored trial from its id (or a unique prefix of it)."""
    _check_roots(roots)
    found = find_trial(trial_id, roots)
    if found is None:
        raise LookupError(f"no trial with id {trial_id!r} under {', '.join(map(str, roots))}")
    stored, run_dir = found
    try:
        spec = TrialSpec.model_validate(stored.spec)
    except ValidationError as e:
        raise ResultsError(f"{run_dir / 'records.jsonl'}: trial {stored.trial_id} has no usable spec: "
                           f"{validation_problem(e)}") from None
    make = JobMaker()
    note = _scenario(spec, make, run_dir, stored.trial_id)
    got: list = []
    run_jobs([make(spec)], on_done=lambda r, ev: got.append((r, ev)))
    fresh, events = got[0]
    return Replay(stored, fresh, events, run_dir, shared_environment(run_dir), note)
