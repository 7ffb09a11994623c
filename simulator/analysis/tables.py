"""Rows of trial outcomes: reading them from files, checking them, and counting by cell.

Every estimator in this package takes plain rows (one dict per trial) so that results
produced elsewhere (tau-bench, METR, a spreadsheet) can be analysed exactly like
attrition's own. A row needs a task id (the unit that was randomised, on which the
bootstraps cluster) and an outcome; everything else is optional or names a grid cell.
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..stats import wilson

# tau-bench counts a trial as solved when its reward is 1 up to float noise.
REWARD_SUCCESS = 1 - 1e-6

# Canonical name -> accepted spellings, first match wins. Other projects' exports use
# these spellings (tau-bench: task_id; METR: run; SWE-style logs: steps / n_steps).
ALIASES: dict[str, tuple[str, ...]] = {
    "task": ("task", "task_id"),
    "trial": ("trial", "trial_id", "run"),
    "success": ("success",),
    "reward": ("reward", "score"),
    "length": ("length", "steps", "n_steps"),
    "sim_time_s": ("sim_time_s",),
}

_TRUE = {"true", "t", "yes", "y", "1", "1.0", "success", "pass", "passed"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "failure", "fail", "failed"}


def plain(v: Any) -> Any:
    """numpy scalars -> Python scalars, so that outputs survive json.dumps."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            return v.item()
        except (TypeError, ValueError):
            return v
    return v


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip() == "")


def _bad(where: str, field: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"{where}: field '{field}': expected {expected}, got {value!r}")


def _as_bool(v: Any, where: str, field: str) -> bool:
    v = plain(v)
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in _TRUE:
        return True
    if isinstance(v, str) and v.strip().lower() in _FALSE:
        return False
    raise _bad(where, field, "a boolean (true/false/1/0)", v)


def _as_float(v: Any, where: str, field: str, *, minimum: float | None = None) -> float:
    v = plain(v)
    # A bool is an int in Python; accepting it as a number would hide a swapped column.
    if isinstance(v, bool):
        raise _bad(where, field, "a number", v)
    try:
        x = float(v.strip() if isinstance(v, str) else v)
    except (TypeError, ValueError):
        raise _bad(where, field, "a number", v) from None
    if not math.isfinite(x) or (minimum is not None and x < minimum):
        raise _bad(where, field, "a finite number" + ("" if minimum is None else f" >= {minimum:g}"), v)
    return x


def _as_length(v: Any, where: str, field: str) -> int:
    v = plain(v)
    try:
        x = _as_float(v, where, field)
    except ValueError:
        raise _bad(where, field, "a positive integer", v) from None
    if x <= 0 or not x.is_integer():
        raise _bad(where, field, "a positive integer", v)
    return int(x)


def _as_id(v: Any) -> Any:
    """Trial ids stay ints when they look like ints, so that trials sort numerically."""
    v = plain(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        if s.lstrip("-").isdigit():
            return int(s)
        return s
    return v


def _task_id(v: Any) -> str:
    # JSON exports store tau-bench task ids as ints and CSVs as strings: compare them as text
    # (3.0 from a float column is task "3"; the string "007" stays "007").
    v = plain(v)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v.strip() if isinstance(v, str) else str(v)


def _find(raw: Mapping, canon: str) -> str | None:
    for name in ALIASES[canon]:
        if name in raw:
            return name
    return None


def _canonical(raw: Mapping, where: str) -> dict:
    """One checked row with canonical keys first and the caller's grid keys after."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object with named fields, got {type(raw).__name__}")
    used = {None}
    out: dict[str, Any] = {}

    name = _find(raw, "task")
    if name is None or _blank(raw[name]):
        raise ValueError(f"{where}: missing required field 'task' (accepted names: "
                         f"{', '.join(ALIASES['task'])})")
    out["task"] = _task_id(raw[name])
    used.add(name)

    name = _find(raw, "trial")
    if name is not None and not _blank(raw[name]):
        out["trial"] = _as_id(raw[name])
    used.add(name)

    s_name, r_name = _find(raw, "success"), _find(raw, "reward")
    s_val = None if s_name is None else raw[s_name]
    r_val = None if r_name is None else raw[r_name]
    if _blank(s_val) and _blank(r_val):
        raise ValueError(f"{where}: missing required field 'success' or 'reward' (accepted "
                         f"names: {', '.join(ALIASES['success'] + ALIASES['reward'])})")
    if not _blank(r_val):
        out["reward"] = _as_float(r_val, where, r_name)
    # An explicit success flag wins over a reward: some graders give partial credit.
    out["success"] = (_as_bool(s_val, where, s_name) if not _blank(s_val)
                      else out["reward"] > REWARD_SUCCESS)
    used.update((s_name, r_name))

    name = _find(raw, "length")
    if name is not None and not _blank(raw[name]):
        out["length"] = _as_length(raw[name], where, name)
    used.add(name)

    if not _blank(raw.get("sim_time_s")):
        out["sim_time_s"] = _as_float(raw["sim_time_s"], where, "sim_time_s", minimum=0.0)
    used.add("sim_time_s")

    for k, v in raw.items():
        if k not in used:
            out[k] = plain(v)
    return out


def _number_trials(rows: list[dict]) -> list[dict]:
    # Without trial ids, trials are numbered by order of appearance within their task.
    seen: dict[str, int] = {}
    for r in rows:
        i = seen.get(r["task"], 0)
        seen[r["task"]] = i + 1
        r.setdefault("trial", i)
    return rows


def normalise_rows(rows: Iterable[Mapping]) -> list[dict]:
    """Check rows and return copies with canonical keys (task, trial, success, ...).

    Accepts the same aliases as load_table, so that callers holding rows in memory do not
    have to rename anything. Raises ValueError naming the row index and field.
    """
    out = [_canonical(r, f"rows[{i}]") for i, r in enumerate(rows)]
    return _number_trials(out)


def _check_header(fields: list[str], path: Path) -> None:
    present = set(fields)
    if not present & set(ALIASES["task"]):
        raise ValueError(f"{path}: line 1: missing required column 'task' (accepted names: "
                         f"{', '.join(ALIASES['task'])})")
    if not present & set(ALIASES["success"] + ALIASES["reward"]):
        raise ValueError(f"{path}: line 1: missing required column 'success' or 'reward' "
                         f"(accepted names: {', '.join(ALIASES['success'] + ALIASES['reward'])})")


def load_table(path: str | Path) -> list[dict]:
    """Read trial rows from .csv/.tsv, .jsonl/.ndjson or .json (a list, or {"rows": [...]}).

    Column aliases (task_id, trial_id/run, reward/score, steps/n_steps) are mapped to the
    canonical names and types are coerced: success to bool (or reward > 1 - 1e-6, as
    tau-bench scores), length to a positive int, sim_time_s to a float. Extra columns are
    kept as they are (strings, for CSV) so they can name grid cells. Any bad row raises
    ValueError naming the file, the line (row, for .json) and the field.
    """
    p = Path(path)
    ext = p.suffix.lower()
    rows: list[dict] = []
    if ext in (".csv", ".tsv"):
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if ext == ".tsv" else ",")
            if reader.fieldnames is None:
                raise ValueError(f"{p}: empty file, expected a header line")
            _check_header(list(reader.fieldnames), p)
            for raw in reader:
                where = f"{p}: line {reader.line_num}"
                if None in raw:
                    raise ValueError(f"{where}: more values than header columns")
                rows.append(_canonical(raw, where))
    elif ext in (".jsonl", ".ndjson"):
        with p.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{p}: line {n}: invalid JSON ({e.msg})") from None
                rows.append(_canonical(raw, f"{p}: line {n}"))
    elif ext == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: line {e.lineno}: invalid JSON ({e.msg})") from None
        if isinstance(data, Mapping) and isinstance(data.get("rows"), list):
            data = data["rows"]
        if not isinstance(data, list):
            raise ValueError(f"{p}: expected a list of rows or an object with a 'rows' list")
        rows = [_canonical(raw, f"{p}: row {i + 1}") for i, raw in enumerate(data)]
    else:
        raise ValueError(f"{p}: unsupported file type {ext!r} (use .csv, .tsv, .jsonl or .json)")
    if not rows:
        raise ValueError(f"{p}: no rows")
    return _number_trials(rows)


def sort_key(v: Any) -> tuple:
    """Sort key for cell values: None first, then numbers, then text.

    Cells sort numerically where they can (lengths 2 < 10) and never fail on mixed types.
    """
    if v is None:
        return (0, 0, "")
    if isinstance(v, (bool, int, float)):
        return (1, float(v), "")
    return (2, 0, str(v))


def success_by_cell(rows: Iterable[Mapping], keys: list[str] | str) -> list[dict]:
    """Success rate with a 95% Wilson interval for each combination of `keys`.

    Wilson rather than the normal approximation because cells are often small or at
    0%/100% (ANCHORS, statistics for comparisons). The interval treats trials as
    independent; `n_tasks` is reported so a reader can see when a cell rests on few tasks.
    Rows without a key fall in the cell where that key is None.
    """
    keys = [keys] if isinstance(keys, str) else list(keys)
    cells: dict[tuple, list] = {}
    for r in normalise_rows(rows):
        cell = tuple(plain(r.get(k)) for k in keys)
        n, s, tasks = cells.setdefault(cell, [0, 0, set()])
        cells[cell][0] = n + 1
        cells[cell][1] = s + int(r["success"])
        tasks.add(r["task"])
    out = []
    for cell in sorted(cells, key=lambda c: tuple(sort_key(v) for v in c)):
        n, s, tasks = cells[cell]
        lo, hi = wilson(s, n)
        out.append({**dict(zip(keys, cell)), "n": n, "n_tasks": len(tasks), "successes": s,
                    "success_rate": s / n, "ci_low": float(lo), "ci_high": float(hi)})
    return out
