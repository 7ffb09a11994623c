"""Engine overhead: the same graph and simulated model, bare versus under the engine.

Bare: build the kit and graph, then drive the turns with plain `graph.stream`
(no SimPy, no budgets, no records). Engine: the same trials through `run_jobs`.
Both run in this process, interleaved round by round so machine noise hits both
alike; the ratio of total wall times is printed. Target: engine <= 1.3x bare.

    python benchmarks/overhead.py [--rounds 5] [--trials 10]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time

from langchain_core.messages import HumanMessage

from simulator.design_loader import build_graph, load_factory
from simulator.engine import run_jobs
from simulator.gateway import Gateway
from simulator.kit import Kit
from simulator.session import Session, stream_key
from simulator.vclock import Clock
from simulator.oracle import ANN
from simulator.profiles import get_profile
from simulator.jobs import JobMaker, make_specs
from simulator.world import resolve


def bare(specs, make: JobMaker) -> int:
    calls = 0
    for spec in specs:
        job = make(spec)
        sc = job.scenario
        s = Session(spec.id, spec.seed, spec.replicate, sc, get_profile(spec.profile), Clock(),
                    scenario_key=stream_key(sc, spec.scenario.params))
        graph = build_graph(job.factory, Kit(s, Gateway(s).tools(), {}))
        history = []
        for k, turn in enumerate(sc.turns):
            history.append(HumanMessage(resolve(turn.user, s.oracle.golden.outputs), id=f"turn-{k}",
                                        additional_kwargs={ANN: {"turn": k}}))
            for update in graph.stream({"messages": list(history)}, {"recursion_limit": 10_000},
                                       stream_mode="updates"):
                for val in update.values():
                    history.extend((val or {}).get("messages", []))
        calls += s.model_calls
    return calls


def engine(specs, make: JobMaker) -> int:
    return sum(r.model_calls for r in run_jobs([make(s) for s in specs]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    cases = [("support_refund", {}), ("travel_rebooking", {}), ("chain", {"length": 64})]
    print(f"{'scenario':<22} {'bare s':>9} {'engine s':>9} {'ratio':>7}   (sum over {args.rounds} rounds x {args.trials} trials)")
    ratios = []
    for name, params in cases:
        specs = make_specs(name, params, "react", trials=args.trials, seed=1)
        make = JobMaker()
        load_factory("react")
        bare(specs[:1], make), engine(specs[:1], make)  # warm imports and caches
        tb, te = [], []
        work = {}
        for r in range(args.rounds):
            for label, fn, acc in (("bare", bare, tb), ("engine", engine, te))[:: 1 if r % 2 == 0 else -1]:
                gc.collect()
                t0 = time.perf_counter()
                work[label] = fn(specs, make)
                acc.append(time.perf_counter() - t0)
        # both sides must have made exactly the same model decisions, or the ratio means nothing
        assert work["bare"] == work["engine"], f"different work: {work}"
        ratio = sum(te) / sum(tb)
        ratios.append(ratio)
        label = name + (f":{','.join(f'{k}={v}' for k, v in params.items())}" if params else "")
        print(f"{label:<22} {sum(tb):>9.3f} {sum(te):>9.3f} {ratio:>6.2f}x   "
              f"(per-round ratios {min(a / b for a, b in zip(te, tb)):.2f}-{max(a / b for a, b in zip(te, tb)):.2f})")
    print(f"engine / bare, geometric mean over scenarios: {statistics.geometric_mean(ratios):.2f}x (target <= 1.30x)")


if __name__ == "__main__":
    main()
