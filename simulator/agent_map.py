"""Who holds which tools in a multi-agent graph, and where a handoff tool leads.

A real model picks the agent to hand a task to from the agents' names and descriptions;
the simulated model needs the same knowledge as data. It is read off the compiled
graph: every agent (a subgraph node, or an agent wrapped in a node function as
langgraph-supervisor wraps its workers) and the tools of its ToolNode. Handoff tools
name their destination in their metadata (langgraph-supervisor, langgraph-swarm) or in
their name (transfer_to_X, handoff_to_X, a user's own go_to_X).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from langgraph.pregel import Pregel

HANDOFF_METADATA = "__handoff_destination"
_HANDOFF_NAME = re.compile(r"^(?:transfer_back_to|transfer_to|handoff_to|hand_off_to|go_to|route_to|delegate_to)_(.+)$")
_MAX_DEPTH = 6  # agents nest a few levels at most; closures can be cyclic


@dataclass
class AgentMap:
    tools: dict[str, set[str]] = field(default_factory=dict)   # agent name -> its tools
    handoffs: dict[str, str] = field(default_factory=dict)     # handoff tool -> destination agent

    def destination(self, tool: str) -> str | None:
        if tool in self.handoffs:
            return self.handoffs[tool]
        m = _HANDOFF_NAME.match(tool)
        if m:
            return self._agent_named(m.group(1))
        return None

    def _agent_named(self, text: str) -> str:
        norm = text.lower().replace("-", "_").replace(" ", "_")
        return next((a for a in self.tools if a.lower().replace("-", "_").replace(" ", "_") == norm), text)

    def holder(self, tool: str) -> set[str]:
        """The agents that hold a tool."""
        return {a for a, ts in self.tools.items() if tool in ts}


def _tool_node(obj) -> dict | None:
    by_name = getattr(obj, "tools_by_name", None)
    return by_name if isinstance(by_name, dict) else None


def _closure_values(obj) -> list:
    fn = getattr(obj, "func", None) or obj
    cells = getattr(fn, "__closure__", None) or ()
    out = []
    for c in cells:
        try:
            out.append(c.cell_contents)
        except ValueError:  # an empty cell
            continue
    return out


def map_agents(graph) -> AgentMap:
    """Read a compiled graph's agents, their tools and its handoff tools."""
    out, seen = AgentMap(), set()

    def visit(name: str, obj, depth: int) -> None:
        if depth > _MAX_DEPTH or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, Pregel):
            for node_name, node in obj.nodes.items():
                tools = _tool_node(node.bound)
                if tools is not None:
                    out.tools.setdefault(name, set()).update(tools)
                    for tname, tool in tools.items():
                        dest = (getattr(tool, "metadata", None) or {}).get(HANDOFF_METADATA)
                        if dest:
                            out.handoffs[tname] = dest
                else:
                    visit(node_name, node.bound, depth + 1)
        elif isinstance(obj, dict):  # agents kept by name, e.g. {"lookup": agent, ...}
            for key, value in obj.items():
                visit(str(key), value, depth + 1)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                visit(name, value, depth + 1)
        else:
            for value in _closure_values(obj):
                if isinstance(value, (Pregel, dict, list, tuple)) or callable(value):
                    visit(getattr(value, "name", None) or name, value, depth + 1)

    if graph is not None:
        visit("__root__", graph, 0)
    return out
