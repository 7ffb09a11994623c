"""react-memory: the tool-calling loop with a memory policy for long contexts.

The full conversation stays in the graph's state; what the model is sent is chosen
by the policy:
  none     everything (the baseline);
  window   the last `window` messages, cut so no tool result loses its call;
  summary  older messages folded into a running summary by kit.model("summarizer"),
           plus the last `window` messages.
Forgotten outputs must be fetched again (reads) or are lost; that is the trade-off.

Params: memory=window, window=16, retries=true
"""
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import MessagesState

from attrition_designs._parts import loop, make_retrying, retrying_tools, system

PARAMS = {"memory": "window", "window": 16, "retries": True}


class State(MessagesState):
    summary: list
    summarized: int


def recent(messages, n):
    """The last n messages, widened so the window starts at a user or model turn."""
    start = max(0, len(messages) - n)
    while start > 0 and isinstance(messages[start], ToolMessage):
        start -= 1
    return start


def build(kit):
    p = {**PARAMS, **kit.params}
    if p["memory"] not in ("none", "window", "summary"):
        raise ValueError(f"memory must be none, window or summary, not {p['memory']!r}")
    n = int(p["window"])
    retrying = make_retrying(kit, max_attempts=5 if p["retries"] else 1)
    model = kit.model("agent").bind_tools(kit.tools)
    summarizer = kit.model("summarizer")
    sys_msg = system(kit)

    def agent(state):
        msgs = state["messages"]
        update = {}
        if p["memory"] == "none" or len(msgs) <= n:
            context = msgs
        else:
            start = recent(msgs, n)
            context = msgs[start:]
            if not any(isinstance(m, HumanMessage) for m in context):  # keep the request in view
                ask = next(m for m in reversed(msgs[:start]) if isinstance(m, HumanMessage))
                context = [ask, *context]
            if p["memory"] == "summary":
                done = state.get("summarized") or 0
                summary = state.get("summary") or []
                if start > done:  # fold what left the window into the summary
                    folded = retrying(summarizer.invoke, [*summary, *msgs[done:start]])
                    summary = [AIMessage(folded.content, id=folded.id,
                                         additional_kwargs=folded.additional_kwargs)]
                    update = {"summary": summary, "summarized": start}
                context = [*summary, *context]
        out = retrying(model.invoke, [sys_msg, *context])
        return {"messages": [out], **update}

    return loop(kit, agent, retrying_tools(kit, retrying), state=State)
