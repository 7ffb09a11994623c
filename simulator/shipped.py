"""The designs and scenarios that ship with attrition, registered by file.

Reference designs live in the repository's agents/ folder (installed as the
`attrition_designs` package, so it cannot clash with other `agents` packages) and
scenarios in scenarios/ (`attrition_scenarios`). Both are found by file, never
imported by name: a design is loaded by the design loader when it is first used.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from .registry import register
from .yamlio import ScenarioError, load_yaml


def package_dir(package: str, folder: str) -> Path | None:
    """Where an installed data package lives, or the repository folder beside simulator/."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    here = Path(__file__).resolve().parent.parent / folder
    return here if here.is_dir() else None


def _design_summary(f: Path) -> str:
    doc = ast.get_docstring(ast.parse(f.read_text(encoding="utf-8"))) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    name = f.stem.replace("_", "-")
    return first.split(":", 1)[1].strip() if first.lower().startswith(name.lower() + ":") else first


def _register_designs() -> None:
    root = package_dir("attrition_designs", "agents")
    for f in sorted(root.glob("*.py")) if root else []:
        if not f.name.startswith("_"):
            register("design", f.stem.replace("_", "-"), f"{f}:build", summary=_design_summary(f),
                     origin=__name__)


def _register_scenarios() -> None:
    root = package_dir("attrition_scenarios", "scenarios")
    for f in sorted(root.glob("*.yaml")) if root else []:
        try:
            head, _ = load_yaml(f)
            summary = str(head.get("description", "")) if isinstance(head, dict) else ""
        except ScenarioError:
            summary = "(does not parse)"
        register("scenario", f.stem, f, summary=summary, origin=__name__)


_register_designs()
_register_scenarios()
