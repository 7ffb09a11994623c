"""The results store: an append-only, crash-safe log plus an embedded analytic database.

results/<run>/
  manifest.json    what ran: spec or sweep file, seed, package versions, summary
  records.jsonl    one TrialRecord per line, appended (flushed and fsynced) as each trial ends
  events.jsonl     every event of every finished trial, written before its record
  scenarios/       <digest>.json: the content of each distinct scenario the trials ran, written
                   before the first record that needs it, so a trial replays from its id alone
  results.duckdb   the records as a flat SQL table `trials`, rebuilt from the log at the end of
                   a run (simulator.sql adds the view `events` over the log when it is queried)

A trial's events are written before its record, and a record line is the commit: a
run killed with SIGKILL loses only the trials in flight, and a resumed run drops
events of trials that never committed, so each trial appears exactly once.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError

from .files import ResultsError, atomic_write, cannot_write, check_writable, numbered_lines, read_json
from .records import TrialRecord, code_version, versions
from .scenario import Scenario, ScenarioError, parse_scenario
from .scenario_refs import resolve_scenario

LOST = "worker failed"  # a trial lost for a reason outside it (its Dask worker was lost): run again on --resume
SCENARIOS = "scenarios"
STORE_FILES = ("manifest.json", "records.jsonl", "events.jsonl", "results.duckdb")
_DIGEST = re.compile(r"[0-9a-f]{8,64}")  # a scenario digest names a file: nothing else may


def iter_jsonl(path: Path) -> Iterator[dict]:
    """The objects of a JSON-lines log, skipping a torn last line (what a killed writer leaves);
    any other bad line raises ResultsError naming the file and line."""
    for _, obj, _ in numbered_lines(path):
        yield obj


def validation_problem(e: ValidationError, skip: tuple = (), root: str = "<root>") -> str:
    """The first problem of a pydantic error as `field F: message (got V)`; `root` names the
    field of a problem with the whole object (a missing tag, say)."""
    x = e.errors()[0]
    field = ".".join(str(p) for p in x["loc"] if p not in skip)
    got = "" if isinstance(x.get("input"), (dict, list)) or "input" not in x else f" (got {x['input']!r:.60})"
    more = f"; and {e.error_count() - 1} more problem(s)" if e.error_count() > 1 else ""
    return f"field {field or root}: {x['msg']}{got}{more}"


def results_dir(path: Path | str, *, events: bool = False) -> Path:
    """PATH as a results directory (with events.jsonl too, if asked), or ResultsError saying
    what it is instead."""
    p = Path(path)
    if not p.exists():
        raise ResultsError(f"no such results directory: {p}")
    if not p.is_dir():
        raise ResultsError(f"{p} is a file, not a results directory (one made by `attrition run` or `sweep`)")
    for name in ("records.jsonl", "events.jsonl") if events else ("records.jsonl",):
        f = p / name
        if not f.exists():
            empty = not any(p.iterdir())
            raise ResultsError(f"{p} is not a results directory" + (" (it is empty)" if empty else "")
                               + f": it has no {name}")
        if not f.is_file():
            raise ResultsError(f"{f} is not a file: {p} is not a usable results directory")
    return p


def read_manifest(root: Path | str) -> dict:
    """A results directory's manifest.json ({} if it has none)."""
    p = Path(root) / "manifest.json"
    return read_json(p) if p.exists() else {}


def committed_ids(root: Path) -> set[str]:
    """Trial ids with a complete record line (a torn last line is not a commit, nor is a
    trial lost with its worker)."""
    return {r["trial_id"] for r in iter_jsonl(Path(root) / "records.jsonl")
            if isinstance(r.get("trial_id"), str) and not str(r.get("error") or "").startswith(LOST)}


def _repair(root: Path, keep: set[str]) -> None:
    """Drop torn lines and duplicate records, and events of trials that never committed.
    Both logs are read whole before either is replaced: a damaged line changes nothing."""
    ev, tmp = root / "events.jsonl", root / "events.jsonl.tmp"
    try:
        if ev.exists():
            with open(tmp, "wb") as dst:
                for _, obj, raw in numbered_lines(ev):
                    if isinstance(obj.get("trial"), str) and obj["trial"] in keep:
                        dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
        seen, lines = set(), []
        for _, obj, raw in numbered_lines(root / "records.jsonl"):
            tid = obj.get("trial_id")
            if isinstance(tid, str) and tid in keep and tid not in seen:  # a lost trial is run again
                seen.add(tid)
                lines.append(raw.decode("utf-8").rstrip("\r\n") + "\n")
        if (root / "records.jsonl").exists():
            atomic_write(root / "records.jsonl", "".join(lines))
        if ev.exists():
            os.replace(tmp, ev)
    finally:
        tmp.unlink(missing_ok=True)


def check_store(root: Path) -> None:
    """Raise ResultsError unless every file a run writes under `root` can be written: checked
    as a whole first, so a run that cannot finish never starts by deleting the old logs."""
    if not root.exists():
        check_writable(root, directory=True)
        return
    for name in (*STORE_FILES, "results.duckdb.tmp"):
        p = root / name
        if p.is_symlink() and not p.exists():
            raise cannot_write(p, "it is a symbolic link to nothing")
        if p.exists():
            check_writable(p)
    kept = root / SCENARIOS
    if kept.exists() and not kept.is_dir():
        raise cannot_write(kept, "it is a file, not a directory (it keeps the scenarios' content)")
    check_writable(root, directory=True)


class ResultsStore:
    def __init__(self, root: Path, manifest: dict, resume: bool = False):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise cannot_write(self.root, "it is a file, not a directory")
        self.done = committed_ids(self.root) if resume else set()
        old = read_manifest(self.root) if resume else {}
        self.manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "versions": versions(), "code_version": code_version(), **manifest}
        if old:
            self.manifest["created"] = old.get("created", self.manifest["created"])
            resumed = old.get("resumed")
            self.manifest["resumed"] = (resumed if isinstance(resumed, int) else 0) + 1
        check_store(self.root)  # before anything is removed or appended: a refusal changes nothing
        try:
            self._open(resume)
        except OSError as e:
            raise cannot_write(e.filename or self.root, e) from None

    def _open(self, resume: bool) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if resume:
            _repair(self.root, self.done)
        else:
            for name in ("records.jsonl", "events.jsonl", "results.duckdb", "results.duckdb.tmp"):
                (self.root / name).unlink(missing_ok=True)
            for f in (self.root / SCENARIOS).glob("*.json"):
                f.unlink()
        self._kept = {f.stem for f in (self.root / SCENARIOS).glob("*.json")}
        atomic_write(self.root / "manifest.json", json.dumps(self.manifest, indent=2, default=str))
        self._records = open(self.root / "records.jsonl", "a", encoding="utf-8")
        self._events = open(self.root / "events.jsonl", "a", encoding="utf-8")

    def append(self, record: TrialRecord, events: list[dict] | str) -> None:
        """The scenario's content (once), the events, then the record line that commits the trial."""
        if not record.error or not record.error.startswith(LOST):
            self.done.add(record.trial_id)
        self._keep_scenario(record.spec)
        if isinstance(events, str):
            self._events.write(events)
        else:
            self._events.writelines(json.dumps(e, default=str) + "\n" for e in events)
        self._events.flush()
        self._records.write(record.model_dump_json() + "\n")
        self._records.flush()
        os.fsync(self._records.fileno())

    def _keep_scenario(self, spec: dict) -> None:
        """Store a scenario's content the first time a trial of it commits: its reference may
        stop resolving (a relative path replayed elsewhere, a file edited or deleted since)."""
        ref = spec.get("scenario") if isinstance(spec, dict) else None
        d = ref.get("digest") if isinstance(ref, dict) else None
        if not isinstance(d, str) or d in self._kept or not _DIGEST.fullmatch(d):
            return
        self._kept.add(d)
        try:
            sc, now = resolve_scenario(ref["ref"], ref.get("params"))
        except (ScenarioError, KeyError, TypeError, ValueError):
            return  # the trial could not load it either, and its record says so
        if now.digest != d:
            return  # changed since the trial ran: a wrong copy would be worse than none
        (self.root / SCENARIOS).mkdir(exist_ok=True)
        atomic_write(self.root / SCENARIOS / f"{d}.json", json.dumps(
            {"ref": ref["ref"], "params": ref.get("params") or {}, "digest": d,
             "scenario": sc.model_dump(mode="json")}, indent=1, sort_keys=True))

    def finish(self, summary: dict) -> None:
        self.close()
        self.manifest["summary"] = summary
        atomic_write(self.root / "manifest.json", json.dumps(self.manifest, indent=2, default=str))

    def close(self) -> None:
        for f in (self._records, self._events):
            if not f.closed:
                f.close()


def stored_scenario(run_dir: Path | str, digest: str) -> tuple[Scenario, Path] | None:
    """The scenario content a results directory keeps under `digest`, and its file."""
    path = Path(run_dir) / SCENARIOS / f"{digest}.json"
    if not _DIGEST.fullmatch(digest) or not path.is_file():
        return None
    data = read_json(path)
    sc = parse_scenario(data.get("scenario"), str(path))
    if sc.digest() != digest:
        raise ResultsError(f"{path} does not hold scenario {digest} (its content digest is {sc.digest()})")
    return sc, path


def numbered_records(root: Path | str) -> Iterator[tuple[int, TrialRecord]]:
    """(line, record) for each trial of a results directory, first record of a trial only."""
    path = Path(root) / "records.jsonl"
    seen = set()
    for n, obj, _ in numbered_lines(path):
        try:
            r = TrialRecord.model_validate(obj)
        except ValidationError as e:
            raise ResultsError(f"{path}:{n}: not a trial record: {validation_problem(e)}") from None
        if r.trial_id not in seen:
            seen.add(r.trial_id)
            yield n, r


def iter_records(root: Path) -> Iterator[TrialRecord]:
    for _, r in numbered_records(root):
        yield r


def _runs_under(roots: list[Path]) -> list[Path]:
    """Results directories at or one level under each root, newest log first."""
    runs = []
    for r in map(Path, roots):
        try:
            runs += [p for p in ([r, *r.iterdir()] if r.is_dir() else []) if (p / "records.jsonl").is_file()]
        except OSError as e:
            raise ResultsError(f"cannot read {r}: {e}") from None
    return sorted(runs, key=lambda p: (p / "records.jsonl").stat().st_mtime, reverse=True)


def find_trial(trial_id: str, roots: list[Path]) -> tuple[TrialRecord, Path] | None:
    """The newest stored record whose id starts with `trial_id` (at least 4 characters;
    a prefix two different trials share is refused)."""
    if len(trial_id) < 4:
        raise LookupError(f"a trial id prefix needs at least 4 characters, not {trial_id!r}")
    needle = f'"trial_id":"{trial_id}'.encode()
    found: dict[str, tuple[TrialRecord, Path]] = {}
    for run in _runs_under(roots):
        path = run / "records.jsonl"
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if needle in line:  # a scan, not a parse: logs can be long
                    try:
                        rec = TrialRecord.model_validate_json(line)
                    except ValidationError as e:
                        raise ResultsError(f"{path}:{n}: not a trial record: {validation_problem(e)}") from None
                    found.setdefault(rec.trial_id, (rec, run))
    if len(found) > 1:
        raise LookupError(f"{trial_id!r} matches {len(found)} trials ({', '.join(sorted(found)[:4])}...); "
                          "give more of the id")
    return next(iter(found.values()), None)


def _dict(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def flatten(r: TrialRecord) -> dict[str, Any]:
    """One flat row per trial: what SQL, Parquet and the analysis functions want."""
    spec = _dict(r.spec)  # a record's spec is any dict: a hand-made record need not be complete
    sc, tags = _dict(spec.get("scenario")), _dict(spec.get("tags"))
    faults = spec.get("faults") if isinstance(spec.get("faults"), list) else []
    faults = [f for f in faults if isinstance(f, dict)]
    params = json.dumps(sc.get("params", {}), sort_keys=True, default=str)
    return {
        "trial_id": r.trial_id, "scenario": r.scenario, "scenario_ref": sc.get("ref"),
        "scenario_params": params, "task": f"{sc.get('ref')}|{params}",
        "length": r.golden_length, "agent": tags.get("agent", r.agent), "agent_ref": r.agent,
        "agent_params": json.dumps(spec.get("agent_params", {}), sort_keys=True, default=str),
        "profile": r.profile, "fault": tags.get("fault", "+".join(str(f.get("id")) for f in faults) or "none"),
        "seed": r.seed, "replicate": r.replicate, "outcome": r.outcome,
        "success": r.outcome == "success", "failure_mode": r.failure_mode, "failure_cause": r.failure_cause,
        "error": r.error,
        "steps": r.steps, "model_calls": r.model_calls, "tool_calls": r.tool_calls,
        "tokens_in": r.tokens_in, "tokens_out": r.tokens_out, "sim_time_s": r.sim_time_s,
        "wall_time_s": r.wall_time_s, "turns_completed": r.turns_completed,
        "clarifications": r.clarifications, "guesses": r.guesses, "injections_obeyed": r.injections_obeyed,
        "reviews": r.reviews, "rejections": r.rejections, "review_s": r.review_s,
        "faults_fired": json.dumps(r.faults_fired, sort_keys=True), "fault_never_fired": bool(r.faults_not_fired),
        "injections_seen": r.injections_seen, "first_answer_s": r.first_answer_s, "impact": r.impact,
        # money is absent (None), not zero, on records written before it was kept
        "model_usd": r.cost_usd.get("model"), "review_usd": r.cost_usd.get("review"),
        "failure_usd": r.cost_usd.get("failure"), "cost_usd": r.cost_usd.get("total"),
        "brier_sum": r.brier_sum, "confidence_bins": json.dumps(r.confidence_bins),
        "tokens_by_role": json.dumps(r.tokens_by_role, sort_keys=True),
    }


DB_VERSION = 6  # bump when the tables' layout changes: older stores are rebuilt from the log
_SQL = {bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE", str: "VARCHAR"}
COLUMN_TYPES = {k: _SQL.get(type(v), "VARCHAR") for k, v in flatten(TrialRecord(
    trial_id="x", spec={}, scenario="", agent="", profile="", seed=0, replicate=0, outcome="success",
    failure_mode="", failure_cause="", error="", impact="", first_answer_s=0.0,
    cost_usd=dict.fromkeys(("model", "review", "failure", "total"), 0.0))).items()}
_INSERT = f"INSERT INTO trials VALUES ({', '.join('?' for _ in COLUMN_TYPES)})"


def build_db(root: Path, db: Path | None = None) -> Path:
    """(Re)build the table `trials` from the log, into results.duckdb (or `db`). It never leaves
    a broken store: if a record cannot be stored, the partial database is removed and
    ResultsError names the record; the logs are only read."""
    import duckdb
    root = Path(root)
    db = Path(db) if db is not None else root / "results.duckdb"
    tmp = db.with_name(db.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)
        # one thread and a memory cap: the store is built beside running work, not instead of it
        con = duckdb.connect(str(tmp), config={"threads": 1, "memory_limit": "512MB"})
        try:
            _fill(con, root)
        finally:
            con.close()
        os.replace(tmp, db)
    except (OSError, duckdb.IOException, duckdb.PermissionException) as e:
        raise cannot_write(db, str(e).splitlines()[0]) from None
    finally:
        for f in (tmp, tmp.with_name(tmp.name + ".wal")):
            f.unlink(missing_ok=True)
    return db


def _fill(con, root: Path) -> None:
    cols = ", ".join(f'"{c}" {t}' for c, t in COLUMN_TYPES.items())
    con.execute(f"CREATE TABLE trials ({cols})")
    path = root / "records.jsonl"
    batch: list[tuple[int, TrialRecord]] = []
    for n, r in numbered_records(root):  # in batches: memory stays flat however long the log
        batch.append((n, r))
        if len(batch) == 500:
            _insert(con, batch, path)
            batch = []
    _insert(con, batch, path)
    con.execute("CREATE TABLE meta AS SELECT ? AS version", [DB_VERSION])


def _insert(con, batch: list[tuple[int, TrialRecord]], path: Path) -> None:
    import duckdb
    rows = []
    for n, r in batch:
        row = flatten(r)
        for c, t in COLUMN_TYPES.items():
            if t == "BIGINT" and isinstance(row[c], int) and not -2 ** 63 <= row[c] < 2 ** 63:
                raise ResultsError(f"cannot store {path}:{n} (trial {r.trial_id}) in results.duckdb: field {c} = "
                                   f"{row[c]} does not fit a 64-bit integer; the logs are intact")
        rows.append(tuple(row[c] for c in COLUMN_TYPES))
    try:
        if rows:
            con.executemany(_INSERT, rows)
    except duckdb.Error:
        for (n, r), row in zip(batch, rows):  # find the one record it could not store, to name it
            try:
                con.execute(_INSERT, row)
            except duckdb.Error as e:
                raise ResultsError(f"cannot store {path}:{n} (trial {r.trial_id}) in results.duckdb: "
                                   f"{str(e).splitlines()[0]}; the logs are intact") from None
        raise
