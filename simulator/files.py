"""The files of a results directory, read and written so that a problem is one clear message.

Reading a JSON-lines log names the file and line of a bad line. Writing checks first that
the target can be written, with a probe that leaves nothing behind, so a command fails
before its work rather than after it. Below the results store and everything that reads it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


class ResultsError(ValueError):
    """A results directory, log or output path that cannot be used, named in the message."""


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class CannotWrite(ResultsError):
    """An output that cannot be written (a missing or read-only folder, a file in the way)."""


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def cannot_write(path: Path | str, reason: str | OSError) -> CannotWrite:
    return CannotWrite(f"cannot write {path}: {_reason(reason) if isinstance(reason, OSError) else reason}")


def real_path(path: Path | str) -> Path:
    """The path with its links followed; ResultsError for a loop of links."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as e:  # a loop is RuntimeError before Python 3.13, OSError after
        raise ResultsError(f"cannot use {path}: a symbolic link that loops, or a path that cannot be "
                           f"followed ({e})") from None


def check_writable(path: Path | str, *, directory: bool = False) -> None:
    """Raise ResultsError ("cannot write PATH: reason") unless PATH can be written: as a
    directory (missing parents are created later), or as a file in an existing directory."""
    p = Path(path)
    try:
        if directory:
            if p.exists() and not p.is_dir():
                raise cannot_write(p, "it is a file, not a directory")
            base = next((a for a in (p, *p.parents) if a.exists()), Path("."))
            if not base.is_dir():
                raise cannot_write(p, f"{base} is a file, not a directory")
        else:
            if p.is_dir():
                raise cannot_write(p, "it is a directory")
            base = p.parent
            if not base.exists():
                raise cannot_write(p, f"no directory {base}")
            if not base.is_dir():
                raise cannot_write(p, f"{base} is a file, not a directory")
            if p.exists():
                open(p, "r+b").close()  # opened for writing, not truncated
        # permission bits do not tell (root, read-only mounts, /proc): create and remove a file
        fd, probe = tempfile.mkstemp(dir=base, prefix=".attrition-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise cannot_write(p, e) from None


def numbered_lines(path: Path | str) -> Iterator[tuple[int, dict, bytes]]:
    """(line number, object, raw line) for each line of a JSON-lines log; nothing if it is missing.
    A last line without its newline that does not parse is what a killed writer leaves and is
    skipped; any other line that is not a UTF-8 JSON object raises ResultsError naming it."""
    p = Path(path)
    try:
        f = open(p, "rb")
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise ResultsError(f"{p} is a directory, not a log file") from None
    except OSError as e:
        raise ResultsError(f"cannot read {p}: {_reason(e)}") from None
    with f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                if raw.endswith(b"\n"):
                    raise ResultsError(f"{p}:{n}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                                       f"{e.start + 1})") from None
                continue
            except ValueError as e:
                if raw.endswith(b"\n"):
                    raise ResultsError(f"{p}:{n}: not a JSON line ({e})") from None
                continue
            if not isinstance(obj, dict):
                raise ResultsError(f"{p}:{n}: not a JSON object but {type(obj).__name__}")
            yield n, obj, raw


def read_json(path: Path | str) -> dict:
    """A JSON object file (a manifest); ResultsError naming the file (and line) if it is not one."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except IsADirectoryError:
        raise ResultsError(f"{p} is a directory, not a JSON file") from None
    except OSError as e:
        raise ResultsError(f"cannot read {p}: {_reason(e)}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ResultsError(f"{p}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultsError(f"{p}:{e.lineno}: malformed JSON: {e.msg}") from None
    if not isinstance(obj, dict):
        raise ResultsError(f"{p}: not a JSON object but {type(obj).__name__}")
    return obj
