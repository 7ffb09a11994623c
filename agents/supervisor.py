"""supervisor: a supervisor model hands work to workers with disjoint tool sets (langgraph-supervisor).

    supervisor --transfer_to_<worker>--> worker (a prebuilt agent) --> supervisor --> ... --> END

Workers split the scenario's tools: by default a `research` worker holds the tools that
read and an `operations` worker the tools that write (`split=per_tool` gives each tool
its own worker). Each worker reports what it found back to the supervisor; the
supervisor answers the user. Every handoff is a model call and a graph step, so the
design pays for coordination in tokens and virtual time, and an error can cross a
handoff from one agent to another.

Params: split=reads_writes (or per_tool), output_mode=last_message (or full_history: the
        supervisor sees every message of the worker, not just its report)
"""
from langchain.agents import create_agent
from langgraph_supervisor import create_supervisor

from attrition_designs._parts import writes

PARAMS = {"split": "reads_writes", "output_mode": "last_message"}


def teams(tools, split: str) -> dict[str, list]:
    """Worker name -> its tools."""
    if split == "per_tool":
        return {f"{t.name}_worker": [t] for t in tools}
    if split != "reads_writes":
        raise ValueError(f"split must be reads_writes or per_tool, not {split!r}")
    out = {"research": [t for t in tools if not writes(t)], "operations": [t for t in tools if writes(t)]}
    return {name: ts for name, ts in out.items() if ts}


def build(kit):
    p = {**PARAMS, **kit.params}
    model = kit.model("agent")
    workers = [create_agent(model, ts, name=name, system_prompt=f"You are the {name} worker. Use your tools "
                            "for the part of the request they serve, then report what you found.")
               for name, ts in teams(kit.tools, p["split"]).items()]
    names = ", ".join(w.name for w in workers)
    return create_supervisor(workers, model=model, output_mode=p["output_mode"],
                             prompt=f"{kit.system_prompt} You manage these workers: {names}. Hand each part "
                                    "of the request to the worker whose tools it needs, then answer the user.")
