"""`attrition calibrate`: a thin layer over calibrate.calibrate (kept apart to keep cli.py small;
cli.py hands it its error and output helpers, so this module does not import cli.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

import typer

from .cli_args import params as _params, path as _path
from .spec import MAX_SEED


def command(guard, fail, err, style):
    """The `calibrate` command, given cli.py's guard (bad input -> one message and exit 2),
    fail, stderr console and output style."""
    cli = SimpleNamespace(_guard=guard, _fail=fail, err=err, _style=style)

    def calibrate(
        tables: List[Path] = typer.Argument(..., parser=_path, metavar="TABLE...",
                                            help="results directories or tables (CSV, JSONL, JSON) of task, trial, "
                                                 "success or reward, and optionally length and context_tokens"),
        profile: str = typer.Option("strong", "--profile", help="the profile to start from and keep where the "
                                    "tables say nothing: a preset or a profile file"),
        scenario: str = typer.Option("chain", "--scenario", help="the template to simulate the tasks on (it must "
                                     "take `task`, and `length` / `context` when the tables have them)"),
        length: int = typer.Option(16, "--length", min=1, max=4096, help="task length to simulate when the tables "
                                   "give none"),
        tasks: int = typer.Option(200, "--tasks", min=10, max=100_000, help="simulated tasks per cell (at least as "
                                  "many as the table has)"),
        replicates: int = typer.Option(8, "--replicates", min=2, max=1000, help="simulated trials per task (at least "
                                       "twice the table's trials per task)"),
        rounds: int = typer.Option(4, "--rounds", min=1, max=20, help="most rounds of simulation; it stops earlier "
                                   "once the estimate settles"),
        n_boot: int = typer.Option(200, "--bootstrap", min=20, max=10_000, help="bootstrap replicates for the intervals"),
        seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="seed of the simulation and the bootstrap"),
        fit: Optional[str] = typer.Option(None, "--fit", help="comma-separated parameters to fit (default: every one "
                                          "the tables can inform): base_hazard, difficulty_sd, step_difficulty_sd, "
                                          "context_rot"),
        objective: str = typer.Option("pass_k", "--objective", help="pass_k: match the table's pass^1..k in each "
                                      "cell (least squares); likelihood: the table's per-task success counts"),
        where: Optional[List[str]] = typer.Option(None, "--where", help="keep only rows with KEY=VALUE (repeatable), "
                                                  "e.g. --where profile=weak"),
        agent: str = typer.Option("react", "--agent", help="the design the simulated tasks run through"),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, max=1024, help="worker processes (default: "
                                              "all cores)"),
        out_file: Path = typer.Option(Path("calibrated.yaml"), "--out", parser=_path, help="the profile file to write"),
        name: Optional[str] = typer.Option(None, "--name", help="the calibrated profile's name (default: the --out "
                                           "file's stem)"),
        as_json: bool = typer.Option(False, "--json", help="print the calibration as one JSON object"),
    ) -> None:
        """Fit the simulated model's hazard parameters to a table of outcomes, and write a profile file."""
        from .calibrate import calibrate as run
        from .files import check_writable
        from .profile_refs import load_profile_file
        from .report.calibration import profile_yaml, tables as render
        from .report.progress import progress

        fit_params = [f.strip() for f in fit.split(",") if f.strip()] if fit else None
        cli._guard(lambda: check_writable(out_file))
        state: dict = {}

        def on_round(rnd: int, total: int):
            if state.get("bar"):
                state["bar"].stop()
            cli.err.print(f"round {rnd}: simulating {total:,} trials", highlight=False, markup=False)
            state["bar"], tick = progress(total, cli.err)
            if state["bar"]:
                state["bar"].start()
            return tick

        try:
            c = cli._guard(lambda: run(tables, profile=profile, scenario=scenario, length=length, tasks=tasks,
                                       replicates=replicates, rounds=rounds, n_boot=n_boot, seed=seed,
                                       fit_params=fit_params, objective=objective, where=cli._guard(lambda: _params(where, "--where")),
                                       agent=agent, workers=workers, on_round=on_round))
        except KeyboardInterrupt:
            cli._fail("interrupted: nothing written", code=130)
        finally:
            if state.get("bar"):
                state["bar"].stop()
        text = profile_yaml(c, name or out_file.stem)
        out_file.write_text(text)
        cli._guard(lambda: load_profile_file(out_file))  # what it wrote reads back as a profile
        if as_json:
            print(json.dumps({"profile": str(out_file), "values": c.values, "intervals": c.intervals,
                              "fitted": c.free, "not_fitted": c.unidentified, "rounds": c.rounds,
                              "settled": c.settled, "intervals_cut": c.cut,
                              "goodness_of_fit": c.fit_table}, indent=2, default=float))
        else:
            sys.stdout.write(render(c, str(out_file), **cli._style()))

    return calibrate
