"""Crash safety: a sweep's driver killed with SIGKILL at random moments, then resumed.

    python benchmarks/kill9.py [--points 20] [--seed 0] [--executors serial,process,dask]
                               [--sweep FILE] [--workers 2] [--grace 5] [--keep]

For each executor, `attrition sweep FILE` runs twice uninterrupted (the reference, and a
second run to find which record fields are not deterministic, such as wall time). Then, at
each of --points kill points (a delay drawn uniformly between the start and the second
reference run's wall time, from random.Random seeded with --seed and the executor's name), a fresh sweep is
started in its own session and its driver alone, the `attrition` process, is sent SIGKILL.
The benchmark then counts:

  left running  processes the driver had started (its session, or any descendant seen while
                it ran) still alive --grace seconds after the kill; they are then killed
  lost          trial ids of the reference missing after `attrition sweep FILE --out DIR
                --resume` has run to completion (where --resume refuses because the kill
                came before records.jsonl existed, a fresh run with the same --out instead)
  duplicated    trial ids on more than one line of the final records.jsonl
  differing     final records unequal to the reference's record of the same id, once the
                fields that differ between the two uninterrupted runs are left out

and, below the table, the trials whose events in the final events.jsonl are missing,
repeated, extra or changed against the reference's.

Processes are found through /proc (Linux, as the worker processes' PR_SET_PDEATHSIG is).
The process and dask executors get --workers (2 by default; dask: its local cluster). By
default the sweep is one written to the temporary directory: 320 short chain trials, about
15-35 s per run on 2 cores, most of it spent running trials (a run's start-up, a Dask local
cluster's above all, and its closing analysis take the rest); all 3 executors with 20
points take about 45 minutes. Everything
goes to a temporary directory, removed at the end unless --keep (nothing is written where it
runs); the table and findings go to stdout, progress to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path


def sweep_file(folder: Path) -> Path:
    f = folder / "kill9.yaml"
    f.write_text(textwrap.dedent("""
        name: kill9
        seed: 7
        replicates: 8
        scenarios:
          - ref: chain
            params: {length: [2, 4, 8, 16, 32], task: [0, 1, 2, 3]}
        agents: [react]
        profiles: [strong, weak]
        """))
    return f


def attrition() -> str:
    here = Path(sys.executable).with_name("attrition")
    found = str(here) if here.exists() else shutil.which("attrition")
    if not found:
        sys.exit("no `attrition` command: pip install -e . first")
    return found


# --- processes, from /proc ------------------------------------------------------------

def processes() -> dict[int, tuple[int, int, str, int]]:
    """pid -> (ppid, session id, state, start time in clock ticks) of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue  # it ended while we looked
        f = stat[stat.rindex(")") + 2:].split()  # fields from the third (state) on
        out[int(name)] = (int(f[1]), int(f[3]), f[0], int(f[19]))
    return out


def descendants(root: int, procs: dict) -> dict[int, int]:
    """pid -> start time of every process below `root` (through parent links)."""
    kids: dict[int, list[int]] = {}
    for pid, (ppid, *_rest) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    found, todo = {}, list(kids.get(root, ()))
    while todo:
        pid = todo.pop()
        found[pid] = procs[pid][3]
        todo += kids.get(pid, ())
    return found


def watch(root: int, seen: dict[int, int]) -> None:
    """Add the processes now below `root` to `seen`."""
    seen.update(descendants(root, processes()))


def survivors(session: int, seen: dict[int, int], exclude: int) -> list[int]:
    """Live (not zombie) processes of `session`, or seen below its leader earlier."""
    return sorted(pid for pid, (_, sid, state, start) in processes().items()
                  if pid != exclude and state not in "ZX" and (sid == session or seen.get(pid) == start))


def describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        ppid = processes().get(pid, (0,))[0]
    except OSError:
        return f"{pid}: (gone)"
    return f"pid {pid} (parent {ppid}): {cmd[:160]}"


def wait_gone(session: int, seen: dict[int, int], exclude: int, grace: float) -> tuple[list[int], float, list[str]]:
    """Poll until the session's processes have all ended or `grace` seconds pass: (those
    still alive, seconds waited, what the last to end were)."""
    t0, names, last = time.monotonic(), {}, []
    while True:
        alive = survivors(session, seen, exclude)
        waited = time.monotonic() - t0
        if not alive or waited >= grace:
            return alive, waited, last
        names.update((pid, describe(pid)) for pid in alive if pid not in names)
        last = [names[pid] for pid in alive]
        time.sleep(0.05)


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- runs -----------------------------------------------------------------------------

def command(exe: str, sweep: Path, out: Path, executor: str, workers: int, resume: bool = False) -> list[str]:
    cmd = [exe, "sweep", str(sweep), "--out", str(out), "--executor", executor]
    if executor != "serial":
        cmd += ["--workers", str(workers)]
    return cmd + (["--resume"] if resume else [])


def start(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def run(cmd: list[str], cwd: Path, log: Path, timeout: float, grace: float, records: Path | None = None) -> dict:
    """Run to the end: exit code, wall time, processes it left behind (then killed), and
    when `records` first grew and last grew (seconds from the start)."""
    t0 = time.monotonic()
    p = start(cmd, cwd, log)
    seen: dict[int, int] = {}
    size, first, last = 0, None, None
    while p.poll() is None:
        watch(p.pid, seen)
        now = time.monotonic() - t0
        if records is not None and records.exists() and records.stat().st_size != size:
            size, last = records.stat().st_size, now
            first = now if first is None else first
        if now > timeout:
            p.kill()
            p.wait()
            break
        time.sleep(0.05)
    wall = time.monotonic() - t0
    alive, _, _ = wait_gone(p.pid, seen, p.pid, grace)
    left = [describe(pid) for pid in alive]
    kill_all(alive)
    return {"rc": p.returncode, "wall": wall, "left": left, "timed_out": wall > timeout,
            "first_commit": first, "last_commit": last}


def tail(log: Path, n: int = 3) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return " | ".join(line.strip() for line in lines[-n:])


# --- records --------------------------------------------------------------------------

def _objects(path: Path, key: str):
    """Each line of a JSON-lines log as an object holding a text `key`, or None where it is not
    one (a torn or damaged line: counted here, where the project's reader would refuse it)."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            yield obj if isinstance(obj, dict) and isinstance(obj.get(key), str) else None


def read_log(path: Path) -> tuple[list[dict], int]:
    """The records of a records.jsonl, and how many of its lines are not a JSON object."""
    objs = list(_objects(path, "trial_id"))
    return [o for o in objs if o is not None], sum(o is None for o in objs)


def read_events(path: Path) -> tuple[dict[str, list[dict]], int]:
    """A run's events.jsonl by trial id (in log order), and how many lines are unreadable."""
    out: dict[str, list[dict]] = {}
    bad = 0
    for e in _objects(path, "trial"):
        if e is None:
            bad += 1
        else:
            out.setdefault(e["trial"], []).append(e)
    return out, bad


def unstable_event_fields(a: dict[str, list[dict]], b: dict[str, list[dict]]) -> set[str]:
    fields = set()
    for tid in a.keys() & b.keys():
        for x, y in zip(a[tid], b[tid]):
            fields |= {k for k in x.keys() | y.keys() if x.get(k) != y.get(k)}
    return fields


def events_differing(ref: dict[str, list[dict]], got: dict[str, list[dict]], unstable: set[str]) -> list[str]:
    """Trials whose events are missing, repeated, extra or changed against the reference."""
    return sorted(t for t in ref.keys() | got.keys()
                  if [strip(e, unstable) for e in ref.get(t, [])] != [strip(e, unstable) for e in got.get(t, [])])


def by_id(recs: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in recs:
        out.setdefault(r["trial_id"], r)
    return out


def unstable_fields(a: dict[str, dict], b: dict[str, dict]) -> set[str]:
    """Top-level record fields whose value differs for some trial between two runs."""
    fields = set()
    for tid in a.keys() & b.keys():
        x, y = a[tid], b[tid]
        fields |= {k for k in x.keys() | y.keys() if x.get(k) != y.get(k)}
    return fields


def strip(rec: dict, unstable: set[str]) -> dict:
    return {k: v for k, v in rec.items() if k not in unstable}


def compare(ref: dict[str, dict], recs: list[dict], unstable: set[str]) -> dict:
    counts = Counter(r["trial_id"] for r in recs)
    final = by_id(recs)
    return {"lost": sorted(ref.keys() - final.keys()),
            "extra": sorted(final.keys() - ref.keys()),
            "duplicated": sorted(t for t, n in counts.items() if n > 1),
            "differing": sorted(t for t in ref.keys() & final.keys()
                                if any(strip(r, unstable) != strip(ref[t], unstable)
                                       for r in recs if r["trial_id"] == t))}


# --- one executor ---------------------------------------------------------------------

def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench(executor: str, sweep: Path, work: Path, args, exe: str) -> dict:
    t_start = time.monotonic()
    refs = []
    for k in range(2):
        out = work / f"{executor}-ref{k}"
        r = run(command(exe, sweep, out, executor, args.workers), work, work / f"{out.name}.log",
                timeout=3600, grace=args.grace, records=out / "records.jsonl")
        if r["rc"] != 0:
            sys.exit(f"{executor}: the uninterrupted run failed (exit {r['rc']}): {tail(work / f'{out.name}.log')}")
        recs, _ = read_log(out / "records.jsonl")
        refs.append((r, recs, read_events(out / "events.jsonl")[0]))
        say(f"{executor}: reference run {k + 1}: {len(recs)} records in {r['wall']:.1f} s "
            f"(committed from {r['first_commit'] or 0:.1f} s to {r['last_commit'] or 0:.1f} s)")
    ref, ref_events = by_id(refs[0][1]), refs[0][2]
    unstable = unstable_fields(ref, by_id(refs[1][1]))
    ev_unstable = unstable_event_fields(ref_events, refs[1][2])
    if events_differing(ref_events, refs[1][2], ev_unstable):
        say(f"{executor}: the two uninterrupted runs' events differ in more than their fields' values")
    ref_wall = refs[1][0]["wall"]  # the warm run: the first also pays for cold caches
    res = {"executor": executor, "ref": ref, "unstable": unstable, "ev_unstable": ev_unstable,
           "ref_runs": [r[0] for r in refs], "in_flight": 0, "ev_differing": 0, "ev_bad": 0,
           "points": args.points, "killed": 0, "finished_first": 0, "fresh": 0, "lost": 0, "duplicated": 0,
           "differing": 0, "extra": 0, "left": [], "left_detail": [], "cleanup_s": [], "resume_walls": [],
           "notes": [], "refused": set()}
    for r, *_ in refs:
        res["notes"] += [f"left running after a clean uninterrupted run: {d}" for d in r["left"]]

    rng = random.Random(f"{args.seed}:{executor}")
    for i in range(args.points):
        delay = rng.uniform(0.0, ref_wall)
        out = work / f"{executor}-{i:02d}"
        log = work / f"{out.name}.log"
        p = start(command(exe, sweep, out, executor, args.workers), work, log)
        t0, seen = time.monotonic(), {}
        while p.poll() is None and time.monotonic() - t0 < delay:
            watch(p.pid, seen)
            time.sleep(min(0.05, max(0.0, delay - (time.monotonic() - t0))))
        killed = p.poll() is None
        if not killed:
            res["finished_first"] += 1
            say(f"{executor} #{i:02d}: finished (exit {p.returncode}) before its kill at {delay:.2f} s; "
                f"resumed all the same")
        else:
            watch(p.pid, seen)
            os.kill(p.pid, signal.SIGKILL)  # the driver only: its workers must go by themselves
            p.wait()
            res["killed"] += 1
        at_kill, torn = read_log(out / "records.jsonl")
        res["in_flight"] += killed and 0 < len(at_kill) < len(ref)
        alive, waited, last = wait_gone(p.pid, seen, p.pid, args.grace)
        res["left"].append(len(alive))
        if alive:
            res["left_detail"] += [f"#{i:02d} (killed at {delay:.2f} s): {describe(pid)}" for pid in alive]
            kill_all(alive)
            wait_gone(p.pid, seen, p.pid, 2.0)
        else:
            res["cleanup_s"].append((waited, i, last))

        resume, limit = True, 20 * ref_wall + 120
        r = run(command(exe, sweep, out, executor, args.workers, resume=True), work, log, limit, args.grace)
        if r["rc"] != 0 and not (out / "records.jsonl").exists():  # killed before the log existed
            res["fresh"] += 1
            res["refused"].add(tail(log, 1).replace(str(out), "DIR"))
            resume = False
            r = run(command(exe, sweep, out, executor, args.workers), work, log, limit, args.grace)
        res["resume_walls"].append(r["wall"])
        res["notes"] += [f"#{i:02d}: left running after the resumed run ended: {d}" for d in r["left"]]
        if r["rc"] != 0:
            res["notes"].append(f"#{i:02d}: {'resume' if resume else 'fresh run'} exited {r['rc']}"
                                f"{' (timed out)' if r['timed_out'] else ''}: {tail(log)}")
        final, bad = read_log(out / "records.jsonl")
        c = compare(ref, final, unstable)
        for key in ("lost", "duplicated", "differing", "extra"):
            res[key] += len(c[key])
            if c[key]:
                res["notes"].append(f"#{i:02d} (killed at {delay:.2f} s): {key} {len(c[key])}: "
                                    f"{', '.join(c[key][:4])}{' ...' if len(c[key]) > 4 else ''}")
        if bad:
            res["notes"].append(f"#{i:02d}: {bad} unreadable line(s) in the final records.jsonl")
        events, ev_bad = read_events(out / "events.jsonl")
        ev_diff = events_differing(ref_events, events, ev_unstable)
        res["ev_differing"] += len(ev_diff)
        res["ev_bad"] += ev_bad
        if ev_diff or ev_bad:
            res["notes"].append(f"#{i:02d}: events.jsonl: {len(ev_diff)} trial(s) whose events differ from the "
                                f"reference ({', '.join(ev_diff[:4])}), {ev_bad} unreadable line(s)")
        del events
        say(f"{executor} #{i:02d}: {'kill' if killed else 'no kill'} at {delay:5.2f} s, "
            f"{len(at_kill):3d} committed"
            f"{f' + {torn} torn' if torn else ''}, {len(alive)} left running"
            f"{'' if alive else f' (all gone in {waited:.2f} s)'}; "
            f"{'resumed' if resume else 'ran afresh'} in {r['wall']:.1f} s: lost {len(c['lost'])}, "
            f"dup {len(c['duplicated'])}, differing {len(c['differing'])}")
    res["total"] = time.monotonic() - t_start
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20, help="kill points per executor")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    ap.add_argument("--executors", default="serial,process,dask")
    ap.add_argument("--sweep", type=Path, default=None, help="sweep file (default: an 80-trial sweep)")
    ap.add_argument("--workers", type=int, default=2, help="workers of the process and dask executors")
    ap.add_argument("--grace", type=float, default=5.0, help="seconds the killed driver's processes get to end")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, results)")
    args = ap.parse_args()
    exe = attrition()
    work = Path(tempfile.mkdtemp(prefix="attrition-kill9-"))
    t0 = time.monotonic()
    try:
        sweep = args.sweep.resolve() if args.sweep else sweep_file(work)
        results = [bench(ex.strip(), sweep, work, args, exe) for ex in args.executors.split(",") if ex.strip()]
    finally:
        if args.keep:
            say(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t0

    trials = max((len(r["ref"]) for r in results), default=0)
    print(f"sweep {sweep.name if args.sweep else 'kill9.yaml'} ({trials} trials), {args.points} kill points per "
          f"executor, seed {args.seed}, grace {args.grace:g} s, workers {args.workers} (process, dask)")
    head = (f"{'executor':<9} {'points':>6} {'killed':>6} {'in flight':>9} {'lost':>5} {'duplicated':>10} "
            f"{'differing':>9} {'left running sum/max':>20} {'reference s (1st/2nd)':>21} {'commits from-to s':>17} "
            f"{'resume s (mean)':>15} {'total s':>8}")
    print(head)
    print("-" * len(head))
    for r in results:
        left = f"{sum(r['left'])}/{max(r['left'], default=0)}"
        resume = statistics.mean(r["resume_walls"]) if r["resume_walls"] else 0.0
        one, two = r["ref_runs"]
        commits = f"{two['first_commit'] or 0:.1f}-{two['last_commit'] or 0:.1f}"
        walls = f"{one['wall']:.1f}/{two['wall']:.1f}"
        print(f"{r['executor']:<9} {r['points']:>6} {r['killed']:>6} {r['in_flight']:>9} {r['lost']:>5} "
              f"{r['duplicated']:>10} {r['differing']:>9} {left:>20} {walls:>21} "
              f"{commits:>17} {resume:>15.1f} {r['total']:>8.1f}")
    print(f"total wall time {total:.1f} s")
    print("killed: kill points reached before the run ended by itself; in flight: kills with some but not all "
          "trials committed; commits from-to: when the warm reference run (2nd) wrote its first and last record; "
          "kill delays are drawn up to its wall time")
    for r in results:
        ex = r["executor"]
        print(f"{ex}: fields left out of the comparison (differ between two uninterrupted runs): records: "
              f"{', '.join(sorted(r['unstable'])) or 'none'}; events: {', '.join(sorted(r['ev_unstable'])) or 'none'}")
        print(f"{ex}: events.jsonl after resume: {r['ev_differing']} trial(s) over all points whose events are "
              f"missing, repeated or changed against the reference; {r['ev_bad']} unreadable line(s)")
        if r["finished_first"] or r["fresh"]:
            print(f"{ex}: {r['finished_first']} point(s) finished before the kill; {r['fresh']} killed "
                  f"before records.jsonl existed, where --resume refuses ({'; '.join(sorted(r['refused']))}), "
                  f"so run afresh")
        if r["cleanup_s"]:
            slow, i, last = max(r["cleanup_s"])
            print(f"{ex}: where nothing was left running, the last process ended within {slow:.2f} s of the kill "
                  f"(median {statistics.median(w for w, *_ in r['cleanup_s']):.2f} s; slowest #{i:02d}, "
                  f"last to end: {'; '.join(last) or '-'})")
        if r["extra"]:
            print(f"{ex}: {r['extra']} trial id(s) in the final records that the reference lacks")
        for line in r["left_detail"]:
            print(f"{ex}: left running {line}")
        for line in r["notes"]:
            print(f"{ex}: {line}")
    if len(results) > 1:  # the README: every executor gives identical records
        base = results[0]
        for r in results[1:]:
            unstable = base["unstable"] | r["unstable"]
            c = compare(base["ref"], list(r["ref"].values()), unstable)
            print(f"{r['executor']} vs {base['executor']} (uninterrupted): {len(c['differing'])} differing, "
                  f"{len(c['lost'])} missing, {len(c['extra'])} extra")


if __name__ == "__main__":
    main()
