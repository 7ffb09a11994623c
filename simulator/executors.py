"""Where trials run: in this process, in a local process pool, or on a Dask cluster.

Every executor runs the same function on the same chunks of specs, and a trial's
record depends only on its spec, so all three give identical records. Results are
yielded as chunks finish; at most a few chunks per worker are in flight, so the
driver holds neither all specs' results nor any events beyond the current chunk.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Iterator

from .records import TrialRecord
from .spec import TrialSpec

EXECUTORS = ("serial", "process", "dask")
_MAKER = None  # per worker process: resolved scenarios and factories, reused across chunks


def run_chunk(specs: list[dict], concurrency: int = 1) -> list[tuple[dict, list[dict]]]:
    """Worker side: run specs (as dicts, so any executor can ship them) and return
    (record dict, events) pairs. Never raises for a trial: errors become records."""
    global _MAKER
    from .engine import run_jobs
    from .runner import JobMaker
    if _MAKER is None:
        _MAKER = JobMaker()
    parsed = [TrialSpec.model_validate(s) for s in specs]
    out: list[tuple[dict, list[dict]]] = []
    jobs, failed = [], []
    for s in parsed:
        try:
            jobs.append(_MAKER(s))
        except Exception as e:  # the agent or scenario could not be loaded in this worker
            failed.append(error_record(s, f"{type(e).__name__}: {e}"))
    run_jobs(jobs, concurrency=concurrency,
             on_done=lambda r, ev: out.append((r.model_dump(mode="json"), ev)))
    return out + [(r.model_dump(mode="json"), []) for r in failed]


def error_record(spec: TrialSpec, message: str) -> TrialRecord:
    return TrialRecord(trial_id=spec.id, spec=spec.model_dump(mode="json"), scenario=spec.scenario.ref,
                       agent=spec.agent, profile=spec.profile, seed=spec.seed, replicate=spec.replicate,
                       outcome="error", error=message)


def chunk(specs: list[TrialSpec], concurrency: int, workers: int) -> list[list[TrialSpec]]:
    """Groups of `concurrency` specs stay together (they share an environment); chunks are
    small enough that progress is smooth and a lost worker loses little."""
    groups = [specs[i:i + concurrency] for i in range(0, len(specs), concurrency)]
    per = max(1, min(8, len(groups) // max(1, workers * 8)))
    return [[s for g in groups[i:i + per] for s in g] for i in range(0, len(groups), per)]


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def execute(specs: list[TrialSpec], *, executor: str = "process", workers: int | None = None,
            scheduler: str | None = None, concurrency: int = 1) -> Iterator[tuple[TrialRecord, list[dict]]]:
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    workers = workers or default_workers()
    chunks = chunk(specs, concurrency, workers if executor != "serial" else 1)
    if executor == "serial" or (executor == "process" and workers == 1):
        for c in chunks:
            yield from _parse(run_chunk([s.model_dump(mode="json") for s in c], concurrency))
    elif executor == "process":
        yield from _process(chunks, workers, concurrency)
    else:
        yield from _dask(chunks, workers, scheduler, concurrency)


def _parse(pairs):
    for rec, ev in pairs:
        yield TrialRecord.model_validate(rec), ev


def _process(chunks, workers, concurrency):
    # forkserver: workers start clean, without copies of the driver's threads
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    pending = list(reversed(chunks))
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    inflight: dict = {}
    try:
        while pending or inflight:
            while pending and len(inflight) < 2 * workers:
                c = pending.pop()
                inflight[pool.submit(run_chunk, [s.model_dump(mode="json") for s in c], concurrency)] = c
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                c = inflight.pop(fut)
                try:
                    yield from _parse(fut.result())
                except Exception as e:  # the worker died (e.g. killed, out of memory)
                    for s in c:
                        yield error_record(s, f"worker failed: {type(e).__name__}: {e}"), []
                    if "BrokenProcessPool" in type(e).__name__:
                        pool.shutdown(wait=False, cancel_futures=True)
                        pending.extend(inflight.values())
                        inflight.clear()
                        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _dask(chunks, workers, scheduler, concurrency):
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
        pending = list(reversed(chunks))
        futures = {}
        ac = as_completed()
        while pending and len(futures) < 2 * workers:
            c = pending.pop()
            f = client.submit(run_chunk, [s.model_dump(mode="json") for s in c], concurrency, pure=False)
            futures[f.key] = c
            ac.add(f)
        for fut in ac:
            c = futures.pop(fut.key)
            try:
                yield from _parse(fut.result())
            except Exception as e:
                for s in c:
                    yield error_record(s, f"worker failed: {type(e).__name__}: {e}"), []
            fut.release()
            if pending:
                c = pending.pop()
                f = client.submit(run_chunk, [s.model_dump(mode="json") for s in c], concurrency, pure=False)
                futures[f.key] = c
                ac.add(f)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
