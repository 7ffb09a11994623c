"""Does the gate keep its promises on the engine? False alarms between runs of the same code
with different seeds (A/A), and the catch rate of a planted regression, at the nightly
sweep's size per cell.

Each repetition runs the nightly's tasks and replicates for the chosen cells (default: react
with the weak profile, no faults: the nightly's noisiest cell) three times: A (seed 2i),
A' (seed 2i + 1, same code) and B (seed 2i + 1, the profile's base_hazard raised, same
label so the cell keeps its name). `gate(A, A')` at alpha 0.05 must stay quiet at the nominal rate; `gate(A, B)`, at
0.05 / 12 (the level of the first Holm step over the nightly's 12 cells, so the catch rate
is the nightly's, not a single cell's), must fail at the power the gate states for a
~10-point drop.

    python benchmarks/gate_calibration.py [--pairs 20] [--hazard 0.075] [--profile weak]
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import yaml

from simulator.analysis.gate import gate
from simulator.catalog import snapshot
from simulator.runs import run_sweep

NIGHTLY = Path(__file__).parent.parent / "scenarios" / "sweeps" / "nightly.yaml"


def one_run(base: dict, tmp: Path, label: str, seed: int, profile) -> dict:
    sweep = {**base, "name": "gate-calibration", "seed": seed, "profiles": [profile]}
    f = tmp / f"{label}.yaml"
    f.write_text(yaml.safe_dump(sweep))
    out = run_sweep(f, executor="process", out=tmp / label)[1]
    return snapshot(out, n_boot=300)["cells"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--hazard", type=float, default=0.065, help="the planted profile's base_hazard")
    ap.add_argument("--profile", default="weak")
    ap.add_argument("--agent", default="react")
    ap.add_argument("--fault", default="none", help="a fault setting of nightly.yaml")
    ap.add_argument("--cells", type=int, default=12, help="cells in the nightly (the planted test's Holm level)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    night = yaml.safe_load(NIGHTLY.read_text())
    base = {k: night[k] for k in ("replicates", "scenarios")}
    base.update(agents=[args.agent], faults={args.fault: night["faults"][args.fault]})
    planted = {"ref": args.profile, "params": {"base_hazard": args.hazard}, "label": args.profile}
    alarms, caught, drops, aa_drops, mdes = 0, 0, [], [], []
    start = time.perf_counter()
    for i in range(args.pairs):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            a = one_run(base, tmp, "a", 2 * i, args.profile)
            a2 = one_run(base, tmp, "a2", 2 * i + 1, args.profile)
            b = one_run(base, tmp, "b", 2 * i + 1, planted)
        aa, ab = gate(a, a2), gate(a, b, alpha=0.05 / args.cells)
        alarms += aa["regressed"]
        caught += ab["regressed"]
        (c_aa,), (c_ab,) = aa["cells"], ab["cells"]
        aa_drops.append(c_aa["success"]["drop"])
        drops.append(c_ab["success"]["drop"])
        mdes.append(c_ab["success"]["detectable_drop"])
        print(f"pair {i + 1}/{args.pairs}: A/A {c_aa['verdict']} (drop {100 * aa_drops[-1]:+.1f} pp), planted "
              f"{c_ab['verdict']} (drop {100 * drops[-1]:+.1f} pp, detectable {100 * mdes[-1]:.1f} pp), "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    n = args.pairs
    res = {"pairs": n, "cell": f"{args.agent} / {args.profile} / {args.fault}", "trials_per_run": c_ab["n_run"],
           "false_alarms": alarms, "nominal": 0.05, "bound_2se": n * 0.05 + 2 * math.sqrt(n * 0.05 * 0.95),
           "caught": caught, "mean_planted_drop": sum(drops) / n, "mean_aa_drop": sum(aa_drops) / n,
           "mean_detectable": sum(mdes) / n, "hazard": args.hazard, "wall_s": time.perf_counter() - start}
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
