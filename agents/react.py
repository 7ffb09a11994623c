"""react: the plain tool-calling loop, with no retries and no validation.

    agent --(tool calls)--> tools --> agent --(no tool calls)--> END

The baseline every other design is compared against. Params: none.
"""
from langchain_core.messages import SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

PARAMS: dict = {}


def build(kit):
    model = kit.model("agent").bind_tools(kit.tools)
    system = SystemMessage(kit.system_prompt)

    def agent(state: MessagesState):
        return {"messages": [model.invoke([system, *state["messages"]])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(kit.tools))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", "agent")
    return g
