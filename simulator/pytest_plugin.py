"""The pytest plugin (entry point pytest11): the `attrition` fixture runs a scenario against a
design inside an agent builder's own test suite and returns its summary:

    def test_refunds_hold_up(attrition):
        r = attrition.run("support_refund", design="react", profile="strong", trials=40)
        assert r.ci_low >= 0.8
        assert not r.regressed(attrition.baseline("main"))

Trials run on the virtual clock like any other run; results go to pytest's temporary
directory unless --attrition-results names one. Baselines come from the history catalog
(--attrition-catalog, $ATTRITION_CATALOG or results/history.duckdb) or from another Result.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Result:
    """One cell's summary: success with its Wilson 95% interval and n, H50 and cost per success
    with their bootstrap intervals, and the per-task counts the gate compares."""
    cell: str
    n: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    horizon_50: dict | None
    cost_per_success: dict | None
    results_dir: Path
    data: dict = field(repr=False)

    def gate(self, baseline: "Result | Baseline", **limits: float) -> dict[str, Any]:
        """This cell's verdict against a baseline cell (analysis.gate); limits: min_effect, alpha..."""
        from .analysis.gate import gate
        return gate({self.cell: _base_cell(self, baseline)}, {self.cell: self.data}, **limits)["cells"][0]

    def regressed(self, baseline: "Result | Baseline", **limits: float) -> bool:
        """True when success (or H50, or cost per success) got worse than the baseline's by more
        than the minimum effect (default 5 points), significantly at alpha (default 0.05)."""
        return self.gate(baseline, **limits)["verdict"] == "regressed"

    def __str__(self) -> str:
        return (f"{self.cell}: {100 * self.success_rate:.1f}% success (95% CI {100 * self.ci_low:.1f}–"
                f"{100 * self.ci_high:.1f}, n={self.n})")


class Attrition:
    """What the fixture hands a test: run() a cell, baseline() a saved cell."""

    def __init__(self, root: Path, catalog: Path | None):
        self.root, self.catalog, self._runs = root, catalog, 0

    def run(self, scenario: str, *, design: str = "react", profile: str = "strong", trials: int = 20,
            seed: int = 0, faults: list[str] | None = None, params: dict | None = None,
            design_params: dict | None = None, profile_params: dict | None = None, n_boot: int = 500,
            model: str | None = None, base_url: str | None = None, live=None) -> Result:
        """One cell's trials; `model` (PROVIDER:NAME or ROLE=PROVIDER:NAME,...) and `base_url` give
        roles a provider's model, `live` (live.LiveOptions) its cassettes and limits."""
        from .catalog import snapshot
        from .runs import run_cell
        self._runs += 1
        out = self.root / f"{self._runs:03d}-{Path(scenario).stem}-{design}-{profile}"
        run_cell(scenario, params, design, trials=trials, seed=seed, profile=profile, agent_params=design_params,
                 profile_params=profile_params, faults=list(faults or []), out=out, model=model,
                 base_url=base_url, live=live)
        snap = snapshot(out, seed=seed, n_boot=n_boot)
        if len(snap["cells"]) != 1:
            raise LookupError(f"{out}: expected one cell, found {len(snap['cells'])}")
        (name, c), = snap["cells"].items()
        return Result(cell=name, n=c["n_trials"], successes=c["successes"], success_rate=c["success_rate"],
                      ci_low=c["ci_low"], ci_high=c["ci_high"], horizon_50=c["horizon_50"],
                      cost_per_success=c["cost_per_success"], results_dir=out, data=c)

    def baseline(self, name: str) -> "Baseline":
        from .catalog import catalog_path, load_baseline
        return Baseline(load_baseline(catalog_path(self.catalog), name))


class Baseline:
    """A saved baseline; a Result regresses against the cell of the same name in it."""

    def __init__(self, snap: dict):
        self.snap = snap

    def cell(self, name: str) -> dict | None:
        return self.snap["cells"].get(name)


def _base_cell(result: Result, baseline: Any) -> dict:
    """The baseline's cell: another Result's, or a saved baseline's cell of the same name."""
    if isinstance(baseline, Result):
        return baseline.data
    if isinstance(baseline, Baseline):
        got = baseline.cell(result.cell)
        if got is None:
            raise LookupError(f"baseline {baseline.snap.get('baseline')!r} has no cell {result.cell!r}; it has "
                              f"{', '.join(sorted(baseline.snap['cells']))}")
        return got
    raise TypeError(f"a baseline is a Result or attrition.baseline(NAME), not {type(baseline).__name__}")


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("attrition")
    g.addoption("--attrition-results", default=None, help="keep the `attrition` fixture's results here")
    g.addoption("--attrition-catalog", default=None, help="history catalog for attrition.baseline(NAME)")


@pytest.fixture
def attrition(request: pytest.FixtureRequest, tmp_path: Path) -> Attrition:
    """Run scenarios against designs on the virtual clock; see simulator.pytest_plugin."""
    keep = request.config.getoption("--attrition-results")
    root = Path(keep) / request.node.name if keep else tmp_path
    catalog = request.config.getoption("--attrition-catalog")
    return Attrition(root, Path(catalog) if catalog else None)
