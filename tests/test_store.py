"""The results store and the commands that read it, under bad input: every problem ends in one
message naming the file (and line or field), exit code 2, no traceback and no stray file."""
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator import sql
from simulator.cli import app
from simulator.files import ResultsError
from simulator.records import TrialRecord
from simulator.store import build_db, iter_records

from conftest import FIXTURES

cli = CliRunner()
SELECT_ONLY = "write one read-only SELECT statement (or WITH ... SELECT) over the tables trials and events"


def invoke(*args):
    res = cli.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in res.output
    return res


def fails(*args, message, code=2):
    res = invoke(*args)
    assert res.exit_code == code, res.output
    assert message in res.stderr, res.stderr
    return res


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One small run, made once; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("made") / "r"
    res = invoke("run", "support_refund", "--trials", 3, "--seed", 1, "--out", out, "--json")
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def results(made, tmp_path):
    return Path(shutil.copytree(made, tmp_path / "r"))


def edit_line(path: Path, n: int, change) -> None:
    lines = path.read_text().splitlines()
    obj = json.loads(lines[n - 1])
    change(obj)
    lines[n - 1] = json.dumps(obj)
    path.write_text("\n".join(lines) + "\n")


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


# --- 1. SQL: one read-only SELECT, no file but the run's own log ----------------------------

def test_export_sql_cannot_smuggle_a_second_statement(results, tmp_path):
    side = tmp_path / "side.csv"
    fails("export", results, tmp_path / "o.csv", "--sql", f"SELECT 1) TO '{side}' (FORMAT csv); COPY (SELECT 2",
          message="query failed: Parser Error")
    assert not side.exists() and not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("statement, verb", [
    ("COPY trials TO '{x}'", "COPY"), ("INSTALL httpfs", "INSTALL"), ("ATTACH '{x}' AS other", "ATTACH"),
    ("PIVOT trials ON agent USING count(*)", "PIVOT"), ("CREATE TEMP TABLE t AS SELECT 1", "CREATE"),
])
def test_query_refuses_anything_but_a_select(results, tmp_path, statement, verb):
    x = tmp_path / "x.csv"
    fails("query", results, statement.format(x=x), message=f"{verb} statements are not allowed: {SELECT_ONLY}")
    assert not x.exists()


def test_query_refuses_empty_and_several_statements(results):
    fails("query", results, "", message=f"no SQL statement given: {SELECT_ONLY}")
    fails("query", results, "  -- nothing", message="no SQL statement given")
    fails("query", results, "SELECT 1; SELECT 2", message=f"2 SQL statements given: {SELECT_ONLY}")


@pytest.mark.parametrize("reader", ["read_csv('/etc/passwd')", "read_text('/etc/hostname')", "glob('/*')",
                                    "read_json_objects('{manifest}')"])
def test_sql_reads_no_file_but_the_events_log(results, reader):
    fails("query", results, f"SELECT * FROM {reader.format(manifest=results / 'manifest.json')}",
          message="SQL here reads only the tables trials and events, no other file")


def test_query_times_with_a_zone_come_back_as_text_without_pytz(results):
    res = invoke("query", results, "SELECT now() AS n, [now()] AS l, count(*) AS k FROM events", "--json")
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert isinstance(row["n"], str) and row["n"][:2] == "20" and row["k"] > 0


def test_query_refuses_more_rows_than_it_can_show(results):
    fails("query", results, f"SELECT * FROM range({sql.MAX_ROWS + 1})",
          message=f"the query returns more than {sql.MAX_ROWS:,} rows; add a LIMIT, or write them all")


def test_events_view_reads_the_log_where_the_directory_is_now(results, tmp_path):
    # the copy's database was built beside another log: the view must read this directory's own
    ev = results / "events.jsonl"
    first = json.loads(ev.read_text().splitlines()[0])["trial"]
    ev.write_text("".join(x + "\n" for x in ev.read_text().splitlines() if json.loads(x)["trial"] == first))
    moved = Path(shutil.move(results, tmp_path / "moved"))
    res = invoke("query", moved, "SELECT count(DISTINCT trial) AS n FROM events", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == [{"n": 1}]
    res = invoke("export", moved, tmp_path / "e.csv", "--sql", "SELECT trial, seq FROM events ORDER BY ALL")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "e.csv").read_text().startswith("trial,seq\n")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".attrition")]  # no scratch left


def test_a_read_only_results_directory_is_queried_from_a_private_copy(results, monkeypatch):
    from simulator.files import cannot_write
    real = sql.build_db

    def unwritable(root, db=None):
        if db is None:
            raise cannot_write(root / "results.duckdb", "read-only file system")
        return real(root, db)
    (results / "results.duckdb").unlink()
    monkeypatch.setattr(sql, "build_db", unwritable)
    assert sql.query(results, "SELECT count(*) FROM trials")[1] == [(3,)]
    assert not (results / "results.duckdb").exists()


# --- 2. seeds past 64 bits: refused up front, and never a broken store --------------------

def test_a_seed_past_64_bits_is_refused_before_anything_runs(tmp_path):
    fails("run", "support_refund", "--seed", 2 ** 63, "--out", tmp_path / "s",
          message="Invalid value for '--seed' / '-s': Input should be less than or equal to 9223372036854775807")
    assert not (tmp_path / "s").exists()


def test_a_record_the_table_cannot_hold_leaves_no_broken_store(results):
    edit_line(results / "records.jsonl", 2, lambda r: r.update(seed=2 ** 63))
    before = (results / "records.jsonl").read_bytes(), (results / "events.jsonl").read_bytes()
    (results / "results.duckdb").unlink()
    tid = json.loads((results / "records.jsonl").read_text().splitlines()[1])["trial_id"]
    msg = f"cannot store {results / 'records.jsonl'}:2 (trial {tid}) in results.duckdb: field seed = {2 ** 63}"
    with pytest.raises(ResultsError, match="does not fit a 64-bit integer; the logs are intact"):
        build_db(results)
    fails("query", results, message=msg)
    assert not any(p.name.startswith("results.duckdb") for p in results.iterdir())
    assert ((results / "records.jsonl").read_bytes(), (results / "events.jsonl").read_bytes()) == before


def test_any_insert_failure_names_the_record_and_removes_the_partial_store(results, monkeypatch):
    import simulator.store as store
    real = store.flatten
    second = list(iter_records(results))[1].trial_id
    monkeypatch.setattr(store, "flatten", lambda r: {**real(r), "steps": "many"} if r.trial_id == second else real(r))
    (results / "results.duckdb").unlink()
    with pytest.raises(ResultsError, match=rf"records.jsonl:2 \(trial {second}\) in results.duckdb: Conversion Error"):
        build_db(results)
    assert not any(p.name.startswith("results.duckdb") for p in results.iterdir())


# --- 3. outputs that cannot be written: refused before any work -----------------------------

@pytest.fixture
def blocker(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("in the way")
    return f


@pytest.mark.parametrize("args, target", [
    (["run", "support_refund", "--trials", 1, "--out", "{b}/sub"], "{b}/sub"),
    (["sweep", FIXTURES / "sweeps" / "small.yaml", "--executor", "serial", "--out", "{b}/sub"], "{b}/sub"),
    (["schema", "--out", "{b}/s.json"], "{b}/s.json"),
    (["propagation", "{r}", "--graphml", "{b}/g.graphml"], "{b}/g.graphml"),
    (["propagation", "{r}", "--trials", "{b}/t.jsonl"], "{b}/t.jsonl"),
    (["export", "{r}", "{b}/x.csv"], "{b}/x.csv"),
])
def test_an_output_under_a_file_is_refused_up_front(results, blocker, args, target):
    fill = lambda a: str(a).format(b=blocker, r=results)
    fails(*map(fill, args), message=f"cannot write {fill(target)}: {blocker} is a file, not a directory")
    assert blocker.read_text() == "in the way"


@pytest.mark.parametrize("args, message", [
    (["schema", "--out", "{t}/missing/s.json"], "cannot write {t}/missing/s.json: no directory {t}/missing"),
    (["schema", "--out", "{t}"], "cannot write {t}: it is a directory"),
    (["propagation", "{r}", "--graphml", "{t}"], "cannot write {t}: it is a directory"),
    (["propagation", "{r}", "--graphml", "{t}/missing/g.graphml"], "no directory {t}/missing"),
    (["propagation", "{r}", "--graphml", "{t}/g.json"], "--graphml names the GraphML file"),
    (["export", "{r}", "{t}"], "cannot write {t}: it is a directory"),
    (["export", "{r}", "{t}/missing/x.csv"], "no directory {t}/missing"),
    (["export", "{r}", "{t}/x.txt"], "the format comes from the file name, .parquet or .csv, not '.txt'"),
    (["propagation", "{r}", "--trials", "{r}/records.jsonl"],
     "cannot write {r}/records.jsonl: it is a file of the results directory being read"),
])
def test_outputs_that_are_folders_or_in_missing_folders(results, tmp_path, args, message):
    out = tmp_path / "out"
    out.mkdir()
    fill = lambda a: str(a).format(t=out, r=results)
    records = (results / "records.jsonl").read_bytes()
    fails(*map(fill, args), message=fill(message))
    assert list(out.iterdir()) == [] and (results / "records.jsonl").read_bytes() == records


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc, where nothing can be created")
def test_an_output_where_nothing_can_be_created(results):
    fails("run", "support_refund", "--out", "/proc/attrition-x", message="cannot write /proc/attrition-x: ")
    fails("propagation", results, "--trials", "/proc/t.jsonl", message="cannot write /proc/t.jsonl: ")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through chmod 0o500")
def test_a_read_only_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        fails("run", "support_refund", "--out", ro / "r", message=f"cannot write {ro / 'r'}: permission denied")
    finally:
        ro.chmod(0o700)


# --- 4. results directories that are not, or are damaged -----------------------------------

def test_a_malformed_event_is_named_by_file_line_and_field(results):
    ev = results / "events.jsonl"
    edit_line(ev, 4, lambda e: e.update(t="soon"))
    fails("propagation", results,
          message=f"{ev}:4: not a valid event: field t: Input should be a valid number (got 'soon')")
    edit_line(ev, 4, lambda e: (e.update(t=1.0), e.pop("event")))
    fails("propagation", results, message=f"{ev}:4: not a valid event: field event: Unable to extract tag")


def test_records_that_are_a_directory(results):
    (results / "records.jsonl").unlink()
    (results / "records.jsonl").mkdir()
    for cmd in ("analyze", "propagation", "query"):
        fails(cmd, results, message=f"{results / 'records.jsonl'} is not a file")


@pytest.mark.parametrize("name, line", [("records.jsonl", 2), ("events.jsonl", 3)])
def test_bytes_that_are_not_utf8_are_named_by_file_and_line(results, name, line):
    path = results / name
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = b"\xff" + lines[line - 1]
    path.write_bytes(b"\n".join(lines))
    msg = f"{path}:{line}: not UTF-8 text (byte 0xff at column 1)"
    for cmd in ("propagation", "analyze") if name == "records.jsonl" else ("propagation",):
        fails(cmd, results, message=msg)


def test_a_damaged_log_stops_a_resume_before_it_changes_anything(tmp_path):
    out = tmp_path / "s"
    sweep = FIXTURES / "sweeps" / "small.yaml"
    assert invoke("sweep", sweep, "--executor", "serial", "--out", out).exit_code == 0
    (out / "manifest.json").write_bytes(b'{"sweep": \xff}')
    fails("sweep", sweep, "--executor", "serial", "--out", out, "--resume",
          message=f"{out / 'manifest.json'}:1: not UTF-8 text (byte 0xff)")
    shutil.copy(out / "records.jsonl", tmp_path / "kept")
    (out / "manifest.json").write_text("{}")
    with open(out / "events.jsonl", "ab") as f:
        f.write(b'\xfe{"trial": "x"}\n{"trial": "y"}\n')
    fails("sweep", sweep, "--executor", "serial", "--out", out, "--resume", message=f"{out / 'events.jsonl'}:")
    assert (out / "records.jsonl").read_bytes() == (tmp_path / "kept").read_bytes()
    assert not (out / "events.jsonl.tmp").exists()


def test_a_torn_last_line_is_what_a_killed_writer_leaves_and_is_skipped(results):
    with open(results / "records.jsonl", "a") as f:
        f.write('{"trial_id": "abc')
    with open(results / "events.jsonl", "a") as f:
        f.write('{"trial": "abc", "se')
    assert len(list(iter_records(results))) == 3
    res = invoke("query", results, "SELECT count(*) AS n FROM events WHERE trial = 'abc' OR trial IS NULL", "--json")
    assert json.loads(res.stdout) == [{"n": 0}]
    assert invoke("propagation", results).exit_code == 0


def test_a_record_that_breaks_the_schema_is_named(results):
    edit_line(results / "records.jsonl", 2, lambda r: r.update(replicate="two"))
    fails("analyze", results, message=f"{results / 'records.jsonl'}:2: not a trial record: field replicate:")


@pytest.mark.parametrize("cmd", ["analyze", "propagation", "query", "export"])
def test_paths_that_are_not_results_directories(tmp_path, cmd):
    extra = [tmp_path / "o.csv"] if cmd == "export" else []
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("")
    missing = "no such results directory or table" if cmd == "analyze" else "no such results directory"
    fails(cmd, tmp_path / "missing", *extra, message=f"{missing}: {tmp_path / 'missing'}")
    fails(cmd, tmp_path / "empty", *extra,
          message=f"{tmp_path / 'empty'} is not a results directory (it is empty): it has no records.jsonl")
    if cmd != "analyze":  # analyze reads a file as a table
        fails(cmd, tmp_path / "file", *extra, message=f"{tmp_path / 'file'} is a file, not a results directory")
    assert not (tmp_path / "o.csv").exists()


# --- 5. all trials in error: the message shows the errors ---------------------------------

def test_all_error_trials_show_their_errors(tmp_path):
    bad = f"{FIXTURES / 'bad_designs.py'}"
    res = invoke("run", "support_refund", "--trials", 2, "--out", tmp_path / "e", "--agent", f"{bad}:raising_factory")
    assert res.exit_code == 1
    fails("analyze", tmp_path / "e", message="holds no trials to analyse: all 2 ended in a harness error (the graph "
          "or its factory crashed, or the scenario could not load): 2x RuntimeError: factory exploded while "
          "reading its config")
    sweep = tmp_path / "all.yaml"
    sweep.write_text(f"name: all\nseed: 1\nreplicates: 2\nscenarios: [{{ref: chain, params: {{length: 2}}}}]\n"
                     f"agents: ['{bad}:raising_factory', '{bad}:not_a_graph']\n")
    res = fails("sweep", sweep, "--executor", "serial", "--out", tmp_path / "s", code=1,
                message="all 4 ended in a harness error")
    assert "2x RuntimeError: factory exploded" in res.stderr
    assert "2x DesignError: the factory returned dict" in res.stderr


# --- 6. numbers that size the work are bounded -------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["run", "support_refund", "--trials", 10 ** 12], "less than or equal to 1000000"),
    (["run", "support_refund", "--concurrency", 10 ** 6], "less than or equal to 1000"),
    (["run", "support_refund", "--stagger", "inf"], "--stagger must be a finite number of virtual seconds"),
    (["run", "support_refund", "--stagger", "nan"], "from 0 to 2592000 (30 days), not nan"),
    (["run", "support_refund", "--stagger", "-1"], "not -1.0"),
    (["sweep", FIXTURES / "sweeps" / "small.yaml", "--workers", 10 ** 6], "less than or equal to 256"),
    (["run", "support_refund", "--seed", -1], "greater than or equal to 0"),
    (["analyze", FIXTURES, "--bootstrap", 10 ** 9], "less than or equal to 100000"),
    (["analyze", FIXTURES, "--seed", -1], "greater than or equal to 0"),
])
def test_sizes_out_of_range_exit_2(tmp_path, args, message):
    out = ["--out", tmp_path / "x"] if args[0] in ("run", "sweep") else []
    fails(*args, *out, message=message)
    assert not (tmp_path / "x").exists()


# --- 7. a trial replays from its id alone ----------------------------------------------------

def test_a_trial_replays_from_anywhere_after_its_scenario_file_is_gone(tmp_path, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "scenarios").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(FIXTURES / "slow_tools.yaml", work / "scenarios" / "x.yaml")
    monkeypatch.chdir(work)
    assert invoke("run", "scenarios/x.yaml", "--trials", 2, "--out", tmp_path / "r").exit_code == 0
    stored = list(iter_records(tmp_path / "r"))[1]
    kept = tmp_path / "r" / "scenarios" / f"{stored.spec['scenario']['digest']}.json"
    assert kept.is_file() and len(list(kept.parent.iterdir())) == 1
    monkeypatch.chdir(elsewhere)
    res = invoke("replay", stored.trial_id, "--results", tmp_path / "r", "--json")
    assert res.exit_code == 0, res.output
    assert f"from the copy kept in {kept}, as the reference no longer resolves here" in res.stderr
    assert "replay matches the stored record" in res.stderr
    (work / "scenarios" / "x.yaml").unlink()
    monkeypatch.chdir(work)
    from simulator.replay import replay
    r = replay(stored.trial_id, [tmp_path / "r"])
    assert r.same and r.fresh.deterministic() == stored.deterministic()


# --- 8. other bad input to the commands that read results ----------------------------------

def test_replay_without_a_results_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails("replay", "abcd1234", message="no such results directory: results (give --results DIR")
    (tmp_path / "f").write_text("")
    fails("replay", "abcd1234", "--results", tmp_path / "f", message=f"{tmp_path / 'f'} is a file, not a results")


def test_a_table_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "t.csv").write_bytes(b"task,trial,success\n\xff,1,1\n")
    fails("analyze", tmp_path / "t.csv", message=f"{tmp_path / 't.csv'}: not UTF-8 text (byte 0xff")


def test_a_fresh_run_into_an_old_directory_keeps_nothing_of_it(results):
    (results / "scenarios" / "0123456789abcdef.json").write_text("{}")
    res = invoke("run", "support_refund", "--trials", 1, "--out", results)
    assert res.exit_code == 0, res.output
    assert len((results / "records.jsonl").read_text().splitlines()) == 1
    assert not (results / "scenarios" / "0123456789abcdef.json").exists()
    assert files_under(results) >= {"manifest.json", "records.jsonl", "events.jsonl", "results.duckdb"}


def test_a_damaged_manifest_does_not_stop_a_replay(results):
    (results / "manifest.json").write_bytes(b"\xff[")
    tid = next(iter_records(results)).trial_id
    res = invoke("replay", tid, "--results", results)
    assert res.exit_code == 0 and "replay matches the stored record" in res.stderr


def test_a_hand_made_record_with_a_partial_spec_still_builds(tmp_path):
    d = tmp_path / "hand"
    d.mkdir()
    rec = TrialRecord(trial_id="abcd0001", spec={"scenario": "x", "faults": [1, {"id": "f"}]}, scenario="s",
                      agent="a", profile="strong", seed=0, replicate=0, outcome="success")
    (d / "records.jsonl").write_text(rec.model_dump_json() + "\n")
    assert sql.query(d, "SELECT fault, scenario_ref FROM trials") == (["fault", "scenario_ref"], [("f", None)])
    assert sql.query(d, "SELECT count(*) FROM events")[1] == [(0,)]


def test_resuming_after_a_scenario_changed_is_refused_before_anything_runs(tmp_path):
    scenario = tmp_path / "sc.yaml"
    scenario.write_text((Path(__file__).parents[1] / "scenarios" / "support_refund.yaml").read_text())
    sweep = tmp_path / "sw.yaml"
    sweep.write_text(f"name: changed\nscenarios: [{{ref: {scenario}}}]\nreplicates: 2\n")
    out = tmp_path / "s"
    assert invoke("sweep", sweep, "--executor", "serial", "--out", out).exit_code == 0
    kept = (out / "records.jsonl").read_bytes()
    scenario.write_text(scenario.read_text().replace("cracked base", "broken base"))
    fails("sweep", sweep, "--executor", "serial", "--out", out, "--resume",
          message=f"scenario {scenario} has changed since the sweep in {out} started (content digest")
    assert (out / "records.jsonl").read_bytes() == kept
