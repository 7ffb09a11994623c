"""How the engine drives a user's graph, whatever LangGraph style it is written in.

- Compiling: a StateGraph the factory returns is compiled by the engine, with a
  checkpointer only when one of its nodes can call `interrupt()` (resuming needs one,
  and a checkpointer costs 15-30% per step that every other graph would pay for
  nothing). The engine still hands such a graph the whole conversation on a fresh
  thread each turn, exactly as it does without a checkpointer.
- Sync or async: a graph with a node that has no sync implementation (an `async def`
  node, an async entrypoint, a ToolNode of async-only tools) runs through `astream`,
  one step per `run_until_complete` on the trial's own event loop; everything else runs
  through `stream`, which is faster.
- Input: a dict with `messages` for state graphs; the message list itself for a
  functional-API entrypoint that takes one.
- Output: the messages in each update, whether a node returns a state dict, a message,
  or a list of them (entrypoints and tasks do).
"""
from __future__ import annotations

import asyncio
import functools
from types import CodeType, FunctionType

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.pregel import Pregel
from langgraph.types import interrupt

from .design_loader import build_graph

INTERRUPT = "__interrupt__"
_LIBRARIES = ("langgraph", "langchain", "langchain_core", "pydantic", "simulator")


def _codes(code: CodeType):
    yield code
    for c in code.co_consts:
        if isinstance(c, CodeType):
            yield from _codes(c)


def _targets(obj) -> list:
    """The Python callables (and tools) a runnable or a graph node runs."""
    if isinstance(obj, Pregel):
        return [t for node in obj.nodes.values() for t in _targets(node.bound)]
    if isinstance(obj, BaseTool):
        return [getattr(obj, "func", None), getattr(obj, "coroutine", None)]
    tools = getattr(obj, "tools_by_name", None)  # a ToolNode
    if isinstance(tools, dict):
        return [t for tool in tools.values() for t in _targets(tool)]
    return [getattr(obj, "func", None), getattr(obj, "afunc", None)] if hasattr(obj, "func") else [obj]


def _calls_interrupt(fn, seen: set, depth: int = 0) -> bool:
    """Whether a function, or a project function it refers to, names `interrupt`. False
    positives only cost a checkpointer; a miss surfaces as a clear error when resuming."""
    if isinstance(fn, (BaseTool, Pregel)):
        return any(_calls_interrupt(t, seen, depth) for t in _targets(fn))
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object: look at its __call__
        call = getattr(type(fn), "__call__", None)
        return isinstance(call, FunctionType) and _calls_interrupt(call, seen, depth)
    if code in seen:
        return False
    seen.add(code)
    names = {n for c in _codes(code) for n in c.co_names}
    env = getattr(fn, "__globals__", {})
    refs = [env.get(n) for n in sorted(names)]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            refs.append(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    if "interrupt" in names or any(r is interrupt for r in refs):  # imported under another name too
        return True
    if depth >= 3:
        return False
    return any(_calls_interrupt(r, seen, depth + 1) for r in refs
               if isinstance(r, (FunctionType, BaseTool, Pregel))
               and (getattr(r, "__module__", "") or "").split(".")[0] not in _LIBRARIES)


def may_interrupt(graph: StateGraph) -> bool:
    seen: set = set()
    return any(_calls_interrupt(t, seen) for spec in graph.nodes.values() for t in _targets(spec.runnable)
               if t is not None)


def build(factory, kit) -> tuple[object, bool]:
    """The design's graph, compiled; and whether the engine gave it a checkpointer."""
    made = factory(kit)
    if isinstance(made, StateGraph) and may_interrupt(made):
        return made.compile(checkpointer=InMemorySaver()), True
    return build_graph(lambda _kit: made, kit), False


def _async_only(obj) -> bool:
    if isinstance(obj, Pregel):
        return any(_async_only(node.bound) for node in obj.nodes.values())
    tools = getattr(obj, "tools_by_name", None)
    if isinstance(tools, dict):
        return any(getattr(t, "func", 0) is None and getattr(t, "coroutine", None) is not None
                   for t in tools.values())
    return getattr(obj, "func", None) is None and getattr(obj, "afunc", None) is not None


def messages_in(value, listed: bool = False) -> list:
    """The messages in one node's update: a state dict, a message, or a list of either. In a
    list of messages, what add_messages takes for one is one too: ("ai", "text"), or
    {"role": ..., "content": ...}."""
    if isinstance(value, BaseMessage):
        return [value]
    if listed and _message_like(value):
        return convert_to_messages([value])
    if isinstance(value, dict):
        return messages_in(value.get("messages", ()), listed=True)
    if isinstance(value, (list, tuple)):
        return [m for v in value for m in messages_in(v, listed)]
    return []


def _message_like(v) -> bool:
    if isinstance(v, tuple):
        return len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], (str, list))
    return isinstance(v, dict) and "content" in v and ("role" in v or "type" in v)


class UnsupportedGraph(Exception):
    """A graph written in a way the engine cannot drive: a real limitation, said as such
    rather than left to surface as a misleading failure mode."""


def check_drivable(graph) -> None:
    """The engine talks to a graph through a message list; refuse a graph with nowhere to
    put one. A state graph needs a `messages` key in its input state; an entrypoint must
    take the list, or a dict that can hold it."""
    if isinstance(graph, CompiledStateGraph):
        builder = graph.builder
        keys = list(builder.schemas.get(builder.input_schema, {}))
        if "messages" in keys:
            return
        chats = [k for k, ch in builder.channels.items() if getattr(ch, "operator", None) is add_messages]
        hint = (f"rename {chats[0]!r} to 'messages'" if chats else
                "add `messages: Annotated[list, add_messages]` (or subclass MessagesState)")
        raise UnsupportedGraph(
            f"the graph's input state has no 'messages' key (its keys: {', '.join(keys) or 'none'}); attrition "
            f"sends each user turn as a message in 'messages' and reads the replies from it: {hint}")
    if isinstance(graph, Pregel) and not isinstance(graph, CompiledStateGraph):
        try:
            kind = graph.get_input_jsonschema().get("type")
        except Exception:  # a schema LangGraph cannot render: the documented list input
            return
        if kind in ("string", "number", "integer", "boolean", "null"):
            raise UnsupportedGraph(
                f"the entrypoint takes a {kind}; attrition sends the conversation as a list of messages "
                f"(or a dict with 'messages'): declare the entrypoint's input as `messages: list[BaseMessage]`")


class Driver:
    """One trial's way of running its graph: a stream per turn, resumed after interrupts."""

    def __init__(self, graph, owned_checkpointer: bool):
        check_drivable(graph)
        self.graph, self.owned = graph, owned_checkpointer
        self.can_resume = isinstance(getattr(graph, "checkpointer", None), BaseCheckpointSaver)
        self.keeps_history = self.can_resume and not owned_checkpointer
        self.is_async = _async_only(graph)
        self.takes_list = not isinstance(graph, CompiledStateGraph) and _list_input(graph)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.extra = {"durability": "exit"} if owned_checkpointer else {}

    def inputs(self, msg, history: list):
        msgs = [msg] if self.keeps_history else list(history)
        return msgs if self.takes_list else {"messages": msgs}

    def config(self, thread: str, turn: int, recursion_limit: int) -> dict:
        # the engine's own checkpointer gets a fresh thread per turn: it only has to
        # hold a turn across its interrupts, and the engine carries the conversation
        tid = f"{thread}#{turn}" if self.owned else thread
        return {"configurable": {"thread_id": tid}, "recursion_limit": recursion_limit}

    def start(self, payload, config) -> "Steps":
        if not self.is_async:
            return Steps(self.graph.stream(payload, config, stream_mode="updates", **self.extra))
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
        return Steps(self.graph.astream(payload, config, stream_mode="updates", **self.extra), self.loop)

    def close(self) -> None:
        if self.loop is not None:
            loop, self.loop = self.loop, None
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()


def _list_input(graph) -> bool:
    """A functional-API entrypoint that takes the message list (what LangGraph's docs pass)."""
    try:
        schema = graph.get_input_jsonschema()
    except Exception:  # a schema LangGraph cannot render: the documented list input
        return True
    return "messages" not in (schema.get("properties") or {}) and schema.get("type") != "object"


class Steps:
    """The updates of one stream, one at a time, sync or async alike."""

    def __init__(self, stream, loop: asyncio.AbstractEventLoop | None = None):
        self.stream, self.loop = stream, loop

    def next(self):
        if self.loop is None:
            return next(self.stream)
        try:
            return self.loop.run_until_complete(self.stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        if self.loop is None:
            self.stream.close()
        else:
            self.loop.run_until_complete(self.stream.aclose())
