"""A calibration, written out: the profile file with its fit notes, and the tables a user reads."""
from __future__ import annotations

import io

import numpy as np
from rich.console import Console
from rich.table import Table

from ..profile_refs import resolve_profile


def profile_yaml(c, name: str) -> str:
    """The calibrated profile as a profile file (profile_refs.py reads it back)."""
    import yaml
    base = resolve_profile(c.profile)
    doc: dict = {"base": base.base, "name": name}
    doc.update({k: v for k, v in base.params.items() if k != "name"})
    doc.update({k: _round(c.values[k]) for k in c.free})
    doc["fit"] = {
        "source": c.target.source, "tasks": c.target.tasks, "trials": c.target.trials,
        "fitted": {k: {"value": _round(c.values[k]), "ci95": [_round(x) for x in c.intervals[k]],
                       **({"ci95_cut": True} if k in c.cut else {})} for k in c.free},
        "settled": c.settled,
        "left_at_base": {k: why for k, why in c.unidentified.items()},
        "settings": c.settings,
        "rounds": c.rounds,
        "goodness_of_fit": c.fit_table,
    }
    return yaml.safe_dump(_plain(doc), sort_keys=False, width=100)


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float):
        return _round(x)
    if isinstance(x, np.generic):
        return _plain(x.item())
    return x


def _iv(ci, fmt: str = ".3f") -> str:
    return f"({ci[0]:{fmt}}–{ci[1]:{fmt}})" if ci else ""


def tables(c, path: str | None, *, color: bool = False, width: int | None = None) -> str:
    """Fitted values with their intervals, what was left at the base, and target vs simulated."""
    con = Console(file=io.StringIO(), width=width, force_terminal=color, soft_wrap=True)
    t = c.target
    con.print(f"calibrated on {t.source}: {t.tasks} tasks, {t.trials} trials; base profile {c.profile}; "
              f"{len(c.rounds)} round(s) of simulation", highlight=False, markup=False)
    tab = Table(title="fitted parameters (95% bootstrap interval over tasks)", title_justify="left")
    for col in ("parameter", "value", "interval", "base"):
        tab.add_column(col)
    start = c.rounds[0]["simulated_at"] if c.rounds else {}
    for k in c.free:
        tab.add_row(k, f"{c.values[k]:.4g}", _iv(c.intervals.get(k), ".4g"), f"{start.get(k, 0):.4g}")
    for k, why in c.unidentified.items():
        tab.add_row(k, f"{c.values[k]:.4g}", "not fitted: " + why, f"{start.get(k, 0):.4g}")
    con.print(tab)
    if not c.settled:
        con.print(f"note: the estimate was still moving after {len(c.rounds)} round(s); run again with more "
                  "--rounds, or start from this file with --profile", highlight=False, markup=False)
    if c.cut:
        con.print(f"note: the interval of {', '.join(c.cut)} reaches as far as re-scoring can from the last "
                  "simulation and is cut there; run more --rounds from this file", highlight=False, markup=False)
    tab = Table(title=f"pass^k: table vs simulated at the fitted values (n = {t.tasks} tasks; "
                      f"{c.fit_table['pass_hat_k'][0]['n_simulated_tasks'] if c.fit_table['pass_hat_k'] else 0} "
                      "simulated)", title_justify="left")
    for col in ("k", "table", "simulated", "difference"):
        tab.add_column(col)
    for r in c.fit_table["pass_hat_k"]:
        tab.add_row(str(r["k"]), f"{r['target']:.3f} {_iv(r['target_ci'])}",
                    f"{r['simulated']:.3f} {_iv(r['simulated_ci'])}", f"{r['simulated'] - r['target']:+.3f}")
    con.print(tab)
    if len(c.fit_table["cells"]) > 1 or t.has_length or t.has_context:
        tab = Table(title="success by cell", title_justify="left")
        for col in ("length", "context tokens", "n trials", "table", "simulated"):
            tab.add_column(col)
        for r in c.fit_table["cells"]:
            tab.add_row(str(r["length"] if r["length"] is not None else c.settings.get("length", "")),
                        "" if r["context_tokens"] is None else f"{r['context_tokens']:,.0f}", str(r["n_trials"]),
                        f"{r['target']:.3f} {_iv(r['target_ci'])}", f"{r['simulated']:.3f} {_iv(r['simulated_ci'])}")
        con.print(tab)
    if path:
        con.print(f"profile written to {path} (use it with --profile {path})", highlight=False, markup=False)
    return con.file.getvalue()
