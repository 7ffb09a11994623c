"""`attrition report`: one self-contained HTML file. Charts are inline SVG (svg.py), data for
the trial explorer is inline JSON, the one script is inline and allowed by its hash in a
Content-Security-Policy that forbids every network request, so the file opens from disk,
anywhere, and cannot reach out. Every string from scenarios, results or events is escaped:
in markup by svg.t, in the JSON block by _json (which also keeps `</script>` out)."""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from .gate import cell_message
from .svg import decay_chart, flow_chart, interval_chart, lines_chart, t
from .terminal import event_line

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#111827;background:#f9fafb}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.meta{color:#4b5563}.grid2{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px}
figcaption{font-size:12px;color:#4b5563;max-width:560px}
svg.chart{max-width:100%;height:auto;font-size:11px}svg text{fill:#374151}
.plot{fill:#fff;stroke:#d1d5db}.grid{stroke:#f3f4f6}.tick{stroke:#9ca3af}.zero{stroke:#6b7280;stroke-dasharray:3 3}
.band{opacity:.12}.err{stroke-width:1.5}.fit{fill:none;stroke-width:2}.axis{font-size:12px;fill:#111827}
.flow{fill:none;stroke:#f87171;opacity:.45}.node{fill:#dbeafe;stroke:#60a5fa}.root{fill:#fee2e2;stroke:#f87171}
.sink{fill:#e5e7eb;stroke:#6b7280}
table{border-collapse:collapse;background:#fff;font-size:13px}td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6}.regressed{color:#b91c1c;font-weight:600}.improved{color:#047857}.nodata{color:#6b7280}
#trace{background:#111827;color:#e5e7eb;font:12px/1.4 ui-monospace,Menlo,monospace;padding:8px 8px 8px 48px;
max-height:480px;overflow:auto;white-space:pre-wrap;border-radius:6px;margin:8px 0}
select{font-size:13px;max-width:100%}
"""

JS = """
(function(){
  var data = JSON.parse(document.getElementById('trials-data').textContent);
  var pick = document.getElementById('trial-pick'), info = document.getElementById('trial-info');
  var trace = document.getElementById('trace');
  data.forEach(function(tr, i){
    var o = document.createElement('option');
    o.value = String(i);
    o.textContent = tr.cell + ' | ' + tr.scenario + ' | ' + (tr.cause || tr.outcome) + ' | ' + tr.id;
    pick.appendChild(o);
  });
  function show(i){
    var tr = data[i];
    while (trace.firstChild) trace.removeChild(trace.firstChild);
    if (!tr) { info.textContent = 'no failed trial to show'; return; }
    info.textContent = tr.id + ': ' + tr.outcome + (tr.cause ? ' (' + tr.cause + ')' : '') + ', ' +
      tr.steps + ' steps, ' + tr.events + ' events' + (tr.cut ? ' (middle ' + tr.cut + ' not shown)' : '');
    tr.lines.forEach(function(line){
      var li = document.createElement('li');
      li.textContent = line;
      trace.appendChild(li);
    });
    document.body.setAttribute('data-shown-trial', tr.id);
  }
  pick.addEventListener('change', function(){ show(Number(pick.value)); });
  show(0);
})();
"""


def _json(x: Any) -> str:
    """JSON safe inside <script type="application/json">: no `<`, `>` or `&` left to end the block."""
    s = json.dumps(x, separators=(",", ":"), default=str, allow_nan=False)
    return (s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _name(c: dict, keys: tuple[str, ...]) -> str:
    """A cell's name from the keys it has (an analysis leaves out keys that do not vary)."""
    return " / ".join(str(c[k]) for k in keys if c.get(k) is not None) or "all trials"


def _setting(f: str) -> str:
    return "all trials" if f == "-" else f"fault setting {f}"


def _faults_of(cells: list[dict]) -> list[str]:
    """Fault settings, the one without faults first."""
    return sorted({str(c.get("fault", "-")) for c in cells}, key=lambda f: (f != "none", f))


def _decay_section(a: dict) -> str:
    cells = a.get("cells") or [{**a, "agent": "all"}]
    faults = _faults_of(cells)
    figs = []
    for f in faults:
        series = []
        for c in cells:
            if str(c.get("fault", "-")) != f or not c.get("by_length"):
                continue
            fit = c.get("logistic") or {}
            series.append({"name": _name(c, ("agent", "profile")), "points": c["by_length"],
                           "fit": (fit["beta0"], fit["beta1"]) if fit.get("beta0") is not None else None})
        if series:
            figs.append(_figure(decay_chart(series, f"success vs length, {_setting(f)}"),
                                f"{_setting(f).capitalize()}: success by task length (points with 95% Wilson intervals, "
                                "joined in a band where n >= 20) and the fitted logistic curve per cell; n per point "
                                "in each point's tooltip."))
    return "".join(figs) or "<p>No lengths to plot.</p>"


def _passk_section(a: dict) -> str:
    cells = a.get("cells") or [{**a, "agent": "all"}]
    figs = []
    for f in _faults_of(cells):
        series, notes = [], []
        for c in cells:
            if str(c.get("fault", "-")) != f or not c.get("pass_hat_k"):
                continue
            name = _name(c, ("agent", "profile"))
            series.append({"name": name, "points": [(int(k), v, None, None) for k, v in
                                                    sorted(c["pass_hat_k"].items(), key=lambda kv: int(kv[0]))]})
            top = c.get("pass_hat_k_top")
            if top:
                notes.append(f"{name}: pass^{top['k']} {top['estimate']:.2f} ({top['ci_low']:.2f}–{top['ci_high']:.2f}, "
                             f"{top['n_tasks']} tasks)")
        if series:
            figs.append(_figure(lines_chart("passk", series, f"pass^k, {_setting(f)}", "k (repeats of a task)", "pass^k"),
                                f"{_setting(f).capitalize()}: probability that all k repeats of a task succeed. "
                                + ", ".join(notes)))
    return "".join(figs) or "<p>No task was repeated: pass^k needs replicates.</p>"


def _scenario_section(by_scenario: list[dict]) -> str:
    if len(by_scenario) < 2:
        return ""
    rows = [{"label": r["scenario"], "estimate": r["success_rate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
             "n": r["n"]} for r in by_scenario]
    return _figure(interval_chart("scenarios", rows, "success per scenario", "success (95% Wilson interval)",
                                  fmt="rate"), "Success per scenario, over every design, profile and fault setting.")


def _faults_section(a: dict) -> str:
    rows = []
    for g in a.get("fault_effects") or []:
        for e in g["effects"]:
            d = e.get("diff_from_baseline")
            if d:
                rows.append({"label": f"{g['agent']} / {g['profile']}: {e['fault']}", "estimate": d["estimate"],
                             "ci_low": d["ci_low"], "ci_high": d["ci_high"], "n": e["n"]})
    if not rows:
        return "<p>One fault setting only: no effect to show.</p>"
    return _figure(interval_chart("faults", rows, "fault effects", "change in success vs no faults (paired, 95% CI)"),
                   "Each fault setting's effect on success against the setting without faults, paired on the same "
                   "tasks and replicates; 95% bootstrap intervals over tasks.")


def _propagation_section(p: dict | None, graph: dict | None) -> str:
    if not p:
        return "<p>No events to trace.</p>"
    rows = [{"label": n, "estimate": v["containment_rate"], "ci_low": v["ci_low"], "ci_high": v["ci_high"],
             "n": v["entered"] + v["originated"]} for n, v in sorted(p.get("nodes", {}).items())
            if v.get("entered", 0) + v.get("originated", 0) > 0]
    out = ""
    if rows:
        out += _figure(interval_chart("containment", rows, "containment per node", "share of errors contained "
                                      "(95% Wilson interval)", fmt="rate"),
                       "Per node of the agent graph: of the errors that started in or entered it, the share it "
                       "stopped before the final state.")
    out += _figure(flow_chart(graph or {}, "error flow"),
                   f"Where errors start (red), the nodes they pass and where they end, over {p['n_trials']} trials "
                   f"({p['failures']} failed; silent failures {100 * p['silent_failure_rate']:.1f}%, 95% CI "
                   f"{100 * p['ci_low']:.1f}–{100 * p['ci_high']:.1f}). Band width is the count of errors.")
    return out


def _gate_section(g: dict | None) -> str:
    if not g:
        return ""
    n = g["counts"]
    rows = "".join(
        f'<tr><td>{t(c["cell"])}</td><td class="{t(c["verdict"].replace("not enough data", "nodata"))}">'
        f'{t(c["verdict"])}</td><td>{t(cell_message(c))}</td></tr>' for c in g["cells"])
    drops = [{"label": c["cell"], "estimate": -c["success"]["drop"], "ci_low": -c["success"]["ci_high"],
              "ci_high": -c["success"]["ci_low"], "n": c["n_run"]} for c in g["cells"] if c.get("success")]
    chart = _figure(interval_chart("gate", drops, "change against the baseline", "run minus baseline, success (95% CI)"),
                    f"Change in success per cell against baseline {t(g['baseline']['name'])}; a regression needs a "
                    f"drop of at least {100 * g['min_effect']:.0f} points, significant after Holm's correction.") if drops else ""
    return (f"<h2>Gate against baseline {t(g['baseline']['name'])}</h2><p class=\"meta\">"
            f"{n['regressed']} regressed, {n['improved']} improved, {n['unchanged']} unchanged, "
            f"{n['not enough data']} without enough data; one-sided tests at {g['alpha']:g}, Holm over "
            f"{g['tests_per_family']} cells.</p><div class=\"grid2\">{chart}</div>"
            f"<table><tr><th>cell</th><th>verdict</th><th>figures</th></tr>{rows}</table>")


def _history_section(h: dict | None) -> str:
    if not h or len(h.get("runs", [])) < 2:
        return ""
    idx = {r["run"]: i + 1 for i, r in enumerate(h["runs"])}
    series = [{"name": cell, "points": [(idx[x["run"]], x["success_rate"], x["ci_low"], x["ci_high"]) for x in xs]}
              for cell, xs in h["cells"].items()]
    runs = "; ".join(f"{i}: {r['created']} ({r['code_version']})" for r, i in ((r, idx[r["run"]]) for r in h["runs"]))
    return (f"<h2>History of {t(h['sweep'])}</h2><div class=\"grid2\">" + _figure(
        lines_chart("history", series, "success over recorded runs", "recorded run", "success"),
        "Each cell's success per recorded run, with 95% Wilson intervals. Runs: " + t(runs)) + "</div>")


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{t(caption)}</figcaption></figure>"


def explorer_lines(events: list[dict], max_events: int = 160) -> tuple[list[str], int]:
    """A trial's events as lines, the first two thirds and the last third of max_events when
    there are more; returns (lines, how many were left out)."""
    if len(events) <= max_events:
        return [event_line(e) for e in events], 0
    head = max_events * 2 // 3
    return [event_line(e) for e in events[:head] + events[head - max_events:]], len(events) - max_events


def render(a: dict, *, title: str, meta: str, trials: list[dict], propagation: dict | None = None,
           graph: dict | None = None, gate: dict | None = None, history: dict | None = None,
           by_scenario: list[dict] = ()) -> str:
    script_hash = base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; "
           "connect-src 'none'; form-action 'none'; base-uri 'none'")
    head = (f"<p class=\"meta\">{t(meta)}</p><p>Success overall: <b>{100 * a['success_rate']:.1f}%</b> (95% CI "
            f"{100 * a['ci_low']:.1f}–{100 * a['ci_high']:.1f}, n={a['n_trials']} trials over {a['n_tasks']} tasks"
            f"{', ' + str(a['error_trials_excluded']) + ' harness errors left out' if a.get('error_trials_excluded') else ''})."
            "</p>")
    return "".join([
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{t(csp)}\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>{t(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{t(title)}</h1>", head, _gate_section(gate), _history_section(history),
        "<h2>Success against task length</h2><div class=\"grid2\">", _decay_section(a), "</div>",
        "<h2>pass^k</h2><div class=\"grid2\">", _passk_section(a), "</div>",
        "<h2>Fault effects and scenarios</h2><div class=\"grid2\">", _faults_section(a), _scenario_section(by_scenario),
        "</div>",
        "<h2>Containment and error flow</h2><div class=\"grid2\">", _propagation_section(propagation, graph), "</div>",
        f"<h2>Trial explorer</h2><p class=\"meta\">{len(trials)} failed trials, spread over the cells. Pick one to read "
        "its events (replay any trial in full with <code>attrition replay ID</code>).</p>",
        "<label>trial <select id=\"trial-pick\"></select></label><p id=\"trial-info\"></p><ol id=\"trace\"></ol>",
        f"<script type=\"application/json\" id=\"trials-data\">{_json(trials)}</script>",
        f"<script>{JS}</script></main></body></html>\n"])
