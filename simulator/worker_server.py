"""The worker server (started by workers.Server): a process that imports the engine once and
then forks one worker per request. It runs no user code itself; its workers do, one
environment group at a time, for the driver that holds the other end of their socket.
"""
from __future__ import annotations

import faulthandler
import os
import pickle
import resource
import select
import signal
import socket
import sys
import time
from multiprocessing.connection import Connection

from .executors import run_chunk
from .registry import KINDS, names
from .workers import die_with_parent

# With no worker alive and no request for this long the server ends: a Dask worker keeps no
# idle process around, and the next request starts a fresh server.
IDLE_EXIT_S = 300.0
# Libraries nearly every design imports: loaded once here, not in every new worker. The
# server imports no user code (a design file, a factory): that runs in workers only.
PRELOAD = ("langgraph.prebuilt", "tenacity")


def serve(control_fd: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it then ends us
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    for kind in KINDS:  # built-ins and plug-ins, as the driver loads them: not per worker
        names(kind)
    ctl = socket.socket(fileno=control_fd)
    children: set[int] = set()
    last = time.monotonic()
    while True:
        if not select.select([ctl], [], [], 1.0)[0]:
            if os.getppid() != parent or (not children and time.monotonic() - last > IDLE_EXIT_S):
                return
            continue
        msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 2)
        if not msg:
            return  # the driver is gone
        op, *args = pickle.loads(msg)
        if op == "fork":
            reply = _fork(ctl, fds, children)
        elif op == "signal":
            if args[0] in children:
                try:
                    os.kill(args[0], args[1])
                except ProcessLookupError:
                    pass
            reply = ("ok",)
        else:
            reply = ("status", _reap(args[0], args[1], children))
        ctl.send(pickle.dumps(reply))
        last = time.monotonic()


def _fork(ctl: socket.socket, fds: list[int], children: set[int]) -> tuple:
    me = os.getpid()
    try:
        pid = os.fork()
    except OSError as e:
        for fd in fds:
            os.close(fd)
        return ("error", f"cannot start a worker process: {e}")
    if pid == 0:
        code = 1
        try:
            ctl.close()
            _work(fds[0], fds[1], me)
            code = 0
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    children.add(pid)
    return ("pid", pid)


def _reap(pid: int, kill: bool, children: set[int]) -> str:
    """Wait for a worker to end (killing it first if asked, or if it lingers) and say how."""
    if pid not in children:
        return "unknown"
    children.discard(pid)
    if kill:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while True:
        done, status = os.waitpid(pid, 0 if kill else os.WNOHANG)
        if done:
            return describe(status)
        if time.monotonic() > deadline:  # it closed its socket but did not exit
            os.kill(pid, signal.SIGKILL)
            kill = True
        time.sleep(0.01)


def describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        why = "from outside, often by the out-of-memory killer" if sig == signal.SIGKILL else signal.strsignal(sig)
        return f"killed by {name} ({why or name})"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _work(sock_fd: int, dump_fd: int, parent: int) -> None:
    """A worker: run each group the driver sends and send back its records."""
    die_with_parent(parent)
    # a design that crashes in every trial of a sweep would leave a core file per trial;
    # the record names the crash and its Python frame instead
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    # a fatal signal (SIGSEGV, SIGABRT...) or the driver's SIGUSR1 before a timeout kill
    # writes the Python stack to the driver, which names the frame in the trial's error
    faulthandler.enable(file=dump_fd, all_threads=False)
    faulthandler.register(signal.SIGUSR1, file=dump_fd, all_threads=False)
    conn = Connection(sock_fd)
    _, cwd, path, environ, argv = conn.recv()
    os.chdir(cwd)
    sys.path[:], sys.argv[:] = path, argv
    os.environ.clear()
    os.environ.update(environ)
    while True:
        while not conn.poll(1.0):
            if os.getppid() != parent:
                return
        msg = conn.recv()
        if msg is None:
            return
        _, specs, concurrency, stagger_s = msg
        try:
            reply = ("done", run_chunk(specs, concurrency, stagger_s))
        except BaseException as e:  # the engine keeps a trial's own errors; this is anything else
            reply = ("failed", f"{type(e).__name__}: {e}")
        conn.send(reply)
