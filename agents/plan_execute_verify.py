"""plan-execute-verify: a planner, an executor, and a verifier that checks tool results
before the executor uses them.

    planner -> agent --(tool calls)--> tools -> verify -> agent --> END

The planner writes a plan for each request (kit.model("planner")). The verifier checks
every result: a result that is not valid JSON is fetched again; a read's result is
cross-checked by reading it again and, if the two disagree, a third time with the
majority kept. Writes carry an idempotency key, so asking again for a write whose
answer was unreadable returns the first answer instead of writing twice. Verification costs extra
calls and virtual time; that is the trade-off architects compare.

Params: verify=true, max_refetch=2, retries=true (back-off as in react-retry)
"""
import json

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from attrition_designs._parts import error_message, idempotency_key, make_retrying, system, with_key, writes

PARAMS = {"verify": True, "max_refetch": 2, "retries": True}


def _parse(content):
    try:
        return json.loads(content) if isinstance(content, str) else content
    except ValueError:
        return None


def build(kit):
    p = {**PARAMS, **kit.params}
    retrying = make_retrying(kit, max_attempts=4 if p["retries"] else 1)
    planner = kit.model("planner")
    executor = kit.model("agent").bind_tools(kit.tools)
    tools = {t.name: t for t in kit.tools}
    sys_msg = system(kit)

    def plan(state):
        last_human = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
        out = retrying(planner.invoke, [sys_msg, last_human])
        return {"messages": [AIMessage(out.content, id=out.id, name="planner")]}

    def agent(state):
        msgs = [m for m in state["messages"] if getattr(m, "name", None) != "planner"]
        plan_msgs = [m for m in state["messages"] if getattr(m, "name", None) == "planner"]
        context = [sys_msg] + ([plan_msgs[-1]] if plan_msgs else [])
        return {"messages": [retrying(executor.invoke, context + msgs)]}

    def fetch(call):
        if writes(tools[call["name"]]):  # asking again for a write must not write again
            call = {**call, "args": {**call["args"], "idempotency_key": idempotency_key(call)}}
        try:
            return retrying(tools[call["name"]].invoke, {**call, "type": "tool_call"})
        except Exception as e:
            return error_message(call, e)

    def verify(state):
        if not p["verify"]:
            return {}
        msgs = state["messages"]
        calls = {c["id"]: c for m in msgs if isinstance(m, AIMessage) for c in (m.tool_calls or [])}
        fixed = []
        for m in reversed(msgs):
            if m.type != "tool":
                break
            call = calls.get(m.tool_call_id)
            if call is None or m.status == "error" or call["name"] not in tools:
                continue
            best, value = m, _parse(m.content)
            for _ in range(int(p["max_refetch"])):
                if value is not None:
                    break
                best = fetch(call)
                value = _parse(best.content)
            if value is not None and not writes(tools[call["name"]]):
                # cross-check a read: fetch again until one value has been seen twice
                seen = [(value, best)]
                for _ in range(3):
                    again = fetch(call)
                    v = _parse(again.content)
                    if v is None or again.status == "error":
                        continue  # an unreadable or failed fetch has no vote
                    match = next((b for val, b in seen if val == v), None)
                    if match is not None:
                        best = match
                        break
                    seen.append((v, again))
            if best is not m:
                fixed.append(best.model_copy(update={"id": m.id, "tool_call_id": m.tool_call_id}))
        return {"messages": fixed} if fixed else {}

    g = StateGraph(MessagesState)
    g.add_node("planner", plan)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(kit.tools, wrap_tool_call=lambda r, ex: _safe(r, ex, retrying)))
    g.add_node("verify", verify)
    g.add_edge(START, "planner")
    g.add_edge("planner", "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", "verify")
    g.add_edge("verify", "agent")
    return g


def _safe(request, execute, retrying):
    if writes(request.tool):  # keyed, so that the verifier may ask for the same write again safely
        request = with_key(request)
    try:
        return retrying(execute, request)
    except Exception as e:
        return error_message(request.tool_call, e)
