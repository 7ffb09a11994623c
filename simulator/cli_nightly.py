"""`attrition baseline`, `history`, `gate` and `report`: the nightly job's commands, thin
layers over catalog, nightly and report.html. Registered by cli.py, which hands them its
error and output helpers (so this module does not import cli.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from .catalog import baselines, catalog_path, history, record, save_baseline, snapshot
from .cli_args import MAX_BOOTSTRAP, path as _path
from .files import atomic_write, check_writable
from .nightly import build_report, gate_results
from .report.gate import gate_table, history_table, junit, markdown
from .spec import MAX_SEED

CATALOG_HELP = "history catalog (DuckDB file; default $ATTRITION_CATALOG or results/history.duckdb)"


def _catalog_opt():
    return typer.Option(None, "--catalog", parser=_path, help=CATALOG_HELP)


def _boot_opts():
    return (typer.Option(0, "--seed", min=0, max=MAX_SEED, help="seed of the bootstrap"),
            typer.Option(1000, "--bootstrap", min=50, max=MAX_BOOTSTRAP, help=f"bootstrap replicates, 50 to "
                         f"{MAX_BOOTSTRAP:,}"))


def commands(guard, err, style) -> tuple[dict, dict]:
    """(commands, sub-apps), given cli.py's guard (bad input -> one message, exit 2), stderr and style."""
    baseline_app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                               help="Name a recorded run as the baseline a gate compares with.")
    history_app = typer.Typer(add_completion=False, rich_markup_mode=None, invoke_without_command=True,
                              help="Each cell's success, H50 and cost over the recorded runs.")
    seed_opt, boot_opt = _boot_opts()

    @baseline_app.command("save")
    def baseline_save(
        results: Path = typer.Argument(..., parser=_path, metavar="RESULTS", help="a results directory"),
        name: str = typer.Option(..., "--name", "-n", help="the baseline's name (saving it again replaces it)"),
        catalog: Optional[Path] = _catalog_opt(), seed: int = seed_opt, n_boot: int = boot_opt,
    ) -> None:
        """Record RESULTS in the history catalog and name it as a baseline."""
        path = catalog_path(catalog)
        snap = guard(lambda: snapshot(results, seed=seed, n_boot=n_boot))
        run = guard(lambda: save_baseline(path, name, snap))
        err.print(f"baseline {name!r} = {run}: {snap['trials']} trials in {len(snap['cells'])} cells, "
                  f"code {snap['code_version']}; catalog {path}", highlight=False, markup=False)

    @baseline_app.command("list")
    def baseline_list(catalog: Optional[Path] = _catalog_opt(),
                      as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """The saved baselines."""
        rows = guard(lambda: baselines(catalog_path(catalog)))
        if as_json:
            print(json.dumps(rows, indent=2, default=str))
            return
        for b in rows:
            print(f"{b['name']}\t{b['sweep']}\t{b['trials']} trials\tcode {b['code_version']}\tseed {b['seed']}"
                  f"\tsaved {b['saved']}")
        if not rows:
            err.print("no baselines saved yet", highlight=False)

    @history_app.callback()
    def history_show(
        ctx: typer.Context,
        catalog: Optional[Path] = _catalog_opt(),
        sweep: Optional[str] = typer.Option(None, "--sweep", help="which sweep (default: the most recent)"),
        last: int = typer.Option(30, "--last", min=1, max=10_000, help="how many recent runs"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Show each cell's success, H50 and cost per success over time, with intervals."""
        if ctx.invoked_subcommand:
            return
        h = guard(lambda: history(catalog_path(catalog), sweep, last))
        if as_json:
            print(json.dumps(h, indent=2, default=str))
        else:
            sys.stdout.write(history_table(h, **style()))

    @history_app.command("add")
    def history_add(
        results: list[Path] = typer.Argument(..., parser=_path, metavar="RESULTS...", help="results directories"),
        catalog: Optional[Path] = _catalog_opt(), seed: int = seed_opt, n_boot: int = boot_opt,
    ) -> None:
        """Record runs in the history catalog (keyed by sweep, cell, code version, time and seed)."""
        path = catalog_path(catalog)
        for r in results:
            snap = guard(lambda: snapshot(r, seed=seed, n_boot=n_boot))
            run = guard(lambda: record(path, snap))
            err.print(f"recorded {run} ({snap['trials']} trials) in {path}", highlight=False, markup=False)

    def gate(
        results: Path = typer.Argument(..., parser=_path, metavar="RESULTS", help="the run to judge: a results directory"),
        baseline: str = typer.Option(..., "--baseline", "-b", help="a baseline's name in the catalog, or a "
                                     "results directory"),
        catalog: Optional[Path] = _catalog_opt(),
        min_effect: float = typer.Option(0.05, "--min-effect", help="the smallest drop in success that counts, "
                                         "as a fraction (0.05 = 5 points)"),
        min_h50_drop: float = typer.Option(0.25, "--min-h50-drop", help="the smallest fall of H50 that counts, "
                                           "as a fraction of the baseline's"),
        min_cost_rise: float = typer.Option(0.25, "--min-cost-rise", help="the smallest rise of cost per success "
                                            "that counts, as a fraction of the baseline's"),
        alpha: float = typer.Option(0.05, "--alpha", help="false-alarm rate per metric over all cells (Holm)"),
        junit_file: Optional[Path] = typer.Option(None, "--junit", parser=_path, help="write JUnit XML here"),
        md_file: Optional[Path] = typer.Option(None, "--markdown", parser=_path, help="write a Markdown summary here"),
        record_run: bool = typer.Option(False, "--record", help="also add the run to the history catalog"),
        seed: int = seed_opt, n_boot: int = boot_opt,
        as_json: bool = typer.Option(False, "--json", help="print the verdicts as JSON"),
    ) -> None:
        """Fail (exit 1) when a cell got worse than the baseline by more than the minimum effect; 0 otherwise, 2 on bad input."""
        for f in (junit_file, md_file):
            if f is not None:
                guard(lambda: check_writable(f))
        path = catalog_path(catalog)
        snap = guard(lambda: snapshot(results, seed=seed, n_boot=n_boot))
        res = guard(lambda: gate_results(results, baseline, path, seed=seed, n_boot=n_boot, run=snap,
                                         min_effect=min_effect, min_h50_drop=min_h50_drop,
                                         min_cost_rise=min_cost_rise, alpha=alpha))
        if junit_file is not None:
            guard(lambda: atomic_write(junit_file, junit(res)))
        if md_file is not None:
            guard(lambda: atomic_write(md_file, markdown(res)))
        if record_run:
            guard(lambda: record(path, snap))
        if as_json:
            print(json.dumps(res, indent=2, default=str))
        else:
            sys.stdout.write(gate_table(res, **style()))
        if res["regressed"]:
            raise typer.Exit(1)

    def report(
        results: Path = typer.Argument(..., parser=_path, metavar="RESULTS", help="a results directory"),
        out: Path = typer.Option(Path("report.html"), "--out", "-o", parser=_path, help="the HTML file to write"),
        baseline: Optional[str] = typer.Option(None, "--baseline", "-b", help="also show the gate's verdicts "
                                               "against this baseline (a name in the catalog, or a results directory)"),
        catalog: Optional[Path] = typer.Option(None, "--catalog", parser=_path, help=CATALOG_HELP + "; given, "
                                               "the report shows this sweep's history"),
        trials: int = typer.Option(40, "--trials", min=0, max=1000, help="failed trials in the trial explorer"),
        seed: int = seed_opt, n_boot: int = boot_opt,
    ) -> None:
        """Write one self-contained HTML file (no network; opens from disk): decay curves, pass^k, fault
        effects, containment and error flow, the gate and history when given, and a trial explorer."""
        guard(lambda: check_writable(out))
        html = guard(lambda: build_report(results, baseline=baseline, catalog=catalog, seed=seed, n_boot=n_boot,
                                          trials=trials, progress=lambda m: err.print(f"report: {m}…",
                                                                                     highlight=False, markup=False)))
        guard(lambda: atomic_write(out, html))
        err.print(f"wrote {out} ({len(html.encode()) / 1024:.0f} KiB)", highlight=False, markup=False)

    return {"gate": gate, "report": report}, {"baseline": baseline_app, "history": history_app}
