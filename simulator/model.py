"""The simulated model as a LangChain chat model: graphs bind tools to it and invoke it as
they would a provider's model; each call is answered by a Brain (brain.py)."""
from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict


class SimulatedChatModel(BaseChatModel):
    """A chat model whose decisions come from a behaviour profile, not from a network call."""
    model_config = ConfigDict(arbitrary_types_allowed=True)
    brain: Any = None

    @property
    def _llm_type(self) -> str:
        return "attrition-simulated"

    def bind_tools(self, tools, *, tool_choice=None, **kwargs):
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        msg = self.brain.respond(messages, kwargs.get("tools") or [])
        return ChatResult(generations=[ChatGeneration(message=msg)])
