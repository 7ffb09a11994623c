"""Driver memory: peak Python allocations of the sweep driver at N and 10N trials.

    python benchmarks/memory.py [--base 40]

Each size runs in a fresh interpreter with the process executor (2 workers), and
tracemalloc measures the driver alone (workers are other processes). The driver
streams records and events to the store, so its peak should stay flat while the
number of trials grows tenfold.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import json, sys, tracemalloc, resource
    from pathlib import Path
    from simulator.runs import run_sweep
    tracemalloc.start()
    summary, out = run_sweep(Path(sys.argv[1]), executor="process", workers=2, out=Path(sys.argv[2]))
    cur, peak = tracemalloc.get_traced_memory()
    events = sum(1 for _ in open(Path(out) / "events.jsonl"))
    print(json.dumps({"trials": summary["trials"], "events": events, "peak_bytes": peak,
                      "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
""")


def sweep_file(folder: Path, tasks: int) -> Path:
    f = folder / f"mem-{tasks}.yaml"
    f.write_text(textwrap.dedent(f"""
        name: mem
        seed: 1
        replicates: 2
        scenarios:
          - ref: chain
            params: {{length: 12, task: {list(range(tasks))}}}
        agents: [react]
        profiles: [strong]
        """))
    return f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=int, default=40, help="trials of the small run (the large one has 10x)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for tasks in (args.base // 2, args.base * 5):
            res = subprocess.run([sys.executable, "-c", CHILD, str(sweep_file(Path(d), tasks)),
                                  str(Path(d) / f"out-{tasks}")], capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    for r in rows:
        print(f"{r['trials']:>6} trials, {r['events']:>8} events: driver peak {r['peak_bytes'] / 2**20:6.1f} MiB "
              f"(tracemalloc), max RSS {r['max_rss_kb'] / 1024:6.1f} MiB")
    print(f"trials x{rows[1]['trials'] / rows[0]['trials']:.0f}: driver peak x{rows[1]['peak_bytes'] / rows[0]['peak_bytes']:.2f}, "
          f"RSS x{rows[1]['max_rss_kb'] / rows[0]['max_rss_kb']:.2f} (target: flat)")


if __name__ == "__main__":
    main()
