"""Each fault family changes the outcome or the trace, and the matching design withstands it."""
import json

import pytest
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import RetryPolicy

from simulator.faults.config import FaultConfigError, normalize_faults
from simulator.jobs import make_specs
from simulator.profiles import ERROR_MODES

from conftest import run


def rate(recs):
    return sum(r.outcome == "success" for r, _ in recs) / len(recs)


def fired_calls(events, fault):
    return [e["seq"] for e in events if e["event"] == "fault" and e["fault"] == fault]


# -- API errors ---------------------------------------------------------------
def test_429_storm_fails_react_and_react_retry_survives_on_the_virtual_clock():
    storm = ["rate_limit:rate=0.3,retry_after_s=5"]
    bare = run(agent="react", trials=20, seed=1, faults=storm)
    retry = run(agent="react-retry", trials=20, seed=1, faults=storm)
    assert rate(bare) <= 0.3 and rate(retry) >= 0.8
    failed = [r.failure_mode for r, _ in bare if r.outcome == "failure"]
    # the storm ends the trials the model's own occasional errors did not end first
    assert failed.count("unhandled_rate_limit_exceeded") >= 0.8 * len(failed)
    assert set(failed) - {"unhandled_rate_limit_exceeded"} <= set(ERROR_MODES)
    sleeps = [e["seconds"] for _, ev in retry for e in ev if e["event"] == "sleep"]
    assert sleeps and min(sleeps) >= 5.0                   # retry-after honoured
    # the back-off is on the virtual clock, not the wall clock
    assert sum(sleeps) > 100 and sum(r.wall_time_s for r, _ in retry) < 10


def test_naive_retry_after_a_timeout_writes_twice_and_an_idempotent_one_does_not():
    fault = ["timeout:rate=0.3,target=writes"]
    naive = run(agent="react-retry", trials=15, seed=2, faults=fault, agent_params={"idempotency": False})
    idem = run(agent="react-retry", trials=15, seed=2, faults=fault, agent_params={"idempotency": True})
    assert sum(r.failure_mode == "duplicate_write" for r, _ in naive) >= 3
    assert not any(r.failure_mode == "duplicate_write" for r, _ in idem)
    assert any(e.get("idempotent_replay") for _, ev in idem for e in ev if e["event"] == "tool_call")
    assert any(e.get("effect_applied") for _, ev in naive for e in ev if e["event"] == "tool_call")


def test_auth_expired_until_refreshed():
    recs = run(agent="react-retry", trials=5, seed=3, faults=["auth_expired:at_call=2"])
    for r, ev in recs:
        assert r.faults_fired["auth_expired"] == 1   # refreshed: no second 401
        assert any(e["event"] == "credentials_refreshed" for e in ev)
    (r, _), = run(agent="react", seed=3, faults=["auth_expired:at_call=2"])
    assert r.failure_mode == "unhandled_invalid_api_key"


def test_quota_exhausted_is_not_retried_away():
    recs = run(agent="react-retry", trials=3, seed=4, faults=["quota_exhausted:at_call=1,target=model"])
    assert all(r.failure_mode == "unhandled_insufficient_quota" for r, _ in recs)


# -- latency and faults in time ------------------------------------------------
def test_latency_spikes_cost_virtual_time_and_become_timeouts_past_the_client_limit():
    base = run(trials=5, seed=5)
    slow = run(trials=5, seed=5, faults=["latency:rate=1,spike_median_s=30,spike_p95_s=60"])
    assert sum(r.sim_time_s for r, _ in slow) > sum(r.sim_time_s for r, _ in base) + 5 * 8 * 20
    timed = run(trials=5, seed=5, faults=["latency:rate=1,spike_median_s=30,client_timeout_s=10"])
    assert all(r.failure_mode == "unhandled_timeout" for r, _ in timed)
    # retries withstand intermittent slowness (a slow call is likely fast the next time)
    f = ["latency:rate=0.3,spike_median_s=30,client_timeout_s=10"]
    assert rate(run(agent="react-retry", trials=10, seed=5, faults=f)) > rate(run(trials=10, seed=5, faults=f))


def test_a_provider_outage_hits_every_session_inside_it_and_none_outside():
    specs = make_specs("support_refund", None, "react", trials=8, seed=6,
                       faults=["outage:windows=300-400,target=model"])
    from simulator.engine import run_jobs
    from simulator.jobs import JobMaker
    make = JobMaker()
    got = []
    run_jobs([make(s) for s in specs], concurrency=8, stagger_s=100,
             on_done=lambda r, ev: got.append((r, ev)))
    for r, ev in got:
        calls = [e["t"] for e in ev if e["event"] in ("model_call", "model_error")]
        inside = any(300 <= t < 400 for t in calls)
        if inside:
            assert r.faults_fired.get("outage") and r.failure_mode == "unhandled_service_unavailable"
        else:
            assert not r.faults_fired and "outage" in r.faults_not_fired
    hits = sum(bool(r.faults_fired) for r, _ in got)
    assert 0 < hits < len(got)
    for r, ev in got:
        assert all(300 <= e["t"] < 400 for e in ev if e["event"] == "fault")


def test_random_outage_process_is_shared_and_reproducible():
    f = ["outage:mtbf_s=120,mttr_s=30,target=model"]
    a = run(agent="circuit-breaker", trials=4, seed=7, faults=f)
    b = run(agent="circuit-breaker", trials=4, seed=7, faults=f)
    assert [r.deterministic() for r, _ in a] == [r.deterministic() for r, _ in b]
    assert any(r.faults_fired for r, _ in a)


def test_circuit_breaker_falls_back_during_a_long_outage():
    f = ["outage:windows=20-400,target=model:agent"]
    assert rate(run(agent="react-retry", trials=6, seed=8, faults=f)) == 0.0
    cb = run(agent="circuit-breaker", trials=6, seed=8, faults=f)
    assert rate(cb) >= 0.8
    roles = {e.get("role") for _, ev in cb for e in ev if e["event"] == "model_call"}
    assert "fallback" in roles


def test_shared_rate_limit_load_causes_429s():
    f = ["shared_rate_limit:rpm=20,target=model"]
    specs = make_specs("support_refund", None, "react-retry", trials=6, seed=9, faults=f)
    from simulator.engine import run_jobs
    from simulator.jobs import JobMaker
    alone = run_jobs([JobMaker()(s) for s in specs], concurrency=1)
    crowd = run_jobs([JobMaker()(s) for s in specs], concurrency=6)
    assert sum(sum(r.faults_fired.values()) for r in crowd) > sum(sum(r.faults_fired.values()) for r in alone)


# -- corrupted results -----------------------------------------------------------
def test_plan_execute_verify_catches_silent_wrong_values_react_passes_on():
    f = ["silent_wrong:rate=0.15,target=reads"]
    react = run("chain", params={"length": 12}, agent="react", trials=30, seed=1, faults=f)
    pev = run("chain", params={"length": 12}, agent="plan-execute-verify", trials=30, seed=1, faults=f)
    assert sum(r.failure_mode == "silent_wrong" for r, _ in react) >= 5
    assert sum(r.failure_mode == "silent_wrong" for r, _ in pev) <= 1
    assert rate(pev) > rate(react)
    assert any(e["event"] == "corruption_accepted" for _, ev in react for e in ev)


@pytest.mark.parametrize("fault", ["malformed", "truncated", "empty", "schema_drift", "stale", "silent_wrong"])
def test_each_corruption_changes_what_the_model_receives(fault):
    (r, ev), = run(seed=10, faults=[f"{fault}:at_call=1"])
    call = next(e for e in ev if e["event"] == "tool_call")
    assert call["faults"] == [fault]
    clean = next(e for e in run(seed=10)[0][1] if e["event"] == "tool_call")
    assert call["result"] != clean["result"]


def test_a_noticed_malformed_result_is_fetched_again():
    recs = run(trials=10, seed=11, faults=["malformed:at_call=1"])
    retried = [r for r, ev in recs if sum(e["event"] == "tool_call" and e["tool"] == "find_customer"
                                          for e in ev) == 2]
    assert len(retried) >= 5  # strong profile notices 80%


# -- context saturation ---------------------------------------------------------------
def test_memory_policy_changes_the_outcome_under_saturation():
    f = ["context_flood:tokens=800", "context_overflow:window=20000"]
    none = run("chain", params={"length": 40}, agent="react-memory", agent_params={"memory": "none"},
               trials=8, seed=1, faults=f)
    window = run("chain", params={"length": 40}, agent="react-memory", agent_params={"memory": "window"},
                 trials=8, seed=1, faults=f)
    assert sum(r.failure_mode == "unhandled_context_length_exceeded" for r, _ in none) >= 6
    assert not any(r.failure_mode == "unhandled_context_length_exceeded" for r, _ in window)
    assert rate(window) > rate(none)


def test_summary_policy_keeps_facts_the_window_forgets():
    # the refund's later steps need the order found in the first turn
    kw = dict(trials=10, seed=12, agent="react-memory")
    window = run(agent_params={"memory": "window", "window": 4}, **kw)
    summary = run(agent_params={"memory": "summary", "window": 4}, **kw)
    refetch = lambda recs: sum(e.get("mode") == "refetch" for _, ev in recs for e in ev if e["event"] == "model_call")
    assert refetch(window) > refetch(summary)
    assert any(e.get("role") == "summarizer" for _, ev in summary for e in ev if e["event"] == "model_call")


def test_context_flood_raises_the_error_hazard():
    (r, ev), = run("chain", params={"length": 30}, seed=13, faults=["context_flood:tokens=3000"])
    hazards = [e["p_error"] for e in ev if e["event"] == "model_call" and e.get("p_error")]
    assert hazards[-1] > hazards[0] * 1.5


# -- ambiguous prompts -------------------------------------------------------------------
def test_ambiguity_clarifying_versus_guessing():
    asks = run(trials=10, seed=14, faults=["ambiguous"], profile_params={"clarify_when_ambiguous": 1.0})
    guesses = run(trials=10, seed=14, faults=["ambiguous"], profile_params={"clarify_when_ambiguous": 0.0})
    assert all(r.clarifications == 1 and r.guesses == 0 for r, _ in asks)
    assert all(r.clarifications == 0 and r.guesses >= 1 for r, _ in guesses)
    assert rate(asks) > rate(guesses)
    text = next(e["text"] for _, ev in asks for e in ev if e["event"] == "user_turn")
    assert "jane@example.com" not in text


def test_conflict_and_goal_change():
    guess = run(trials=10, seed=15, faults=["conflict"], profile_params={"clarify_when_ambiguous": 0.0})
    assert all(r.guesses >= 1 for r, _ in guess)
    follow = run(trials=8, seed=15, faults=["goal_change"], profile_params={"track_goal_change": 1.0})
    ignore = run(trials=8, seed=15, faults=["goal_change"], profile_params={"track_goal_change": 0.0})
    assert rate(follow) > rate(ignore)
    assert sum(r.failure_mode == "goal_change_missed" for r, _ in ignore) >= 4


def test_typos_raise_the_hazard():
    (_, clean), = run(seed=16)
    (_, typo), = run(seed=16, faults=["typo"])
    first = lambda ev: next(e["p_error"] for e in ev if e["event"] == "model_call")
    assert first(typo) > first(clean)


# -- prompt injection and memory loss ------------------------------------------------------
def test_prompt_injection_is_recorded_obeyed_or_not():
    f = ["prompt_injection:at_call=1"]
    weak = run(trials=20, seed=17, faults=f, profile_params={"obey_injection": 1.0})
    strong = run(trials=20, seed=17, faults=f, profile_params={"obey_injection": 0.0})
    assert all(r.injections_obeyed == 1 and r.failure_mode == "prompt_injection" for r, _ in weak)
    assert all(r.injections_obeyed == 0 for r, _ in strong)
    assert any(e["event"] == "injection_ignored" for _, ev in strong for e in ev)


def test_memory_loss_between_turns_forces_re_reads():
    (r, ev), = run(seed=18, faults=["memory_loss:at_turn=2"])
    lost = next(e for e in ev if e["event"] == "fault")
    assert lost["turn"] == 2 and lost["kept"] == 0
    modes = [e.get("mode") for e in ev if e["event"] == "model_call" and e["turn"] == 2]
    assert "refetch" in modes


# -- determinism and configuration -------------------------------------------------------------
def test_same_seed_same_fault_schedule_and_record():
    f = ["server_error:rate=0.2", "silent_wrong:rate=0.2"]
    a = run(trials=4, seed=19, faults=f)
    b = run(trials=4, seed=19, faults=f)
    assert [json.dumps(ev) for _, ev in a] == [json.dumps(ev) for _, ev in b]


def test_two_designs_on_one_seed_see_the_same_schedule():
    f = ["server_error:rate=0.3"]
    for seed in range(5):
        (ra, ea), = run(agent="react", seed=seed, faults=f)
        (rb, eb), = run(agent="react-retry", seed=seed, faults=f)
        calls = lambda ev: [e["call"] for e in ev if e["event"] == "tool_call" and e.get("faults")]
        # react stops at its first failure; up to there both saw the same failing calls
        assert calls(ea) == calls(eb)[: len(calls(ea))]


def test_a_fault_that_never_fired_is_marked():
    (r, _), = run(seed=20, faults=["timeout:at_call=99"])
    assert r.faults_not_fired == ["timeout"] and r.faults_fired == {}


@pytest.mark.parametrize("text, message", [
    ("ratelimit", "unknown fault 'ratelimit'; known faults:"),
    ("rate_limit:rate=1.5", "rate: Input should be less than or equal to 1"),
    ("rate_limit:retry_after=3", "retry_after: Extra inputs are not permitted"),
    ("server_error:status=404", "status: Input should be 500, 502 or 503"),
    ("outage:target=model", "give windows=START-END or mtbf_s and mttr_s"),
    ("outage:windows=50-10", "window [50.0, 10.0) is empty"),
    ("outage:mtbf_s=100", "needs both mtbf_s and mttr_s"),
    ("timeout:at_call=0", "at_call counts eligible calls from 1"),
    ("malformed:target=model", "acts on tool, not on the model"),
    ("ambiguous:target=tools", "acts on the turn, not on tools"),
])
def test_bad_fault_settings_say_what_is_wrong(text, message):
    with pytest.raises(FaultConfigError) as e:
        normalize_faults([text])
    assert message in str(e.value)


def test_faults_checked_against_the_scenario():
    with pytest.raises(FaultConfigError, match="target tool 'issue_refnd' is not in scenario"):
        make_specs("support_refund", None, "react", trials=1, seed=0, faults=["timeout:target=issue_refnd"])
    with pytest.raises(FaultConfigError, match="at_turn 7 does not exist; scenario 'support_refund' has 3 turns"):
        make_specs("support_refund", None, "react", trials=1, seed=0, faults=["memory_loss:at_turn=7"])


# -- LangGraph's own RetryPolicy on the virtual clock ---------------------------------------------
def flaky_graph(kit):
    """A node that fails twice, under LangGraph's RetryPolicy, then answers through the model."""
    model = kit.model().bind_tools(kit.tools)
    state = {"n": 0}

    def node(s):
        state["n"] += 1
        if state["n"] <= 2:
            raise ConnectionError("flaky upstream")
        return {"messages": [model.invoke(s["messages"])]}

    from langgraph.prebuilt import ToolNode, tools_condition
    g = StateGraph(MessagesState)
    g.add_node("agent", node, retry_policy=RetryPolicy(initial_interval=30.0, backoff_factor=2.0,
                                                        max_attempts=5, jitter=True,
                                                        retry_on=ConnectionError))
    g.add_node("tools", ToolNode(kit.tools))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", "agent")
    return g


def test_langgraph_retry_policy_sleeps_on_the_virtual_clock():
    import time
    t0 = time.perf_counter()
    (r1, ev1), = run(agent=f"{__file__}:flaky_graph", seed=21)
    assert time.perf_counter() - t0 < 5
    sleeps = [e for e in ev1 if e["event"] == "sleep" and e.get("by") == "langgraph.RetryPolicy"]
    assert len(sleeps) == 2
    assert 30 <= sleeps[0]["seconds"] < 31 and 60 <= sleeps[1]["seconds"] < 61  # jitter < 1 s
    assert r1.sim_time_s > 90
    (r2, ev2), = run(agent=f"{__file__}:flaky_graph", seed=21)
    assert [e["seconds"] for e in ev2 if e["event"] == "sleep"] == [e["seconds"] for e in sleeps]


def test_stacked_corruptions_do_not_crash_the_harness():
    recs = run(trials=3, seed=22, faults=["malformed:rate=1", "silent_wrong:rate=1", "truncated:rate=1"])
    assert all(r.outcome != "error" for r, _ in recs)


def test_default_rates_apply_to_single_and_persistent_faults():
    recs = run(trials=10, seed=23, faults=["auth_expired"], agent="react-retry")
    first = [next((e["call"] for e in ev if e["event"] == "fault"), None) for _, ev in recs]
    assert len({c for c in first if c is not None}) > 1  # not always the first call


def test_a_scenario_fault_and_a_sweep_fault_of_one_name_stay_apart():
    fs = normalize_faults(normalize_faults(["server_error:rate=0.1"]) + normalize_faults(["server_error:rate=0.2"]))
    assert [f["id"] for f in fs] == ["server_error", "server_error#2"]
