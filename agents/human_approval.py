"""human-approval: the tool-calling loop with a human approving writes before they run.

    agent --(tool calls)--> tools --> agent --(no tool calls)--> END
                            (interrupt() for each write, then run what the human allowed)

Before the tools node runs anything, it asks a human about every write the model called
for (a tool that takes an idempotency key), one `interrupt()` each, with the question and
the tool call. It only runs tools once every answer is in, so resuming never repeats a
call. The answer is a decision in LangChain's human-in-the-loop format:
  {"type": "approve"}                                   run the call as the model made it
  {"type": "edit", "edited_action": {"name", "args"}}   run the edited call instead
  {"type": "reject", "message": "..."}                  do not run it; the model gets a tool
                                                        error saying the human rejected it
Interrupts need a checkpointer; returned as a StateGraph, the engine compiles it with one.
Who answers, how often they reject and how long they take is the environment's reviewer
policy, not a parameter of this design.

Params:
  review=writes   which calls wait for a human: writes, or all (every tool call)
"""
from langchain_core.messages import ToolMessage
from langgraph.prebuilt import ToolNode
from langgraph.types import interrupt

from attrition_designs._parts import loop, system, writes

PARAMS = {"review": "writes"}


def build(kit):
    p = {**PARAMS, **kit.params}
    if p["review"] not in ("writes", "all"):
        raise ValueError(f"review must be writes or all, not {p['review']!r}")
    model = kit.model("agent").bind_tools(kit.tools)
    sys_msg = system(kit)
    tools_by_name = {t.name: t for t in kit.tools}
    run_tools = ToolNode(kit.tools)  # runs what was allowed, handling bad arguments as react does

    def gated(call) -> bool:
        return p["review"] == "all" or writes(tools_by_name.get(call["name"]))

    def agent(state):
        return {"messages": [model.invoke([sys_msg, *state["messages"]])]}

    def rejected(call, decision) -> ToolMessage:
        reason = decision.get("message") or "no reason given"
        return ToolMessage(f"Error: a human reviewer rejected this call ({reason}); it was not run.",
                           tool_call_id=call["id"], name=call["name"], status="error")

    def tools(state):
        calls = state["messages"][-1].tool_calls
        # every question first: a resumed node starts over, and must not run a tool twice
        decisions = {c["id"]: interrupt({"question": f"Allow this call to {c['name']}?", "tool_call": c})
                     for c in calls if gated(c)}
        answers, allowed = {}, []
        for call in calls:
            decision = decisions.get(call["id"]) or {"type": "approve"}
            if decision["type"] == "reject":
                answers[call["id"]] = rejected(call, decision)
            elif decision["type"] == "edit":
                allowed.append({**call, "args": decision["edited_action"]["args"], "type": "tool_call"})
            else:
                allowed.append({**call, "type": "tool_call"})
        for msg in run_tools.invoke(allowed)["messages"] if allowed else []:
            answers[msg.tool_call_id] = msg
        return {"messages": [answers[c["id"]] for c in calls]}

    return loop(kit, agent, tools)
