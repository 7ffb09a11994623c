"""Sweep throughput: the same sweep with 2 worker processes against 1, side by side.

    python benchmarks/throughput.py [--trials-per-cell 12] [--rounds 2]

Prints trials per second for each and the speed-up (target: >= 1.8x on 2 cores).
Worker start-up is included, as a user would see it.
"""
from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

from simulator.runs import run_sweep


def sweep_file(folder: Path, reps: int) -> Path:
    f = folder / "bench.yaml"
    f.write_text(textwrap.dedent(f"""
        name: bench
        seed: 3
        replicates: {reps}
        scenarios:
          - ref: chain
            params: {{length: [8, 16, 32], task: [0, 1, 2, 3]}}
          - ref: support_refund
        agents: [react]
        profiles: [strong, weak]
        """))
    return f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials-per-cell", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = sweep_file(Path(d), args.trials_per_cell)
        times = {1: [], 2: []}
        n = 0
        for r in range(args.rounds):
            for w in ((1, 2) if r % 2 == 0 else (2, 1)):
                t0 = time.perf_counter()
                summary, _ = run_sweep(path, executor="process", workers=w, out=Path(d) / f"w{w}-{r}")
                times[w].append(time.perf_counter() - t0)
                n = summary["trials"]
        t1, t2 = sum(times[1]), sum(times[2])
        print(f"{n} trials per run, {args.rounds} rounds")
        print(f"1 worker : {n * args.rounds / t1:7.1f} trials/s  ({t1:.1f} s)")
        print(f"2 workers: {n * args.rounds / t2:7.1f} trials/s  ({t2:.1f} s)")
        print(f"speed-up 2 vs 1: {t1 / t2:.2f}x (target >= 1.8x)")


if __name__ == "__main__":
    main()
