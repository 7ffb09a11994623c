"""`attrition run`: one cell, N trials, with the simulated model or a provider's. A thin
layer over runs.run_cell; registered by cli.py, which hands it its error and output helpers
(so this module does not import cli.py)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .cli_args import params as _params, path as _path, trial_timeout_option
from .files import check_writable
from .live import LiveOptions
from .report import terminal
from .report.progress import progress
from .runs import run_cell
from .spec import MAX_SEED, MAX_VIRTUAL_S

# Limits on numbers that size work or memory: past them a typo hangs the machine instead of
# failing (a million trials is hours; a thousand sessions in one environment, about a gigabyte).
MAX_TRIALS = 1_000_000
MAX_CONCURRENCY = 1_000
MAX_WORKERS = 256
MAX_REQUEST_TIMEOUT_S = 3600.0
MAX_IN_FLIGHT = 64


def live_options():
    """The options every command that can call a provider takes (cassettes, limits)."""
    return dict(
        record=typer.Option(None, "--record", parser=_path, help="store every real model request and response "
                            "in this cassette directory"),
        replay=typer.Option(None, "--replay", parser=_path, help="answer real model requests from this cassette "
                            "directory, without a network"),
        fallback=typer.Option("error", "--replay-fallback", help="on a request the cassettes do not hold: error "
                              "(the trial is an error), live (call the provider and add the answer to the "
                              "cassettes) or simulated (the simulated model answers)"),
        rpm=typer.Option(None, "--rpm", help="client-side limit on real model requests per minute, across workers"),
        timeout=typer.Option(120.0, "--request-timeout", help="wall-clock seconds one real model request may take, "
                             f"1 to {MAX_REQUEST_TIMEOUT_S:.0f}"),
        retries=typer.Option(2, "--max-retries", min=0, max=10, help="the provider client's own retries of 429s "
                             "(after retry-after) and 5xx, 0 to 10"),
        in_flight=typer.Option(1, "--in-flight", min=1, max=MAX_IN_FLIGHT, help="trials with a real model each worker "
                               f"runs at once (threads waiting on the provider), 1 to {MAX_IN_FLIGHT}"),
    )


def check_live(fail, model: str | None, record, replay, fallback: str, rpm, timeout: float, retries: int,
               in_flight: int, workers: int, needs_model: bool = True) -> LiveOptions:
    """Check the real-model options before anything runs; the options every worker reads."""
    if needs_model and model is None and (record or replay):
        fail("--record and --replay need --model PROVIDER:NAME (the simulated model needs no cassette)")
    if record and replay:
        fail("--record and --replay exclude each other: record a run, then replay it")
    if fallback not in ("error", "live", "simulated"):
        fail(f"--replay-fallback is error, live or simulated, not {fallback!r}")
    if replay is not None and not Path(replay).is_dir():
        fail(f"--replay {replay}: no such cassette directory")
    if rpm is not None and not (math.isfinite(rpm) and 0 < rpm <= 1e6):
        fail(f"--rpm must be a number of requests per minute above 0 (at most 1,000,000), not {rpm}")
    if not (math.isfinite(timeout) and 1 <= timeout <= MAX_REQUEST_TIMEOUT_S):
        fail(f"--request-timeout must be 1 to {MAX_REQUEST_TIMEOUT_S:.0f} seconds, not {timeout}")
    if record is not None:
        try:
            check_writable(record, directory=True)
        except (OSError, ValueError) as e:
            fail(f"--record {record}: {e}")
    return LiveOptions(record=str(Path(record).resolve()) if record else None,
                       replay=str(Path(replay).resolve()) if replay else None, fallback=fallback,
                       rpm=rpm / max(1, workers) if rpm else None, timeout_s=timeout, max_retries=retries,
                       in_flight=in_flight)


def command(_guard, _fail, err, _style, _show):
    """The `run` command, given cli.py's guard, fail, stderr, style and stdout writer."""
    live = live_options()

    def _run_inputs(budget: list[str] | None, stagger: float, out_dir: Path | None) -> dict:
        """Check what `run` can check before any trial runs; return the budgets."""
        budgets = _guard(lambda: _params(budget, "--budget"))
        known = ("max_model_calls", "max_tool_calls", "max_steps", "max_tokens", "max_sim_time_s")
        bad = set(budgets) - set(known)
        if bad:
            _fail(f"unknown budget {', '.join(sorted(bad))}; use {', '.join(known)}")
        if not (math.isfinite(stagger) and 0 <= stagger <= MAX_VIRTUAL_S):
            _fail(f"--stagger must be a finite number of virtual seconds from 0 to {MAX_VIRTUAL_S:.0f} (30 days), "
                  f"not {stagger}")
        _guard(lambda: check_writable(out_dir if out_dir is not None else Path("results"), directory=True))
        return budgets

    def run(
        scenario: str = typer.Argument(..., help="scenario file, shipped scenario name, or template "
                                       "(e.g. chain, chain:length=64)"),
        agent: str = typer.Option("react", "--agent", "-a", help="design name, path/file.py:build or pkg.module:build"),
        trials: int = typer.Option(20, "--trials", "-n", min=1, max=MAX_TRIALS,
                                   help=f"number of trials (replicates), 1 to {MAX_TRIALS:,}"),
        seed: int = typer.Option(0, "--seed", "-s", min=0, max=MAX_SEED,
                                 help="sweep seed, 0 to 2**63 - 1; same seed, same results"),
        profile: str = typer.Option("strong", "--profile", help="simulated model profile (attrition list profiles)"),
        param: Optional[List[str]] = typer.Option(None, "--param", "-p", help="template parameter key=value (repeatable)"),
        agent_param: Optional[List[str]] = typer.Option(None, "--agent-param", help="design parameter key=value (repeatable)"),
        profile_param: Optional[List[str]] = typer.Option(None, "--profile-param", help="override a profile parameter key=value"),
        budget: Optional[List[str]] = typer.Option(None, "--budget", help="max_model_calls=N, max_tool_calls=N, max_steps=N (graph supersteps), "
                                                    "max_tokens=N or max_sim_time_s=S"),
        fault: Optional[List[str]] = typer.Option(None, "--fault", "-f", help="NAME[:key=value,...] (repeatable; "
                                                  "attrition list faults), e.g. rate_limit:rate=0.3"),
        concurrency: int = typer.Option(1, "--concurrency", min=1, max=MAX_CONCURRENCY, help="sessions sharing one "
                                        f"virtual environment, 1 to {MAX_CONCURRENCY:,} (and its provider: shared "
                                        "limits and outages hit them together)"),
        stagger: float = typer.Option(0.0, "--stagger", help="virtual seconds between session arrivals within a "
                                      f"shared environment, 0 to {MAX_VIRTUAL_S:.0f} (30 days)"),
        reviewer: Optional[str] = typer.Option(None, "--reviewer", help="the human who answers the graph's "
                                               "interrupts: approve (default), reject, none (nobody answers), or "
                                               "key=value,... e.g. reject_rate=0.1,catches_errors=0.9,median_s=120"),
        out_dir: Optional[Path] = typer.Option(None, "--out", parser=_path, help="results directory (default results/<run-id>)"),
        trial_timeout: float = trial_timeout_option(),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="a provider's model instead of the "
                                            "simulated one: PROVIDER:NAME (every role) or ROLE=PROVIDER:NAME,... "
                                            "e.g. openai:gpt-4o-mini or agent=openai:gpt-4o,verifier=ollama:llama3.1"),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="an OpenAI-compatible server for --model "
                                               "(vLLM, Ollama, LiteLLM, a gateway), e.g. http://localhost:8000/v1"),
        latency: str = typer.Option("measured", "--latency", help="virtual time of a real call: measured (its wall "
                                    "time) or profile (the profile's latency model: the same on every run)"),
        workers: int = typer.Option(1, "--workers", "-w", min=1, max=MAX_WORKERS, help="worker processes running "
                                    f"trials at once, 1 to {MAX_WORKERS} (with --model: requests in flight)"),
        record: Optional[Path] = live["record"], replay: Optional[Path] = live["replay"],
        replay_fallback: str = live["fallback"], rpm: Optional[float] = live["rpm"],
        request_timeout: float = live["timeout"], max_retries: int = live["retries"],
        in_flight: int = live["in_flight"],
    ) -> None:
        """Run an agent design through a scenario N times and report its success rate."""
        budgets = _run_inputs(budget, stagger, out_dir)
        opts = check_live(_fail, model, record, replay, replay_fallback, rpm, request_timeout, max_retries,
                          in_flight, workers)
        bar, tick = progress(trials, err) if not as_json or sys.stderr.isatty() else (None, None)
        try:
            if bar:
                bar.start()
            summary, run_dir = _guard(lambda: run_cell(
                scenario, _params(param, "--param"), agent, trials=trials, seed=seed, profile=profile,
                agent_params=_params(agent_param, "--agent-param"),
                profile_params=_params(profile_param, "--profile-param"),
                budgets=budgets, faults=fault, concurrency=concurrency, stagger_s=stagger, out=out_dir,
                progress=tick, trial_timeout_s=trial_timeout or None, reviewer=reviewer, model=model,
                base_url=base_url, latency=latency, workers=workers, live=opts))
        except KeyboardInterrupt:
            _fail("interrupted; the trials that finished are in the results directory", 130)
        finally:
            if bar:
                bar.stop()
        summary["results_dir"] = str(run_dir)
        if as_json:
            print(json.dumps(summary, indent=2, default=str))
        else:
            _show(terminal.run_summary(summary, run_dir, **_style()))
        if summary["outcomes"]["error"]:
            err.print(f"{summary['outcomes']['error']} trial(s) ended in error (the graph or its factory crashed, "
                      "attrition cannot drive the graph, or a real model's provider failed), e.g.: "
                      f"{summary['errors'][0] if summary['errors'] else '?'}", highlight=False, markup=False)
            raise typer.Exit(1)

    return run
