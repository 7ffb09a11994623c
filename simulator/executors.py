"""Where trials run: worker processes on this machine (one, or one per core), or a Dask cluster.

User code (the agent graph and its factory) never runs in the driver, nor in a Dask worker:
every executor runs each environment group in a worker process (workers.py) that a crash or
a hang of that group takes down alone. The group becomes `error` trials naming the cause
(recorded, so --resume does not run them again), and every other trial is recorded exactly
as it would have been. Only the Python API's `model_factory`, which cannot be sent to another
process, runs trials in this process (the serial executor with a `maker`), without that shield.

Every executor runs the same function on the same groups of specs, and a trial's record
depends only on its spec, so all give identical records. Results are yielded as groups
finish, as (record, events as JSON lines); the driver holds neither all specs' results nor
any events beyond the groups in flight.

An executor is a function `(chunks, *, workers, scheduler, concurrency, stagger_s,
trial_timeout_s)` yielding (record, events) pairs, registered with `@register("executor",
NAME)`; one may carry a `check(scheduler)` attribute, called before anything is written.
"""
from __future__ import annotations

import inspect
import itertools
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from .engine import run_jobs
from .jobs import JobMaker
from .live import LiveOptions
from .records import TrialRecord
from .registry import UnknownName, lookup, names, register
from .spec import TrialSpec
from .store import LOST
from .workers import DEFAULT_TRIAL_TIMEOUT_S, Pool, as_pairs, error_record, run_isolated, split_groups

_MAKER = None  # per worker process: resolved scenarios and factories, reused across groups


def run_chunk(specs: list[dict], concurrency: int = 1, stagger_s: float = 0.0,
              maker: JobMaker | None = None) -> list[tuple[str, str]]:
    """Worker side: run specs (as dicts, so any process can be sent them) and return
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
    groups = [jobs[i:i + concurrency] for i in range(0, len(jobs), concurrency)]
    in_flight = LiveOptions.from_env().in_flight if any(j.spec.model for j in jobs) else 1

    def run(group: list) -> None:
        run_jobs(group, concurrency=concurrency, stagger_s=stagger_s,
                 on_done=lambda r, ev: out.append((r.model_dump_json(), dumps(ev))))
    if in_flight > 1 and len(groups) > 1:
        # a real model's calls wait on the network: environment groups run side by side in
        # threads, each on its own clock, so this worker keeps `in_flight` requests going
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(run, groups))
    else:
        for g in groups:
            run(g)
    return out + [(r.model_dump_json(), "") for r in failed]


def dumps(events: list[dict]) -> str:
    return "".join(json.dumps(e, default=str) + "\n" for e in events)


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


def _named(executor: str) -> Callable:
    try:
        return lookup("executor", executor).obj
    except UnknownName:
        raise ValueError(f"unknown executor {executor!r}; choose from {', '.join(names('executor'))}") from None


def check_executor(executor: str, scheduler: str | None = None) -> None:
    """Fail before anything is written: an unknown executor, or one that cannot start (such as
    a Dask scheduler out of reach)."""
    check = getattr(_named(executor), "check", None)
    if check is not None:
        check(scheduler)


# A week of wall time per trial is past any real trial, and below the ~24.8 days a
# poll() timeout in milliseconds can hold; under a second would stop every trial.
MIN_TRIAL_TIMEOUT_S, MAX_TRIAL_TIMEOUT_S = 1.0, 7 * 24 * 3600.0


def check_timeout(trial_timeout_s: float | None) -> None:
    if trial_timeout_s is not None and not MIN_TRIAL_TIMEOUT_S <= trial_timeout_s <= MAX_TRIAL_TIMEOUT_S:
        raise ValueError(f"--trial-timeout: a trial's wall-time limit is {MIN_TRIAL_TIMEOUT_S:g} to "
                         f"{MAX_TRIAL_TIMEOUT_S:.0f} seconds (7 days), or none (0 on the command line), "
                         f"not {trial_timeout_s!r}")


def execute(specs: Iterable[TrialSpec], *, executor: str = "process", workers: int | None = None,
            scheduler: str | None = None, concurrency: int = 1, stagger_s: float = 0.0,
            trial_timeout_s: float | None = DEFAULT_TRIAL_TIMEOUT_S, chunk_groups: int = 4,
            **options) -> Iterator[tuple[TrialRecord, list[dict] | str]]:
    """Run specs on the named executor; `options` go to it (the serial executor takes a
    `maker`, a JobMaker with a caller's model factory). `trial_timeout_s` (None: none) limits
    each trial's wall time, enforced from outside the trial by killing its worker process."""
    run = _named(executor)
    check_timeout(trial_timeout_s)
    params = inspect.signature(run).parameters.values()
    if any(p.name == "trial_timeout_s" or p.kind is p.VAR_KEYWORD for p in params):
        options["trial_timeout_s"] = trial_timeout_s  # executors written before the limit existed lack it
    per = max(chunk_groups, LiveOptions.from_env().in_flight)  # a chunk holds what a worker runs at once
    yield from run(chunks(specs, concurrency, per), workers=workers or default_workers(),
                   scheduler=scheduler, concurrency=concurrency, stagger_s=stagger_s, **options)


def _parse(pairs):
    for rec, ev in pairs:
        yield TrialRecord.model_validate_json(rec), ev


def _in_workers(chunks, workers: int, concurrency: int, stagger_s: float, trial_timeout_s: float | None):
    # a worker takes `in_flight` environment groups at once when trials call a real model
    groups = (g for c in chunks for g in split_groups(c, concurrency * LiveOptions.from_env().in_flight))
    with Pool(workers) as pool:
        for group, pairs, failure in pool.run(groups, concurrency, stagger_s, trial_timeout_s):
            yield from _parse(as_pairs(group, pairs, failure))


@register("executor", "serial")
def serial(chunks, *, workers: int, scheduler: str | None, concurrency: int, stagger_s: float = 0.0,
           trial_timeout_s: float | None = DEFAULT_TRIAL_TIMEOUT_S, maker: JobMaker | None = None):
    """One worker process, one trial after another (with a caller's `maker`: in this process)."""
    if maker is None:
        yield from _in_workers(chunks, 1, concurrency, stagger_s, trial_timeout_s)
        return
    for c in chunks:
        yield from _parse(run_chunk([s.model_dump(mode="json") for s in c], concurrency, stagger_s, maker))


@register("executor", "process")
def process(chunks, *, workers: int, scheduler: str | None, concurrency: int, stagger_s: float = 0.0,
            trial_timeout_s: float | None = DEFAULT_TRIAL_TIMEOUT_S):
    """Worker processes on this machine, one per core by default."""
    yield from _in_workers(chunks, workers, concurrency, stagger_s, trial_timeout_s)


def reach_scheduler(scheduler: str | None, timeout_s: float = 5.0):
    """A Dask client on `scheduler`, or a ValueError saying why it cannot be reached (quickly:
    a refused or unanswered TCP connection fails in seconds, not after distributed's retries)."""
    if not scheduler:
        return None
    try:
        from distributed import Client
        from distributed.comm import parse_address, parse_host_port
    except ImportError:
        raise ValueError("the dask executor needs dask[distributed]: pip install 'attrition[dask]'") from None
    try:
        scheme, where = parse_address(scheduler)
        if scheme in ("tcp", "tls"):
            socket.create_connection(parse_host_port(where), timeout=timeout_s).close()
        return Client(scheduler, timeout=f"{timeout_s}s")
    except Exception as e:  # refused, timed out, or something that is not a Dask scheduler answered
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {type(e).__name__}: {e}") from None


def _check_scheduler(scheduler: str | None) -> None:
    client = reach_scheduler(scheduler)
    if client is not None:
        client.close()


@register("executor", "dask")
def dask(chunks, *, workers: int, scheduler: str | None, concurrency: int, stagger_s: float = 0.0,
         trial_timeout_s: float | None = DEFAULT_TRIAL_TIMEOUT_S):
    """A Dask cluster: a local one, or the scheduler at --scheduler. Each Dask worker runs
    its trials in worker processes of its own."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("the dask executor needs dask[distributed]: pip install 'attrition[dask]'") from None
    cluster = None
    client = reach_scheduler(scheduler)
    if client is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    try:
        futures, ac = {}, as_completed()

        def submit() -> bool:
            c = next(chunks, None)
            if c is None:
                return False
            f = client.submit(run_isolated, [s.model_dump(mode="json") for s in c], concurrency, stagger_s,
                              trial_timeout_s, pure=False)
            futures[f.key] = c
            ac.add(f)
            return True

        while len(futures) < 2 * workers and submit():
            pass
        for fut in ac:
            c = futures.pop(fut.key)
            try:
                yield from _parse(fut.result())
            except Exception as e:  # the Dask worker itself was lost: not the trials' doing
                for s in c:
                    yield error_record(s, f"{LOST}: {type(e).__name__}: {e}"), ""
            fut.release()
            submit()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


dask.check = _check_scheduler
