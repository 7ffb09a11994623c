"""The architect's pages: a scorecard per cell and a paired comparison of designs.
Plain data in (analyze_results, compare_results), text out; every figure with its interval."""
from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from .terminal import _console, _text, pct

KEYS = ("agent", "profile", "fault", "scenario")


def _g(v: float) -> str:
    """A number in two significant digits (whole above 10), for the narrow second line of a cell."""
    a = abs(v)
    # an extrapolated horizon can run to millions of steps: a power of ten says enough
    return f"{v:.0e}" if a >= 1e5 else f"{v:,.0f}" if a >= 10 else f"{v:.2g}"


def _two(d: dict | None, fmt, scale: float = 1.0, short=_g) -> str:
    """An estimate over its 95% interval, on two lines to keep wide tables narrow."""
    if not d or d.get("estimate") is None:
        return "-"
    lo, hi = d.get("ci_low"), d.get("ci_high")
    return fmt(d["estimate"]) + (f"\n{short(scale * lo)}–{short(scale * hi)}" if lo is not None and hi is not None else "")


def _rate(d: dict | None) -> str:
    if not d or not d.get("n"):
        return "-"
    return f"{100 * d['rate']:.0f}%\n{100 * d['ci_low']:.0f}–{100 * d['ci_high']:.0f}"


def _usd(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:.2f}" if abs(x) >= 0.1 else f"${x:.4f}"


def _signed_usd(x: float) -> str:
    return ("+" if x >= 0 else "−") + _usd(abs(x))


def _pp(x: float) -> str:
    return f"{100 * x:+.1f}"


def _cell_row(cell: dict, keys: list[str]) -> list[str]:
    success = {"estimate": cell["success_rate"], "ci_low": cell["ci_low"], "ci_high": cell["ci_high"]}
    pk = cell.get("pass_hat_k_top")
    cost = cell.get("cost") or {}
    lat = (cell.get("latency") or {}).get("session_s") or {}
    cal = cell.get("calibration") or {}
    inj = cell.get("injection_obedience")
    return [*(escape(str(cell.get(k))) for k in keys), str(cell["n_trials"]),
            _two(success, lambda v: f"{100 * v:.0f}%", 100),
            _two(pk, lambda v: f"{v:.2f} k={pk['k']}"),
            _two(cell.get("horizon_50"), lambda v: f"{v:.0f}"),
            _rate(cell.get("silent_failures")),
            _two(cost.get("cost_per_success"), _usd),
            _two(cost.get("model_per_task"), lambda v: _usd(1000 * v), 1000),
            _two(lat.get("p95"), lambda v: _g(v)),
            _two(cal.get("ece"), lambda v: f"{v:.3f}", short=lambda v: f"{v:.3f}".lstrip("0")),
            _rate(inj) + (f"\nn={inj['n']}" if inj else "")]


def scorecard(a: dict, title: str, *, color: bool = False, width: int | None = None) -> str:
    """One row per cell: success, pass^k, H50, silent failures, cost per success, model cost per
    task, p95 session time, calibration error of stated confidence, injection obedience."""
    cells = a.get("cells") or [dict(a, **(a.get("economics") or {}))]
    keys = [k for k in KEYS if k in cells[0]]
    t = Table(show_header=True, header_style="bold", title=f"scorecard: {escape(title)}", title_justify="left")
    for k in keys:
        t.add_column(k)
    for col in ("n", "success", "pass^k", "H50\nsteps", "silent\nfail", "$ per\nsuccess", "model $ per\n1k tasks",
                "p95\nsession s", "ECE", "injection\nobeyed"):
        t.add_column(col, justify="right")
    for cell in cells:
        t.add_row(*_cell_row(cell, keys))
    c = _console(color, width)
    c.print(t)
    c.print("Under each figure its 95% interval: Wilson for rates, a bootstrap over tasks for the rest. n: trials "
            "(for injections: injections read). $ per success: model tokens, reviews and failures' impact over "
            "successes; silent fail: wrong results delivered as right, and actions done twice. ECE: stated "
            "confidence against being right, over every decision.", highlight=False)
    for s in a.get("prompt_sensitivity") or []:
        _sensitivity(c, f"{s['agent']} / {s['profile']}", s)
    return _text(c)


def _sensitivity(c, who: str, s: dict) -> None:
    pss, flip = s["pss"], s["flip_rate"]
    ci = f" (95% CI {_g(pss['ci_low'])}–{_g(pss['ci_high'])})" if pss.get("ci_low") is not None else ""
    where = f" / {s['profile']}" if "profile" in s and str(s["profile"]) not in who else ""
    c.print(f"prompt sensitivity, {escape(str(who))}{escape(where)} over {', '.join(escape(str(v)) for v in s['variants'])}: "
            f"PSS {pss['estimate']:.3f}{ci}, {s['n_tasks']} tasks; outcome flips between wordings {pct(flip['rate'])} "
            f"(95% CI {pct(flip['ci_low'])}–{pct(flip['ci_high'])}, n={flip['n']} pairs)", highlight=False)


def _cmp_row(cell: dict, within: list[str]) -> list[str]:
    d = cell["discordant"]
    h50, cps, p95 = cell.get("h50"), cell.get("cost_per_success"), cell.get("p95_time_s")
    return [*(escape(str(cell.get(k, "all"))) for k in within), str(cell["n_pairs"]),
            f"{100 * cell['success_a']:.0f}% → {100 * cell['success_b']:.0f}%",
            _two(cell["diff"], _pp, 100), _two(cell.get("diff_unpaired"), _pp, 100),
            f"{d['a_only']} / {d['b_only']}",
            f"{cell['p_holm']:.2g}" + (" *" if cell.get("significant") else ""),
            _two(h50 and h50.get("diff"), lambda v: f"{v:+.0f}"),
            _two(cps and cps.get("diff"), _signed_usd),
            _two(p95 and p95.get("diff"), lambda v: f"{v:+,.1f}"),
            _two(cell.get("ece") and cell["ece"].get("diff"), lambda v: f"{v:+.3f}", short=lambda v: f"{v:.3f}".replace("0.", ".", 1))]


def comparison(res: dict, *, color: bool = False, width: int | None = None) -> str:
    """What `attrition compare` prints: for each pair of designs, B − A per cell, paired."""
    c = _console(color, width)
    designs = ", ".join(f"{escape(str(d['design']))} ({d['trials']} trials)" for d in res["designs"])
    c.print(f"[bold]designs[/] by {escape('+'.join(res['by']))}: {designs}", highlight=False)
    p = res["pairing"]
    if not p["complete"]:
        for u in p["unpaired"]:
            c.print(f"unpaired: {u['trials']} trial(s) of {escape(str(u['design']))} against "
                    f"{escape(str(u['against']))}: {escape(str(u['reason']))}", highlight=False)
    within = list(res["within"])
    for comp in res["comparisons"]:
        t = Table(show_header=True, header_style="bold", title_justify="left",
                  title=f"{escape(str(comp['b']))} − {escape(str(comp['a']))} (B − A; 95% intervals)")
        for k in within:
            t.add_column(k)
        for col in ("pairs", "success\nA → B", "Δ success\npp, paired", "Δ pp\nunpaired", "A only /\nB only",
                    "p (Holm)", "Δ H50\nsteps", "Δ $ per\nsuccess", "Δ p95\nsession s", "Δ ECE"):
            t.add_column(col, justify="right")
        for cell in comp["cells"]:
            t.add_row(*_cmp_row(cell, within))
        c.print(t)
    for d in res["designs"]:
        for sens in d.get("prompt_sensitivity") or []:
            _sensitivity(c, d["design"], sens)
    c.print("pp: percentage points. p: exact McNemar test on the discordant pairs, Holm-adjusted over every row "
            "shown; * below 0.05. Paired intervals resample tasks, then pairs within them.", highlight=False)
    return _text(c)
