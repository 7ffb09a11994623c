"""The design loader: agent designs by name (`react`), by file (`path/to/file.py:build`) or by
module (`pkg.mod:build`), and the graph a factory builds.

Names come from the registry: the shipped designs (registered by file, see shipped.py)
and plug-ins' `attrition.designs` entry points.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from .registry import find, names


class DesignError(Exception):
    """An agent reference that cannot be loaded or a factory that misbehaves."""


def _load_file(path: Path, attr: str) -> Callable:
    if not path.is_file():
        raise DesignError(f"agent file not found: {path}")
    if path.suffix != ".py":
        raise DesignError(f"{path} is not a Python file: an agent file is path/to/file.py:function")
    modname = "attrition_design_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    if modname in sys.modules:
        mod = sys.modules[modname]
    else:
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        try:
            spec.loader.exec_module(mod)
        except (Exception, SystemExit) as e:  # the user's file (even one calling sys.exit): report, do not exit
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
    entry = find("design", ref)
    if entry is not None:
        if callable(entry.obj):  # a plug-in's factory, registered as an object
            return entry.obj
        ref = entry.obj
    target, _, attr = ref.partition(":")
    attr = attr or "build"
    if target.endswith(".py") or "/" in target or os.sep in target or Path(target).is_file():
        return _load_file(Path(target), attr)
    if not target.replace(".", "").replace("_", "").isalnum():
        raise DesignError(f"agent reference {ref!r} is not a design name, a file.py:function "
                          f"or a package.module:function")
    try:
        mod = importlib.import_module(target)
    except SystemExit as e:
        raise DesignError(f"module {target!r} failed to import: {_describe(e)}") from None
    except ModuleNotFoundError as e:
        if e.name and target.startswith(e.name):
            known = ", ".join(names("design")) or "none"
            raise DesignError(f"unknown agent {ref!r}: not a built-in design ({known}) "
                              f"and no module named {e.name!r}") from None
        raise DesignError(f"module {target!r} failed to import: {_describe(e)}") from None
    except Exception as e:
        raise DesignError(f"module {target!r} failed to import: {_describe(e)}") from None
    return _attr(mod, attr, target)


def declared_params(factory: Callable) -> dict | None:
    """The parameters a design declares, with their defaults: a module-level `PARAMS` dict
    beside its factory (or a `params` dict on the factory itself)."""
    own = getattr(factory, "params", None)
    if isinstance(own, dict):
        return own
    declared = getattr(sys.modules.get(getattr(factory, "__module__", "") or ""), "PARAMS", None)
    return declared if isinstance(declared, dict) else None


def _type_problem(name: str, value: Any, default: Any) -> str | None:
    if default is None:
        return None
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        want = "a finite number"
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "text"
    else:
        return None
    return None if ok else f"parameter {name!r} must be {want} (default {default!r}), not {value!r}"


def check_params(ref: str, factory: Callable, params: dict) -> None:
    """Design parameters must be ones the design declares, of the declared default's type."""
    if not params:
        return
    declared = declared_params(factory)
    if declared is None:
        raise DesignError(f"design {ref!r} declares no parameters (a module-level PARAMS = {{name: default}}), "
                          f"so {', '.join(sorted(params))} cannot be set")
    unknown = sorted(set(params) - set(declared))
    if unknown:
        takes = ", ".join(f"{k}={v!r}" for k, v in declared.items()) or "no parameters"
        raise DesignError(f"design {ref!r} has no parameter {unknown[0]!r}; it takes {takes}")
    for k, v in params.items():
        problem = _type_problem(k, v, declared[k])
        if problem:
            raise DesignError(f"design {ref!r}: {problem}")


def build_graph(factory: Callable, kit) -> Any:
    """Call the factory and return a compiled graph. Exceptions propagate to the engine,
    which records them as an `error` trial."""
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
