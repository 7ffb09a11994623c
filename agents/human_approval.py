"""human-approval: the tool-calling loop with a human approving writes before they run.

    agent --(tool calls)--> tools --> agent --(no tool calls)--> END
                            (interrupt() for each write, then run what the human allowed)

Before the tools node runs anything, it asks a human about every write the model called
for (a tool that takes an idempotency key), one `interrupt()` each, with the question and
the tool call. It only runs tools once every answer is in, so resuming never repeats a
call. The answer is a decision in LangChain's human-in-the-loop format:
  {"type": "approve"}                                   run the call as the model made it
  {"type": "edit", "edited_action": {"name", "args"}}   run the edited call instead
  {"type": "reject", "message": "..."}                  do not run it; the model gets a tool
                                                        error saying the human rejected it
Interrupts need a checkpointer; returned as a StateGraph, the engine compiles it with one.
Who answers, how often they reject and how long they take is the environment's reviewer
policy, not a parameter of this design.

Params:
  review=writes   which calls wait for a human: writes, or all (every tool call)
"""
from attrition_designs._parts import reviewing_loop, writes

PARAMS = {"review": "writes"}


def build(kit):
    p = {**PARAMS, **kit.params}
    if p["review"] not in ("writes", "all"):
        raise ValueError(f"review must be writes or all, not {p['review']!r}")
    tools_by_name = {t.name: t for t in kit.tools}

    def gated(call, message) -> bool:
        return p["review"] == "all" or writes(tools_by_name.get(call["name"]))

    return reviewing_loop(kit, gated)
