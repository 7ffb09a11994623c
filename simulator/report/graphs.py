"""Writing propagation results to files: the graphs (GraphML and JSON) and per-trial root causes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import networkx as nx

from ..files import ResultsError, cannot_write, check_writable, real_path
from ..propagation import graph_json
from ..store import STORE_FILES


def check_targets(graphml: Path | None, trials: Path | None, results: Path | None = None) -> None:
    """Before any tracing: each file `write_graphs` and `write_trials` would write can be
    written, and none would overwrite another or a file of the `results` directory read."""
    targets = []
    if graphml is not None:
        graphml = Path(graphml)
        if not graphml.name or not str(graphml).strip():
            raise ResultsError("--graphml needs a file name, e.g. flow.graphml")
        if graphml.suffix.lower() == ".json":
            raise ResultsError(f"cannot write {graphml}: --graphml names the GraphML file, and its JSON goes "
                               "beside it with the suffix .json; give a name like flow.graphml")
        targets += [graphml, graphml.with_suffix(".json")]
    if trials is not None:
        if Path(trials) in targets:
            raise ResultsError(f"cannot write {trials}: the graphs are written there too")
        targets.append(Path(trials))
    kept = {real_path(Path(results) / f) for f in STORE_FILES} if results is not None else set()
    for t in targets:
        if real_path(t) in kept:
            raise ResultsError(f"cannot write {t}: it is a file of the results directory being read")
        check_writable(t)


def take_graphs(res: dict) -> dict[str, nx.DiGraph]:
    """Remove the networkx graphs from `propagation_results` output (leaving plain, JSON-able
    data) and return them: "all", then one per design when the results hold several."""
    graphs = {"all": res.pop("graph")}
    for name, sub in (res.get("by_agent") or {}).items():
        graphs[name] = sub.pop("graph")
    return graphs


def write_graphs(graphs: dict[str, nx.DiGraph], path: Path) -> list[Path]:
    """Write the propagation graph as GraphML at `path` and every graph as JSON beside it;
    returns the files written."""
    path = Path(path)
    per_design = {k: g for k, g in graphs.items() if k != "all"}
    # GraphML holds one graph: with several designs, one disjoint graph whose node names say
    # which design they belong to, so one design's nodes are not merged into another's
    g = graphs["all"] if not per_design else nx.union_all(
        [nx.relabel_nodes(gr, lambda n, k=k: f"{k}/{n}") for k, gr in per_design.items()])
    as_json = path.with_suffix(".json")
    try:
        nx.write_graphml(g, path)
        as_json.write_text(json.dumps({k: graph_json(v) for k, v in graphs.items()}, indent=2, default=str))
    except OSError as e:
        raise cannot_write(e.filename or path, e) from None
    return [path, as_json]


def write_trials(per_trial: Iterable[dict], path: Path) -> int:
    """Write one JSON line per trial (its root causes and how far each spread); returns how many."""
    lines = [json.dumps(t, default=str) + "\n" for t in per_trial]
    try:
        Path(path).write_text("".join(lines), encoding="utf-8")
    except OSError as e:
        raise cannot_write(path, e) from None
    return len(lines)
