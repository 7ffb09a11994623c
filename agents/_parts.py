"""Building blocks the reference designs share: retry policy, tool-call wrappers, the loop.

Everything here is ordinary integration code, written the way it is written for real
providers: it looks at status codes and retry-after headers, not at simulator
internals, and it sleeps through `kit.sleep` so that back-off passes on the virtual
clock (pass `time.sleep` instead to run it for real).
"""
from __future__ import annotations

import hashlib
import json

from langchain_core.messages import SystemMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import interrupt
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt

TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504}
TRANSIENT_NAMES = {"APITimeoutError", "APIConnectionError", "TimeoutError", "ConnectionError"}


def transient(e: BaseException) -> bool:
    """Would the same request succeed later? (429 insufficient_quota never does.)"""
    if getattr(e, "code", None) == "insufficient_quota":
        return False
    if getattr(e, "status_code", None) in TRANSIENT_STATUS:
        return True
    return type(e).__name__ in TRANSIENT_NAMES


def retry_after(e: BaseException) -> float | None:
    headers = getattr(getattr(e, "response", None), "headers", None) or {}
    try:
        return float(headers["retry-after"])
    except (KeyError, TypeError, ValueError):
        return None


def make_retrying(kit, *, max_attempts=5, initial_s=1.0, max_s=60.0, jitter=True,
                  honour_retry_after=True, refresh_on_401=True) -> Retrying:
    """Exponential back-off with seeded full jitter, honouring retry-after, on the kit's clock."""
    rng = kit.rng("backoff-jitter")

    def wait(state) -> float:
        backoff = min(max_s, initial_s * 2 ** (state.attempt_number - 1))
        if jitter:
            backoff = rng.uniform(0, backoff)
        e = state.outcome.exception() if state.outcome else None
        ra = retry_after(e) if (e is not None and honour_retry_after) else None
        return max(backoff, ra) if ra is not None else backoff

    def retryable(e: BaseException) -> bool:
        if refresh_on_401 and getattr(e, "status_code", None) == 401:
            kit.refresh_credentials()
            return True
        return transient(e)

    return Retrying(stop=stop_after_attempt(max_attempts), wait=wait, sleep=kit.sleep,
                    retry=retry_if_exception(retryable), reraise=True)


def error_message(call: dict, e: BaseException) -> ToolMessage:
    """Hand a failure to the model as a tool error instead of crashing the run."""
    return ToolMessage(content=f"Error: {type(e).__name__}: {e}", tool_call_id=call["id"],
                       name=call["name"], status="error")


def writes(tool) -> bool:
    # writing tools take an idempotency key, like payment APIs
    return tool is not None and "idempotency_key" in (tool.args or {})


def idempotency_key(call: dict) -> str:
    """One key per logical operation: the same write with the same arguments, whether the
    design retries it or the model asks for it again after an error it could not see past."""
    blob = json.dumps([call["name"], call["args"]], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def with_key(request):
    call = request.tool_call
    return request.override(tool_call={**call, "args": {**call["args"], "idempotency_key": idempotency_key(call)}})


def retrying_tools(kit, retrying: Retrying, *, idempotency: bool = False) -> ToolNode:
    """A ToolNode whose calls are retried; with idempotency, a write carries a key per operation."""
    def wrap(request, execute):
        call = request.tool_call
        if idempotency and writes(request.tool):
            request = with_key(request)
        try:
            return retrying(execute, request)
        except RetryError as e:  # pragma: no cover - reraise=True gives the last error instead
            return error_message(call, e)
        except Exception as e:
            return error_message(call, e)
    return ToolNode(kit.tools, wrap_tool_call=wrap)


def reviewed_tools(kit, gated):
    """A tools node that asks a human, with one `interrupt()` each, about the calls `gated(call,
    message)` picks (message: the AIMessage that made them), then runs what was allowed.

    Every question comes first: a resumed node starts over, and must not run a tool twice.
    Answers are decisions in LangChain's human-in-the-loop format: approve, edit (run
    `edited_action.args` instead) or reject (the model gets a tool error saying so)."""
    run_tools = ToolNode(kit.tools)  # runs what was allowed, handling bad arguments as react does

    def rejected(call, decision) -> ToolMessage:
        reason = decision.get("message") or "no reason given"
        return ToolMessage(f"Error: a human reviewer rejected this call ({reason}); it was not run.",
                           tool_call_id=call["id"], name=call["name"], status="error")

    def tools(state):
        message = state["messages"][-1]
        calls = message.tool_calls
        decisions = {c["id"]: interrupt({"question": f"Allow this call to {c['name']}?", "tool_call": c})
                     for c in calls if gated(c, message)}
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

    return tools


def reviewing_loop(kit, gated):
    """The tool-calling loop whose tools node asks a human first about the calls gated() picks."""
    model = kit.model("agent").bind_tools(kit.tools)
    sys_msg = system(kit)

    def agent(state):
        return {"messages": [model.invoke([sys_msg, *state["messages"]])]}

    return loop(kit, agent, reviewed_tools(kit, gated))


def loop(kit, call_model, tools_node, *, extra_nodes=None, after_tools="agent", state=MessagesState):
    """agent -> tools -> [after_tools ...] -> agent, ending when the model stops calling tools."""
    g = StateGraph(state)
    g.add_node("agent", call_model)
    g.add_node("tools", tools_node)
    for name, fn in (extra_nodes or {}).items():
        g.add_node(name, fn)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", after_tools)
    if after_tools != "agent":
        g.add_edge(after_tools, "agent")
    return g


def system(kit) -> SystemMessage:
    return SystemMessage(kit.system_prompt)
