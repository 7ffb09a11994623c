"""The gate's verdicts as a CI system reads them: a terminal table, JUnit XML (one test case
per cell, the figures in the failure message) and Markdown for a pull-request comment.
The history of a sweep's cells as a table. Plain data in (nightly.gate_results,
catalog.history), text out."""
from __future__ import annotations

import time
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from rich.markup import escape
from rich.table import Table

from .scorecard import _g, _usd
from .terminal import _console, _text

MARK = {"regressed": "REGRESSED", "improved": "improved", "unchanged": "unchanged", "not enough data": "no data"}


def _success(c: dict) -> str:
    s = c.get("success")
    if not s:
        return "-"
    return (f"{100 * s['baseline']:.1f}% -> {100 * s['run']:.1f}%, drop {100 * s['drop']:+.1f} pp "
            f"(95% CI {100 * s['ci_low']:+.1f} to {100 * s['ci_high']:+.1f}; p {s['p_drop_holm']:.2g} Holm; "
            f"{s['tasks']} task families, by {s['unit']})")


def _ratio(t: dict | None, fmt) -> str:
    if not t:
        return "-"
    return (f"{fmt(t['baseline'])} -> {fmt(t['run'])} ({t['ratio']:.2f}x, 95% CI {t['ratio_ci'][0]:.2f}–"
            f"{t['ratio_ci'][1]:.2f}x)")


def cell_message(c: dict) -> str:
    """Every figure of a cell on one line: the failure message and the Markdown row say the same."""
    s = c.get("success")
    parts = [f"{c['verdict']}" + (f": {'; '.join(c['findings'])}" if c.get("findings") else ""),
             f"success {_success(c)}", f"H50 {_ratio(c.get('horizon_50'), lambda v: f'{v:,.0f} steps')}",
             f"cost/success {_ratio(c.get('cost_per_success'), _usd)}",
             f"n {c['n_baseline']} baseline / {c['n_run']} run trials"]
    if s:
        parts.append(f"smallest drop detectable at this size: {100 * s['detectable_drop']:.1f} pp")
    return "; ".join(parts)


def gate_table(res: dict, *, color: bool = False, width: int | None = None) -> str:
    c = _console(color, width)
    b, r = res["baseline"], res["run"]
    c.print(f"gate: {escape(str(r['results_dir']))} ({r['trials']} trials, seed {r['seed']}, code "
            f"{escape(str(r['code_version']))}) against baseline {escape(str(b['name']))} ({b['trials']} trials, "
            f"seed {b['seed']}, code {escape(str(b['code_version']))})", highlight=False)
    t = Table(title=f"one-sided tests at {res['alpha']:g}, Holm over {res['tests_per_family']} cells; minimum "
                    f"effects: success {100 * res['min_effect']:.0f} pp, H50 -{100 * res['min_h50_drop']:.0f}%, "
                    f"cost/success +{100 * res['min_cost_rise']:.0f}%")
    for col in ("cell", "verdict", "success (baseline -> run)", "drop, 95% CI", "p (Holm)", "detectable",
                "H50 ratio", "cost/success ratio"):
        t.add_column(col, overflow="fold")
    for cell in res["cells"]:
        s = cell.get("success")
        t.add_row(escape(cell["cell"]), MARK[cell["verdict"]] + ("" if s else f"\n{escape(cell.get('reason', ''))}"),
                  f"{100 * s['baseline']:.1f}% -> {100 * s['run']:.1f}%\nn {cell['n_baseline']}/{cell['n_run']}" if s else "-",
                  f"{100 * s['drop']:+.1f} pp\n{100 * s['ci_low']:+.1f} to {100 * s['ci_high']:+.1f}" if s else "-",
                  f"{s['p_drop_holm']:.2g}" if s else "-",
                  f"{100 * s['detectable_drop']:.1f} pp" if s else "-",
                  _ratio_short(cell.get("horizon_50")), _ratio_short(cell.get("cost_per_success")))
    c.print(t)
    n = res["counts"]
    c.print(f"{n['regressed']} regressed, {n['improved']} improved, {n['unchanged']} unchanged, "
            f"{n['not enough data']} without enough data", highlight=False)
    return _text(c)


def _ratio_short(t: dict | None) -> str:
    return f"{t['ratio']:.2f}x\n{t['ratio_ci'][0]:.2f}–{t['ratio_ci'][1]:.2f}" if t else "-"


def _ratio_inline(t: dict | None) -> str:
    return f"{t['ratio']:.2f}x ({t['ratio_ci'][0]:.2f}–{t['ratio_ci'][1]:.2f})" if t else "-"


def junit(res: dict) -> str:
    """JUnit XML: one testsuite, one testcase per cell; a regression is a failure, a cell
    without enough data is skipped (counted, never failed: it says nothing either way)."""
    cells = res["cells"]
    fails = sum(c["verdict"] == "regressed" for c in cells)
    skips = sum(c["verdict"] == "not enough data" for c in cells)
    suite = f"attrition gate: {res['run'].get('sweep')} vs {res['baseline']['name']}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<testsuites name={quoteattr(suite)} tests="{len(cells)}" failures="{fails}" errors="0" time="0">',
           f'  <testsuite name={quoteattr(suite)} tests="{len(cells)}" failures="{fails}" errors="0" '
           f'skipped="{skips}" time="0" timestamp="{stamp}">',
           "    <properties>"]
    for k, v in (("baseline", res["baseline"]["name"]), ("baseline_code_version", res["baseline"].get("code_version")),
                 ("run_code_version", res["run"].get("code_version")), ("alpha", res["alpha"]),
                 ("min_effect", res["min_effect"]), ("same_seed", res.get("same_seed"))):
        out.append(f"      <property name={quoteattr(k)} value={quoteattr(str(v))}/>")
    out.append("    </properties>")
    for c in cells:
        msg = cell_message(c)
        head = f'    <testcase classname={quoteattr("attrition." + str(res["run"].get("sweep")))} ' \
               f'name={quoteattr(c["cell"])} time="0"'
        if c["verdict"] == "regressed":
            out += [head + ">", f'      <failure type="regression" message={quoteattr(msg)}>{xml_escape(msg)}</failure>',
                    "    </testcase>"]
        elif c["verdict"] == "not enough data":
            out += [head + ">", f"      <skipped message={quoteattr(msg)}/>", "    </testcase>"]
        else:
            out += [head + ">", f"      <system-out>{xml_escape(msg)}</system-out>", "    </testcase>"]
    out += ["  </testsuite>", "</testsuites>", ""]
    return "\n".join(out)


def _md(s: object) -> str:
    """Text safe in a Markdown table cell: no pipes, no markup, no HTML."""
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("*", "\\*").replace("_", "\\_").replace("`", "\\`").replace("\n", " "))


def markdown(res: dict) -> str:
    """A summary fit for a pull-request comment: the verdict first, then one row per cell."""
    n, b, r = res["counts"], res["baseline"], res["run"]
    head = "❌ **regression**" if res["regressed"] else "✅ **no regression**"
    lines = [f"### attrition gate: {head}", "",
             f"{_md(r.get('sweep'))}: {r['trials']} trials (code {_md(r.get('code_version'))}, seed {r['seed']}) "
             f"against baseline `{_md(b['name'])}` ({b['trials']} trials, code {_md(b.get('code_version'))}). "
             f"{n['regressed']} regressed, {n['improved']} improved, {n['unchanged']} unchanged, "
             f"{n['not enough data']} without enough data. One-sided tests at {res['alpha']:g}, Holm-corrected over "
             f"{res['tests_per_family']} cells; a drop counts from {100 * res['min_effect']:.0f} points.", "",
             "| cell | verdict | success: baseline → run | drop (95% CI) | p (Holm) | detectable drop | H50 | cost/success |",
             "|---|---|---|---|---|---|---|---|"]
    order = {"regressed": 0, "not enough data": 1, "improved": 2, "unchanged": 3}
    for c in sorted(res["cells"], key=lambda c: (order[c["verdict"]], c["cell"])):
        s = c.get("success")
        lines.append("| " + " | ".join([
            _md(c["cell"]), ("**regressed**" if c["verdict"] == "regressed" else c["verdict"]),
            f"{100 * s['baseline']:.1f}% → {100 * s['run']:.1f}% (n {c['n_baseline']}/{c['n_run']})" if s else "-",
            f"{100 * s['drop']:+.1f} pp ({100 * s['ci_low']:+.1f} to {100 * s['ci_high']:+.1f})" if s else "-",
            f"{s['p_drop_holm']:.2g}" if s else "-", f"{100 * s['detectable_drop']:.1f} pp" if s else "-",
            _ratio_inline(c.get("horizon_50")), _ratio_inline(c.get("cost_per_success")),
        ]) + " |")
    return "\n".join(lines) + "\n"


def history_table(h: dict, *, color: bool = False, width: int | None = None) -> str:
    """Each cell's success, H50 and cost per success per recorded run, oldest first."""
    c = _console(color, width)
    runs = h["runs"]
    c.print(f"history of sweep {escape(h['sweep'])} in {escape(h['catalog'])}: {len(runs)} run(s)"
            + (f"; other sweeps: {escape(', '.join(s for s in h['sweeps'] if s != h['sweep']))}"
               if len(h["sweeps"]) > 1 else ""), highlight=False)
    t = Table()
    for col in ("cell", "run", "code", "seed", "n", "success, 95% CI", "H50, 95% CI", "cost/success, 95% CI"):
        t.add_column(col, overflow="fold")
    by_run = {r["run"]: r for r in runs}
    for cell, series in h["cells"].items():
        for i, x in enumerate(series):
            r = by_run[x["run"]]
            t.add_row(escape(cell) if i == 0 else "", escape(str(r["created"])) + (
                f"\nbaseline {escape(r['baseline'])}" if r.get("baseline") else ""), escape(str(r["code_version"])),
                str(r["seed"]), str(x["n_trials"]),
                f"{100 * x['success_rate']:.1f}% ({100 * x['ci_low']:.0f}–{100 * x['ci_high']:.0f})",
                _iv(x, "h50", "h50", _g), _iv(x, "cost_per_success", "cost", _usd))
    c.print(t)
    return _text(c)


def _iv(x: dict, est: str, prefix: str, fmt) -> str:
    if x.get(est) is None:
        return "-"
    lo, hi = x.get(f"{prefix}_low"), x.get(f"{prefix}_high")
    return fmt(x[est]) + (f" ({fmt(lo)}–{fmt(hi)})" if lo is not None and hi is not None else "")
