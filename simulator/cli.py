"""The command line: a thin layer, one library call per command."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import runner
from .designs import DesignError, load_factory
from .registry import entries, load_builtins
from .scenario import ScenarioError, json_schema, load_scenario_file
from .spec import digest
from .templates import parse_params, resolve_scenario

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Stress-test LLM agent workflows on a virtual clock.")
# piped output (CI logs, files) gets a fixed, wide layout instead of rich's 80 columns
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 132)
err = Console(stderr=True, soft_wrap=True)


class UserError(Exception):
    """Bad input: shown as one clear message, exit code 2."""


def _fail(msg: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _guard(fn):
    """Bad input (a scenario, design, fault, parameter or results path) becomes one message
    and exit code 2; anything else is a bug and keeps its traceback."""
    try:
        return fn()
    except (ScenarioError, DesignError, UserError) as e:
        _fail(str(e))
    except (LookupError, ValueError) as e:  # KeyError's str() would add quotes: use its message
        _fail(str(e.args[0]) if e.args else str(e))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _progress(total: int):
    """A live bar on a terminal, sparse plain lines otherwise (CI logs)."""
    state = {"done": 0, "succ": 0}
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        bar = Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[speed]}"),
                       TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[rate]}"),
                       console=err, transient=True)
        task = bar.add_task("run", total=total, rate="", speed="")

        def tick(rec):
            state["done"] += 1
            state["succ"] += rec.outcome == "success"
            speed = bar.tasks[0].speed
            bar.update(task, advance=1, rate=f"success {_pct(state['succ'] / state['done'])}",
                       speed=f"{speed:.1f}/s" if speed else "")
        return bar, tick
    every = max(1, total // 10)

    def tick(rec):
        state["done"] += 1
        state["succ"] += rec.outcome == "success"
        if state["done"] % every == 0 or state["done"] == total:
            print(f"[{state['done']}/{total}] success so far {_pct(state['succ'] / state['done'])}",
                  file=sys.stderr, flush=True)
    return None, tick


@app.command()
def run(
    scenario: str = typer.Argument(..., help="scenario file, shipped scenario name, or template "
                                   "(e.g. chain, chain:length=64)"),
    agent: str = typer.Option("react", "--agent", "-a", help="design name, path/file.py:build or pkg.module:build"),
    trials: int = typer.Option(20, "--trials", "-n", min=1, help="number of trials (replicates)"),
    seed: int = typer.Option(0, "--seed", "-s", help="sweep seed; same seed, same results"),
    profile: str = typer.Option("strong", "--profile", help="simulated model profile (attrition list profiles)"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help="template parameter key=value (repeatable)"),
    agent_param: Optional[List[str]] = typer.Option(None, "--agent-param", help="design parameter key=value (repeatable)"),
    profile_param: Optional[List[str]] = typer.Option(None, "--profile-param", help="override a profile parameter key=value"),
    budget: Optional[List[str]] = typer.Option(None, "--budget", help="max_steps=N, max_tokens=N or max_sim_time_s=S"),
    fault: Optional[List[str]] = typer.Option(None, "--fault", "-f", help="NAME[:key=value,...] (repeatable; "
                                              "attrition list faults), e.g. rate_limit:rate=0.3"),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="sessions sharing one virtual environment "
                                    "(and its provider: shared limits and outages hit them together)"),
    stagger: float = typer.Option(0.0, "--stagger", min=0, help="virtual seconds between session arrivals "
                                  "within a shared environment"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="results directory (default results/<run-id>)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
) -> None:
    """Run an agent design through a scenario N times and report its success rate."""
    def prepare():
        budgets = parse_params(budget)
        bad = set(budgets) - {"max_steps", "max_tokens", "max_sim_time_s"}
        if bad:
            raise UserError(f"unknown budget {', '.join(sorted(bad))}; use max_steps, max_tokens, max_sim_time_s")
        runner.check_budgets(budgets)
        specs = runner.make_specs(scenario, parse_params(param), agent, trials=trials, seed=seed,
                                  profile=profile, agent_params=parse_params(agent_param),
                                  profile_params=parse_params(profile_param), budgets=budgets,
                                  faults=fault)
        load_factory(agent)
        return specs
    specs = _guard(prepare)
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        _fail(f"cannot write results to {out_dir}: it is a file, not a directory")
    sc_name = specs[0].scenario.ref.replace("/", "_").replace(".yaml", "")
    run_id = f"{Path(sc_name).name}-{agent.replace('/', '_').split(':')[0][-24:]}-{profile}-s{seed}-{digest([s.id for s in specs], 8)}"
    run_dir = out_dir or Path("results") / run_id  # same specs, same directory: a re-run replaces it
    manifest = {"run_id": run_id, "command": "run", "argv": sys.argv[1:], "seed": seed, "concurrency": concurrency,
                "trials": trials, "spec": specs[0].model_dump(mode="json"),
                "trial_ids": [s.id for s in specs]}
    bar, tick = _progress(len(specs)) if not as_json or sys.stderr.isatty() else (None, None)
    try:
        if bar:
            bar.start()
        records, summary = runner.run_specs(specs, out=run_dir, manifest=manifest,
                                            concurrency=concurrency, stagger_s=stagger, progress=tick)
    except KeyboardInterrupt:
        _fail(f"interrupted; the trials that finished are in {run_dir}", 130)
    finally:
        if bar:
            bar.stop()
    summary["results_dir"] = str(run_dir)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_summary(summary, specs[0], run_dir)
    if summary["outcomes"]["error"]:
        err.print(f"{summary['outcomes']['error']} trial(s) ended in error (the graph or its factory "
                  f"crashed), e.g.: {summary['errors'][0] if summary['errors'] else '?'}", highlight=False)
        raise typer.Exit(1)


@app.command()
def sweep(
    sweep_file: Path = typer.Argument(..., help="sweep file (YAML), e.g. scenarios/sweeps/quickstart.yaml"),
    executor: str = typer.Option("process", "--executor", "-e", help="serial, process (all cores) or dask"),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="worker processes (default: all cores)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="address of a running Dask scheduler"),
    resume: bool = typer.Option(False, "--resume", help="finish an interrupted sweep (the newest for this "
                                "sweep file, or --out DIR) without repeating or losing trials"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="results directory (default results/<name>-<time>)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object: summary and analysis"),
) -> None:
    """Run a sweep: every cell of the grid, on one core, all cores or a Dask cluster."""
    from .executors import EXECUTORS
    if executor not in EXECUTORS:
        _fail(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    if scheduler and executor != "dask":
        _fail("--scheduler needs --executor dask")
    state: dict = {}

    def on_start(total: int, done: int) -> None:
        state["bar"], state["tick"] = _progress(total - done) if total > done else (None, None)
        if done:
            err.print(f"resuming: {done} of {total} trials already done", highlight=False)
        if state["bar"]:
            state["bar"].start()

    def tick(rec) -> None:
        if state.get("tick"):
            state["tick"](rec)

    try:
        summary, run_dir = _guard(lambda: runner.run_sweep(
            sweep_file, executor=executor, workers=workers, scheduler=scheduler, resume=resume,
            out=out_dir, progress=tick, on_start=on_start))
    except KeyboardInterrupt:
        _fail("interrupted; finished trials are saved: run again with --resume to finish", 130)
    finally:
        if state.get("bar"):
            state["bar"].stop()
    analysis = _guard(lambda: runner.analyze_results(run_dir))
    if as_json:
        print(json.dumps({**summary, "results_dir": str(run_dir), "analysis": analysis}, indent=2, default=str))
    else:
        _print_analysis(analysis, f"sweep {Path(sweep_file).name}")
        err.print(f"{summary['trials']} trials ({summary['ran_now']} run now) — results: {run_dir}", highlight=False)
    if summary["outcomes"]["error"]:
        err.print(f"{summary['outcomes']['error']} trial(s) ended in error, e.g.: "
                  f"{summary['errors'][0] if summary['errors'] else '?'}", highlight=False)
        raise typer.Exit(1)


@app.command()
def analyze(
    results: Path = typer.Argument(..., help="a results directory, or a table (CSV, JSONL, JSON) of "
                                   "task, trial, success or reward, and optionally length"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    seed: int = typer.Option(0, "--seed", help="seed of the bootstrap"),
    n_boot: int = typer.Option(1000, "--bootstrap", min=50, help="bootstrap replicates"),
    exclude_unfired: bool = typer.Option(False, "--exclude-unfired", help="leave out trials in which a "
                                         "configured fault never fired"),
) -> None:
    """Success rate, pass^k, and how success decays with length (horizons, hazard law)."""
    a = _guard(lambda: runner.analyze_results(results, seed=seed, n_boot=n_boot,
                                              exclude_unfired=exclude_unfired))
    if as_json:
        print(json.dumps(a, indent=2, default=str))
    else:
        _print_analysis(a, str(results))


@app.command()
def query(
    results: Path = typer.Argument(..., help="a results directory"),
    sql: str = typer.Argument("SELECT agent, profile, fault, count(*) AS n, avg(success::INT) AS success_rate "
                              "FROM trials GROUP BY ALL ORDER BY ALL", help="SQL over tables `trials` and `events`"),
    as_json: bool = typer.Option(False, "--json", help="rows as JSON objects"),
) -> None:
    """Query a results directory with SQL (DuckDB)."""
    from .store import query as run_query
    if not (results / "records.jsonl").exists():
        _fail(f"{results} is not a results directory (no records.jsonl)")
    try:
        cols, rows = run_query(results, sql)
    except Exception as e:  # SQL errors are the user's input
        _fail(f"query failed: {str(e).splitlines()[0]}")
    if as_json:
        print(json.dumps([dict(zip(cols, r)) for r in rows], indent=2, default=str))
        return
    t = Table(show_header=True, header_style="bold")
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*[escape(str(v)) for v in r])
    out.print(t)


@app.command()
def export(
    results: Path = typer.Argument(..., help="a results directory"),
    output: Path = typer.Argument(..., help="file to write: .parquet or .csv"),
    sql: str = typer.Option("SELECT * FROM trials", "--sql", help="what to export"),
) -> None:
    """Export trials (or any query) to Parquet or CSV."""
    from .store import export as run_export
    if not (results / "records.jsonl").exists():
        _fail(f"{results} is not a results directory (no records.jsonl)")
    try:
        run_export(results, output, sql=sql)
    except ValueError as e:
        _fail(str(e))
    except Exception as e:
        _fail(f"export failed: {str(e).splitlines()[0]}")
    err.print(f"wrote {output}", highlight=False)


@app.command()
def propagation(
    results: Path = typer.Argument(..., help="a results directory (from run or sweep)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    graphml: Optional[Path] = typer.Option(None, "--graphml", help="write the aggregated propagation graph "
                                           "as GraphML (and JSON beside it)"),
    trials_out: Optional[Path] = typer.Option(None, "--trials", help="write every trial's root causes "
                                              "(detection, steps and time to it, depth, blast radius) as JSON lines"),
) -> None:
    """Trace every fault and model error to what it broke; containment per graph node."""
    import networkx as nx
    from .propagation import graph_json
    for target in (graphml, trials_out):
        if target is not None and not target.parent.is_dir():
            _fail(f"cannot write {target}: no directory {target.parent}")
    res = _guard(lambda: runner.propagation_results(results))
    per_trial = res.pop("trials")
    if trials_out:
        trials_out.write_text("".join(json.dumps(t, default=str) + "\n" for t in per_trial))
        err.print(f"wrote {len(per_trial)} trials to {trials_out}", highlight=False)
    graphs = {"all": res.pop("graph")}
    for name, sub in (res.get("by_agent") or {}).items():
        graphs[name] = sub.pop("graph")
    if graphml:
        g = graphs["all"] if len(graphs) == 1 else nx.union_all(
            [nx.relabel_nodes(gr, lambda n, k=k: f"{k}/{n}") for k, gr in graphs.items() if k != "all"])
        nx.write_graphml(g, graphml)
        graphml.with_suffix(".json").write_text(json.dumps(
            {k: graph_json(v) for k, v in graphs.items()}, indent=2, default=str))
        err.print(f"wrote {graphml} and {graphml.with_suffix('.json')}", highlight=False)
    if as_json:
        print(json.dumps(res, indent=2, default=str))
        return
    for name, r in ([("all trials", res)] + list((res.get("by_agent") or {}).items())):
        out.print(f"[bold]{escape(name)}[/]: {r['n_trials']} trials, silent failures "
                  f"{_pct(r['silent_failure_rate'])} (95% CI {_pct(r['ci_low'])}–{_pct(r['ci_high'])}, "
                  f"n={r['n_trials']})" + (f"; {r['error_trials_excluded']} harness errors excluded"
                                           if r["error_trials_excluded"] else ""))
        t = Table(show_header=True, header_style="bold", title="per graph node", title_justify="left")
        for c in ("node", "originated", "entered", "escaped", "contained %"):
            t.add_column(c, justify="left" if c == "node" else "right")
        for node, s in r["nodes"].items():
            rate = s["containment_rate"]
            t.add_row(escape(node), str(s["originated"]), str(s["entered"]), str(s["escaped"]),
                      "-" if rate is None else f"{100 * rate:.0f} ({100 * s['ci_low']:.0f}–{100 * s['ci_high']:.0f})")
        out.print(t)
        t = Table(show_header=True, header_style="bold", title="per root cause", title_justify="left")
        for c in ("root cause", "n", "detected %", "contained %", "reached final", "mean depth", "mean blast radius",
                  "steps to detection"):
            t.add_column(c, justify="left" if c == "root cause" else "right")
        for typ, d in r["root_cause_detail"].items():
            t.add_row(escape(typ), str(d["count"]), f"{100 * d['detection_rate']:.0f}",
                      f"{100 * d['containment_rate']:.0f} ({100 * d['ci_low']:.0f}–{100 * d['ci_high']:.0f})",
                      str(d["reached_final_state"]), f"{d['mean_depth']:.2f}", f"{d['mean_blast_radius']:.2f}",
                      "-" if d["mean_steps_to_detection"] is None else f"{d['mean_steps_to_detection']:.1f}")
        out.print(t)
    out.print(res["inference"], highlight=False)


def _ci(d: dict | None, fmt="{:.0f}") -> str:
    if not d or d.get("estimate") is None:
        return "-"
    lo, hi = d.get("ci_low"), d.get("ci_high")
    ci = f" ({fmt.format(lo)}–{fmt.format(hi)})" if lo is not None and hi is not None else ""
    return fmt.format(d["estimate"]) + ci


def _print_analysis(a: dict, title: str) -> None:
    out.print(f"[bold]{escape(title)}[/]: {a['n_trials']} trials over {a.get('n_tasks', '?')} tasks; success "
              f"{_pct(a['success_rate'])} (95% CI {_pct(a['ci_low'])}–{_pct(a['ci_high'])}, n={a['n_trials']})"
              + (f"; {a['error_trials_excluded']} harness-error trials excluded" if a.get("error_trials_excluded") else ""))
    if a.get("pass_hat_k"):
        out.print("pass^k: " + "  ".join(f"k={k} {v:.3f}" for k, v in a["pass_hat_k"].items()), highlight=False)
    cells = a.get("cells") or [dict(a)]
    t = Table(show_header=True, header_style="bold", title="by cell (95% intervals)", title_justify="left")
    keys = [k for k in ("agent", "profile", "fault", "scenario") if k in cells[0]]
    for k in keys:
        t.add_column(k)
    for c in ("n", "success %", "H50 steps", "H80 steps", "per-step p", "H50 virtual time"):
        t.add_column(c, justify="right")
    for c in cells:
        h50t = c.get("horizon_50_time_s")
        t.add_row(*[escape(str(c.get(k))) for k in keys], str(c["n_trials"]),
                  f"{100 * c['success_rate']:.0f} ({100 * c['ci_low']:.0f}–{100 * c['ci_high']:.0f})",
                  _ci(c.get("horizon_50")), _ci(c.get("horizon_80")),
                  _ci(c.get("per_step_reliability"), "{:.3f}"),
                  (_dur(h50t["estimate"]) + f"\n({_dur(h50t['ci_low'])}–{_dur(h50t['ci_high'])})")
                  if h50t and h50t.get("ci_low") is not None else "-")
    out.print(t)
    w = a.get("weibull") or {}
    hc = w.get("hazard_check") or {}
    if hc:
        out.print(f"hazard law (all trials): Weibull k = {w.get('k', float('nan')):.2f}; better fit: "
                  f"{hc.get('better_fit')} (hazard {hc.get('hazard_trend', '?')}, LR p = {hc.get('p_value', float('nan')):.3g})",
                  highlight=False)


def _print_summary(s: dict, spec, run_dir: Path) -> None:
    t = Table(title=f"{spec.scenario.ref} × {spec.agent} × {spec.profile} (seed {spec.seed})",
              show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("success rate", f"{_pct(s['success_rate'])}  (95% CI {_pct(s['ci_low'])}–{_pct(s['ci_high'])}, "
              f"n={s['trials']})")
    t.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in s["outcomes"].items() if v))
    if s["failure_modes"]:
        t.add_row("failure modes", ", ".join(f"{k} {v}" for k, v in s["failure_modes"].items()))
    lo, hi = s["mean_steps_ci"]
    if s.get("faults_fired"):
        t.add_row("faults fired", ", ".join(
            f"{k} ×{v['firings']} in {v['trials_hit']} trials" for k, v in s["faults_fired"].items()))
        if s["trials_with_unfired_faults"]:
            t.add_row("trials where a fault never fired", str(s["trials_with_unfired_faults"]))
    if s.get("clarifications") or s.get("guesses"):
        t.add_row("ambiguity", f"asked {s['clarifications']}, guessed {s['guesses']}")
    if s.get("injections_obeyed"):
        t.add_row("injections obeyed", str(s["injections_obeyed"]))
    t.add_row("mean steps", f"{s['mean_steps']:.1f}  (95% CI {lo:.1f}–{hi:.1f})")
    lo, hi = s["mean_sim_time_ci"]
    t.add_row("virtual time / trial", f"{_dur(s['mean_sim_time_s'])}  (95% CI {_dur(lo)}–{_dur(hi)})")
    t.add_row("virtual time, all", _dur(s["sim_time_s"]))
    t.add_row("wall time, all", f"{s['wall_time_s']:.2f} s")
    out.print(t)
    out.print(f"results: {run_dir}", highlight=False)


def _dur(sec: float) -> str:
    if sec != sec:
        return "-"
    if sec < 120:
        return f"{sec:.1f} s"
    if sec < 7200:
        return f"{sec / 60:.1f} min"
    return f"{sec / 3600:.2f} h"


@app.command()
def validate(files: List[str] = typer.Argument(..., help="scenario files (or shipped names / templates)")) -> None:
    """Check scenario files: schema, cross-references, and that the golden path solves the task."""
    bad = 0
    for f in files:
        try:
            sc = load_scenario_file(f) if Path(f).exists() else resolve_scenario(f)[0]
        except ScenarioError as e:
            bad += 1
            err.print(e.render(), highlight=False, markup=False)
            continue
        out.print(f"ok: {f}: {sc.name} — {len(sc.tools)} tools, {len(sc.golden_path)} golden steps, "
                  f"{len(sc.turns)} turns", highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(2)


@app.command()
def schema(output: Optional[Path] = typer.Option(None, "--out", "-o", help="write to a file")) -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    text = json.dumps(json_schema(), indent=2)
    if output:
        output.write_text(text + "\n")
        err.print(f"wrote {output}")
    else:
        print(text)


@app.command("list")
def list_(what: Optional[str] = typer.Argument(None, help="scenarios, templates, designs, profiles or faults")) -> None:
    """Show shipped scenarios, templates, agent designs, profiles and faults."""
    load_builtins()
    kinds = {"scenarios": "scenario", "templates": "template", "designs": "design",
             "profiles": "profile", "faults": "fault"}
    if what and what not in kinds:
        _fail(f"unknown list {what!r}; choose from {', '.join(kinds)}")
    for plural, kind in kinds.items():
        if what and what != plural:
            continue
        rows = entries(kind)
        t = Table(title=plural, title_justify="left", show_header=True, header_style="bold")
        t.add_column("name")
        t.add_column("what it is")
        if kind in ("template", "fault"):
            t.add_column("parameters")
        for e in rows:
            sep = "\n" if kind == "fault" else ", "
            extra = [sep.join(f"{k}={v}" for k, v in e.params.items())] if kind in ("template", "fault") else []
            t.add_row(escape(e.name), escape(e.summary), *map(escape, extra))
        if not rows:
            t.add_row("(none yet)", "")
        out.print(t)
        if kind == "fault":
            out.print("Trigger keys for any fault: rate, at_call (1|3), at_turn, position (early|middle|late), "
                      "pattern (single|persistent|intermittent|burst), burst, windows (100-400|900-950), "
                      "mtbf_s, mttr_s, max_fires; target=tools|reads|writes|TOOL_NAME|model|model:ROLE.", highlight=False)


@app.command()
def replay(
    trial_id: str = typer.Argument(..., help="trial id (or a unique prefix) from a results directory"),
    results: List[Path] = typer.Option([Path("results")], "--results", help="where to look for the trial"),
    as_json: bool = typer.Option(False, "--json", help="print events as JSON lines"),
) -> None:
    """Re-run one trial from its id and print its event trace."""
    stored, fresh, events, run_dir = _guard(lambda: runner.replay(trial_id, results))
    for e in events:
        if as_json:
            print(json.dumps(e, default=str))
        else:
            out.print(_event_line(e), highlight=False, markup=False)
    same = stored.deterministic() == fresh.deterministic()
    shared = runner.shared_environment(run_dir)
    if not same and shared > 1:
        err.print(f"note: this trial shared its virtual environment with {shared - 1} other session(s); "
                  "replayed alone, shared limits and outages no longer interleave, so it can differ",
                  highlight=False)
    msg = (f"trial {fresh.trial_id} from {run_dir}: {fresh.outcome}"
           + (f" ({fresh.failure_mode})" if fresh.failure_mode else "")
           + ("; replay matches the stored record" if same else "; replay DIFFERS from the stored record"))
    err.print(msg, highlight=False)
    if not same and shared == 1:
        a, b = stored.deterministic(), fresh.deterministic()
        for k in sorted(a):
            if a[k] != b.get(k):
                err.print(f"  {k}: stored {a[k]!r} vs replay {b.get(k)!r}", highlight=False)
        raise typer.Exit(1)


def _event_line(e: dict) -> str:
    skip = {"v", "trial", "seq", "t", "event"}
    kind = e["event"]
    body = {k: v for k, v in e.items() if k not in skip}
    if kind == "model_call":
        what = f"{body.get('mode')}" + (f" -> {body.get('tool')}({json.dumps(body.get('args'))})" if body.get("tool") else "")
        extra = f"  p_err={body.get('p_error')} conf={body.get('confidence')} ctx={body.get('context_tokens')}"
        text = what + extra
    elif kind == "tool_call":
        text = f"{body.get('tool')} ok={body.get('ok')} {json.dumps(body.get('result'), default=str)[:140]}"
    elif kind == "trial_start":
        text = f"{body.get('scenario')} (golden length {body.get('golden_length')})"
    else:
        text = " ".join(f"{k}={json.dumps(v, default=str)[:120]}" for k, v in body.items())
    return f"{e['t']:>10.2f}s  {e['seq']:>4}  {kind:<12} {text}"


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
