"""SQL over a results directory: one read-only SELECT, reading no file but the run's own log.

`query` and `export --sql` take exactly one SELECT statement (WITH ... SELECT, FROM-first
queries, VALUES, DESCRIBE and SUMMARIZE are SELECTs to DuckDB too); anything else is refused
before it runs. The statement runs on a read-only connection with file access switched off,
except for the run's events.jsonl (which the `events` view reads) and, for an export, one new
file in a private folder that is then moved onto the output. The configuration is locked
before the statement runs, so it cannot switch access back on, install or load extensions,
or read Python variables. The view is made per connection, from wherever the results
directory is now, so a moved or copied directory still queries its own log.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .files import CannotWrite, ResultsError, cannot_write, check_writable, real_path
from .store import DB_VERSION, build_db, results_dir

ALLOWED = "one read-only SELECT statement (or WITH ... SELECT) over the tables trials and events"
MAX_ROWS = 100_000  # what `query` shows; more rows are a job for `export`
_EVENTS = ("SELECT json->>'trial' AS trial, TRY_CAST(json->>'seq' AS INTEGER) AS seq, "
           "TRY_CAST(json->>'t' AS DOUBLE) AS t, json->>'event' AS event, json "
           "FROM read_json_objects({path}, format='newline_delimited', ignore_errors=true) "
           "WHERE json IS NOT NULL")  # a line that is not JSON (a torn last line) is left out
_NO_EVENTS = ("SELECT NULL::VARCHAR AS trial, NULL::INTEGER AS seq, NULL::DOUBLE AS t, "
              "NULL::VARCHAR AS event, NULL::JSON AS json WHERE false")
_SAFE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
         "python_enable_replacements": False}


def _first(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _quote(name: str, mark: str = '"') -> str:
    return mark + name.replace(mark, mark * 2) + mark


def check_select(sql: str) -> None:
    """Refuse anything but exactly one SELECT statement, before anything runs."""
    import duckdb
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise ResultsError(f"query failed: {_first(e)}") from None
    if not statements:
        raise ResultsError(f"no SQL statement given: write {ALLOWED}")
    if len(statements) > 1:
        raise ResultsError(f"{len(statements)} SQL statements given: write {ALLOWED}")
    if statements[0].type.name != "SELECT":
        word = (statements[0].query.split() or ["this"])[0].upper()  # the type can be MULTI: name the verb
        raise ResultsError(f"{word} statements are not allowed: write {ALLOWED}")


def _fresh(db: Path, records: Path) -> bool:
    import duckdb
    if not db.is_file() or db.stat().st_mtime < records.stat().st_mtime:
        return False
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:  # not a database at all: rebuilt from the log
        return False
    try:
        return con.execute("SELECT version FROM meta").fetchall() == [(DB_VERSION,)]
    except duckdb.Error:
        return False
    finally:
        con.close()


def _lock(con, events: Path, output: Path | None) -> None:
    import duckdb
    try:
        con.execute("SET allowed_paths = ?", [[str(events)] + ([str(output)] if output else [])])
    except duckdb.Error:  # the setting came with DuckDB 1.2: without it SQL could not be confined
        raise ResultsError(f"SQL over results needs duckdb 1.2 or newer (this is {duckdb.__version__}): "
                           "pip install -U duckdb") from None
    con.execute("SET enable_external_access = false")
    has_events = events.is_file() and events.stat().st_size > 0
    con.execute("CREATE TEMP VIEW events AS " + (_EVENTS.format(path=_quote(str(events), "'"))
                                                 if has_events else _NO_EVENTS))
    con.execute("SET lock_configuration = true")


@contextmanager
def connect(root: Path | str, output: Path | None = None, rebuild: bool = False) -> Iterator:
    """A locked-down, read-only connection to a results directory's store, rebuilt first if the
    log is newer, the layout older or `rebuild` is set (into a private folder if the directory
    is not writable)."""
    import duckdb
    root = results_dir(root)
    db, scratch = root / "results.duckdb", None
    if rebuild or not _fresh(db, root / "records.jsonl"):
        try:
            build_db(root)
        except CannotWrite:  # someone else's results: query a private copy of the table
            scratch = tempfile.mkdtemp(prefix="attrition-db-")
            db = build_db(root, Path(scratch) / "results.duckdb")
    try:
        con = duckdb.connect(str(db), read_only=True, config=_SAFE)
        try:
            _lock(con, real_path(root / "events.jsonl"), output)
            yield con
        finally:
            con.close()
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _failed(e: Exception) -> ResultsError:
    import duckdb
    if isinstance(e, duckdb.PermissionException):
        return ResultsError(f"query failed: {_first(e)}; SQL here reads only the tables trials and "
                            "events, no other file")
    return ResultsError(f"query failed: {_first(e)}")


def _plain(rel):
    """The relation with zoned times as text: turning them into Python values needs pytz."""
    kinds = [str(t) for t in rel.types]
    if not any("TIME ZONE" in k for k in kinds):
        return rel
    return rel.project(", ".join(f"CAST({_quote(c)} AS VARCHAR) AS {_quote(c)}" if "TIME ZONE" in k
                                 else _quote(c) for c, k in zip(rel.columns, kinds)))


def _on_store(root: Path | str, output: Path | None, body):
    """body(connection), once more on a store rebuilt from the log if the database file is
    damaged: the log is the record of the run, the database only a copy of it."""
    import duckdb
    for rebuild in (False, True):
        with connect(root, output, rebuild=rebuild) as con:
            try:
                return body(con)
            except duckdb.Error as e:
                if not rebuild and "corrupt" in str(e).lower():
                    continue
                raise _failed(e) from None


def query(root: Path | str, sql: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of one SELECT over `trials` and `events` (at most MAX_ROWS)."""
    results_dir(root)
    check_select(sql)

    def rows_of(con):
        rel = _plain(con.sql(sql))
        return list(rel.columns), rel.limit(MAX_ROWS + 1).fetchall()
    cols, rows = _on_store(root, None, rows_of)
    if len(rows) > MAX_ROWS:
        raise ResultsError(f"the query returns more than {MAX_ROWS:,} rows; add a LIMIT, or write them all "
                           "to a file with `attrition export RESULTS FILE --sql ...`")
    return cols, rows


def export(root: Path | str, out: Path | str, fmt: str | None = None, sql: str = "SELECT * FROM trials") -> Path:
    """Write one SELECT's rows to Parquet or CSV: whole, or not at all (no partial file)."""
    out = Path(out)
    results_dir(root)
    check_select(sql)
    check_writable(out)
    fmt = fmt or out.suffix.lstrip(".").lower()
    if fmt not in ("parquet", "csv"):
        raise cannot_write(out, f"the format comes from the file name, .parquet or .csv, not {out.suffix or 'none'!r}")
    try:
        scratch = Path(tempfile.mkdtemp(dir=out.parent, prefix=".attrition-export-"))
    except OSError as e:
        raise cannot_write(out, e) from None
    tmp = (scratch / f"export.{fmt}").resolve()
    try:

        def write(con):
            rel = con.sql(sql)
            if fmt == "parquet":
                rel.write_parquet(str(tmp))
            else:
                rel.write_csv(str(tmp), header=True)
        _on_store(root, tmp, write)
        os.replace(tmp, out)
    except OSError as e:
        raise cannot_write(out, e) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out
