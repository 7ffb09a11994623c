"""The tool gateway: the scenario's tools as LangChain tools, every call through the faults.

A call runs the tool's declared effect on the session's world. Faults before the call
may delay it or raise what a real client raises (some only after the effect happened);
faults after it may rewrite the result. The ToolMessage's artifact says what the
faults did, which is what the simulated model's chance of noticing depends on.

The tools work however a graph calls them: by a ToolNode with the model's tool call
(sync or async), or directly with plain arguments (`tool.invoke({"order_id": ...})`, as
LangChain's quickstart does). A direct call returns only the content, so its artifact
is kept in `session.artifacts` under that content for the model side to find.
"""
from __future__ import annotations

import json
from contextvars import ContextVar

from langchain_core.tools import StructuredTool
from pydantic import create_model

from .faults.base import Call
from .rng import lognormal
from .world import apply_effect

PY_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}

# The model's tool call id, for the call running in this context. Not an injected
# argument: LangChain refuses plain-argument calls to tools that declare one.
_CALL_ID: ContextVar = ContextVar("attrition_tool_call_id", default=None)


class GatewayTool(StructuredTool):
    """A scenario tool that remembers which of the model's tool calls it is answering."""

    def run(self, tool_input, *args, tool_call_id: str | None = None, **kwargs):
        token = _CALL_ID.set(tool_call_id)
        try:
            return super().run(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _CALL_ID.reset(token)

    async def arun(self, tool_input, *args, tool_call_id: str | None = None, **kwargs):
        token = _CALL_ID.set(tool_call_id)
        try:
            return await super().arun(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _CALL_ID.reset(token)


class Gateway:
    def __init__(self, session):
        self.s = session
        self.idempotent: dict[tuple, tuple[dict, bool]] = {}  # (tool, key) -> the first answer

    def call(self, name: str, args: dict, idempotency_key: str | None = None,
             tool_call_id: str | None = None) -> tuple[str, dict]:
        s = self.s
        tool = s.scenario.tools[name]
        s.tool_calls += 1
        index = s.tool_calls
        start = s.clock.now()
        call = Call("tool", name, dict(args), start, latency=lognormal(
            s.tool_rng, tool.latency.median_s, tool.latency.p95), writes=tool.effect.writes,
            shared=s.shared, rng=s.stream("fault-values", index), call_id=tool_call_id)
        faults = s.fault_runtime.before(call)
        if call.error is not None and not call.after_effect:
            return self._fail(call, index, start, faults)
        key = (name, idempotency_key) if idempotency_key and tool.effect.writes else None
        wrote: list[str] = []
        if key and key in self.idempotent:  # the service already did this: return what it returned
            call.result, call.ok = self.idempotent[key]
            replayed = True
        else:
            out = apply_effect(tool.effect, args, s.world)
            call.result, call.ok, replayed = out.result, out.ok, False
            if key:
                self.idempotent[key] = (out.result, out.ok)
            wrote = out.wrote
        if call.error is not None:
            return self._fail(call, index, start, faults, wrote if not replayed else [])
        if call.ok:
            faults += s.fault_runtime.after(call)
        s.clock.charge(call.latency)
        content = call.result if isinstance(call.result, str) else json.dumps(call.result, sort_keys=True, default=str)
        s.trace.emit("tool_call", tool=name, call=index, call_id=tool_call_id, args=args, ok=call.ok,
                     result=call.result,
                     start=round(start, 6), latency_s=round(call.latency, 6), faults=faults or None,
                     idempotent_replay=replayed or None)
        if wrote:
            s.trace.emit("world_write", tool=name, call=index, paths=wrote)
        art = {k: v for k, v in call.artifact.items() if k != "faults"}
        artifact = {"call": index, "ok": call.ok, **art, **({"faults": faults} if faults else {})}
        if tool_call_id is None:  # called directly: only the content reaches the graph
            s.artifacts[content] = artifact
        return content, artifact

    def _fail(self, call: Call, index: int, start: float, faults: list[str], wrote: list[str] = ()):
        s = self.s
        s.clock.charge(call.latency)
        s.trace.emit("tool_call", tool=call.name, call=index, call_id=call.call_id, args=call.args, ok=False,
                     error=type(call.error).__name__, message=str(call.error), start=round(start, 6),
                     latency_s=round(call.latency, 6), faults=faults or None,
                     effect_applied=call.after_effect or None)
        if wrote:  # the operation ran even though the client saw an error
            s.trace.emit("world_write", tool=call.name, call=index, paths=list(wrote))
        raise call.error

    def tools(self) -> list[StructuredTool]:
        """The scenario's tools as LangChain tools; writes take an optional idempotency key."""
        tools = []
        for name, spec in self.s.scenario.tools.items():
            fields = {a: (PY_TYPES[s.type], ...) for a, s in spec.args.items()}
            if spec.effect.writes:
                # like payment APIs: a retry that repeats the key is not applied twice
                fields["idempotency_key"] = (str | None, None)
            schema = create_model(f"{name}_args", **fields)
            for a, s in spec.args.items():
                schema.model_fields[a].description = s.description or None
            if spec.effect.writes:
                schema.model_fields["idempotency_key"].description = (
                    "optional; a retry with the same key returns the first result instead of writing again")
            schema.model_rebuild(force=True)

            def run(_name=name, idempotency_key: str | None = None, **kwargs):
                return self.call(_name, kwargs, idempotency_key, _CALL_ID.get())

            async def arun(_run=run, **kwargs):
                # the effect is computation on the trial's world and clock: nothing to await
                return _run(**kwargs)

            tools.append(GatewayTool.from_function(
                func=run, coroutine=arun, name=name, description=spec.description, args_schema=schema,
                response_format="content_and_artifact"))
        return tools
