"""circuit-breaker: retries inside a circuit breaker per dependency, with fallbacks.

Each dependency (the model, each tool) has a breaker: after `threshold` failed calls
in a row it opens for `cooldown_s` of virtual time, then lets one probe through
(half-open). While a breaker is open the design does not hammer the dependency:
  - the model falls back to a second provider, kit.model("fallback");
  - a read tool falls back to the last good result for the same arguments, if any;
    otherwise the call waits for the breaker to half-open (at most max_wait_s).
Calls through a closed breaker are retried with back-off as in react-retry.

Params: threshold=3, cooldown_s=30.0, max_wait_s=300.0, max_attempts=3, initial_s=1.0,
        max_s=30.0, idempotency=true
"""
from attrition_designs._parts import error_message, loop, make_retrying, system, transient, with_key, writes

PARAMS = {"threshold": 3, "cooldown_s": 30.0, "max_wait_s": 300.0, "max_attempts": 3,
          "initial_s": 1.0, "max_s": 30.0, "idempotency": True}


class Breaker:
    def __init__(self, kit, name, threshold, cooldown_s):
        self.kit, self.name, self.threshold, self.cooldown = kit, name, threshold, cooldown_s
        self.failures, self.open_until = 0, None

    def is_open(self) -> bool:
        return self.open_until is not None and self.kit.now() < self.open_until

    def wait_half_open(self, max_wait) -> bool:
        left = (self.open_until or 0) - self.kit.now()
        if left > max_wait:
            return False
        if left > 0:
            self.kit.sleep(left)
        return True

    def record(self, ok: bool) -> None:
        if ok:
            self.failures, self.open_until = 0, None
        else:
            self.failures += 1
            if self.failures >= self.threshold:
                self.open_until = self.kit.now() + self.cooldown


def build(kit):
    p = {**PARAMS, **kit.params}
    retrying = make_retrying(kit, max_attempts=int(p["max_attempts"]), initial_s=float(p["initial_s"]),
                             max_s=float(p["max_s"]))
    breakers = {}

    def breaker(name):
        if name not in breakers:
            breakers[name] = Breaker(kit, name, int(p["threshold"]), float(p["cooldown_s"]))
        return breakers[name]

    primary = kit.model("agent").bind_tools(kit.tools)
    fallback = kit.model("fallback").bind_tools(kit.tools)
    sys_msg = system(kit)

    def agent(state):
        msgs = [sys_msg, *state["messages"]]
        b = breaker("model")
        if not b.is_open():
            try:
                out = retrying(primary.invoke, msgs)
                b.record(True)
                return {"messages": [out]}
            except Exception as e:
                if not transient(e) and getattr(e, "code", None) != "insufficient_quota":
                    raise
                b.record(False)
                b.open_until = b.open_until or kit.now() + b.cooldown  # this request failed: open now
        return {"messages": [retrying(fallback.invoke, msgs)]}

    cache = {}

    def wrap(request, execute):
        call = request.tool_call
        key = (call["name"], repr(sorted(call["args"].items())))
        if p["idempotency"] and writes(request.tool):
            request = with_key(request)
        b = breaker(call["name"])
        if b.is_open():
            if key in cache and not writes(request.tool):
                return cache[key].model_copy(update={"tool_call_id": call["id"]})
            if not b.wait_half_open(float(p["max_wait_s"])):
                return error_message(call, RuntimeError(f"{call['name']} unavailable (circuit open)"))
        try:
            out = retrying(execute, request)
            b.record(getattr(out, "status", "success") != "error")
            if getattr(out, "status", "success") != "error":
                cache[key] = out
            return out
        except Exception as e:
            b.record(False)
            return error_message(call, e)

    from langgraph.prebuilt import ToolNode
    return loop(kit, agent, ToolNode(kit.tools, wrap_tool_call=wrap))
