"""What a results directory says: a running summary of its records, and the analysis
(success, pass^k, decay with length, fault effects) per cell. Pure functions over
records and the rows made from them."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from .analysis import analyze, fault_effects, load_table, success_by_cell
from .analysis.compare import compare
from .analysis.passk import pass_hat_k_interval
from .analysis.economics import (confidence_calibration, cost_summary, injection_obedience, latency_summary,
                                 prompt_sensitivity, silent_failure_rate)
from .records import TrialRecord
from .stats import mean_ci, wilson
from .store import flatten, iter_records, results_dir

OUTCOMES = ("success", "failure", "error", "budget")


class Summary:
    """Running totals over records, so a sweep's summary never needs all records at once."""

    def __init__(self) -> None:
        self.n = self.succ = 0
        self.outcomes = {o: 0 for o in OUTCOMES}
        self.modes: dict[str, int] = {}   # by cause where known, else the first error in time
        self.first: dict[str, int] = {}   # the first error in time
        self.steps: list[int] = []  # one int per trial: small, and needed for the interval
        self.sims: list[float] = []
        self.tokens: list[int] = []      # model tokens (in + out) per trial: the simulated model's or a provider's usage
        self.model_usd: list[float] = []  # their price, for records that keep money
        self.sim = self.wall = 0.0
        self.errors: set[str] = set()
        self.faults: dict[str, list[int]] = {}  # id -> [firings, trials hit, successes when hit]
        self.unfired = self.clar = self.guess = self.inj = 0
        self.reviews = self.rejections = 0
        self.review_s = 0.0

    def add(self, r: TrialRecord) -> None:
        self.n += 1
        self.succ += r.outcome == "success"
        self.outcomes[r.outcome] += 1
        if r.failure_cause or r.failure_mode:
            mode = r.failure_cause or r.failure_mode
            self.modes[mode] = self.modes.get(mode, 0) + 1
        if r.failure_mode:
            self.first[r.failure_mode] = self.first.get(r.failure_mode, 0) + 1
        self.steps.append(r.steps)
        self.sims.append(r.sim_time_s)
        self.tokens.append(r.tokens_in + r.tokens_out)
        if r.cost_usd:
            self.model_usd.append(r.cost_usd["model"])
        self.sim += r.sim_time_s
        self.wall += r.wall_time_s
        if r.outcome == "error" and r.error and len(self.errors) < 1000:
            self.errors.add(r.error)
        for f in list(r.faults_fired) + r.faults_not_fired:
            c = self.faults.setdefault(f, [0, 0, 0])
            c[0] += r.faults_fired.get(f, 0)
            if r.faults_fired.get(f):
                c[1] += 1
                c[2] += r.outcome == "success"
        self.unfired += bool(r.faults_not_fired)
        self.clar += r.clarifications
        self.guess += r.guesses
        self.inj += r.injections_obeyed
        self.reviews += r.reviews
        self.rejections += r.rejections
        self.review_s += r.review_s

    def result(self) -> dict:
        lo, hi = wilson(self.succ, self.n)
        steps, sim, tok = mean_ci(self.steps), mean_ci(self.sims), mean_ci(self.tokens)
        usd = mean_ci(self.model_usd) if self.model_usd else (None, None, None)
        faults = {}
        for f, (firings, hit, succ) in sorted(self.faults.items()):
            flo, fhi = wilson(succ, hit)
            faults[f] = {"firings": firings, "trials_hit": hit,
                         "success_rate_when_hit": succ / hit if hit else None, "ci_low": flo, "ci_high": fhi}
        return {
            "trials": self.n, "successes": self.succ,
            "success_rate": self.succ / self.n if self.n else 0.0, "ci_low": lo, "ci_high": hi,
            "outcomes": dict(self.outcomes), "failure_modes": dict(sorted(self.modes.items())),
            "first_errors": dict(sorted(self.first.items())),
            "mean_steps": steps[0], "mean_steps_ci": [steps[1], steps[2]],
            "mean_sim_time_s": sim[0], "mean_sim_time_ci": [sim[1], sim[2]],
            "mean_tokens": tok[0], "mean_tokens_ci": [tok[1], tok[2]],
            "mean_model_usd": usd[0], "mean_model_usd_ci": [usd[1], usd[2]], "n_priced": len(self.model_usd),
            "sim_time_s": self.sim, "wall_time_s": self.wall, "errors": sorted(self.errors)[:5],
            "faults_fired": faults, "trials_with_unfired_faults": self.unfired,
            "clarifications": self.clar, "guesses": self.guess, "injections_obeyed": self.inj,
            "reviews": self.reviews, "rejections": self.rejections, "review_s": self.review_s,
        }


def summarize(records) -> dict:
    acc = Summary()
    for r in records:
        acc.add(r)
    return acc.result()


def rows_from_records(records, keep_errors: bool = False) -> tuple[list[dict], int]:
    """Analysis rows (task, trial, success, length, cells, money, latency, confidence) from
    records. Harness errors are kept apart, never counted as agent failures: left out, or
    with keep_errors kept as rows of outcome "error" (to say why a pair is incomplete).
    Returns (rows, number of error trials)."""
    rows, errors = [], 0
    for r in records:
        if r.outcome == "error":
            errors += 1
            if not keep_errors:
                continue
        f = flatten(r)
        # a task is a scenario with its parameters as one design, profile and fault setting
        # met it (as in tau-bench: pass^k is per agent), so replicates are its trials
        task = f"{f['task']}|{f['agent']}|{r.profile}|{f['fault']}"
        row = {"task": task, "pair": f"{f['task']}|{f['agent']}|{r.profile}", "scenario_task": f["task"],
               "trial": r.replicate, "seed": r.seed, "outcome": r.outcome, "success": r.outcome == "success",
               "length": max(1, r.golden_length), "sim_time_s": r.sim_time_s, "agent": f["agent"],
               "profile": r.profile, "fault": f["fault"], "scenario": f["scenario_ref"],
               "fault_never_fired": f["fault_never_fired"], "first_answer_s": r.first_answer_s,
               "impact": r.impact, "injections_seen": r.injections_seen,
               "injections_obeyed": r.injections_obeyed, "reviews": r.reviews, "review_s": r.review_s}
        if r.cost_usd:  # records written before money was kept have none: no cost, not zero cost
            row.update(cost_usd=r.cost_usd["total"], model_usd=r.cost_usd["model"],
                       review_usd=r.cost_usd["review"], failure_usd=r.cost_usd["failure"])
        if r.confidence_bins:
            row.update(conf_bins=r.confidence_bins, brier_sum=r.brier_sum)
        rows.append(row)
    return rows, errors


def error_digest(messages: Counter, shown: int = 3) -> str:
    """The distinct harness errors, most frequent first, with counts: `3x ValueError: boom; ...`."""
    top = [f"{n}x {m}" for m, n in messages.most_common(shown)]
    more = len(messages) - shown
    return "; ".join(top) + (f"; and {more} other distinct error(s)" if more > 0 else "")


def _noting_errors(records, into: Counter):
    for r in records:
        if r.outcome == "error":
            into[(r.error or "no message").strip().splitlines()[0][:200]] += 1
        yield r


CELL_KEYS = ("agent", "profile", "fault", "scenario")
PASS_K_MAX = 8


def analyze_results(path: str | Path, *, seed: int = 0, n_boot: int = 1000, exclude_unfired: bool = False,
                    cell_keys: tuple[str, ...] = CELL_KEYS) -> dict:
    """Analysis of a results directory (records) or an external table (CSV, JSONL, JSON).
    With exclude_unfired, trials in which a configured fault never fired are left out.
    Cells are the combinations of cell_keys that vary (a scorecard pools scenarios)."""
    p = Path(path)
    messages: Counter = Counter()
    if p.is_dir():
        rows, errors = rows_from_records(_noting_errors(iter_records(results_dir(p)), messages))
        source, before = "attrition", len(rows)
        if exclude_unfired:
            rows = [r for r in rows if not r["fault_never_fired"]]
            if before and not rows:
                raise LookupError(f"{p}: in each of its {before} trials a configured fault never fired, "
                                  "so --exclude-unfired leaves none to analyse")
    elif p.exists():
        try:
            rows, errors, source = load_table(p), 0, "table"
        except UnicodeDecodeError as e:
            raise LookupError(f"{p}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    else:
        raise LookupError(f"no such results directory or table: {p}")
    if not rows and errors:
        raise LookupError(f"{p} holds no trials to analyse: all {errors} ended in a harness error (the graph "
                          f"or its factory crashed, or the scenario could not load): {error_digest(messages)}")
    if not rows:
        raise LookupError(f"{p} holds no trials to analyse")
    # bootstraps draw rows by position: fix the order, whatever order workers finished in
    rows.sort(key=lambda r: (str(r.get("task")), str(r.get("trial"))))
    out = analyze(rows, seed=seed, n_boot=n_boot)
    out["source"] = source
    out["error_trials_excluded"] = errors
    keys = [k for k in cell_keys if len({r.get(k) for r in rows}) > 1]
    if keys:
        cells = {}
        for r in rows:
            cells.setdefault(tuple(r.get(k) for k in keys), []).append(r)
        out["cells"] = [{**dict(zip(keys, key)), **cell_stats(rs, seed, n_boot)} for key, rs in sorted(cells.items(), key=str)]
    if "fault" in keys:
        groups = {}
        for r in rows:
            groups.setdefault((r.get("agent"), r.get("profile")), []).append(r)
        # paired: the same scenario, parameters and replicate under each fault setting (common
        # random numbers), so the task for this comparison leaves the fault setting out
        out["fault_effects"] = [{"agent": a, "profile": pr, "effects": fault_effects(
            [{**x, "task": x.get("pair", x["task"])} for x in rs],
            baseline="none" if any(x["fault"] == "none" for x in rs) else min(str(x["fault"]) for x in rs),
            seed=seed, n_boot=n_boot)} for (a, pr), rs in sorted(groups.items(), key=str)]
        out["success_by_fault_length"] = success_by_cell(rows, ["fault", "length"])
        out["prompt_sensitivity"] = [{"agent": a, "profile": pr, **sens} for (a, pr), rs in sorted(groups.items(), key=str)
                                     if (sens := prompt_sensitivity(rs, seed=seed, n_boot=n_boot))]
    out["economics"] = economics(rows, seed, n_boot)
    out["pass_hat_k_top"] = pass_k_top(out, rows, seed, n_boot)
    return out


def economics(rows: list[dict], seed: int, n_boot: int) -> dict:
    """Money, latency, stated confidence and safety figures of one set of trials."""
    return {"cost": cost_summary(rows, seed=seed, n_boot=n_boot),
            "latency": latency_summary(rows, seed=seed, n_boot=n_boot),
            "calibration": confidence_calibration(rows, seed=seed, n_boot=n_boot),
            "silent_failures": silent_failure_rate(rows), "injection_obedience": injection_obedience(rows)}


def pass_k_top(a: dict, rows: list[dict], seed: int, n_boot: int) -> dict | None:
    """pass^k at the most repeats every task had (up to tau-bench's 8), with its interval."""
    if not a.get("pass_hat_k"):
        return None
    return pass_hat_k_interval(rows, min(PASS_K_MAX, int(max(a["pass_hat_k"], key=int))), seed, n_boot)


def cell_stats(rows: list[dict], seed: int, n_boot: int) -> dict:
    a = analyze(rows, seed=seed, n_boot=n_boot)
    keep = ("n_trials", "n_tasks", "successes", "success_rate", "ci_low", "ci_high", "pass_hat_k",
            "horizon_50", "horizon_80", "per_step_reliability", "half_length", "weibull", "by_length", "logistic")
    cell = {k: a.get(k) for k in keep if k in a}
    cell["pass_hat_k_top"] = pass_k_top(a, rows, seed, n_boot)
    cell.update(economics(rows, seed, n_boot))
    # horizons in virtual time: steps times the virtual seconds a successful step takes
    ok = [r for r in rows if r["success"] and r.get("sim_time_s") and r.get("length")]
    per_step = sum(r["sim_time_s"] for r in ok) / sum(r["length"] for r in ok) if ok else None
    if per_step and cell.get("horizon_50") and cell["horizon_50"].get("estimate"):
        cell["seconds_per_step"] = per_step
        for h in ("horizon_50", "horizon_80"):
            if cell.get(h) and cell[h].get("estimate") is not None:
                cell[h + "_time_s"] = {k: (v * per_step if isinstance(v, (int, float)) else v)
                                       for k, v in cell[h].items() if k in ("estimate", "ci_low", "ci_high")}
    return cell


def compare_results(paths: list[str | Path], *, by: tuple[str, ...] = ("agent",), baseline: str | None = None,
                    seed: int = 0, n_boot: int = 1000) -> dict:
    """Paired comparison of designs in one or more results directories (see analysis.compare).

    Directories run with the same seed pair trial by trial. A design found in more than one
    directory is named after its directory too (`before:react`, `after:react`), so the same
    design before and after a change compares as two."""
    unknown = [k for k in by if k not in ("agent", "profile", "fault")]
    if unknown or not by:
        raise ValueError(f"--by takes agent, profile and/or fault, not {', '.join(unknown) or 'nothing'}")
    per_dir: list[tuple[Path, list[dict]]] = []
    for path in paths:
        p = Path(path)
        if not p.is_dir():
            raise LookupError(f"{p}: not a results directory (compare reads the records of `attrition run` or "
                              "`attrition sweep`)")
        rows, _ = rows_from_records(iter_records(results_dir(p)), keep_errors=True)
        if not rows:
            raise LookupError(f"{p} holds no trials to compare")
        per_dir.append((p, rows))
    if len(per_dir) > 1:
        where: dict[tuple, set] = {}
        for p, rows in per_dir:
            for r in rows:
                where.setdefault(tuple(r[k] for k in by), set()).add(p)
        names = _dir_names([p for p, _ in per_dir])
        for p, rows in per_dir:
            for r in rows:
                if len(where[tuple(r[k] for k in by)]) > 1:
                    r[by[0]] = f"{names[p]}:{r[by[0]]}"
    rows = [r for _, rs in per_dir for r in rs]
    # bootstraps draw rows by position: fix the order, whatever order workers finished in
    rows.sort(key=lambda r: (str(r["scenario_task"]), str(r["agent"]), str(r["profile"]), str(r["fault"]),
                             r["trial"], r["seed"]))
    within = tuple(k for k in ("profile", "fault") if k not in by and len({r[k] for r in rows}) > 1)
    return compare(rows, by=by, baseline=baseline, within=within, seed=seed, n_boot=n_boot)


def _dir_names(paths: list[Path]) -> dict[Path, str]:
    """Short, distinct names for directories: their own names, or their full paths when those clash."""
    short = {p: p.name or str(p) for p in paths}
    return short if len(set(short.values())) == len(paths) else {p: str(p) for p in paths}
