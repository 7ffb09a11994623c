"""Budgets: when the engine stops a trial that is using too much.

Model calls and tool calls are counted whatever the graph's shape: the same decisions cost
the same whether a design runs them in two nodes or through four middlewares, which is
not true of graph supersteps (19 for a plain loop, 52 with four middlewares). Supersteps
stay available as an optional budget, off by default; a recursion limit far above any
honest run still stops a graph that loops without calling anything.

Defaults, from the golden path's length g (measured over the shipped designs, strong and
weak profiles, up to 50% injected server errors: at most 3.0 model calls and 4.5 tool
calls per golden step for single-agent designs; a supervisor adds a handoff, a worker's
report and the supervisor's own decision around each worker's share):
  max_model_calls  8 g + 40   one decision per step, plus planners, verifiers, summarizers,
                              clarifications, repeated requests and multi-agent handoffs
  max_tool_calls   6 g + 40   every retry attempt counts, and a verifier re-reads results
  max_steps        off        graph supersteps; set it to cap them
  max_tokens       the scenario's (25,000 x its default step count)
  max_sim_time_s   the scenario's (7 days)
"""
from __future__ import annotations


class BudgetExceeded(Exception):
    def __init__(self, which: str, detail: str):
        self.which = which
        super().__init__(f"{which} budget exhausted: {detail}")


def _scenario_value(sc, name: str):
    # the scenario's `budgets:` section names only the budgets its schema knows
    return getattr(sc.budgets, name, None)


def budgets_for(job) -> dict:
    """The trial's budgets: defaults from the golden length, the scenario's, then the spec's."""
    sc = job.scenario
    g = len(sc.golden_path)
    out = {"max_steps": sc.budgets.max_steps,
           "max_model_calls": _scenario_value(sc, "max_model_calls") or 8 * g + 40,
           "max_tool_calls": _scenario_value(sc, "max_tool_calls") or 6 * g + 40,
           "max_tokens": sc.max_tokens, "max_sim_time_s": sc.budgets.max_sim_time_s}
    out.update({k: v for k, v in job.spec.budgets.items() if v is not None})
    return out


def recursion_limit(b: dict) -> int:
    """LangGraph's per-invocation superstep limit: just past the step budget when there is
    one, else five supersteps per model call the whole trial may make (honest graphs take
    two or three, and this limit applies to each turn on its own)."""
    if b.get("max_steps"):
        return int(b["max_steps"]) + 10
    return 5 * int(b["max_model_calls"]) + 50


def check_budgets(s, steps: int, elapsed: float, b: dict) -> None:
    if b.get("max_steps") and steps > b["max_steps"]:
        raise BudgetExceeded("steps", f"{steps} graph steps (limit {b['max_steps']})")
    if s.model_calls > b["max_model_calls"]:
        raise BudgetExceeded("model_calls", f"{s.model_calls} model calls (limit {b['max_model_calls']})")
    if s.tool_calls > b["max_tool_calls"]:
        raise BudgetExceeded("tool_calls", f"{s.tool_calls} tool calls (limit {b['max_tool_calls']})")
    if s.tokens_in + s.tokens_out > b["max_tokens"]:
        raise BudgetExceeded("tokens", f"{s.tokens_in + s.tokens_out} tokens (limit {b['max_tokens']})")
    if elapsed > b["max_sim_time_s"]:
        raise BudgetExceeded("time", f"{elapsed:.0f} s of virtual time (limit {b['max_sim_time_s']:.0f} s)")
