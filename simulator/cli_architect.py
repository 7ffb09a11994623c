"""`attrition compare` and `attrition scorecard`: thin layers over results.compare_results and
results.analyze_results (kept apart to keep cli.py small; cli.py hands them its error and
output helpers, so this module does not import cli.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .cli_args import MAX_BOOTSTRAP, path as _path
from .report.scorecard import comparison, scorecard
from .results import analyze_results, compare_results
from .spec import MAX_SEED


def commands(guard, style) -> dict:
    """The commands, given cli.py's guard (bad input -> one message and exit 2) and output style."""

    def compare(
        results: List[Path] = typer.Argument(..., parser=_path, metavar="RESULTS...",
                                             help="results directories: one sweep with several designs, or several "
                                                  "runs made with the same seed"),
        baseline: Optional[str] = typer.Option(None, "--baseline", "-b", help="compare every design with this one "
                                               "(default: every pair of designs)"),
        by: str = typer.Option("agent", "--by", help="what makes a design: agent, profile, fault, or several "
                               "joined by commas (agent,profile compares model-and-design combinations)"),
        seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="seed of the bootstrap"),
        n_boot: int = typer.Option(1000, "--bootstrap", min=50, max=MAX_BOOTSTRAP,
                                   help=f"bootstrap replicates, 50 to {MAX_BOOTSTRAP:,}"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Is design B better than A under the same faults, by how much, at what cost? Paired trial by trial."""
        keys = tuple(k.strip() for k in by.split(",") if k.strip())
        res = guard(lambda: compare_results(results, by=keys, baseline=baseline, seed=seed, n_boot=n_boot))
        if as_json:
            print(json.dumps(res, indent=2, default=str))
        else:
            sys.stdout.write(comparison(res, **style()))

    def scorecard_(
        results: Path = typer.Argument(..., parser=_path, metavar="RESULTS", help="a results directory"),
        seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="seed of the bootstrap"),
        n_boot: int = typer.Option(1000, "--bootstrap", min=50, max=MAX_BOOTSTRAP,
                                   help=f"bootstrap replicates, 50 to {MAX_BOOTSTRAP:,}"),
        as_json: bool = typer.Option(False, "--json", help="print the analysis (the same as analyze --json)"),
    ) -> None:
        """One page for a design review: per design, profile and fault setting (over all scenarios), success,
        pass^k, H50, silent failures, cost per success, p95 latency, calibration and injection obedience."""
        # one row per design, profile and fault setting, over every scenario they met
        a = guard(lambda: analyze_results(results, seed=seed, n_boot=n_boot, cell_keys=("agent", "profile", "fault")))
        if as_json:
            print(json.dumps(a, indent=2, default=str))
        else:
            sys.stdout.write(scorecard(a, str(results), **style()))

    return {"compare": compare, "scorecard": scorecard_}
