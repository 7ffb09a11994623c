"""Terminal rendering: plain data in, text out (rich tables, colour only when asked).

Every function renders into its own in-memory console, so the caller decides where the
text goes and the same text can be tested without a terminal. Strings that come from
data (names, ids, messages, SQL values) are escaped: rich would otherwise read `[...]`
in them as markup.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # annotations only: rendering needs no registry or replay machinery
    from ..registry import Entry
    from ..replay import Replay

TRIGGER_KEYS = ("Trigger keys for any fault: rate, at_call (1|3), at_turn, position (early|middle|late), "
                "pattern (single|persistent|intermittent|burst), burst, windows (100-400|900-950), "
                "mtbf_s, mttr_s, max_fires; target=tools|reads|writes|TOOL_NAME|model|model:ROLE.")


def _console(color: bool, width: int | None) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=color, soft_wrap=True)


def _text(c: Console) -> str:
    return c.file.getvalue()


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _dur(sec: float) -> str:
    if sec != sec:
        return "-"
    if sec < 120:
        return f"{sec:.1f} s"
    if sec < 7200:
        return f"{sec / 60:.1f} min"
    return f"{sec / 3600:.2f} h"


def _ci(d: dict | None, fmt="{:.0f}") -> str:
    if not d or d.get("estimate") is None:
        return "-"
    lo, hi = d.get("ci_low"), d.get("ci_high")
    ci = f" ({fmt.format(lo)}–{fmt.format(hi)})" if lo is not None and hi is not None else ""
    return fmt.format(d["estimate"]) + ci


def _summary_rows(s: dict) -> list[tuple[str, str]]:
    rows = [("success rate", f"{pct(s['success_rate'])}  (95% CI {pct(s['ci_low'])}–{pct(s['ci_high'])}, "
                             f"n={s['trials']})"),
            ("outcomes", ", ".join(f"{escape(str(k))} {v}" for k, v in s["outcomes"].items() if v))]
    if s["failure_modes"]:
        rows.append(("failure modes (by cause)",
                     ", ".join(f"{escape(str(k))} {v}" for k, v in s["failure_modes"].items())))
    if s.get("faults_fired"):
        rows.append(("faults fired", ", ".join(f"{escape(str(k))} ×{v['firings']} in {v['trials_hit']} trials"
                                               for k, v in s["faults_fired"].items())))
        if s["trials_with_unfired_faults"]:
            rows.append(("trials where a fault never fired", str(s["trials_with_unfired_faults"])))
    if s.get("clarifications") or s.get("guesses"):
        rows.append(("ambiguity", f"asked {s['clarifications']}, guessed {s['guesses']}"))
    if s.get("injections_obeyed"):
        rows.append(("injections obeyed", str(s["injections_obeyed"])))
    if s.get("reviews"):
        rows.append(("human review", f"{s['reviews']} reviews, {s['rejections']} actions rejected, "
                                     f"{_dur(s['review_s'] / s['trials'])} waiting per trial (n={s['trials']})"))
    lo, hi = s["mean_steps_ci"]
    rows.append(("mean steps", f"{s['mean_steps']:.1f}  (95% CI {lo:.1f}–{hi:.1f})"))
    if s.get("mean_tokens") is not None:
        lo, hi = s["mean_tokens_ci"]
        rows.append(("model tokens / trial", f"{s['mean_tokens']:,.0f}  (95% CI {lo:,.0f}–{hi:,.0f})"))
    if s.get("mean_model_usd") is not None:
        lo, hi = s["mean_model_usd_ci"]
        rows.append(("model $ / trial", f"${s['mean_model_usd']:.4f}  (95% CI ${lo:.4f}–${hi:.4f}, n={s['n_priced']})"))
    lo, hi = s["mean_sim_time_ci"]
    rows += [("virtual time / trial", f"{_dur(s['mean_sim_time_s'])}  (95% CI {_dur(lo)}–{_dur(hi)})"),
             ("virtual time, all", _dur(s["sim_time_s"])),
             ("wall time, all", f"{s['wall_time_s']:.2f} s")]
    return rows


def run_summary(s: dict, run_dir: Path | str, *, color: bool = False, width: int | None = None) -> str:
    """The table `attrition run` prints: one cell's success rate, outcomes, faults and times."""
    spec = s["spec"]
    title = f"{spec['scenario']['ref']} × {spec['agent']} × {(spec.get('tags') or {}).get('profile', spec['profile'])} (seed {spec['seed']})"
    t = Table(title=escape(title), show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for row in _summary_rows(s):
        t.add_row(*row)
    c = _console(color, width)
    c.print(t)
    c.print(f"results: {escape(str(run_dir))}", highlight=False)
    return _text(c)


def _cells_table(cells: list[dict]) -> Table:
    t = Table(show_header=True, header_style="bold", title="by cell (95% intervals)", title_justify="left")
    keys = [k for k in ("agent", "profile", "fault", "scenario") if k in cells[0]]
    for k in keys:
        t.add_column(k)
    for col in ("n", "success %", "H50 steps", "H80 steps", "per-step p", "H50 virtual time"):
        t.add_column(col, justify="right")
    for cell in cells:
        h50t = cell.get("horizon_50_time_s")
        t.add_row(*[escape(str(cell.get(k))) for k in keys], str(cell["n_trials"]),
                  f"{100 * cell['success_rate']:.0f} ({100 * cell['ci_low']:.0f}–{100 * cell['ci_high']:.0f})",
                  _ci(cell.get("horizon_50")), _ci(cell.get("horizon_80")),
                  _ci(cell.get("per_step_reliability"), "{:.3f}"),
                  (_dur(h50t["estimate"]) + f"\n({_dur(h50t['ci_low'])}–{_dur(h50t['ci_high'])})")
                  if h50t and h50t.get("ci_low") is not None else "-")
    return t


def analysis_tables(a: dict, title: str, *, color: bool = False, width: int | None = None) -> str:
    """What `attrition analyze` and `attrition sweep` print: success, pass^k, per-cell horizons, hazard law."""
    c = _console(color, width)
    c.print(f"[bold]{escape(title)}[/]: {a['n_trials']} trials over {a.get('n_tasks', '?')} tasks; success "
            f"{pct(a['success_rate'])} (95% CI {pct(a['ci_low'])}–{pct(a['ci_high'])}, n={a['n_trials']})"
            + (f"; {a['error_trials_excluded']} harness-error trials excluded" if a.get("error_trials_excluded") else ""))
    if a.get("pass_hat_k"):
        c.print("pass^k: " + "  ".join(f"k={k} {v:.3f}" for k, v in a["pass_hat_k"].items()), highlight=False)
    c.print(_cells_table(a.get("cells") or [dict(a)]))
    w = a.get("weibull") or {}
    hc = w.get("hazard_check") or {}
    if hc:
        c.print(f"hazard law (all trials): Weibull k = {w.get('k', float('nan')):.2f}; better fit: "
                f"{escape(str(hc.get('better_fit')))} (hazard {escape(str(hc.get('hazard_trend', '?')))}, "
                f"LR p = {hc.get('p_value', float('nan')):.3g})", highlight=False)
    return _text(c)


def _node_table(nodes: dict) -> Table:
    t = Table(show_header=True, header_style="bold", title="per graph node", title_justify="left")
    for col in ("node", "originated", "entered", "escaped", "contained %"):
        t.add_column(col, justify="left" if col == "node" else "right")
    for node, s in nodes.items():
        rate = s["containment_rate"]
        t.add_row(escape(str(node)), str(s["originated"]), str(s["entered"]), str(s["escaped"]),
                  "-" if rate is None else f"{100 * rate:.0f} ({100 * s['ci_low']:.0f}–{100 * s['ci_high']:.0f})")
    return t


def _root_cause_table(detail: dict) -> Table:
    t = Table(show_header=True, header_style="bold", title="per root cause", title_justify="left")
    for col in ("root cause", "n", "detected %", "contained %", "reached final", "mean depth", "mean blast radius",
                "steps to detection"):
        t.add_column(col, justify="left" if col == "root cause" else "right")
    for typ, d in detail.items():
        t.add_row(escape(str(typ)), str(d["count"]), f"{100 * d['detection_rate']:.0f}",
                  f"{100 * d['containment_rate']:.0f} ({100 * d['ci_low']:.0f}–{100 * d['ci_high']:.0f})",
                  str(d["reached_final_state"]), f"{d['mean_depth']:.2f}", f"{d['mean_blast_radius']:.2f}",
                  "-" if d["mean_steps_to_detection"] is None else f"{d['mean_steps_to_detection']:.1f}")
    return t


def propagation_tables(res: dict, *, color: bool = False, width: int | None = None) -> str:
    """What `attrition propagation` prints: silent failures, containment per node and per root cause,
    for all trials and then per design."""
    c = _console(color, width)
    for name, r in [("all trials", res)] + list((res.get("by_agent") or {}).items()):
        c.print(f"[bold]{escape(str(name))}[/]: {r['n_trials']} trials, silent failures "
                f"{pct(r['silent_failure_rate'])} (95% CI {pct(r['ci_low'])}–{pct(r['ci_high'])}, "
                f"n={r['n_trials']})" + (f"; {r['error_trials_excluded']} harness errors excluded"
                                         if r["error_trials_excluded"] else ""))
        h = r.get("handoffs") or {}
        if h.get("roots"):
            c.print(f"errors crossing between agents: {h['crossed']} of {h['roots']} root causes "
                    f"({pct(h['crossed_rate'])}, 95% CI {pct(h['ci_low'])}–{pct(h['ci_high'])}) in "
                    f"{h['multi_agent_trials']} trials whose model ran in more than one node", highlight=False)
        c.print(_node_table(r["nodes"]))
        c.print(_root_cause_table(r["root_cause_detail"]))
    c.print(escape(str(res["inference"])), highlight=False)
    return _text(c)


def _entry_table(kind: str, rows: Sequence[Entry]) -> Table:
    with_params = kind in ("template", "fault")
    # fault parameters carry long explanations: one per line reads better than a comma list
    sep = "\n" if kind == "fault" else ", "
    t = Table(title=f"{kind}s", title_justify="left", show_header=True, header_style="bold")
    t.add_column("name")
    t.add_column("what it is")
    if with_params:
        t.add_column("parameters")
    for e in rows:
        extra = [sep.join(f"{k}={v}" for k, v in e.params.items())] if with_params else []
        t.add_row(escape(e.name), escape(e.summary), *map(escape, extra))
    if not rows:
        t.add_row("(none yet)", "")
    return t


def entry_tables(by_kind: dict[str, Sequence[Entry]], problems: Iterable[str] = (), *,
                 color: bool = False, width: int | None = None) -> str:
    """What `attrition list` prints: one table per kind of registry entry (keys are kinds:
    "scenario", "fault", ...), then the plug-ins that failed to load, if any."""
    c = _console(color, width)
    for kind, rows in by_kind.items():
        c.print(_entry_table(kind, rows))
        if kind == "fault":
            c.print(TRIGGER_KEYS, highlight=False)
    problems = list(problems)
    if problems:
        c.print(f"[bold yellow]warning:[/] {len(problems)} plug-in problem(s):", highlight=False)
        for p in problems:
            c.print(f"  - {escape(str(p))}", highlight=False)
    return _text(c)


def query_table(cols: Sequence[str], rows: Iterable[Sequence], *, color: bool = False,
                width: int | None = None) -> str:
    """A SQL result as a table; every value shown as its str()."""
    t = Table(show_header=True, header_style="bold")
    for col in cols:
        t.add_column(escape(str(col)))
    for r in rows:
        t.add_row(*[escape(str(v)) for v in r])
    c = _console(color, width)
    c.print(t)
    return _text(c)


def event_line(e: dict) -> str:
    """One event of a trial trace as a line: time, sequence number, kind, then the gist."""
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


def event_trace(events: Iterable[dict], *, color: bool = False, width: int | None = None) -> str:
    """A trial's events, one line each, for `attrition replay`."""
    c = _console(color, width)
    for e in events:
        # event payloads are arbitrary data: never markup, never highlighted
        c.print(event_line(e), highlight=False, markup=False)
    return _text(c)


def replay_verdict(r: Replay) -> str:
    """Plain lines saying whether a replay matched its stored record, and if not, how."""
    fresh, lines = r.fresh, []
    if not r.same and r.shared > 1:
        lines.append(f"note: this trial shared its virtual environment with {r.shared - 1} other session(s); "
                     "replayed alone, shared limits and outages no longer interleave, so it can differ")
    mode = getattr(fresh, "failure_cause", None) or fresh.failure_mode  # by cause where known
    lines.append(f"trial {fresh.trial_id} from {r.run_dir}: {fresh.outcome}"
                 + (f" ({mode})" if mode else "")
                 + ("; replay matches the stored record" if r.same else "; replay DIFFERS from the stored record"))
    if not r.same and r.shared == 1:
        lines += [f"  {k}: stored {a!r} vs replay {b!r}" for k, a, b in r.differences()]
    return "\n".join(lines) + "\n"
