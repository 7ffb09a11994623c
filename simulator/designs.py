"""The agent loader: designs by name, by file (`path/to/file.py:build`) or by module (`pkg.mod:build`).

Reference designs live in the repository's agents/ folder (installed as the
`attrition_designs` package so it cannot clash with other `agents` packages);
they are found by file, never imported by name from the simulator.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from .registry import REGISTRY, register


class DesignError(Exception):
    """An agent reference that cannot be loaded or a factory that misbehaves."""


def designs_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("attrition_designs")
    except (ImportError, ValueError):
        spec = None
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    here = Path(__file__).resolve().parent.parent / "agents"
    return here if here.is_dir() else None


def register_builtins() -> None:
    root = designs_dir()
    if root is None:
        return
    for f in sorted(root.glob("*.py")):
        if f.name.startswith("_"):
            continue
        doc = ast.get_docstring(ast.parse(f.read_text())) or ""
        first = doc.strip().splitlines()[0] if doc.strip() else ""
        name = f.stem.replace("_", "-")
        summary = first.split(":", 1)[1].strip() if first.lower().startswith(f.stem.replace("_", "-").lower() + ":") else first
        register("design", name, summary, obj=f"{f}:build")


def _load_file(path: Path, attr: str) -> Callable:
    if not path.is_file():
        raise DesignError(f"agent file not found: {path}")
    modname = "attrition_design_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    if modname in sys.modules:
        mod = sys.modules[modname]
    else:
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as e:  # the user's file: report, do not crash
            del sys.modules[modname]
            raise DesignError(f"agent file {path} failed to import: {_describe(e, path)}") from None
    return _attr(mod, attr, str(path))


def _describe(e: BaseException, path: Path | None = None) -> str:
    msg = f"{type(e).__name__}: {e}"
    tb = e.__traceback__
    line = None
    while tb is not None:
        if path is None or Path(tb.tb_frame.f_code.co_filename).resolve() == path.resolve():
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(e, SyntaxError) and e.lineno:
        line = e.lineno
    return f"{msg} (line {line})" if line else msg


def _attr(mod, attr: str, where: str) -> Callable:
    fn = getattr(mod, attr, None)
    if fn is None:
        raise DesignError(f"{where} has no attribute {attr!r} (expected a factory `def {attr}(kit)`)")
    if not callable(fn):
        raise DesignError(f"{where}:{attr} is not callable")
    return fn


def load_factory(ref: str) -> Callable:
    """Resolve an agent reference to its factory function."""
    from .registry import load_builtins
    load_builtins()
    if ref in REGISTRY["design"]:
        ref = REGISTRY["design"][ref].obj
    target, _, attr = ref.partition(":")
    attr = attr or "build"
    if target.endswith(".py") or "/" in target or Path(target).suffix == ".py":
        return _load_file(Path(target), attr)
    if not target.replace(".", "").replace("_", "").isalnum():
        raise DesignError(f"agent reference {ref!r} is not a design name, a file.py:function "
                          f"or a package.module:function")
    try:
        mod = importlib.import_module(target)
    except ModuleNotFoundError as e:
        if e.name and target.startswith(e.name):
            known = ", ".join(sorted(REGISTRY["design"])) or "none"
            raise DesignError(f"unknown agent {ref!r}: not a built-in design ({known}) "
                              f"and no module named {e.name!r}") from None
        raise DesignError(f"module {target!r} failed to import: {_describe(e)}") from None
    except Exception as e:
        raise DesignError(f"module {target!r} failed to import: {_describe(e)}") from None
    return _attr(mod, attr, target)


def build_graph(factory: Callable, kit) -> Any:
    """Call the factory and return a compiled graph. Exceptions propagate to the engine,
    which records them as an `error` trial."""
    from langgraph.graph import StateGraph
    from langgraph.pregel import Pregel

    graph = factory(kit)
    if isinstance(graph, StateGraph):
        # No checkpointer: the engine carries the conversation between turns itself,
        # which costs nothing per step. A graph that must keep other state across
        # turns can be compiled with its own checkpointer; the engine then uses it.
        return graph.compile()
    if isinstance(graph, Pregel):
        return graph
    raise DesignError(f"the factory returned {type(graph).__name__}; expected a StateGraph "
                      "or a compiled graph")
