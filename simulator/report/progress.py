"""Progress of a run: what a user sees while trials finish."""
from __future__ import annotations

import sys

from rich.console import Console

from .terminal import pct


def progress(total: int, err: Console):
    """(bar or None, tick(record)): a live bar on a terminal, sparse plain lines otherwise
    (CI logs). `err` is the console the bar draws on."""
    state = {"done": 0, "succ": 0}
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        bar = Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[speed]}"),
                       TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[rate]}"),
                       console=err, transient=True)
        task = bar.add_task("run", total=total, rate="", speed="")

        def tick(rec):
            state["done"] += 1
            state["succ"] += rec.outcome == "success"
            speed = bar.tasks[0].speed
            bar.update(task, advance=1, rate=f"success {pct(state['succ'] / state['done'])}",
                       speed=f"{speed:.1f}/s" if speed else "")
        return bar, tick
    every = max(1, total // 10)

    def tick(rec):
        state["done"] += 1
        state["succ"] += rec.outcome == "success"
        if state["done"] % every == 0 or state["done"] == total:
            print(f"[{state['done']}/{total}] success so far {pct(state['succ'] / state['done'])}",
                  file=sys.stderr, flush=True)
    return None, tick
