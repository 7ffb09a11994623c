"""The results store: an append-only, crash-safe log plus an embedded analytic database.

results/<run>/
  manifest.json    what ran: spec or sweep file, seed, package versions, summary
  records.jsonl    one TrialRecord per line, appended (flushed and fsynced) as each trial ends
  events.jsonl     every event of every finished trial, written before its record
  results.duckdb   the records as a flat SQL table `trials` (and a view `events` over the log:
                   trial, seq, t, event, and the whole event as `json`), rebuilt
                   from the log at the end of a run; query it, or export to Parquet/CSV

A trial's events are written before its record, and a record line is the commit: a
run killed with SIGKILL loses only the trials in flight, and a resumed run drops
events of trials that never committed, so each trial appears exactly once.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from .records import TrialRecord, versions


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


LOST = "worker failed"  # a trial whose worker died: recorded, but run again on --resume


def iter_jsonl(path: Path) -> Iterator[dict]:
    """The objects of a JSON-lines log, skipping a torn line (what a killed writer leaves)."""
    if not Path(path).exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


def committed_ids(root: Path) -> set[str]:
    """Trial ids with a complete record line (a torn last line is not a commit, nor is a
    trial lost with its worker)."""
    return {r["trial_id"] for r in iter_jsonl(Path(root) / "records.jsonl")
            if "trial_id" in r and not str(r.get("error") or "").startswith(LOST)}


def _repair(root: Path, keep: set[str]) -> None:
    """Drop torn lines and duplicate records, and events of trials that never committed."""
    rec = root / "records.jsonl"
    if rec.exists():
        seen, lines = set(), []
        for line in rec.read_text(encoding="utf-8").splitlines():
            try:
                tid = json.loads(line)["trial_id"]
            except (ValueError, KeyError):
                continue
            if tid not in keep:
                continue  # lost with its worker: it will be run again
            if tid not in seen:
                seen.add(tid)
                lines.append(line)
        atomic_write(rec, "".join(x + "\n" for x in lines))
    ev = root / "events.jsonl"
    if ev.exists():
        tmp = ev.with_suffix(".jsonl.tmp")
        with open(ev, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
            for line in src:
                try:
                    if json.loads(line).get("trial") in keep:
                        dst.write(line if line.endswith("\n") else line + "\n")
                except ValueError:
                    continue
        os.replace(tmp, ev)


class ResultsStore:
    def __init__(self, root: Path, manifest: dict, resume: bool = False):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise LookupError(f"cannot write results to {self.root}: it is a file, not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        self.done = committed_ids(self.root) if resume else set()
        if resume:
            _repair(self.root, self.done)
        else:
            for name in ("records.jsonl", "events.jsonl", "results.duckdb"):
                (self.root / name).unlink(missing_ok=True)
        self.manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "versions": versions(), **manifest}
        if resume and (self.root / "manifest.json").exists():
            old = json.loads((self.root / "manifest.json").read_text())
            self.manifest["created"] = old.get("created", self.manifest["created"])
            self.manifest["resumed"] = old.get("resumed", 0) + 1
        atomic_write(self.root / "manifest.json", json.dumps(self.manifest, indent=2, default=str))
        self._records = open(self.root / "records.jsonl", "a", encoding="utf-8")
        self._events = open(self.root / "events.jsonl", "a", encoding="utf-8")

    def append(self, record: TrialRecord, events: list[dict] | str) -> None:
        """Events first, then the record line that commits the trial."""
        if not record.error or not record.error.startswith(LOST):
            self.done.add(record.trial_id)
        if isinstance(events, str):
            self._events.write(events)
        else:
            self._events.writelines(json.dumps(e, default=str) + "\n" for e in events)
        self._events.flush()
        self._records.write(record.model_dump_json() + "\n")
        self._records.flush()
        os.fsync(self._records.fileno())

    def finish(self, summary: dict) -> None:
        self.close()
        self.manifest["summary"] = summary
        atomic_write(self.root / "manifest.json", json.dumps(self.manifest, indent=2, default=str))

    def close(self) -> None:
        for f in (self._records, self._events):
            if not f.closed:
                f.close()


def iter_records(root: Path) -> Iterator[TrialRecord]:
    seen = set()
    for obj in iter_jsonl(Path(root) / "records.jsonl"):
        try:
            r = TrialRecord.model_validate(obj)
        except ValueError:
            continue
        if r.trial_id not in seen:
            seen.add(r.trial_id)
            yield r


def find_trial(trial_id: str, roots: list[Path]) -> tuple[TrialRecord, Path] | None:
    """The newest stored record whose id starts with `trial_id` (at least 4 characters;
    a prefix two different trials share is refused)."""
    if len(trial_id) < 4:
        raise LookupError(f"a trial id prefix needs at least 4 characters, not {trial_id!r}")
    runs = sorted((p for r in roots if Path(r).is_dir()
                   for p in [Path(r), *Path(r).iterdir()] if (p / "records.jsonl").is_file()),
                  key=lambda p: (p / "records.jsonl").stat().st_mtime, reverse=True)
    found: dict[str, tuple[TrialRecord, Path]] = {}
    for run in runs:
        with open(run / "records.jsonl", encoding="utf-8") as f:
            for line in f:
                if f'"trial_id":"{trial_id}' in line:
                    rec = TrialRecord.model_validate_json(line)
                    found.setdefault(rec.trial_id, (rec, run))
    if len(found) > 1:
        raise LookupError(f"{trial_id!r} matches {len(found)} trials ({', '.join(sorted(found)[:4])}...); "
                          "give more of the id")
    return next(iter(found.values()), None)


def flatten(r: TrialRecord) -> dict[str, Any]:
    """One flat row per trial: what SQL, Parquet and the analysis functions want."""
    spec = r.spec
    sc = spec.get("scenario", {})
    tags = spec.get("tags", {}) or {}
    faults = spec.get("faults", []) or []
    return {
        "trial_id": r.trial_id, "scenario": r.scenario, "scenario_ref": sc.get("ref"),
        "scenario_params": json.dumps(sc.get("params", {}), sort_keys=True),
        "task": f"{sc.get('ref')}|{json.dumps(sc.get('params', {}), sort_keys=True)}",
        "length": r.golden_length, "agent": tags.get("agent", r.agent), "agent_ref": r.agent,
        "agent_params": json.dumps(spec.get("agent_params", {}), sort_keys=True),
        "profile": r.profile, "fault": tags.get("fault", "+".join(f["id"] for f in faults) or "none"),
        "seed": r.seed, "replicate": r.replicate, "outcome": r.outcome,
        "success": r.outcome == "success", "failure_mode": r.failure_mode, "error": r.error,
        "steps": r.steps, "model_calls": r.model_calls, "tool_calls": r.tool_calls,
        "tokens_in": r.tokens_in, "tokens_out": r.tokens_out, "sim_time_s": r.sim_time_s,
        "wall_time_s": r.wall_time_s, "turns_completed": r.turns_completed,
        "clarifications": r.clarifications, "guesses": r.guesses, "injections_obeyed": r.injections_obeyed,
        "faults_fired": json.dumps(r.faults_fired, sort_keys=True), "fault_never_fired": bool(r.faults_not_fired),
    }


DB_VERSION = 2  # bump when the tables' layout changes: older stores are rebuilt from the log
_SQL = {bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE", str: "VARCHAR"}
COLUMN_TYPES = {k: _SQL.get(type(v), "VARCHAR") for k, v in flatten(TrialRecord(
    trial_id="x", spec={}, scenario="", agent="", profile="", seed=0, replicate=0, outcome="success",
    failure_mode="", error="")).items()}


def build_db(root: Path) -> Path:
    """(Re)build results.duckdb from the log: table `trials`, view `events`."""
    import duckdb
    root = Path(root)
    db = root / "results.duckdb"
    tmp = root / "results.duckdb.tmp"
    tmp.unlink(missing_ok=True)
    # one thread and a memory cap: the store is built beside running work, not instead of it
    con = duckdb.connect(str(tmp), config={"threads": 1, "memory_limit": "512MB"})
    try:
        cols = ", ".join(f'"{c}" {t}' for c, t in COLUMN_TYPES.items())
        con.execute(f"CREATE TABLE trials ({cols})")
        marks = ", ".join("?" for _ in COLUMN_TYPES)
        batch: list[tuple] = []
        for r in iter_records(root):  # in batches: memory stays flat however long the log
            row = flatten(r)
            batch.append(tuple(row[c] for c in COLUMN_TYPES))
            if len(batch) == 500:
                con.executemany(f"INSERT INTO trials VALUES ({marks})", batch)
                batch = []
        if batch:
            con.executemany(f"INSERT INTO trials VALUES ({marks})", batch)
        con.execute("CREATE TABLE meta AS SELECT ? AS version", [DB_VERSION])
        ev = root / "events.jsonl"
        if ev.exists() and ev.stat().st_size:
            # a view: events stay in their log and are read only when queried
            # (no schema inference: it would read the whole log; fields are in `json`, e.g. json->>'tool')
            con.execute("CREATE VIEW events AS SELECT json->>'trial' AS trial, (json->>'seq')::INTEGER AS seq, "
                        "(json->>'t')::DOUBLE AS t, json->>'event' AS event, json "
                        f"FROM read_json_objects('{_sql_path(ev)}', format='newline_delimited')")
    finally:
        con.close()
    os.replace(tmp, db)
    return db


def _sql_path(p: Path) -> str:
    return str(Path(p).resolve()).replace("'", "''")


def _open(root: Path):
    """A read-only connection to the store, rebuilt first if the log is newer or the layout older."""
    import duckdb
    root = Path(root)
    db = root / "results.duckdb"
    fresh = db.exists() and db.stat().st_mtime >= (root / "records.jsonl").stat().st_mtime
    if fresh:
        con = duckdb.connect(str(db), read_only=True)
        try:
            fresh = con.execute("SELECT version FROM meta").fetchall() == [(DB_VERSION,)]
        except duckdb.Error:
            fresh = False
        con.close()
    if not fresh:
        build_db(root)
    return duckdb.connect(str(db), read_only=True)


def query(root: Path, sql: str) -> tuple[list[str], list[tuple]]:
    con = _open(root)
    try:
        cur = con.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def export(root: Path, out: Path, fmt: str | None = None, sql: str = "SELECT * FROM trials") -> Path:
    fmt = fmt or Path(out).suffix.lstrip(".")
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"export format comes from the file name: .parquet or .csv, not {fmt!r}")
    con = _open(root)
    try:
        opts = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER"
        con.execute(f"COPY ({sql}) TO '{_sql_path(out)}' ({opts})")
    finally:
        con.close()
    return Path(out)
