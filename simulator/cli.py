"""The command line: a thin layer, one library call per command."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from .design_loader import DesignError
from .events import events_json_schema
from .files import cannot_write, check_writable
from .propagation import propagation_results
from .registry import PROBLEMS, entries, names
from .replay import replay as replay_trial
from .results import analyze_results
from .runs import nothing_written, run_sweep, sweep_dir
from .report import graphs as graph_files
from .report import terminal
from .report.progress import progress
from .cli_args import MAX_BOOTSTRAP, path as _path, trial_timeout_option
from .cli_architect import commands as architect_commands
from .cli_calibrate import command as calibrate_command
from .cli_nightly import commands as nightly_commands
from .cli_traces import commands as trace_commands
from .cli_run import MAX_WORKERS, check_live, command as run_command, live_options
from .executors import default_workers
from .live import LiveOptions
from .scenario import ScenarioError, json_schema
from .scenario_refs import resolve_scenario
from .spec import MAX_SEED
from .sql import export as export_rows
from .sql import query as query_rows
from .store import read_manifest, results_dir, validation_problem
from .sweep import load_sweep

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Stress-test LLM agent workflows on a virtual clock.")
# piped output (CI logs, files) gets a fixed, wide layout instead of rich's 80 columns
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 132)
err = Console(stderr=True, soft_wrap=True)


def _style() -> dict:
    # colour follows rich's own test of stdout, so FORCE_COLOR and TTY_COMPATIBLE keep working
    return {"color": out.is_terminal, "width": None if sys.stdout.isatty() else 132}


def _show(text: str) -> None:
    sys.stdout.write(text)


class UserError(Exception):
    """Bad input: shown as one clear message, exit code 2."""


def _fail(msg: str, code: int = 2) -> None:
    # messages quote user input and exception text: never markup
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _guard(fn):
    """Bad input (a scenario, design, fault, parameter or results path) becomes one message
    and exit code 2; anything else is a bug and keeps its traceback."""
    try:
        return fn()
    except (ScenarioError, DesignError, UserError) as e:
        _fail(str(e))
    except UnicodeDecodeError as e:  # a reader that did not say which file: say what it found
        _fail(f"a file is not UTF-8 text ({e.reason}, byte 0x{e.object[e.start]:02x} at offset {e.start})")
    except ValidationError as e:
        _fail(f"{e.title}: {validation_problem(e)}")
    except (LookupError, ValueError) as e:  # KeyError's str() would add quotes: use its message
        _fail(str(e.args[0]) if e.args else str(e))
    except OSError as e:  # a path the system refuses (a name too long, a loop of links...)
        _fail(f"{e.filename}: {e.strerror}" if e.filename else f"cannot use a path: {e}")


app.command(name="run")(run_command(_guard, _fail, err, _style, _show))
_LIVE = live_options()


def _sweep_out(sweep_file: Path, resume: bool, out_dir: Path | None) -> Path | None:
    """Where a sweep writes, checked before any trial runs; to resume, the directory it
    finishes, whose logs and manifest must be readable."""
    if not resume:
        _guard(lambda: check_writable(out_dir if out_dir is not None else Path("results"), directory=True))
        return out_dir
    out = out_dir if out_dir is not None else _guard(lambda: sweep_dir(load_sweep(sweep_file).name, True))
    if nothing_written(out):  # stopped before its first file: there is nothing to resume
        err.print(f"nothing was written in {out} yet: running the sweep from the start", highlight=False,
                  markup=False)
        return _sweep_out(sweep_file, False, out)
    _guard(lambda: read_manifest(out if (out / "manifest.json").is_file() else results_dir(out)))
    _guard(lambda: check_writable(out, directory=True))
    return out


@app.command()
def sweep(
    sweep_file: Path = typer.Argument(..., parser=_path, metavar="SWEEP_FILE", help="sweep file (YAML), e.g. scenarios/sweeps/quickstart.yaml"),
    executor: str = typer.Option("process", "--executor", "-e", help="serial, process (all cores) or dask"),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, max=MAX_WORKERS,
                                          help=f"worker processes, 1 to {MAX_WORKERS} (default: all cores)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="address of a running Dask scheduler"),
    resume: bool = typer.Option(False, "--resume", help="finish an interrupted sweep (the newest for this "
                                "sweep file, or --out DIR) without repeating or losing trials"),
    out_dir: Optional[Path] = typer.Option(None, "--out", parser=_path, help="results directory (default results/<name>-<time>)"),
    trial_timeout: float = trial_timeout_option(),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object: summary and analysis"),
    record: Optional[Path] = _LIVE["record"], replay: Optional[Path] = _LIVE["replay"],
    replay_fallback: str = _LIVE["fallback"], rpm: Optional[float] = _LIVE["rpm"],
    request_timeout: float = _LIVE["timeout"], max_retries: int = _LIVE["retries"],
    in_flight: int = _LIVE["in_flight"],
) -> None:
    """Run a sweep: every cell of the grid, on one core, all cores or a Dask cluster."""
    opts = check_live(_fail, None, record, replay, replay_fallback, rpm, request_timeout, max_retries,
                      in_flight, workers or default_workers(), needs_model=False)
    if executor == "dask" and opts != LiveOptions():
        # Dask workers do not take this process's environment, where the options travel
        _fail("the real-model options (--record, --replay, --rpm, --in-flight, --request-timeout, --max-retries) "
              "work with --executor process or serial, not dask")
    if executor not in names("executor"):
        _fail(f"unknown executor {executor!r}; choose from {', '.join(names('executor'))}")
    if scheduler and executor != "dask":
        _fail("--scheduler needs --executor dask")
    out_dir = _sweep_out(sweep_file, resume, out_dir)
    state: dict = {}

    def on_start(total: int, done: int) -> None:
        state["bar"], state["tick"] = progress(total - done, err) if total > done else (None, None)
        if done:
            err.print(f"resuming: {done} of {total} trials already done", highlight=False)
        if state["bar"]:
            state["bar"].start()

    def tick(rec) -> None:
        if state.get("tick"):
            state["tick"](rec)

    try:
        summary, run_dir = _guard(lambda: run_sweep(
            sweep_file, executor=executor, workers=workers, scheduler=scheduler, resume=resume,
            out=out_dir, progress=tick, on_start=on_start, trial_timeout_s=trial_timeout or None, live=opts))
    except KeyboardInterrupt:
        _fail("interrupted; finished trials are saved: run again with --resume to finish", 130)
    finally:
        if state.get("bar"):
            state["bar"].stop()
    try:
        analysis = analyze_results(run_dir)
    except (LookupError, ValueError) as e:  # every trial ended in error: exit 1, as for any error trial
        _fail(str(e.args[0]) if e.args else str(e), 1 if summary["outcomes"]["error"] else 2)
    if as_json:
        print(json.dumps({**summary, "results_dir": str(run_dir), "analysis": analysis}, indent=2, default=str))
    else:
        _show(terminal.analysis_tables(analysis, f"sweep {Path(sweep_file).name}", **_style()))
        err.print(f"{summary['trials']} trials ({summary['ran_now']} run now) — results: {run_dir}",
                  highlight=False, markup=False)
    if summary["outcomes"]["error"]:
        err.print(f"{summary['outcomes']['error']} trial(s) ended in error, e.g.: "
                  f"{summary['errors'][0] if summary['errors'] else '?'}", highlight=False, markup=False)
        raise typer.Exit(1)


@app.command()
def analyze(
    results: Path = typer.Argument(..., parser=_path, metavar="RESULTS", help="a results directory, or a table (CSV, JSONL, JSON) of "
                                   "task, trial, success or reward, and optionally length"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="seed of the bootstrap, 0 to 2**63 - 1"),
    n_boot: int = typer.Option(1000, "--bootstrap", min=50, max=MAX_BOOTSTRAP,
                               help=f"bootstrap replicates, 50 to {MAX_BOOTSTRAP:,}"),
    exclude_unfired: bool = typer.Option(False, "--exclude-unfired", help="leave out trials in which a "
                                         "configured fault never fired"),
) -> None:
    """Success rate, pass^k, and how success decays with length (horizons, hazard law)."""
    a = _guard(lambda: analyze_results(results, seed=seed, n_boot=n_boot,
                                              exclude_unfired=exclude_unfired))
    if as_json:
        print(json.dumps(a, indent=2, default=str))
    else:
        _show(terminal.analysis_tables(a, str(results), **_style()))


@app.command()
def query(
    results: Path = typer.Argument(..., parser=_path, metavar="RESULTS", help="a results directory"),
    sql: str = typer.Argument("SELECT agent, profile, fault, count(*) AS n, avg(success::INT) AS success_rate "
                              "FROM trials GROUP BY ALL ORDER BY ALL", help="SQL over tables `trials` and `events`"),
    as_json: bool = typer.Option(False, "--json", help="rows as JSON objects"),
) -> None:
    """Query a results directory with SQL (DuckDB): one read-only SELECT, no other files."""
    cols, rows = _guard(lambda: query_rows(results, sql))
    if as_json:
        print(json.dumps([dict(zip(cols, r)) for r in rows], indent=2, default=str))
        return
    _show(terminal.query_table(cols, rows, **_style()))


@app.command()
def export(
    results: Path = typer.Argument(..., parser=_path, metavar="RESULTS", help="a results directory"),
    output: Path = typer.Argument(..., parser=_path, metavar="OUTPUT", help="file to write: .parquet or .csv"),
    sql: str = typer.Option("SELECT * FROM trials", "--sql", help="what to export: one read-only SELECT "
                            "over tables `trials` and `events`"),
) -> None:
    """Export trials (or any query) to Parquet or CSV."""
    _guard(lambda: export_rows(results, output, sql=sql))
    err.print(f"wrote {output}", highlight=False, markup=False)


@app.command()
def propagation(
    results: Path = typer.Argument(..., parser=_path, metavar="RESULTS", help="a results directory (from run or sweep)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    graphml: Optional[Path] = typer.Option(None, "--graphml", parser=_path, help="write the aggregated propagation graph "
                                           "as GraphML (and JSON beside it)"),
    trials_out: Optional[Path] = typer.Option(None, "--trials", parser=_path, help="write every trial's root causes "
                                              "(detection, steps and time to it, depth, blast radius) as JSON lines"),
) -> None:
    """Trace every fault and model error to what it broke; containment per graph node."""
    _guard(lambda: graph_files.check_targets(graphml, trials_out, results))
    res = _guard(lambda: propagation_results(results))
    per_trial = res.pop("trials")
    if trials_out:
        n = _guard(lambda: graph_files.write_trials(per_trial, trials_out))
        err.print(f"wrote {n} trials to {trials_out}", highlight=False, markup=False)
    graphs = graph_files.take_graphs(res)
    if graphml:
        written = _guard(lambda: graph_files.write_graphs(graphs, graphml))
        err.print(f"wrote {' and '.join(map(str, written))}", highlight=False, markup=False)
    if as_json:
        print(json.dumps(res, indent=2, default=str))
        return
    _show(terminal.propagation_tables(res, **_style()))


@app.command()
def validate(files: List[str] = typer.Argument(..., help="scenario files (or shipped names / templates)")) -> None:
    """Check scenario files: schema, cross-references, and that the golden path solves the task."""
    bad = 0
    for f in files:
        try:
            # resolve_scenario reads a file too, and refuses paths the system cannot stat
            sc = resolve_scenario(f)[0]
        except ScenarioError as e:
            bad += 1
            err.print(e.render(), highlight=False, markup=False)
            continue
        except (LookupError, ValueError) as e:
            bad += 1
            err.print(f"{f}: {e.args[0] if e.args else e}", highlight=False, markup=False)
            continue
        out.print(f"ok: {f}: {sc.name} — {len(sc.tools)} tools, {len(sc.golden_path)} golden steps, "
                  f"{len(sc.turns)} turns", highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(2)


def _write_text(path: Path, text: str) -> None:
    check_writable(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise cannot_write(path, e) from None


@app.command()
def schema(output: Optional[Path] = typer.Option(None, "--out", "-o", parser=_path, help="write to a file"),
           events: bool = typer.Option(False, "--events", help="the schema of events.jsonl lines instead")) -> None:
    """Print the JSON Schema of scenario files (for editor completion), or of events."""
    text = json.dumps(events_json_schema() if events else json_schema(), indent=2)
    if output:
        _guard(lambda: _write_text(output, text + "\n"))
        err.print(f"wrote {output}", markup=False)
    else:
        print(text)


@app.command("list")
def list_(what: Optional[str] = typer.Argument(None, help="scenarios, templates, designs, profiles, faults or executors")) -> None:
    """Show what is registered: scenarios, templates, designs, profiles, faults, executors."""
    kinds = {"scenarios": "scenario", "templates": "template", "designs": "design",
             "profiles": "profile", "faults": "fault", "executors": "executor"}
    if what and what not in kinds:
        _fail(f"unknown list {what!r}; choose from {', '.join(kinds)}")
    shown = {kind: entries(kind) for plural, kind in kinds.items() if not what or what == plural}
    _show(terminal.entry_tables(shown, PROBLEMS, **_style()))


@app.command()
def replay(
    trial_id: str = typer.Argument(..., help="trial id (or a unique prefix) from a results directory"),
    results: List[Path] = typer.Option([Path("results")], "--results", parser=_path, help="where to look for the trial"),
    as_json: bool = typer.Option(False, "--json", help="print events as JSON lines"),
    cassettes: Optional[Path] = typer.Option(None, "--cassettes", parser=_path, help="a trial with a real model: "
                                             "answer its calls from these cassettes (its run's --record DIR), "
                                             "not the provider"),
) -> None:
    """Re-run one trial from its id and print its event trace."""
    if cassettes is not None:
        check_live(_fail, "", None, cassettes, "error", None, 120.0, 2, 1, 1, needs_model=False).to_env()
    r = _guard(lambda: replay_trial(trial_id, results))
    err.print(r.scenario_note, highlight=False, markup=False)
    if as_json:
        for e in r.events:
            print(json.dumps(e, default=str))
    else:
        _show(terminal.event_trace(r.events, **_style()))
    err.print(terminal.replay_verdict(r), highlight=False, markup=False, end="")
    if not r.same and r.shared == 1:
        raise typer.Exit(1)


app.command(name="calibrate")(calibrate_command(_guard, _fail, err, _style))
for _name, _fn in architect_commands(_guard, _style).items():
    app.command(name=_name)(_fn)
_nightly, _groups = nightly_commands(_guard, err, _style)
for _name, _fn in _nightly.items():
    app.command(name=_name)(_fn)
for _name, _group in _groups.items():
    app.add_typer(_group, name=_name)
for _name, _fn in trace_commands(_guard, _fail, err).items():
    app.command(name=_name)(_fn)

if __name__ == "__main__":  # pragma: no cover
    app()
