"""The history catalog: every recorded run's cells, over time, and the named baselines.

One DuckDB file (results/history.duckdb by default). A run is kept as its cells (design,
profile, fault setting) with success, H50 and cost per success and their intervals, and as
task counts per cell, which is what the gate needs: a baseline is a name for a recorded run,
so a CI job restores one small file instead of a results directory.

    runs(run, sweep, results_dir, code_version, created, recorded, seed, trials, errors, attrition)
    cells(run, cell, agent, profile, fault, n_trials, n_tasks, successes, success_rate, ci_low,
          ci_high, h50, h50_low, h50_high, cost_per_success, cost_low, cost_high)
    tasks(run, cell, task, n, successes)      (task: the task family, see task_families)
    baselines(name, run, saved)

Each change is one transaction: a process killed while recording leaves the catalog as it
was before (DuckDB replays or drops its write-ahead log on the next open).
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import duckdb

from .results import cell_stats, rows_from_records
from .files import read_json
from .store import SCENARIOS, flatten, iter_records, read_manifest, results_dir

DEFAULT = Path("results") / "history.duckdb"
CELL = ("agent", "profile", "fault")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run VARCHAR PRIMARY KEY, sweep VARCHAR, results_dir VARCHAR, code_version VARCHAR,
  created VARCHAR, recorded VARCHAR, seed UBIGINT, trials INTEGER, errors INTEGER, attrition VARCHAR);
CREATE TABLE IF NOT EXISTS cells (run VARCHAR, cell VARCHAR, agent VARCHAR, profile VARCHAR, fault VARCHAR,
  n_trials INTEGER, n_tasks INTEGER, successes INTEGER, success_rate DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
  h50 DOUBLE, h50_low DOUBLE, h50_high DOUBLE, cost_per_success DOUBLE, cost_low DOUBLE, cost_high DOUBLE);
CREATE TABLE IF NOT EXISTS tasks (run VARCHAR, cell VARCHAR, task VARCHAR, n INTEGER, successes INTEGER);
CREATE TABLE IF NOT EXISTS baselines (name VARCHAR PRIMARY KEY, run VARCHAR, saved VARCHAR);
"""


def catalog_path(path: str | Path | None) -> Path:
    """--catalog, else ATTRITION_CATALOG, else results/history.duckdb."""
    return Path(path or os.environ.get("ATTRITION_CATALOG") or DEFAULT)


def cell_name(agent: str, profile: str, fault: str) -> str:
    return f"{agent} / {profile} / {fault}"


def snapshot(path: str | Path, *, seed: int = 0, n_boot: int = 1000, stats: dict | None = None) -> dict[str, Any]:
    """What the catalog and the gate keep of a results directory: its identity and, per cell,
    counts per task plus success, H50 and cost per success with their intervals. `stats`:
    cells already analysed with the same seed, by (agent, profile, fault), not computed again."""
    p = Path(path)
    if not p.is_dir():
        raise LookupError(f"{p}: not a results directory (give the directory `attrition sweep` or `run` wrote)")
    root = results_dir(p)
    m = read_manifest(root)
    family = task_families(root)
    rows, errors = rows_from_records(iter_records(root))
    if not rows:
        raise LookupError(f"{p} holds no trials to record" + (f" ({errors} ended in a harness error)" if errors else ""))
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(str(r[k]) for k in CELL), []).append(r)
    cells = {}
    for key, rs in sorted(groups.items()):
        # bootstraps draw by position: the order analyze_results uses, so the figures agree with it
        rs.sort(key=lambda r: (str(r["task"]), str(r["trial"])))
        st = (stats or {}).get(key) or cell_stats(rs, seed, n_boot)
        tasks: dict[str, list[int]] = {}
        for r in rs:
            t = tasks.setdefault(family.get(r["scenario_task"], str(r["scenario_task"])), [0, 0])
            t[0] += 1
            t[1] += bool(r["success"])
        cells[cell_name(*key)] = {**dict(zip(CELL, key)), "n_trials": st["n_trials"], "n_tasks": len(tasks),
                                  "successes": st["successes"], "success_rate": st["success_rate"],
                                  "ci_low": st["ci_low"], "ci_high": st["ci_high"],
                                  "horizon_50": st.get("horizon_50"),
                                  "cost_per_success": (st.get("cost") or {}).get("cost_per_success"),
                                  "tasks": tasks}
    ref = ((m.get("spec") or {}).get("scenario") or {}).get("ref")
    # a sweep's name; for `attrition run`, the scenario it ran
    sweep = (m.get("sweep") or {}).get("name") or (f"run:{Path(str(ref)).stem}" if ref else p.name)
    return {"run": f"{sweep}@{m.get('created', '?')}#{m.get('run_id', p.name)}", "sweep": sweep,
            "results_dir": str(p), "code_version": m.get("code_version"), "created": m.get("created"),
            "seed": m.get("seed"), "trials": len(rows) + errors, "errors": errors,
            "attrition": (m.get("versions") or {}).get("attrition"), "cells": cells}


def task_families(root: Path) -> dict[str, str]:
    """Each scenario task's family (scenario, parameters -> family). A template's task at
    every length shares one family and one difficulty draw, so the family, not the task, is
    the independent unit the gate counts on; a scenario without a family is its own."""
    out: dict[str, str] = {}
    for r in iter_records(root):
        sc = (r.spec or {}).get("scenario") or {}
        key = flatten(r)["task"]
        if key not in out:
            # the stored content's own fields: no need to parse (and re-validate) the scenario
            f = root / SCENARIOS / f"{sc.get('digest')}.json"
            kept = (read_json(f).get("scenario") or {}) if isinstance(sc.get("digest"), str) and f.is_file() else {}
            out[key] = str(kept.get("family") or kept.get("name") or key)
    return out


@contextmanager
def opened(path: Path, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """The catalog, as a connection; bad files and locks become one LookupError naming the file."""
    if not write and not path.is_file():
        raise LookupError(f"no history catalog at {path}: record a run first (`attrition baseline save RESULTS "
                          "--name NAME` or `attrition history add RESULTS`), or give --catalog")
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=not write)
    except duckdb.Error as e:
        raise LookupError(f"{path}: cannot open the history catalog ({str(e).splitlines()[0]})") from None
    try:
        if write:
            con.execute(_SCHEMA)
        else:
            missing = {"runs", "cells", "tasks", "baselines"} - {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables").fetchall()}
            if missing:
                raise LookupError(f"{path} is a DuckDB file but not a history catalog (no table {sorted(missing)[0]})")
        yield con
    except duckdb.Error as e:
        raise LookupError(f"{path}: cannot read the history catalog ({str(e).splitlines()[0]})") from None
    finally:
        con.close()


def record(path: Path, snap: dict[str, Any]) -> str:
    """Add a run to the catalog (again: replaced), in one transaction. Returns its key."""
    run = snap["run"]
    with opened(path, write=True) as con:
        con.execute("BEGIN TRANSACTION")
        for table in ("runs", "cells", "tasks"):
            con.execute(f"DELETE FROM {table} WHERE run = ?", [run])
        con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [run, snap["sweep"], snap["results_dir"], snap["code_version"], snap["created"],
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), snap["seed"], snap["trials"],
                     snap["errors"], snap["attrition"]])
        cells, tasks = [], []
        for name, c in snap["cells"].items():
            h, k = c.get("horizon_50") or {}, c.get("cost_per_success") or {}
            cells.append([run, name, c["agent"], c["profile"], c["fault"], c["n_trials"], c["n_tasks"],
                          c["successes"], c["success_rate"], c["ci_low"], c["ci_high"], _num(h.get("estimate")),
                          _num(h.get("ci_low")), _num(h.get("ci_high")), _num(k.get("estimate")),
                          _num(k.get("ci_low")), _num(k.get("ci_high"))])
            tasks += [[run, name, t, n, s] for t, (n, s) in c["tasks"].items()]
        con.executemany("INSERT INTO cells VALUES (" + ", ".join("?" * 17) + ")", cells)
        con.executemany("INSERT INTO tasks VALUES (?, ?, ?, ?, ?)", tasks)
        con.execute("COMMIT")
    return run


def _num(x: Any) -> float | None:
    # JSON keeps infinite horizons as strings or huge floats: the catalog keeps finite numbers or NULL
    return float(x) if isinstance(x, (int, float)) and abs(float(x)) < 1e300 else None


def save_baseline(path: Path, name: str, snap: dict[str, Any]) -> str:
    if not name or not name.strip() or len(name) > 200:
        raise ValueError("--name must be 1 to 200 characters")
    run = record(path, snap)
    with opened(path, write=True) as con:
        con.execute("INSERT OR REPLACE INTO baselines VALUES (?, ?, ?)",
                    [name, run, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())])
    return run


def baselines(path: Path) -> list[dict]:
    with opened(path, write=False) as con:
        return _dicts(con, "SELECT b.name, b.run, b.saved, r.sweep, r.code_version, r.seed, r.trials "
                           "FROM baselines b JOIN runs r USING (run) ORDER BY b.name")


def load_baseline(path: Path, name: str) -> dict[str, Any]:
    """A saved baseline as a snapshot (what `snapshot` returns, without its bootstraps redone)."""
    with opened(path, write=False) as con:
        got = con.execute("SELECT run FROM baselines WHERE name = ?", [name]).fetchone()
        if got is None:
            names = [r[0] for r in con.execute("SELECT name FROM baselines ORDER BY name").fetchall()]
            raise LookupError(f"no baseline named {name!r} in {path}; " + (
                f"saved baselines: {', '.join(names)}" if names else
                "it has none yet: save one with `attrition baseline save RESULTS --name NAME`"))
        run = _dicts(con, "SELECT * FROM runs WHERE run = ?", [got[0]])[0]
        cells = {}
        for c in _dicts(con, "SELECT * FROM cells WHERE run = ? ORDER BY cell", [got[0]]):
            cells[c["cell"]] = {**{k: c[k] for k in CELL + ("n_trials", "n_tasks", "successes", "success_rate",
                                                             "ci_low", "ci_high")},
                                "horizon_50": _interval(c, "h50"), "cost_per_success": _interval(c, "cost_per_success",
                                                                                                  "cost"),
                                "tasks": {}}
        for cell, task, n, s in con.execute("SELECT cell, task, n, successes FROM tasks WHERE run = ?",
                                            [got[0]]).fetchall():
            cells[cell]["tasks"][task] = [n, s]
    return {**run, "cells": cells, "baseline": name}


def _interval(c: dict, est: str, prefix: str | None = None) -> dict | None:
    prefix = prefix or est
    if c[est] is None:
        return None
    return {"estimate": c[est], "ci_low": c[f"{prefix}_low"], "ci_high": c[f"{prefix}_high"]}


def history(path: Path, sweep: str | None = None, limit: int = 30) -> dict[str, Any]:
    """Each cell's figures over the last `limit` recorded runs (of one sweep, or of the newest's)."""
    with opened(path, write=False) as con:
        sweeps = [r[0] for r in con.execute("SELECT sweep FROM runs GROUP BY sweep ORDER BY max(created) DESC")
                  .fetchall()]
        if not sweeps:
            raise LookupError(f"{path} holds no runs yet: `attrition history add RESULTS` records one")
        if sweep is None:
            sweep = sweeps[0]
        elif sweep not in sweeps:
            raise LookupError(f"no runs of sweep {sweep!r} in {path}; it has {', '.join(sorted(sweeps))}")
        runs = _dicts(con, "SELECT * FROM runs WHERE sweep = ? ORDER BY created DESC, recorded DESC LIMIT ?",
                      [sweep, limit])[::-1]
        keys = [r["run"] for r in runs]
        cells = _dicts(con, "SELECT * FROM cells WHERE run IN (SELECT unnest(?)) ORDER BY cell", [keys])
        names = {r[0]: r[1] for r in con.execute("SELECT run, name FROM baselines").fetchall()}
    order = {k: i for i, k in enumerate(keys)}
    series: dict[str, list[dict]] = {}
    for c in sorted(cells, key=lambda c: (c["cell"], order[c["run"]])):
        series.setdefault(c["cell"], []).append(c)
    for r in runs:
        r["baseline"] = names.get(r["run"])
    return {"catalog": str(path), "sweep": sweep, "sweeps": sweeps, "runs": runs, "cells": series}


def _dicts(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]
