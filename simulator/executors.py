"""Where trials run: in this process, in a local process pool, or on a Dask cluster.

Every executor runs the same function on the same chunks of specs, and a trial's
record depends only on its spec, so all three give identical records. Results are
yielded as chunks finish, as (record, events as JSON lines); at most a few chunks per
worker are in flight, so the driver holds neither all specs' results nor any events
beyond the current chunk.

An executor is a function `(chunks, *, workers, scheduler, concurrency)` yielding
(record, events) pairs, registered with `@register("executor", NAME)`.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Iterable, Iterator

from .engine import run_jobs
from .jobs import JobMaker
from .records import TrialRecord
from .registry import UnknownName, lookup, names, register
from .spec import TrialSpec
from .store import LOST

_MAKER = None  # per worker process: resolved scenarios and factories, reused across chunks


def run_chunk(specs: list[dict], concurrency: int = 1, stagger_s: float = 0.0,
              maker: JobMaker | None = None) -> list[tuple[str, str]]:
    """Worker side: run specs (as dicts, so any executor can ship them) and return
    (record JSON, events JSON lines) pairs, serialised here so the driver only writes
    them. Never raises for a trial: errors become records."""
    global _MAKER
    if maker is None:
        if _MAKER is None:
            _MAKER = JobMaker()
        maker = _MAKER
    parsed = [TrialSpec.model_validate(s) for s in specs]
    out: list[tuple[str, str]] = []
    jobs, failed = [], []
    for s in parsed:
        try:
            jobs.append(maker(s))
        except Exception as e:  # the agent or scenario could not be loaded in this worker
            failed.append(error_record(s, f"{type(e).__name__}: {e}"))
    run_jobs(jobs, concurrency=concurrency, stagger_s=stagger_s,
             on_done=lambda r, ev: out.append((r.model_dump_json(), dumps(ev))))
    return out + [(r.model_dump_json(), "") for r in failed]


def dumps(events: list[dict]) -> str:
    return "".join(json.dumps(e, default=str) + "\n" for e in events)


def error_record(spec: TrialSpec, message: str) -> TrialRecord:
    return TrialRecord(trial_id=spec.id, spec=spec.model_dump(mode="json"), scenario=spec.scenario.ref,
                       agent=spec.agent, profile=spec.profile, seed=spec.seed, replicate=spec.replicate,
                       outcome="error", error=message)


def chunks(specs: Iterable[TrialSpec], concurrency: int, per: int) -> Iterator[list[TrialSpec]]:
    """Chunks of `per` groups; a group of `concurrency` specs shares an environment, so it is
    never split. Lazy: specs are drawn from the iterable only as chunks are needed."""
    it = iter(specs)
    while True:
        c = list(itertools.islice(it, concurrency * per))
        if not c:
            return
        yield c


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def execute(specs: Iterable[TrialSpec], *, executor: str = "process", workers: int | None = None,
            scheduler: str | None = None, concurrency: int = 1, stagger_s: float = 0.0,
            chunk_groups: int = 4, **options) -> Iterator[tuple[TrialRecord, list[dict] | str]]:
    """Run specs on the named executor; `options` go to it (the serial executor takes a
    `maker`, a JobMaker with a caller's model factory)."""
    try:
        run = lookup("executor", executor).obj
    except UnknownName:
        raise ValueError(f"unknown executor {executor!r}; choose from {', '.join(names('executor'))}") from None
    yield from run(chunks(specs, concurrency, chunk_groups), workers=workers or default_workers(),
                   scheduler=scheduler, concurrency=concurrency, stagger_s=stagger_s, **options)


@register("executor", "serial")
def serial(chunks, *, workers: int, scheduler: str | None, concurrency: int, stagger_s: float = 0.0,
           maker: JobMaker | None = None):
    """In this process, one trial after another."""
    for c in chunks:
        yield from _parse(run_chunk([s.model_dump(mode="json") for s in c], concurrency, stagger_s, maker))


def _parse(pairs):
    for rec, ev in pairs:
        yield TrialRecord.model_validate_json(rec), ev


@register("executor", "process")
def process(chunks, *, workers: int, scheduler: str | None, concurrency: int, stagger_s: float = 0.0):
    """A local process pool, one worker per core by default."""
    # forkserver: workers start clean, without copies of the driver's threads; the server
    # imports the engine once, so each worker starts without re-importing LangGraph
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["simulator.engine", "simulator.jobs", "simulator.executors"])
    else:
        ctx = mp.get_context("spawn")
    # When a worker dies, every chunk in flight is suspect: they are split into their
    # environment groups and run again one at a time, so only a group that kills a
    # worker on its own is recorded as lost (and run again by --resume).
    def groups(c):
        return [c[i:i + concurrency] for i in range(0, len(c), concurrency)]

    suspects: list = []
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    inflight: dict = {}  # future -> (chunk, run alone as a suspect?)
    try:
        while True:
            while len(inflight) < (1 if suspects else 2 * workers):
                alone = bool(suspects)
                c = suspects.pop(0) if alone else next(chunks, None)
                if c is None:
                    break
                inflight[pool.submit(run_chunk, [s.model_dump(mode="json") for s in c], concurrency,
                                     stagger_s)] = (c, alone)
            if not inflight:
                break
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                c, alone = inflight.pop(fut)
                try:
                    yield from _parse(fut.result())
                except Exception as e:  # the worker died (killed, out of memory, os._exit)
                    broken = True
                    if alone:
                        for s in c:
                            yield error_record(s, f"{LOST}: {type(e).__name__}: {e}"), ""
                    else:
                        suspects.extend(groups(c))
            if broken:
                for c, _ in inflight.values():
                    suspects.extend(groups(c))
                inflight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@register("executor", "dask")
def dask(chunks, *, workers: int, scheduler: str | None, concurrency: int, stagger_s: float = 0.0):
    """A Dask cluster: a local one, or the scheduler at --scheduler."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("the dask executor needs dask[distributed]: pip install 'attrition[dask]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="20s")
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    try:
        futures = {}
        ac = as_completed()
        while len(futures) < 2 * workers and (c := next(chunks, None)) is not None:
            f = client.submit(run_chunk, [s.model_dump(mode="json") for s in c], concurrency, stagger_s, pure=False)
            futures[f.key] = c
            ac.add(f)
        for fut in ac:
            c = futures.pop(fut.key)
            try:
                yield from _parse(fut.result())
            except Exception as e:
                for s in c:
                    yield error_record(s, f"{LOST}: {type(e).__name__}: {e}"), ""
            fut.release()
            if (c := next(chunks, None)) is not None:
                f = client.submit(run_chunk, [s.model_dump(mode="json") for s in c], concurrency, stagger_s, pure=False)
                futures[f.key] = c
                ac.add(f)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
