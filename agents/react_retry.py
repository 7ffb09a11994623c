"""react-retry: the tool-calling loop with retries: exponential back-off with seeded jitter,
honouring retry-after, on the virtual clock (tenacity).

Both model calls and tool calls are retried on transient errors (408/409/429/5xx,
timeouts, connection resets); a 401 triggers a credential refresh and a retry. After
the last attempt the error goes to the model as a tool error instead of crashing.

Params:
  max_attempts=5      attempts per call, first included
  initial_s=1.0       first back-off; doubles each attempt
  max_s=60.0          cap on one back-off
  jitter=true         full jitter from the design's seeded stream
  honour_retry_after=true  never wait less than the server's retry-after
  idempotency=false   give each write an idempotency key derived from the operation, so a
                      retry after a timeout is not applied twice; false is the naive retry
"""
from attrition_designs._parts import loop, make_retrying, retrying_tools, system

PARAMS = {"max_attempts": 5, "initial_s": 1.0, "max_s": 60.0, "jitter": True,
          "honour_retry_after": True, "idempotency": False}


def build(kit):
    p = {**PARAMS, **kit.params}
    retrying = make_retrying(kit, max_attempts=int(p["max_attempts"]), initial_s=float(p["initial_s"]),
                             max_s=float(p["max_s"]), jitter=bool(p["jitter"]),
                             honour_retry_after=bool(p["honour_retry_after"]))
    model = kit.model("agent").bind_tools(kit.tools)
    sys_msg = system(kit)

    def agent(state):
        return {"messages": [retrying(model.invoke, [sys_msg, *state["messages"]])]}

    return loop(kit, agent, retrying_tools(kit, retrying, idempotency=bool(p["idempotency"])))
