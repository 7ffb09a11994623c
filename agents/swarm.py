"""swarm: agents with disjoint tool sets hand the conversation to each other (langgraph-swarm).

    research <--transfer_to_*--> operations     (the active agent answers the user)

By default a `research` agent holds the tools that read and an `operations` agent the
tools that write; each can hand off to the other with a handoff tool. Unlike the
supervisor, there is no coordinator: the agent that holds the conversation decides when
to pass it on, and the whole history travels with it.

Params: split=reads_writes (or per_tool: one agent per tool, each able to hand off to all)
"""
from langchain.agents import create_agent
from langgraph_swarm import create_handoff_tool, create_swarm

from attrition_designs.supervisor import teams

PARAMS = {"split": "reads_writes"}


def build(kit):
    p = {**PARAMS, **kit.params}
    model = kit.model("agent")
    groups = teams(kit.tools, p["split"])
    agents = []
    for name, tools in groups.items():
        handoffs = [create_handoff_tool(agent_name=other, description=f"Transfer to {other}, who can "
                                        f"use: {', '.join(t.name for t in groups[other])}")
                    for other in groups if other != name]
        agents.append(create_agent(model, [*tools, *handoffs], name=name,
                                   system_prompt=f"{kit.system_prompt} You are {name}."))
    return create_swarm(agents, default_active_agent=agents[0].name)
