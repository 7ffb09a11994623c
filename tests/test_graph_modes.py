"""Real graphs, unchanged: async nodes, human review, foreign human messages, direct tool
calls, library retry middleware, budgets that do not depend on a graph's shape, and
histories merged by message id."""
import asyncio
import random
import re
from typing import Annotated
from dataclasses import replace

import pytest
from typing_extensions import TypedDict
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES, add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import RetryPolicy, interrupt

from simulator import vclock
from simulator.budgets import budgets_for
from simulator.design_loader import load_factory
from simulator.driver import Driver, build, may_interrupt
from simulator.engine import run_jobs
from simulator.events import parse_event
from simulator.gateway import Gateway
from simulator.jobs import JobMaker, make_specs
from simulator.kit import Kit
from simulator.profiles import get_profile
from simulator.reviewer import parse, policy, reply
from simulator.session import Session, stream_key
from simulator.user import Conversation, user_turn
from simulator.vclock import Clock
from simulator.world import run_golden

from conftest import FIXTURES, run

STYLES = FIXTURES / "styles"
WRITES = {"issue_refund", "create_ticket", "update_order"}


def go(factory=None, *, agent="react", trials=1, seed=1, reviewer=None, budgets=None, scenario="support_refund",
       **kw):
    """Run trials in-process; `factory` replaces the spec's design (specs still name `agent`)."""
    specs = make_specs(scenario, None, agent, trials=trials, seed=seed, reviewer=reviewer, **kw)
    if budgets:
        specs = [s.model_copy(update={"budgets": budgets}) for s in specs]
    make, got = JobMaker(), {}
    jobs = [replace(make(s), **({"factory": factory} if factory else {})) for s in specs]
    run_jobs(jobs, on_done=lambda r, ev: got.__setitem__(r.trial_id, (r, ev)))
    return [got[s.id] for s in specs]


def calls(events):
    return [(e["event"], e.get("tool"), e.get("args"), e.get("mode")) for e in events
            if e["event"] in ("model_call", "tool_call")]


def same_record(a, b, shape=True):
    """Equal records apart from the design's name and the trial id (and, unless `shape`, the graph's nodes)."""
    skip = {"agent", "trial_id", "spec"} | (set() if shape else {"graph_nodes", "graph_edges"})
    strip = lambda r: {k: v for k, v in r.deterministic().items() if k not in skip}
    return strip(a) == strip(b)


def session_and_tools(seed=0):
    specs = make_specs("support_refund", None, "react", trials=1, seed=seed)
    sc = JobMaker()(specs[0]).scenario
    s = Session(specs[0].id, seed, 0, sc, get_profile("strong"), Clock(), scenario_key=stream_key(sc, {}))
    return s, Gateway(s).tools()


# -- 1. async graphs -------------------------------------------------------------
def test_async_nodes_give_the_records_of_their_sync_twin():
    sync = run(agent="react", trials=3, seed=1)
    asyn = run(agent=f"{STYLES / 'async_nodes.py'}:build", trials=3, seed=1)
    for (a, ea), (b, eb) in zip(sync, asyn):
        assert same_record(a, b)
        assert calls(ea) == calls(eb)
    assert [r.outcome for r, _ in asyn].count("success") >= 2


def test_only_graphs_without_a_sync_path_run_through_astream():
    s, tools = session_and_tools()
    kit = Kit(s, tools, {})
    for ref, is_async in [("react", False), (f"{STYLES / 'async_nodes.py'}:build", True),
                          (f"{STYLES / 'functional_api.py'}:build", False)]:
        graph, owned = build(load_factory(ref), kit)
        assert Driver(graph, owned).is_async is is_async, ref
    assert all(t.coroutine is not None for t in tools)  # ToolNode's async path awaits them directly
    from langchain_core.tools import tool

    @tool
    async def lookup(email: str) -> str:
        """An async-only tool: a ToolNode can run it only through astream."""
        return await tools[0].ainvoke({"email": email})

    g = StateGraph(MessagesState)
    g.add_node("tools", ToolNode([lookup]))
    g.add_edge(START, "tools")
    assert Driver(g.compile(), False).is_async


def async_functional(kit):
    tools_by_name = {t.name: t for t in kit.tools}
    model = kit.model().bind_tools(kit.tools)
    from langchain_core.messages import SystemMessage
    system = SystemMessage(kit.system_prompt)

    @task
    async def call_model(messages):
        return await model.ainvoke([system, *messages])

    @task
    async def call_tool(tool_call):
        return await tools_by_name[tool_call["name"]].ainvoke(tool_call)

    @entrypoint()
    async def agent(messages):
        response = await call_model(messages)
        while response.tool_calls:
            results = [await call_tool(tc) for tc in response.tool_calls]
            messages = add_messages(messages, [response, *results])
            response = await call_model(messages)
        return add_messages(messages, response)

    return agent


def test_an_async_entrypoint_runs_like_its_sync_twin():
    sync = go(load_factory(f"{STYLES / 'functional_api.py'}:build"), trials=2)
    asyn = go(async_functional, trials=2)
    for (a, ea), (b, eb) in zip(sync, asyn):
        assert same_record(a, b) and calls(ea) == calls(eb)


def async_with_retry_policy(kit):
    """An async model node that fails once (a transient error), under LangGraph's RetryPolicy,
    and a sync node, which astream runs in an executor thread."""
    model = kit.model().bind_tools(kit.tools)
    failed, seen = set(), kit.params.setdefault("seen", [])

    async def agent(state: MessagesState):
        if len(state["messages"]) not in failed:
            failed.add(len(state["messages"]))
            raise ConnectionError("connection reset by peer")
        return {"messages": [await model.ainvoke(state["messages"])]}

    def audit(state: MessagesState):
        seen.append(vclock.CURRENT.get() is kit.session)
        return {}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent, retry_policy=RetryPolicy(initial_interval=2.0, max_attempts=3))
    g.add_node("audit", audit)
    g.add_node("tools", ToolNode(kit.tools))
    g.add_edge(START, "audit")
    g.add_edge("audit", "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", "agent")
    return g


def test_async_retry_policy_sleeps_on_the_virtual_clock_with_seeded_jitter():
    seen = []

    def factory(kit):
        kit.params["seen"] = seen
        return async_with_retry_policy(kit)

    (a, ea), = go(factory, seed=3)
    (b, eb), = go(factory, seed=3)
    sleeps = [e for e in ea if e["event"] == "sleep"]
    assert a.outcome == "success" and sleeps
    assert all(e["by"] == "langgraph.RetryPolicy" and 2.0 <= e["seconds"] <= 3.0 for e in sleeps)
    assert [e["seconds"] for e in sleeps] == [e["seconds"] for e in eb if e["event"] == "sleep"]
    assert a.wall_time_s < 5 and all(seen)  # the session is visible in astream's executor threads


# -- 2. human in the loop ---------------------------------------------------------
def reviews(events):
    return [e for e in events if e["event"] == "review"]


def test_human_approval_waits_for_the_reviewer_on_the_virtual_clock():
    (rec, ev), = go(agent="human-approval")
    (ref, rev), = go(agent="react")
    rs = reviews(ev)
    assert rec.outcome == "success" and len(rs) == 3
    assert [r["tools"][0] for r in rs] == [e["tool"] for e in rev if e["event"] == "tool_call" and e["tool"] in WRITES]
    assert all(r["decisions"] == ["approve"] and r["wrong"] == [False] for r in rs)
    assert rec.sim_time_s == pytest.approx(ref.sim_time_s + sum(r["latency_s"] for r in rs), abs=1e-3)
    assert calls(ev) == calls(rev)
    for r in rs:
        parse_event(r)


def test_nobody_answering_ends_the_trial_awaiting_a_human():
    (rec, ev), = go(agent="human-approval", reviewer={"mode": "none"})
    assert (rec.outcome, rec.failure_mode) == ("failure", "awaiting_human")
    assert reviews(ev)[-1]["answered"] is False
    (rec, _), = go(agent="human-approval", reviewer={"max_reviews": 1})
    assert rec.failure_mode == "awaiting_human"


def test_the_record_counts_reviews_rejections_and_waiting():
    (rec, ev), = go(agent="human-approval", reviewer={"mode": "reject", "max_reviews": 3})
    rs = reviews(ev)
    assert rec.reviews == sum(r.get("answered") is not False for r in rs) == 3
    assert rec.rejections == 3 and rec.review_s == pytest.approx(sum(r["latency_s"] for r in rs), abs=1e-5)
    (plain, _), = go(agent="react")
    assert (plain.reviews, plain.rejections, plain.review_s) == (0, 0, 0.0)


def test_a_rejected_write_never_reaches_the_world():
    (rec, ev), = go(agent="human-approval", reviewer={"mode": "reject"})
    assert rec.outcome == "failure"
    assert not [e for e in ev if e["event"] == "world_write"]
    assert all(r["decisions"] == ["reject"] for r in reviews(ev))


def test_a_careful_reviewer_stops_wrong_writes_and_corrects_them():
    kw = dict(agent="human-approval", trials=8, seed=2, profile="weak",
              profile_params={"base_hazard": 0.2, "context_softness": 0.0, "recall_in_answer": 0.0})
    sc = JobMaker()(make_specs("support_refund", None, "react", trials=1, seed=0)[0]).scenario
    golden = {step.tool: run_golden(sc).args[step.id] for step in sc.golden_path}
    runs = {name: go(reviewer=policy, **kw) for name, policy in (
        ("caught", {"catches_errors": 1.0}), ("edited", {"catches_errors": 1.0, "edit_rate": 1.0}),
        ("picky", {"reject_rate": 1.0}))}
    seen = {name: [(d, w) for _, ev in got for r in reviews(ev) for d, w in zip(r["decisions"], r["wrong"])]
            for name, got in runs.items()}
    assert any(w for _, w in seen["caught"]) and all(d == ("reject" if w else "approve") for d, w in seen["caught"])
    assert ("edit", True) in seen["edited"] and all(d == ("edit" if w else "approve") for d, w in seen["edited"])
    assert any(not w for _, w in seen["picky"]) and all(d == ("approve" if w else "reject") for d, w in seen["picky"])
    for _, ev in runs["edited"]:  # an edited write runs the golden call
        for r in reviews(ev):
            if r["decisions"] == ["edit"]:
                after = next(e for e in ev if e["event"] == "tool_call" and e["seq"] > r["seq"])
                assert (after["tool"], after["args"]) == (r["tools"][0], golden[r["tools"][0]])


@pytest.mark.parametrize("style, request_format", [("hitl_middleware", "hitl_batched"),
                                                    ("interrupt_approval", "interrupt")])
def test_review_styles_run_to_success(style, request_format):
    (rec, ev), = go(load_factory(f"{STYLES / style}.py:build"))
    (ref, rev), = go(agent="react")
    assert rec.outcome == "success" and calls(ev) == calls(rev)
    assert {r["request"] for r in reviews(ev)} == {request_format} and len(reviews(ev)) == 3


def per_call_hitl(kit):
    from langchain.agents import create_agent
    from langchain.agents.middleware import HumanInTheLoopMiddleware
    gated = {t.name: {"allowed_decisions": ["approve", "reject"]} for t in kit.tools if t.name in WRITES}
    return create_agent(kit.model(), kit.tools, system_prompt=kit.system_prompt, checkpointer=InMemorySaver(),
                        middleware=[HumanInTheLoopMiddleware(interrupt_on=gated, interrupt_mode="per_call")])


def test_per_call_middleware_requests_get_only_the_decisions_they_allow():
    (rec, ev), = go(per_call_hitl, reviewer={"mode": "review", "catches_errors": 1.0, "edit_rate": 1.0},
                    profile="weak", seed=4, profile_params={"base_hazard": 0.3})
    rs = reviews(ev)
    assert rs and {r["request"] for r in rs} == {"hitl_per_call"}
    assert all(d in ("approve", "reject") for r in rs for d in r["decisions"])  # edit is not allowed here


def breakpoint_before_tools(kit):
    return load_factory("react")(kit).compile(checkpointer=InMemorySaver(), interrupt_before=["tools"])


def test_a_static_breakpoint_is_reviewed_and_continued():
    (rec, ev), = go(breakpoint_before_tools)
    assert rec.outcome == "success" and {r["request"] for r in reviews(ev)} == {"breakpoint"}


def ask_first(state):
    # a helper the node calls: the engine must still see that the graph can interrupt
    return interrupt({"question": "Go ahead?"})


def interrupting_graph(kit, compile_it=False):
    react = load_factory("react")(kit)
    g = StateGraph(MessagesState)
    g.add_node("gate", lambda s: (ask_first(s), {})[1])
    g.add_node("agent", react.compile())
    g.add_edge(START, "gate")
    g.add_edge("gate", "agent")
    return g.compile() if compile_it else g


def test_the_engine_compiles_an_interrupting_state_graph_with_a_checkpointer():
    (rec, ev), = go(interrupting_graph)
    assert rec.outcome == "success" and len(reviews(ev)) == 3  # one per turn
    (rec, _), = go(lambda kit: interrupting_graph(kit, compile_it=True))
    assert rec.outcome == "error" and "checkpointer" in rec.error


def test_interrupts_are_found_behind_helpers_and_aliases():
    ask = interrupt
    for node, expected in [(lambda s: ask("ok?"), True), (lambda s: ask_first(s), True), (lambda s: {}, False)]:
        g = StateGraph(MessagesState)
        g.add_node("n", node)
        g.add_edge(START, "n")
        assert may_interrupt(g) is expected


def test_reviewer_reads_and_answers_every_request_format():
    inbox = [{"action_request": {"action": "issue_refund", "args": {"order_id": "O-1"}},
              "config": {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True}}]
    fmt, actions = parse(inbox)
    assert fmt == "agent_inbox" and actions[0][:2] == ("issue_refund", {"order_id": "O-1"})
    edit = {"type": "edit", "edited_action": {"name": "issue_refund", "args": {"order_id": "O-2"}}}
    assert reply(fmt, [edit]) == [{"type": "edit", "args": {"action": "issue_refund", "args": {"order_id": "O-2"}}}]
    assert parse({"tool_call": {"name": "x", "args": {"a": 1}, "id": "1"}})[1][0][:2] == ("x", {"a": 1})
    assert reply("interrupt", [{"type": "approve"}]) == {"type": "approve", "action": "continue"}
    assert reply("hitl_batched", [{"type": "approve"}]) == {"decisions": [{"type": "approve"}]}


@pytest.mark.parametrize("given, canonical", [
    ("approve", {"mode": "approve"}), ("review", {"mode": "review"}),
    ("reject_rate=0.1,catches_errors=0.9", {"reject_rate": 0.1, "catches_errors": 0.9}),
    ({"mode": "review", "catches_errors": 0.9, "median_s": 60}, {"catches_errors": 0.9}),
    (None, None)])
def test_reviewer_policy_has_one_canonical_form(given, canonical):
    assert policy(given) == canonical


@pytest.mark.parametrize("given, says", [
    ("catches=0.9", "reviewer.catches: Extra inputs"), ("maybe", "reviewer.mode"),
    ("reject_rate=2", "reviewer.reject_rate: Input should be less than or equal to 1"),
    ("median_s=nan", "reviewer.median_s"), ("median_s=900,p95_s=60", "p95_s (60.0) is below median_s"),
    ("reject_rate", "reviewer.mode"), ("=3", "is not key=value"), ([1], "expected a text or a mapping")])
def test_bad_reviewer_policy_names_the_key(given, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        policy(given)


# -- 3. foreign human messages ------------------------------------------------------
def critic_loop(kit):
    """After each answer a critic sends feedback as a HumanMessage and the agent answers again."""
    react = load_factory("react")(kit).compile()

    def critic(state: MessagesState):
        return {"messages": [HumanMessage("Please double-check your answer.", name="critic")]}

    def route(state: MessagesState):
        last_human = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
        return END if last_human.name == "critic" else "critic"

    g = StateGraph(MessagesState)
    g.add_node("agent", react)
    g.add_node("critic", critic)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["critic", END])
    g.add_edge("critic", "agent")
    return g


def test_human_messages_the_graph_writes_are_not_user_turns():
    (rec, ev), = go(critic_loop)
    assert rec.turns_completed == 3
    assert [e["turn"] for e in ev if e["event"] == "user_turn"] == [0, 1, 2]

    class S:
        user_ids = {"turn-0-0-0"}
    assert user_turn(HumanMessage("hi", id="turn-0-0-0"), S)
    assert not user_turn(HumanMessage("Please double-check.", id="c1", name="critic"), S)
    assert not user_turn(AIMessage("turn-0-0-0", id="turn-0-0-0"), S)


# -- 4. tools called directly ---------------------------------------------------------
def test_tools_take_plain_arguments_and_keep_the_artifact_for_the_model():
    s, tools = session_and_tools()
    find = next(t for t in tools if t.name == "find_customer")
    out = find.invoke({"email": "jane@example.com"})
    assert isinstance(out, str) and "C-100" in out
    assert s.artifacts[out]["call"] == 1 and s.artifacts[out]["ok"] is True
    again = asyncio.run(find.ainvoke({"email": "jane@example.com"}))
    assert again == out and s.artifacts[again]["call"] == 2
    msg = find.invoke({"name": "find_customer", "args": {"email": "jane@example.com"}, "id": "c9", "type": "tool_call"})
    assert isinstance(msg, ToolMessage) and msg.artifact["call"] == 3
    assert [e.get("call_id") for e in s.trace.events if e["event"] == "tool_call"] == [None, None, "c9"]


def test_the_quickstart_tool_node_runs_like_react_and_fault_flags_survive():
    direct = run(agent=f"{STYLES / 'direct_tool_calls.py'}:build", trials=3, seed=1)
    ref = run(agent="react", trials=3, seed=1)
    for (a, ea), (b, eb) in zip(direct, ref):
        assert same_record(a, b, shape=False) and calls(ea) == calls(eb)
    s, tools = session_and_tools()
    s.fault_runtime = type(s.fault_runtime)(tuple(make_specs(
        "support_refund", None, "react", trials=1, seed=0, faults=["silent_wrong:rate=1.0,target=reads"])[0].faults), s)
    out = next(t for t in tools if t.name == "get_order").invoke({"order_id": "O-5521"})
    assert s.artifacts[out].get("faults")


# -- 5. LangChain retry middleware on the virtual clock -----------------------------------
def test_retry_middleware_sleeps_on_the_virtual_clock_with_seeded_jitter():
    faults = ["server_error:rate=0.3", "server_error:rate=0.2,target=model"]
    ref = f"{STYLES / 'retry_middleware.py'}:build"
    saved = random.getstate()
    try:
        random.seed(1)
        a = run(agent=ref, trials=3, seed=2, faults=faults)
        random.seed(99)  # the jitter comes from the trials' own streams, not from the global one
        b = run(agent=ref, trials=3, seed=2, faults=faults)
    finally:
        random.setstate(saved)
    sleeps = [e for _, ev in a for e in ev if e["event"] == "sleep"]
    assert {e["by"] for e in sleeps} == {"langchain.ModelRetryMiddleware", "langchain.ToolRetryMiddleware"}
    assert [e["seconds"] for e in sleeps] == [e["seconds"] for _, ev in b for e in ev if e["event"] == "sleep"]
    assert sum(e["seconds"] for e in sleeps) > 5 and sum(r.wall_time_s for r, _ in a) < 10
    assert vclock.install()["langchain.ToolRetryMiddleware"]


# -- 6. budgets that do not depend on the graph's shape ---------------------------------------
def test_default_budgets_count_calls_not_supersteps():
    job = JobMaker()(make_specs("support_refund", None, "react", trials=1, seed=0)[0])
    b = budgets_for(job)
    assert b["max_steps"] is None and b["max_model_calls"] == 8 * 8 + 40 and b["max_tool_calls"] == 6 * 8 + 40
    (rec, _), = run(agent=f"{FIXTURES / 'bad_designs.py'}:loops_forever")
    assert (rec.outcome, rec.failure_mode) == ("budget", "recursion_limit")


def with_hooks(kit):
    """create_agent with middleware that adds nodes around the model: more supersteps, same decisions."""
    from langchain.agents import create_agent
    from langchain.agents.middleware import after_model, before_model

    @before_model
    def look_before(state, runtime):
        return None

    @after_model
    def look_after(state, runtime):
        return None

    return create_agent(kit.model(), kit.tools, system_prompt=kit.system_prompt, middleware=[look_before, look_after])


def test_the_same_decisions_cost_the_same_budget_in_any_graph_shape():
    shapes = [None, with_hooks]
    (plain, _), (middle, _) = [go(f)[0] for f in shapes]
    assert middle.steps > plain.steps and middle.model_calls == plain.model_calls
    n = plain.model_calls
    for f in shapes:
        assert go(f, budgets={"max_model_calls": n})[0][0].outcome == "success"
        over, = go(f, budgets={"max_model_calls": n - 1})
        assert (over[0].outcome, over[0].failure_mode) == ("budget", "model_calls")
        over, = go(f, budgets={"max_tool_calls": plain.tool_calls - 1})
        assert over[0].failure_mode == "tool_calls"
    assert go(budgets={"max_steps": plain.steps - 1})[0][0].failure_mode == "steps"


# -- 7. histories merged by message id ----------------------------------------------------------
def test_merge_by_id_replaces_repeats_and_applies_removals():
    conv = Conversation("t", [HumanMessage("q", id="u1")])
    a1, t1 = AIMessage("", id="a1"), ToolMessage("r", tool_call_id="c1", id="t1")
    assert conv.merge([a1, t1, HumanMessage("q", id="u1"), a1, t1]) == [a1, t1]
    assert [m.id for m in conv.history] == ["u1", "a1", "t1"]
    a1b = AIMessage("edited", id="a1")
    assert conv.merge([a1b]) == []  # held already: replaced in place, not new
    assert conv.history[1].content == "edited"
    conv.merge([RemoveMessage(id="t1"), RemoveMessage(id="never-seen")])
    assert [m.id for m in conv.history] == ["u1", "a1"]
    conv.merge([RemoveMessage(id=REMOVE_ALL_MESSAGES), AIMessage("summary", id="s")])
    assert [m.id for m in conv.history] == ["s"]


def test_an_entrypoint_returning_the_whole_history_gets_it_back_once():
    inputs = []

    def factory(kit):
        inner = load_factory(f"{STYLES / 'functional_api.py'}:build")(kit)

        @entrypoint()
        def agent(messages):
            inputs.append([m.id for m in messages])
            return inner.invoke(messages)

        return agent

    (rec, _), = go(factory)
    assert rec.outcome == "success" and len(inputs) == 3
    assert all(len(ids) == len(set(ids)) for ids in inputs)


# -- 9. the styles a user writes run like the reference loop ----------------------------------------
STYLE_FILES = ["async_nodes", "interrupt_approval", "hitl_middleware", "functional_api", "retry_middleware",
               "direct_tool_calls", "checkpointer", "send_map_reduce", "subgraph"]


@pytest.fixture(scope="module")
def react_outcomes():
    return [r.outcome for r, _ in run(agent="react", trials=5, seed=1)]


@pytest.mark.parametrize("style", STYLE_FILES)
def test_each_style_runs_like_react(style, react_outcomes):
    recs = run(agent=f"{STYLES / style}.py:build", trials=5, seed=1)
    assert [r.outcome for r, _ in recs] == react_outcomes
    assert all(r.outcome != "error" for r, _ in recs)


# -- 10. graphs attrition cannot drive say so ------------------------------------------------
class Question(TypedDict):
    question: str
    answer: str


class Chat(TypedDict):
    chat_history: Annotated[list, add_messages]


def one_node(state_type, node):
    g = StateGraph(state_type)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    return g


def question_answer(kit):
    model = kit.model()
    return one_node(Question, lambda s: {"answer": model.invoke(s["question"]).content})


def chat_history(kit):
    model = kit.model().bind_tools(kit.tools)
    return one_node(Chat, lambda s: {"chat_history": [model.invoke(s["chat_history"])]})


def string_entrypoint(kit):
    model = kit.model()

    @entrypoint()
    def agent(question: str) -> str:
        return model.invoke(question).content
    return agent


@pytest.mark.parametrize("factory, says", [
    (question_answer, "input state has no 'messages' key (its keys: question, answer)"),
    (chat_history, "rename 'chat_history' to 'messages'"),
    (string_entrypoint, "the entrypoint takes a string; attrition sends the conversation as a list of messages"),
])
def test_a_graph_without_a_message_channel_is_unsupported_not_a_failure(factory, says):
    (rec, ev), = go(factory)
    assert (rec.outcome, rec.failure_mode) == ("error", None)
    assert rec.error.startswith("UnsupportedGraph: ") and says in rec.error, rec.error
    assert not [e for e in ev if e["event"] == "model_call"]  # refused before anything ran


def test_a_node_may_return_messages_in_any_form_add_messages_takes():
    from simulator.driver import messages_in
    got = messages_in({"messages": [("ai", "one"), {"role": "assistant", "content": "two"}, ("user", "three")]})
    assert [(m.type, m.content) for m in got] == [("ai", "one"), ("ai", "two"), ("human", "three")]
    assert [m.content for m in messages_in({"messages": ("ai", "alone")})] == ["alone"]
    # a node's own state is not a message, whatever its keys
    assert messages_in({"type": "report", "content": "x"}) == []
