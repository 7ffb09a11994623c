"""The simulated model in multi-agent graphs: handoffs, structured output, and the text it
writes and reads back."""
import json
from typing import Literal

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from pydantic import BaseModel

from simulator.agent_map import map_agents
from simulator.gateway import Gateway
from simulator.kit import Kit
from simulator.oracle import ANN, HistoryReader
from simulator.profiles import get_profile
from simulator.propagation import aggregate, trace_trial
from simulator.scenario_refs import resolve_scenario
from simulator.session import Session
from simulator.transcript import read_facts, read_tasks, read_transcript, write_facts, write_task
from simulator.vclock import Clock

from conftest import run


def kit_for(scenario="support_refund", profile="strong", **over):
    sc, _ = resolve_scenario(scenario)
    s = Session("t" * 16, 0, 0, sc, get_profile(profile, **over), Clock())
    return s, Kit(s, Gateway(s).tools(), {})


def test_facts_and_tasks_read_back_what_was_written():
    known = {"order": {"order_id": "O-1", "total": 5.5}, "customer": {"id": "C-1"}}
    text = "Here is what I found. " + write_facts(known, ["customer", "order", "missing"])
    assert read_facts(text, ["customer", "order"]) == known
    assert read_facts(text, ["order"]) == {"order": known["order"]}  # only steps it knows of
    # the same text quoted once more on the way (a repr of a list of (task, result) pairs)
    quoted = repr([("task", text + " it's done")])
    assert read_facts(quoted, ["customer", "order"]) == known
    task = "For the plan: 1. " + write_task("get_order", {"order_id": "O-1"}) + ". Do step 1, " + \
        write_task("get_item", {"sku": "S-2"})
    assert read_tasks(task) == [("get_order", {"order_id": "O-1"}), ("get_item", {"sku": "S-2"})]
    assert read_facts("no facts [here] {broken", ["here"]) == {}


def test_a_summarizer_transcript_is_read_as_tool_results():
    xml = ('<message type="ai">\n  <tool_call id="c1" name="get_order">{"order_id": "O-1"}</tool_call>\n'
           '</message>\n<message type="tool">{"order_id": "O-1", "total": 5}</message>')
    assert read_transcript(xml) == [("get_order", {"order_id": "O-1"}, {"order_id": "O-1", "total": 5})]


def test_a_human_message_the_user_did_not_send_is_not_a_new_turn():
    s, _ = kit_for()
    reader = HistoryReader(s.oracle)
    user = HumanMessage("refund please", id="turn-1-0-0", additional_kwargs={ANN: {"turn": 1}})
    critic = HumanMessage("Critique: check the order total.", name="critic")
    b = reader.read([user, critic])
    assert b.turn == 1 and b.user_seen and not b.tasks
    b = reader.read([critic])
    assert not b.user_seen  # the model then takes the user's current request from the session


def test_agent_map_reads_workers_tools_and_handoffs():
    from langchain.agents import create_agent
    from langgraph_supervisor import create_supervisor
    s, kit = kit_for()
    tools = {t.name: t for t in kit.tools}
    a = create_agent(kit.model(), [tools["get_order"]], name="orders")
    b = create_agent(kit.model(), [tools["issue_refund"]], name="refunds")
    m = map_agents(create_supervisor([a, b], model=kit.model()).compile())
    assert m.tools["orders"] == {"get_order"} and m.tools["refunds"] == {"issue_refund"}
    assert m.destination("transfer_to_orders") == "orders" and m.holder("issue_refund") == {"refunds"}
    assert m.destination("get_order") is None


class Route(BaseModel):
    """Where the request goes next."""
    next: Literal["billing", "orders", "FINISH"]
    reason: str


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_for_every_method(method):
    s, kit = kit_for()
    user = HumanMessage("I need a refund", id="turn-0-0-0", additional_kwargs={ANN: {"turn": 0}})
    routed = kit.model().with_structured_output(Route, method=method).invoke([user])
    assert isinstance(routed, Route) and routed.next in ("billing", "orders", "FINISH")
    raw = kit.model().with_structured_output(Route, method=method, include_raw=True).invoke([user])
    assert isinstance(raw["parsed"], Route) and raw["parsing_error"] is None
    calls = [e for e in s.trace.events if e["event"] == "model_call"]
    assert [e["tool"] for e in calls] == ["Route", "Route"] and s.model_calls == 2


def test_a_plan_lists_the_remaining_steps_as_tasks():
    class Plan(BaseModel):
        steps: list[str]
    s, kit = kit_for()
    user = HumanMessage("I need a refund", id="turn-0-0-0", additional_kwargs={ANN: {"turn": 0}})
    plan = kit.model().with_structured_output(Plan).invoke([user])
    tools = [t for t, _ in read_tasks(" ".join(plan.steps))]
    assert tools == [s.oracle.steps[x].tool for x in s.scenario.turns[0].steps]


def test_a_supervisor_hands_off_and_its_worker_reports_back():
    (rec, events), = run("support_refund", agent="supervisor", seed=1)
    assert rec.outcome == "success"
    handoffs = [e["tool"] for e in events if e["event"] == "model_call" and e["mode"] == "handoff"]
    assert handoffs and set(handoffs) == {"transfer_to_research", "transfer_to_operations"}
    # on a trail, the reader hands back what it found when the next step (the report) is not its own
    (rec, events), = run("chain", params={"length": 6}, agent="supervisor", seed=1)
    assert rec.outcome == "success"
    modes = [e["mode"] for e in events if e["event"] == "model_call"]
    assert modes.index("handback") < len(modes) - modes[::-1].index("handoff") - 1


def test_an_error_that_crosses_a_handoff_is_counted_at_the_receiving_agent():
    traces = []
    for rec, events in run("support_refund", agent="supervisor", trials=12, seed=2,
                           faults=["silent_wrong:target=reads,rate=0.3"]):
        traces.append(trace_trial(rec, events))
    agg = aggregate(traces)
    ops = agg["nodes"]["operations"]
    assert ops["entered"] > 0, agg["nodes"]
    crossed = [r for t in traces for r in t["roots"] if "research" in r["path"] and "operations" in r["path"]]
    assert crossed, "a corrupted read taken in by research reaches the writes operations makes"
    assert all(t["agent_nodes"] == ["operations", "research", "supervisor"] for t in traces)
    h = agg["handoffs"]
    assert h["multi_agent_trials"] == 12 and h["roots"] == sum(len(t["roots"]) for t in traces)
    assert h["crossed"] == sum(len(r["agents"]) > 1 for t in traces for r in t["roots"]) >= len(crossed)
    # one agent calling its tools is not a handoff
    solo = [trace_trial(rec, ev) for rec, ev in run("support_refund", trials=4, seed=2,
                                                    faults=["silent_wrong:target=reads,rate=0.3"])]
    assert all(t["agent_nodes"] == ["agent"] for t in solo)
    assert aggregate(solo)["handoffs"] == {"multi_agent_trials": 0, "roots": 0, "crossed": 0, "crossed_rate": None,
                                           "ci_low": 0.0, "ci_high": 1.0}
