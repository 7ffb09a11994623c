"""Worker processes: where user code runs, so that its crash or hang costs only its own trial.

Each process that runs trials (the driver, or a Dask worker) starts one worker server
(worker_server.py): a clean process that imports the engine once and forks a worker on
request, so a worker lost to a crash or a timeout is replaced in milliseconds. A Pool hands
each of its workers one environment group at a time over a socket and waits for that group's
records, so it always knows which group a worker runs and since when: a worker that dies is
reported with its exit status and its last Python frame, one that runs past the wall-time
limit is killed and replaced, and no other group is touched (none shared its process).

Every process here dies with its parent (Linux PR_SET_PDEATHSIG; a getppid() watch while
idle elsewhere), so killing the driver, even with SIGKILL, leaves nothing running.
"""
from __future__ import annotations

import ctypes
import json
import os
import pickle
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Iterable, Iterator

from .records import TrialRecord
from .spec import TrialSpec

# Ten minutes: far above any shipped trial (the slowest of the quickstart sweep takes about
# 2 s, a 512-step chain well under a minute), yet a hung node costs at most that much.
DEFAULT_TRIAL_TIMEOUT_S = 600.0
NOT_RESUMED = "recorded as an error, so --resume does not run it again"
PR_SET_PDEATHSIG = 1

# PR_SET_PDEATHSIG fires when the *thread* that started the child ends, so the server is
# started from this thread, which lives as long as the process, whichever thread asked.
_ANCHOR = ThreadPoolExecutor(1, thread_name_prefix="attrition-workers")
_BOOT = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
         "from simulator.workers import die_with_parent; die_with_parent(int(sys.argv[2])); "
         "from simulator.worker_server import serve; serve(int(sys.argv[3]), int(sys.argv[2]))")


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent ends; end now if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the idle loops watch getppid() instead
    if os.getppid() != parent:
        os._exit(0)


class Server:
    """The driver's handle on its worker server: requests go one at a time over a socket."""

    def __init__(self):
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [sys.executable, "-c", _BOOT, json.dumps(sys.path), str(os.getpid()), str(theirs.fileno())]
        try:
            self.proc = _ANCHOR.submit(subprocess.Popen, argv, pass_fds=[theirs.fileno()],
                                       stdin=subprocess.DEVNULL).result()
        finally:
            theirs.close()
        self.sock, self.lock = mine, threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, *msg, fds: tuple[int, ...] = ()):
        with self.lock:
            socket.send_fds(self.sock, [pickle.dumps(msg)], list(fds))
            reply = self.sock.recv(1 << 16)
        if not reply:
            raise ConnectionError("the worker server ended")
        return pickle.loads(reply)


_SERVER: Server | None = None
_SERVER_LOCK = threading.Lock()


def server(replace: Server | None = None) -> Server:
    """This process's worker server, started on first use (or when `replace` has ended)."""
    global _SERVER
    with _SERVER_LOCK:
        if replace is not None and replace is _SERVER:
            replace.proc.kill()  # it stopped answering: make sure it is gone
            replace.proc.wait()
            _SERVER = None
        if _SERVER is None or not _SERVER.alive():
            _SERVER = Server()
        return _SERVER


def warm_up() -> None:
    """Start the worker server now, so that its imports overlap the caller's own work."""
    server()


@dataclass
class Worker:
    pid: int
    conn: Connection
    dump: int  # read end of the pipe the worker's faulthandler writes its stack to
    srv: Server
    group: list | None = None
    deadline: float = float("inf")

    def stack(self, ask: bool) -> str:
        """Where the worker's Python code was: after a fatal signal, or (`ask`) right now."""
        if ask:
            try:
                self.srv.request("signal", self.pid, signal.SIGUSR1)
            except OSError:
                return ""
        chunks, wait_s = [], 1.0 if ask else 0.0
        # the dump comes line by line: read until it pauses
        while select.select([self.dump], [], [], wait_s)[0]:
            data = os.read(self.dump, 65536)
            if not data:
                break
            chunks.append(data)
            wait_s = 0.1 if ask else 0.0
        return last_frame(b"".join(chunks).decode(errors="replace"))

    def end(self, kill: bool) -> str:
        """Stop the worker and return how it ended (its exit status)."""
        try:
            status = self.srv.request("reap", self.pid, kill)[1]
        except OSError:
            status = "ended with its worker server"
        self.conn.close()
        os.close(self.dump)
        return status


def start_worker() -> Worker:
    """A new worker forked from the server, in the caller's directory, path and environment."""
    srv = server()
    try:
        return _fork(srv)
    except ConnectionError:  # the server ended (idle, or killed) since we looked: once more
        return _fork(server(replace=srv))


def _fork(srv: Server) -> Worker:
    mine, theirs = socket.socketpair()
    r, w = os.pipe()
    try:
        reply = srv.request("fork", fds=(theirs.fileno(), w))
        if reply[0] != "pid":
            raise OSError(reply[1])
    except BaseException:
        mine.close()
        os.close(r)
        raise
    finally:
        theirs.close()
        os.close(w)
    os.set_blocking(r, False)
    conn = Connection(mine.detach())
    conn.send(("setup", os.getcwd(), list(sys.path), dict(os.environ), list(sys.argv)))
    return Worker(reply[1], conn, r, srv)


_FRAME = re.compile(r'^\s+File "(.*)", line (\d+) in (.*)$')
_LIBRARY = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(__file__)})


def last_frame(dump: str) -> str:
    """The innermost frame of user code in a faulthandler dump (else the innermost one)."""
    frames = []
    for line in dump.splitlines():
        if frames and not line.startswith(" "):
            break  # only the first thread's stack
        m = _FRAME.match(line)
        if m:
            frames.append(m.groups())
    if not frames:
        return ""
    mine = [f for f in frames if not f[0].startswith(_LIBRARY)]
    path, line, func = (mine or frames)[0]
    return f"{func} at {path}:{line}"


def _whom(n: int) -> str:
    return "this trial" if n == 1 else f"this trial's shared environment ({n} sessions)"


def died(status: str, where: str, n: int) -> str:
    where = f", in {where}" if where else ""
    return f"the worker process died: {status} while running {_whom(n)}{where}; {NOT_RESUMED}"


def timed_out(limit: float, where: str, n: int) -> str:
    scope = "" if n == 1 else f": {_whom(n)} ran past {limit * n:g} s"
    where = f"; it was in {where} when its worker process was killed" if where else "; its worker process was killed"
    return f"trial exceeded the wall-time limit of {limit:g} s (--trial-timeout){scope}{where}; {NOT_RESUMED}"


def split_groups(specs: list, concurrency: int) -> list[list]:
    """A chunk's environment groups: `concurrency` specs that share one SimPy environment."""
    size = max(1, concurrency)
    return [specs[i:i + size] for i in range(0, len(specs), size)]


def error_record(spec: TrialSpec, message: str) -> TrialRecord:
    return TrialRecord(trial_id=spec.id, spec=spec.model_dump(mode="json"), scenario=spec.scenario.ref,
                       agent=spec.agent, profile=spec.profile_label, seed=spec.seed, replicate=spec.replicate,
                       outcome="error", error=message)


def as_pairs(group: list[TrialSpec], pairs: list | None, failure: str | None) -> list[tuple[str, str]]:
    """A group's (record JSON, events) pairs: its own, or an error record per trial."""
    if failure is None:
        return pairs
    return [(error_record(s, failure).model_dump_json(), "") for s in group]


class Pool:
    """Up to `size` workers, each running one environment group at a time."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self.idle: list[Worker] = []
        self.busy: list[Worker] = []

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, groups: Iterable[list[TrialSpec]], concurrency: int = 1, stagger_s: float = 0.0,
            trial_timeout_s: float | None = DEFAULT_TRIAL_TIMEOUT_S
            ) -> Iterator[tuple[list[TrialSpec], list | None, str | None]]:
        """(group, its (record, events) pairs, None) as groups finish, or (group, None, why)
        for a group whose worker died or ran past `trial_timeout_s` per trial."""
        todo = iter(groups)
        while True:
            finished = self._collect(trial_timeout_s) if self.busy else []
            # refill before handing results back: workers run while the driver writes
            while len(self.busy) < self.size and (group := next(todo, None)) is not None:
                self._start(group, concurrency, stagger_s, trial_timeout_s)
            yield from finished
            if not self.busy:
                return

    def _start(self, group: list[TrialSpec], concurrency: int, stagger_s: float, limit: float | None) -> None:
        msg = ("run", [s.model_dump(mode="json") for s in group], concurrency, stagger_s)
        for attempt in range(2):
            w = self._idle_worker() or start_worker()
            try:
                w.conn.send(msg)
                break
            except OSError:  # it ended while idle (a stray thread of user code?): not this group's doing
                w.end(kill=True)
                if attempt:
                    raise
        w.group = group
        w.deadline = time.monotonic() + limit * len(group) if limit else float("inf")
        self.busy.append(w)

    def _idle_worker(self) -> Worker | None:
        while self.idle:
            w = self.idle.pop()
            if not w.conn.poll(0):  # an idle worker says nothing: readable means it ended
                return w
            w.end(kill=True)
        return None

    def _collect(self, limit: float | None) -> list[tuple[list[TrialSpec], list | None, str | None]]:
        """Wait until a worker finishes, dies or runs out of time; what ended, as run() yields it."""
        first = min(w.deadline for w in self.busy)
        timeout = None if first == float("inf") else max(0.0, first - time.monotonic())
        ready = set(wait([w.conn for w in self.busy], timeout))
        finished = []
        for w in list(self.busy):
            if w.conn in ready or w.conn.poll(0):
                finished.append(self._receive(w))
            elif time.monotonic() >= w.deadline:
                where = w.stack(ask=True)
                self._drop(w, kill=True)
                finished.append((w.group, None, timed_out(limit, where, len(w.group))))
        return finished

    def _receive(self, w: Worker) -> tuple[list[TrialSpec], list | None, str | None]:
        group = w.group
        try:
            kind, payload = w.conn.recv()
        except (EOFError, OSError, pickle.UnpicklingError):  # it died, maybe in the middle of a reply
            where = w.stack(ask=False)
            return group, None, died(self._drop(w, kill=True), where, len(group))
        self.busy.remove(w)
        self.idle.append(w)
        if kind == "done":
            return group, payload, None
        return group, None, f"the worker failed while running {_whom(len(group))}: {payload}; {NOT_RESUMED}"

    def _drop(self, w: Worker, kill: bool) -> str:
        self.busy.remove(w)
        return w.end(kill)

    def close(self) -> None:
        """End every worker: idle ones are asked to stop, busy ones (an abandoned run) killed."""
        for w in self.idle:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w, kill in [(w, False) for w in self.idle] + [(w, True) for w in self.busy]:
            try:
                w.end(kill)
            except OSError:
                pass
        self.idle, self.busy = [], []


def run_isolated(specs: list[dict], concurrency: int = 1, stagger_s: float = 0.0,
                 trial_timeout_s: float | None = DEFAULT_TRIAL_TIMEOUT_S) -> list[tuple[str, str]]:
    """A Dask task: a chunk's groups, each run in a worker process of this Dask worker, so a
    crash or a hang costs its own group only, never the Dask worker or the rest of the chunk."""
    parsed = [TrialSpec.model_validate(s) for s in specs]
    out: list[tuple[str, str]] = []
    with Pool(1) as pool:
        for group, pairs, failure in pool.run(split_groups(parsed, concurrency), concurrency, stagger_s,
                                              trial_timeout_s):
            out.extend(as_pairs(group, pairs, failure))
    return out
