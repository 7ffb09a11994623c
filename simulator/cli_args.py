"""Command-line values read and checked before any work starts: paths that are not blank,
`key=value` lists named by their option, a trial time limit in range."""
from __future__ import annotations

from pathlib import Path

import typer

from .executors import check_timeout
from .scenario_refs import parse_params

# past this many bootstrap replicates an interval stops changing and the wait does not
MAX_BOOTSTRAP = 100_000


def path(text: str | Path) -> Path:
    # typer would read "" as ".", the current directory: a blank path is a mistake, not a choice
    if isinstance(text, Path):  # a default
        return text
    if not text.strip():
        raise typer.BadParameter(f"{text!r} is blank: give a path")
    if "\x00" in text:
        raise typer.BadParameter(f"{text!r} holds a NUL byte, which no path can")
    return Path(text)


def params(items: list[str] | None, option: str) -> dict:
    try:
        return parse_params(items)
    except ValueError as e:
        raise ValueError(f"{option}: {e}") from None


def trial_timeout_option():
    """`--trial-timeout`, as `run` and `sweep` take it."""
    return typer.Option(600.0, "--trial-timeout", callback=timeout_ok, help="wall-clock seconds one trial may "
                        "take before its worker is stopped and it is recorded as an error: 1 to 604800 (7 days), "
                        "or 0 for no limit")


def timeout_ok(value: float) -> float:
    if value != 0:
        try:
            check_timeout(value)
        except ValueError as e:
            raise typer.BadParameter(str(e).removeprefix("--trial-timeout: ")) from None
    return value
