"""The simulated model as a LangChain chat model: graphs bind tools to it, ask it for
structured output and invoke it (sync or async) as they would a provider's model; each
call is answered by a Brain (brain.py).

Structured output works for every method LangChain offers: function calling (the schema
bound as a tool the model must call, LangChain's default), `json_schema` and `json_mode`
(the answer is JSON text, parsed by the same parsers providers' models use).
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict

_ANY = ("any", "required", True)


def _forced_name(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "any", "required"):
        return tool_choice
    if isinstance(tool_choice, dict):
        return (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
    return None


def structured_schema(tools: list[dict], tool_choice: Any, response_format: Any, scenario_tools) -> dict | None:
    """The schema a call must answer in, if it asks for structured output: JSON output, or a
    tool the model is made to call that is not one of the scenario's tools."""
    if isinstance(response_format, dict) and "schema" in response_format:
        return {"name": response_format.get("name", "response"), "parameters": response_format["schema"],
                "as": "json"}
    forced = _forced_name(tool_choice)
    if forced is None and tool_choice in _ANY and len(tools) == 1:
        forced = tools[0]["function"]["name"]
    if forced is None or forced in scenario_tools:
        return None
    tool = next((t["function"] for t in tools if t["function"]["name"] == forced), None)
    if tool is None:
        return None
    return {"name": forced, "parameters": tool.get("parameters", {}), "as": "tool"}


class ToolBindingModel(BaseChatModel):
    """Binds tools and structured output the way providers' models do, as keyword
    arguments that reach `_generate`: tools as OpenAI tool dicts (`tools`, `tool_choice`)
    and JSON output as `response_format` ({name, schema, method})."""
    model_config = ConfigDict(arbitrary_types_allowed=True)

    def bind_tools(self, tools, *, tool_choice=None, **kwargs):
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def with_structured_output(self, schema=None, *, method: str = "function_calling", include_raw: bool = False,
                               strict: bool | None = None, **kwargs):
        if method == "function_calling":
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        if method not in ("json_schema", "json_mode"):
            raise ValueError(f"unknown structured output method {method!r}; "
                             "use function_calling, json_schema or json_mode")
        fn = convert_to_openai_tool(schema)["function"] if schema is not None else {
            "name": "response", "parameters": {"type": "object", "properties": {}}}
        llm = self.bind(response_format={"name": fn["name"], "schema": fn.get("parameters", {}), "method": method})
        pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        parser = PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")


class SimulatedChatModel(ToolBindingModel):
    """A chat model whose decisions come from a behaviour profile, not from a network call."""
    brain: Any = None

    @property
    def _llm_type(self) -> str:
        return "attrition-simulated"

    def _respond(self, messages, kwargs: dict, run_manager=None):
        tools = kwargs.get("tools") or []
        # called from inside a nested graph (a worker, an executor): it reports to whoever called it
        ns = str((getattr(run_manager, "metadata", None) or {}).get("langgraph_checkpoint_ns", ""))
        schema = structured_schema(tools, kwargs.get("tool_choice"), kwargs.get("response_format"),
                                   self.brain.s.scenario.tools)
        if schema is not None:
            tools = [t for t in tools if t["function"]["name"] != schema["name"]]
        msg = self.brain.respond(messages, tools, schema=schema, nested="|" in ns)
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self._respond(messages, kwargs, run_manager)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        # no thread hop: the decision is pure computation on the trial's own state and clock
        return self._respond(messages, kwargs, run_manager)
