"""Charts as inline SVG, drawn here rather than by a script library: a report then opens from
disk with no network, renders with scripts off, stays small, and every label is escaped
once, in `t()`. Each function returns one <svg> with data-chart set, for the browser test."""
from __future__ import annotations

import math
from html import escape
from typing import Iterable, Sequence

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d",
           "#9333ea", "#ea580c", "#0d9488", "#4f46e5")
W, H, L, R, T, B = 560, 300, 52, 150, 16, 40  # size and margins (right margin holds the legend)
BAND_MIN_N = 20


def t(s: object) -> str:
    """Text for markup: every string from scenarios, results or events passes through here."""
    return escape(str(s), quote=True)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _f(x: float) -> str:
    return f"{x:.1f}"


class Axes:
    """A plot area mapping data to pixels; x may be log2 (lengths, k)."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], *, logx: bool = False, y0: float | None = None,
                 y1: float | None = None):
        self.logx = logx
        fx = [self._x(v) for v in xs if v is not None and (v > 0 or not logx)] or [0.0, 1.0]
        self.x0, self.x1 = min(fx), max(fx)
        if self.x1 == self.x0:
            self.x0, self.x1 = self.x0 - 1, self.x1 + 1
        ys = [v for v in ys if v is not None and math.isfinite(v)] or [0.0, 1.0]
        self.y0 = min(ys) if y0 is None else y0
        self.y1 = max(ys) if y1 is None else y1
        if self.y1 == self.y0:
            self.y1 = self.y0 + 1

    def _x(self, v: float) -> float:
        return math.log2(v) if self.logx else v

    def px(self, v: float) -> float:
        return L + (self._x(v) - self.x0) / (self.x1 - self.x0) * (W - L - R)

    def py(self, v: float) -> float:
        v = min(max(v, self.y0), self.y1)
        return H - B - (v - self.y0) / (self.y1 - self.y0) * (H - T - B)

    def frame(self, xlabel: str, ylabel: str, xticks: Iterable[float], yticks: Iterable[float], yfmt) -> str:
        out = [f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" class="plot"/>']
        for v in xticks:
            if not L - 0.5 <= self.px(v) <= W - R + 0.5:
                continue
            x = self.px(v)
            out.append(f'<line x1="{_f(x)}" y1="{H - B}" x2="{_f(x)}" y2="{H - B + 4}" class="tick"/>'
                       f'<text x="{_f(x)}" y="{H - B + 16}" text-anchor="middle">{t(f"{v:g}")}</text>')
        for v in yticks:
            y = self.py(v)
            out.append(f'<line x1="{L}" y1="{_f(y)}" x2="{W - R}" y2="{_f(y)}" class="grid"/>'
                       f'<text x="{L - 6}" y="{_f(y + 4)}" text-anchor="end">{t(yfmt(v))}</text>')
        out.append(f'<text x="{(L + W - R) / 2}" y="{H - 6}" text-anchor="middle" class="axis">{t(xlabel)}</text>'
                   f'<text transform="translate(12 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle" '
                   f'class="axis">{t(ylabel)}</text>')
        return "".join(out)


def _svg(kind: str, title: str, body: str, height: int = H) -> str:
    return (f'<svg class="chart" data-chart="{t(kind)}" viewBox="0 0 {W} {height}" width="{W}" height="{height}" '
            f'role="img" aria-label="{t(title)}"><title>{t(title)}</title>{body}</svg>')


def legend(names: Sequence[str]) -> str:
    out = []
    for i, n in enumerate(names[:14]):
        y = T + 6 + 16 * i
        label = n if len(n) <= 24 else n[:23] + "…"
        out.append(f'<rect x="{W - R + 10}" y="{y - 8}" width="10" height="10" fill="{colour(i)}"/>'
                   f'<text x="{W - R + 24}" y="{y + 1}">{t(label)}<title>{t(n)}</title></text>')
    if len(names) > 14:
        out.append(f'<text x="{W - R + 10}" y="{T + 6 + 16 * 14}">… {len(names) - 14} more</text>')
    return "".join(out)


def pow2_ticks(lo: float, hi: float) -> list[float]:
    k0, k1 = math.floor(math.log2(max(lo, 1e-9))), math.ceil(math.log2(max(hi, 1e-9)))
    step = max(1, (k1 - k0) // 8)
    return [2.0 ** k for k in range(k0, k1 + 1, step)]


def decay_chart(series: list[dict], title: str) -> str:
    """Success against task length: points with 95% interval bars and a band, and each
    cell's fitted logistic curve (success = 1 / (1 + exp(-(b0 + b1 log2 L)))) as a line.
    series: [{name, points: [{length, success_rate, ci_low, ci_high, n}], fit: (b0, b1) | None}]."""
    xs = [p["length"] for s in series for p in s["points"]]
    ax = Axes(xs, [0, 1], logx=True, y0=0, y1=1)
    out = [ax.frame("task length (steps, log scale)", "success", pow2_ticks(min(xs, default=1), max(xs, default=2)),
                    [0, 0.25, 0.5, 0.75, 1], lambda v: f"{100 * v:.0f}%")]
    for i, s in enumerate(series):
        c, pts = colour(i), sorted(s["points"], key=lambda p: p["length"])
        # the band joins well-measured lengths only: a few trials at an odd length (a shipped
        # scenario's) would make it spike; they keep their own interval bar
        solid = [p for p in pts if p["n"] >= BAND_MIN_N]
        if len(solid) > 1:
            band = ([f"{_f(ax.px(p['length']))},{_f(ax.py(p['ci_high']))}" for p in solid]
                    + [f"{_f(ax.px(p['length']))},{_f(ax.py(p['ci_low']))}" for p in reversed(solid)])
            out.append(f'<polygon points="{" ".join(band)}" fill="{c}" class="band"/>')
        for p in pts:
            x = ax.px(p["length"])
            out.append(f'<line x1="{_f(x)}" y1="{_f(ax.py(p["ci_low"]))}" x2="{_f(x)}" y2="{_f(ax.py(p["ci_high"]))}" '
                       f'stroke="{c}" class="err"/><circle cx="{_f(x)}" cy="{_f(ax.py(p["success_rate"]))}" r="3" '
                       f'fill="{c}" class="mark"><title>{t(s["name"])}: length {p["length"]}, '
                       f'{100 * p["success_rate"]:.1f}% ({100 * p["ci_low"]:.0f}–{100 * p["ci_high"]:.0f}), '
                       f'n={p["n"]}</title></circle>')
        if s.get("fit") and pts:
            b0, b1 = s["fit"]
            lo, hi = math.log2(pts[0]["length"]), math.log2(pts[-1]["length"])
            line = []
            for j in range(41):
                lx = lo + (hi - lo) * j / 40
                z = max(-50.0, min(50.0, b0 + b1 * lx))
                line.append(f"{_f(ax.px(2 ** lx))},{_f(ax.py(1 / (1 + math.exp(-z))))}")
            out.append(f'<polyline points="{" ".join(line)}" stroke="{c}" class="fit"/>')
    return _svg("decay", title, "".join(out) + legend([s["name"] for s in series]))


def lines_chart(kind: str, series: list[dict], title: str, xlabel: str, ylabel: str, *, logx: bool = False,
                percent: bool = True) -> str:
    """Plain lines with points: series [{name, points: [(x, y, lo | None, hi | None)]}]."""
    xs = [p[0] for s in series for p in s["points"]]
    ys = [v for s in series for p in s["points"] for v in p[1:] if v is not None]
    ax = Axes(xs, ys, logx=logx, y0=0 if percent else None, y1=1 if percent else None)
    xt = pow2_ticks(min(xs, default=1), max(xs, default=2)) if logx else sorted(set(xs))[:12]
    yt = [0, 0.25, 0.5, 0.75, 1] if percent else _nice(ax.y0, ax.y1)
    out = [ax.frame(xlabel, ylabel, xt, yt, (lambda v: f"{100 * v:.0f}%") if percent else (lambda v: f"{v:g}"))]
    for i, s in enumerate(series):
        c = colour(i)
        pts = sorted(s["points"], key=lambda p: p[0])
        out.append(f'<polyline points="{" ".join(f"{_f(ax.px(p[0]))},{_f(ax.py(p[1]))}" for p in pts)}" '
                   f'stroke="{c}" class="fit"/>')
        for x, y, lo, hi in pts:
            if lo is not None and hi is not None:
                out.append(f'<line x1="{_f(ax.px(x))}" y1="{_f(ax.py(lo))}" x2="{_f(ax.px(x))}" y2="{_f(ax.py(hi))}" '
                           f'stroke="{c}" class="err"/>')
            out.append(f'<circle cx="{_f(ax.px(x))}" cy="{_f(ax.py(y))}" r="3" fill="{c}" class="mark">'
                       f'<title>{t(s["name"])}: {t(f"{x:g}")} → {t(f"{y:.3g}")}'
                       + (f" ({t(f'{lo:.3g}')}–{t(f'{hi:.3g}')})" if lo is not None and hi is not None else "")
                       + "</title></circle>")
    return _svg(kind, title, "".join(out) + legend([s["name"] for s in series]))


def _nice(lo: float, hi: float, most: int = 7) -> list[float]:
    """Round tick values from lo to hi: steps of 1, 2 or 5 times a power of ten, at most `most`."""
    span = max(hi - lo, 1e-12)
    base = 10 ** math.floor(math.log10(span / most))
    step = next(m * base for m in (1, 2, 5, 10) if span / (m * base) <= most)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 12) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def interval_chart(kind: str, rows: list[dict], title: str, xlabel: str, *, fmt: str = "pp") -> str:
    """Horizontal estimates with 95% intervals, one row each: [{label, estimate, ci_low, ci_high, n}];
    a zero line when the axis spans zero (differences). fmt: "pp" (a difference of rates), "rate" or "num"."""
    rows = [r for r in rows if r.get("estimate") is not None]
    h = T + B + 18 * max(1, len(rows))
    vals = [v for r in rows for v in (r["estimate"], r.get("ci_low"), r.get("ci_high")) if v is not None]
    lo, hi = min(vals + [0.0]), max(vals + [0.0])
    pad = (hi - lo) * 0.05 or 0.05
    lo, hi = (0.0, 1.0) if fmt == "rate" else (lo - pad, hi + pad)
    left, right = 230, W - 20

    def px(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    show = {"pp": lambda v: f"{100 * v:+.0f} pp", "rate": lambda v: f"{100 * v:.0f}%"}.get(fmt, lambda v: f"{v:.3g}")
    out = [f'<rect x="{left}" y="{T}" width="{right - left}" height="{h - T - B}" class="plot"/>']
    for v in _nice(lo, hi):
        out.append(f'<line x1="{_f(px(v))}" y1="{T}" x2="{_f(px(v))}" y2="{h - B}" class="grid"/>'
                   f'<text x="{_f(px(v))}" y="{h - B + 14}" text-anchor="middle">{t(show(v))}</text>')
    if lo < 0 < hi:
        out.append(f'<line x1="{_f(px(0))}" y1="{T}" x2="{_f(px(0))}" y2="{h - B}" class="zero"/>')
    for i, r in enumerate(rows):
        y = T + 12 + 18 * i
        c = colour(i)
        label = r["label"] if len(r["label"]) <= 36 else r["label"][:35] + "…"
        out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{t(label)}</text>')
        if r.get("ci_low") is not None and r.get("ci_high") is not None:
            out.append(f'<line x1="{_f(px(r["ci_low"]))}" y1="{y}" x2="{_f(px(r["ci_high"]))}" y2="{y}" stroke="{c}" '
                       f'class="err"/>')
        out.append(f'<circle cx="{_f(px(r["estimate"]))}" cy="{y}" r="4" fill="{c}" class="mark"><title>{t(r["label"])}: '
                   f'{t(show(r["estimate"]))}' + (f' ({t(show(r["ci_low"]))} to {t(show(r["ci_high"]))})'
                                                 if r.get("ci_low") is not None else "")
                   + (f', n={r["n"]}' if r.get("n") is not None else "") + "</title></circle>")
    out.append(f'<text x="{(left + right) / 2}" y="{h - 6}" text-anchor="middle" class="axis">{t(xlabel)}</text>')
    return _svg(kind, title, "".join(out), height=h)


def flow_chart(graph: dict, title: str) -> str:
    """The error flow: where errors start (model:* roots), which nodes they pass and where they
    end (contained, final_state), as layered boxes joined by bands as wide as their counts."""
    edges = [e for e in graph.get("edges", []) if e.get("weight", 0) > 0 and e["source"] != e["target"]]
    nodes = sorted({e["source"] for e in edges} | {e["target"] for e in edges})
    sinks = {"contained", "final_state"}
    layer: dict[str, int] = {n: 0 for n in nodes if not any(e["target"] == n for e in edges)}
    frontier = list(layer)
    while frontier:  # breadth-first from the roots: a node's layer is its shortest distance
        nxt = []
        for e in edges:
            if e["source"] in frontier and e["target"] not in layer:
                layer[e["target"]] = layer[e["source"]] + 1
                nxt.append(e["target"])
        frontier = nxt
    for n in nodes:
        layer.setdefault(n, 1)
    last = max([layer[n] for n in nodes if n not in sinks] + [0]) + 1
    for n in sinks & set(nodes):
        layer[n] = last
    cols: dict[int, list[str]] = {}
    for n in nodes:
        cols.setdefault(layer[n], []).append(n)
    rows = max((len(v) for v in cols.values()), default=1)
    h = max(120, 30 + 34 * rows)
    width = W
    xstep = (width - 140) / max(1, last)
    pos = {}
    for k, ns in cols.items():
        for j, n in enumerate(sorted(ns)):
            pos[n] = (20 + k * xstep, 20 + j * (h - 40) / max(1, len(ns)))
    top = max((e["weight"] for e in edges), default=1)
    out = []
    for e in edges:
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        sw = 1 + 11 * e["weight"] / top
        out.append(f'<path d="M{_f(x0 + 110)},{_f(y0 + 11)} C{_f((x0 + 110 + x1) / 2)},{_f(y0 + 11)} '
                   f'{_f((x0 + 110 + x1) / 2)},{_f(y1 + 11)} {_f(x1)},{_f(y1 + 11)}" stroke-width="{_f(sw)}" '
                   f'class="flow"><title>{t(e["source"])} → {t(e["target"])}: {e["weight"]}</title></path>')
    for n, (x, y) in pos.items():
        label = n if len(n) <= 17 else n[:16] + "…"
        cls = "sink" if n in sinks else "root" if n.startswith("model:") else "node"
        out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="110" height="22" rx="4" class="{cls}"/>'
                   f'<text x="{_f(x + 55)}" y="{_f(y + 15)}" text-anchor="middle">{t(label)}<title>{t(n)}</title></text>')
    if not edges:
        out.append(f'<text x="20" y="40">{t("no errors to trace")}</text>')
    return _svg("flow", title, "".join(out), height=h)
