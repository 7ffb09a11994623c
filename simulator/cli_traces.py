"""`attrition import-trace` and `export-trace`: production sessions in, attrition's runs out,
as thin layers over trace_read/trace_import and trace_export. Registered by cli.py, which
hands them its error and output helpers (so this module does not import cli.py)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .cli_args import path as _path
from .files import atomic_write, check_writable
from .scenario import ScenarioError, load_scenario_text
from .trace_export import export_run
from .trace_import import differences, dump_yaml, to_scenario
from .trace_read import TraceError, read_trace


def commands(guard, fail, err) -> dict:
    """The commands, given cli.py's guard (bad input -> one message, exit 2), fail and stderr."""

    def import_trace(
        trace_file: Path = typer.Argument(..., parser=_path, metavar="FILE", help="a recorded session: OTLP JSON "
                                          "with OpenTelemetry GenAI spans, or a LangSmith run export (JSON or JSONL)"),
        output: Path = typer.Option(..., "--out", "-o", parser=_path, help="the scenario file to write (YAML)"),
        fmt: str = typer.Option("auto", "--format", help="otlp, langsmith or auto (by the file's shape)"),
        trace: Optional[str] = typer.Option(None, "--trace", help="which trace of a file that holds several: "
                                            "its id, or the start of it (default: the first)"),
        name: Optional[str] = typer.Option(None, "--name", help="the scenario's name (default: the output file's)"),
    ) -> None:
        """Turn a recorded session into a scenario: tools, world rows, turns, golden path, checks."""
        if fmt not in ("auto", "otlp", "langsmith"):
            fail(f"--format is otlp, langsmith or auto, not {fmt!r}")
        if not trace_file.is_file():
            fail(f"no such trace file: {trace_file}")
        guard(lambda: check_writable(output))
        sc_name = name or re.sub(r"[^\w-]+", "_", output.name.split(".")[0]) or "imported"
        try:
            session = read_trace(trace_file, fmt, trace)
            data, review, mapped = to_scenario(session, sc_name)
        except TraceError as e:
            fail(str(e))
        except UnicodeDecodeError:
            fail(f"{trace_file}: not UTF-8 text (a trace file is JSON)")
        text = dump_yaml(data, review)
        guard(lambda: atomic_write(output, text))
        try:
            sc = load_scenario_text(text, str(output))
        except ScenarioError as e:  # written anyway: the person reviewing it fixes what is listed
            fail(f"{output} was written but does not validate:\n{e}", 1)
        off = differences(sc, session, mapped)
        calls = sum(1 for c in session.calls if not c.error)
        err.print(f"{output}: {len(sc.tools)} tools, {sum(len(t) for t in sc.world.values())} world rows, "
                  f"{len(sc.turns)} turns, {len(sc.golden_path)} golden steps from {calls} calls, "
                  f"{len(sc.success.state)} state checks ({session.format}"
                  + (f", model {session.model}" if session.model else "") + ")", highlight=False, markup=False)
        for line in review + off:
            err.print(f"  review: {line}", highlight=False, markup=False)
        if off:
            fail(f"the golden path does not reproduce {len(off)} of the trace's calls (listed above)", 1)

    def export_trace(
        results: Path = typer.Argument(..., parser=_path, metavar="RESULTS", help="a results directory"),
        output: Optional[Path] = typer.Option(None, "--out", "-o", parser=_path, help="file to write OTLP JSON "
                                              "to (default: standard output)"),
        trial: Optional[List[str]] = typer.Option(None, "--trial", help="only this trial (an id or its start; "
                                                  "repeatable); default: every trial"),
    ) -> None:
        """Write a run's events as OpenTelemetry GenAI spans (OTLP JSON), one trace per trial."""
        if output is not None:
            guard(lambda: check_writable(output))
        data = guard(lambda: export_run(results, trial))
        text = json.dumps(data, default=str)
        if output is None:
            sys.stdout.write(text + "\n")
            return
        guard(lambda: atomic_write(output, text))
        n = sum(len(ss["spans"]) for rs in data["resourceSpans"] for ss in rs["scopeSpans"])
        err.print(f"{output}: {n} spans", highlight=False, markup=False)

    return {"import-trace": import_trace, "export-trace": export_trace}
