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

The planted drop's size is read off B - A' (the same seed, so the same task draws): with the
weak profile at the nightly's lengths, base_hazard 0.075 (from 0.045) costs about 10 points.

    python benchmarks/gate_calibration.py [--pairs 20] [--hazard 0.075] [--profile weak] [--aa-from K]

Every run is seeded: the verdicts of pair i are the same in every invocation, so --aa-from K
skips the A/A runs of pairs below K (to finish a measurement an earlier invocation began).
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
    ap.add_argument("--hazard", type=float, default=0.075, help="the planted profile's base_hazard")
    ap.add_argument("--profile", default="weak")
    ap.add_argument("--agent", default="react")
    ap.add_argument("--fault", default="none", help="a fault setting of nightly.yaml")
    ap.add_argument("--aa-from", type=int, default=0, help="run A/A pairs from this pair on")
    ap.add_argument("--cells", type=int, default=12, help="cells in the nightly (the planted test's Holm level)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    night = yaml.safe_load(NIGHTLY.read_text())
    base = {k: night[k] for k in ("replicates", "scenarios")}
    base.update(agents=[args.agent], faults={args.fault: night["faults"][args.fault]})
    planted = {"ref": args.profile, "params": {"base_hazard": args.hazard}, "label": args.profile}
    alarms, caught, drops, effects, aa_drops, mdes = 0, 0, [], [], [], []
    start = time.perf_counter()
    for i in range(args.pairs):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            a = one_run(base, tmp, "a", 2 * i, args.profile)
            a2 = one_run(base, tmp, "a2", 2 * i + 1, args.profile) if i >= args.aa_from else None
            b = one_run(base, tmp, "b", 2 * i + 1, planted)
        ab = gate(a, b, alpha=0.05 / args.cells)
        caught += ab["regressed"]
        (c_ab,) = ab["cells"]
        drops.append(c_ab["success"]["drop"])
        mdes.append(c_ab["success"]["detectable_drop"])
        line = (f"pair {i + 1}/{args.pairs}: planted {c_ab['verdict']} (drop {100 * drops[-1]:+.1f} pp, "
                f"detectable {100 * mdes[-1]:.1f} pp)")
        if a2 is not None:
            (c_aa,) = gate(a, a2)["cells"]
            alarms += c_aa["verdict"] == "regressed"
            aa_drops.append(c_aa["success"]["drop"])
            (same,) = gate(a2, b)["cells"]  # the planted effect itself: same seed, same task draws
            effects.append(same["success"]["drop"])
            line += f"; A/A {c_aa['verdict']} (drop {100 * aa_drops[-1]:+.1f} pp); effect {100 * effects[-1]:+.1f} pp"
        print(line + f"; {time.perf_counter() - start:.0f} s", flush=True)
    n = args.pairs
    m = len(aa_drops)
    res = {"pairs": n, "cell": f"{args.agent} / {args.profile} / {args.fault}", "trials_per_run": c_ab["n_run"],
           "aa_pairs": m, "false_alarms": alarms, "nominal": 0.05,
           "bound_2se": m * 0.05 + 2 * math.sqrt(m * 0.05 * 0.95), "mean_aa_drop": sum(aa_drops) / m if m else None,
           "caught": caught, "mean_planted_drop": sum(drops) / n,
           "mean_planted_effect_same_seed": sum(effects) / m if m else None,
           "mean_detectable": sum(mdes) / n, "hazard": args.hazard, "wall_s": time.perf_counter() - start}
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
