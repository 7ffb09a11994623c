"""The engine: each trial is a SimPy process on a virtual clock.

LangGraph runs one step at a time (the graph's stream); model and tool calls
inside a step charge latency to the session clock, and the engine then advances
SimPy by that much. Several sessions can share one environment, so whatever they
share (a provider's rate limit, an outage window) hits them at the same virtual
time. A scripted user delivers the turns with think time. Nothing sleeps.
"""
from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import simpy
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.errors import GraphRecursionError

from .designs import build_graph
from .kit import Clock, Kit, Session, make_tools
from .oracle import ANN
from .profiles import ERROR_MODES, get_profile
from .records import Check, TrialRecord
from .rng import lognormal
from .spec import canonical
from .faults.errors import FaultError
from .vclock import CURRENT
from .world import MISSING, REF, get_path, resolve, run_golden


class BudgetExceeded(Exception):
    def __init__(self, which: str, detail: str):
        self.which = which
        super().__init__(f"{which} budget exhausted: {detail}")


@dataclass
class Job:
    """A TrialSpec with its scenario and factory resolved (resolution is cached by the caller)."""
    spec: Any
    scenario: Any
    factory: Callable
    model_factory: Callable | None = None
    start_at: float = 0.0  # virtual arrival time of the session in a shared environment


ROOT_MODES = set(ERROR_MODES) | {"guessed", "obeyed_injection"}


def _numbers_equal(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")


def _fact_in(fact: Any, text: str) -> bool:
    """Whether a reply states a fact; numbers match however they are grouped (2,400.00 = 2400)."""
    if isinstance(fact, (int, float)) and not isinstance(fact, bool):
        plain = _THOUSANDS.sub("", text)
        return any(abs(float(m.group()) - float(fact)) < 1e-9
                   for m in re.finditer(r"(?<![\w.])-?\d+(?:\.\d+)?", plain))
    return str(fact) in text


def failure_mode(events: list[dict], checks: list[Check], writers: set[str] = frozenset()) -> str:
    """The first uncorrected error of the model, else which kind of check failed.

    Errors the model caught (a rejected result) and harmless ones (repeating a read)
    are not causes.
    """
    verdicts: dict[str, str] = {}
    fault_names: dict[str, str] = {}
    for e in events:
        if e["event"] == "model_call":
            verdicts.update(e.get("verdicts") or {})
        elif e["event"] == "fault":
            fault_names[e["fault"]] = e["name"]
    for e in events:
        if e["event"] == "user_end":
            return "user_ended"
        if e["event"] == "corruption_accepted":
            return fault_names.get((e.get("faults") or [""])[0], "corrupted_result")
        if e["event"] == "injection_obeyed":
            return "prompt_injection"
        if e["event"] == "goal_change_missed":
            return "goal_change_missed"
        if e["event"] != "model_call" or e.get("mode") not in ROOT_MODES:
            continue
        if e["mode"] in ("give_up", "premature_finish", "skipped_step"):
            return "gave_up" if e["mode"] == "give_up" else e["mode"]
        if e["mode"] == "repeated_call" and e.get("tool") not in writers:
            continue
        if verdicts.get(e.get("call_id")) != "reject":
            return e["mode"]
    for c in checks:
        if not c.passed and isinstance(c.actual, dict) and isinstance(c.expected, dict) \
                and len(c.actual) > len(c.expected):
            return "duplicate_write"
    if any(not c.passed and c.name.startswith("state") for c in checks):
        return "wrong_final_state"
    return "missing_answer_facts"


def scenario_key(spec, scenario) -> str:
    """What keys a trial's random streams: the scenario's name and parameters (not its
    file path, so a moved or re-cloned scenario file gives the same results)."""
    return f"{scenario.name}|{canonical(spec.scenario.params)}"


def session(env: simpy.Environment, job: Job):
    """One trial as a SimPy process; its return value is the TrialRecord."""
    spec, sc = job.spec, job.scenario
    if job.start_at:
        yield env.timeout(job.start_at)
    wall0 = time.perf_counter()
    start = env.now
    profile = get_profile(spec.profile, **spec.profile_params)
    clock = Clock(env)
    shared = env.__dict__.setdefault("_attrition_shared", {})
    s = Session(spec.id, spec.seed, spec.replicate, sc, profile, clock, scenario_key=scenario_key(spec, sc),
                faults=spec.faults, shared=shared)
    trace = s.trace
    budgets = {"max_steps": sc.max_steps, "max_tokens": sc.max_tokens,
               "max_sim_time_s": sc.budgets.max_sim_time_s, **spec.budgets}
    user_rng = s.stream("user")
    outcome, mode, error, steps, turns_done = None, None, None, 0, 0
    topology: tuple[list, list] = ([], [])
    answers: list[str] = []
    checks: list[Check] = []
    history: list = []
    trace.emit("trial_start", spec=spec.model_dump(mode="json"), scenario=sc.name,
               golden_length=len(sc.golden_path))
    try:
        kit = Kit(s, make_tools(s), dict(spec.agent_params), job.model_factory)
        graph = build_graph(job.factory, kit)
        topology = _topology(graph)
        checkpointed = getattr(graph, "checkpointer", None) is not None
        config = {"configurable": {"thread_id": spec.id},
                  "recursion_limit": budgets["max_steps"] + 10}
        overrides: dict = {}
        literals = _turn_literals(sc)
        for k, turn in enumerate(sc.turns):
            s.turn = k
            if k > 0:
                think = turn.think_time or sc.user_think_time
                yield env.timeout(lognormal(user_rng, think.median_s, think.p95))
                kept = s.fault_runtime.between_turns(k, history)
                if kept is not history:
                    history = list(kept)
                    if checkpointed:  # a checkpointed graph loses its thread
                        config["configurable"]["thread_id"] = f"{spec.id}-after-{k}"
            base_text = resolve(turn.user, s.oracle.golden.outputs)
            faulted, fault_ann = s.fault_runtime.user_turn(k, base_text, *literals[k])
            overrides.update(fault_ann.get("override", {}))
            unclear = list(fault_ann.get("withheld", [])) + list(fault_ann.get("conflict", {}))
            attempts = 2 if turn.if_answer_missing == "repeat" else 1
            attempt, clarified = 0, 0
            while True:
                if clarified:
                    text = base_text + " To be clear: that's everything you need."
                    extra = {"provides": unclear}
                else:
                    text = faulted if attempt == 0 else "That isn't what I asked for. " + faulted
                    extra = fault_ann
                msg = HumanMessage(text, id=f"turn-{k}-{attempt}-{clarified}",
                                   additional_kwargs={ANN: {"turn": k, **extra}})
                history.append(msg)
                trace.emit("user_turn", turn=k, attempt=attempt, text=text, clarifying=bool(clarified) or None)
                inputs = {"messages": [msg] if checkpointed else list(history)}
                turn_msgs: list = []
                stream = graph.stream(inputs, config, stream_mode="updates")
                while True:
                    token = CURRENT.set(s)  # library sleeps inside this step go to our clock
                    try:
                        update = next(stream)
                    except StopIteration:
                        break
                    finally:
                        CURRENT.reset(token)
                    steps += 1
                    nodes = list(update) if isinstance(update, dict) else []
                    for val in (update.values() if isinstance(update, dict) else []):
                        msgs = val.get("messages", []) if isinstance(val, dict) else []
                        turn_msgs.extend(m for m in msgs if hasattr(m, "content"))
                    dt = clock.take()
                    trace.emit("step", n=steps, nodes=nodes, latency_s=round(dt, 6))
                    if dt > 0:
                        yield env.timeout(dt)
                    _check_budgets(s, steps, env.now - start, budgets, stream)
                history.extend(turn_msgs)
                reply = next((m for m in reversed(turn_msgs) if isinstance(m, AIMessage)
                              and not m.tool_calls and isinstance(m.content, str)), None)
                answer = reply.content if reply else ""
                if unclear and not clarified and reply is not None and _asks(reply):
                    clarified = 1
                    trace.emit("clarification_asked", turn=k, question=answer, about=unclear)
                    continue
                facts = [resolve(f, s.oracle.golden.outputs) for f in turn.answer_must_contain]
                missing = [f for f in facts if f is not MISSING and not _fact_in(f, answer)]
                trace.emit("turn_end", turn=k, attempt=attempt, answer=answer, missing=missing or None)
                attempt += 1
                if not missing or attempt >= attempts:
                    break
            answers.append(answer)
            for f in facts:
                checks.append(Check(name=f"turn[{k}].answer contains", passed=_fact_in(f, answer),
                                    expected=f))
            turns_done = k + 1
            if missing and turn.if_answer_missing == "end":
                trace.emit("user_end", turn=k, reason="the reply lacked what the user needed")
                break
        if overrides:  # the user changed the goal: judge against the changed golden path
            s.oracle.golden = run_golden(sc, overrides)
        checks.extend(_final_checks(s, answers[-1] if answers else ""))
        ok = all(c.passed for c in checks)
        outcome = "success" if ok else "failure"
        for c in checks:
            trace.emit("check", name=c.name, passed=c.passed, expected=c.expected, actual=c.actual)
        if not ok:
            mode = failure_mode(trace.events, checks,
                                {n for n, t in sc.tools.items() if t.effect.writes})
    except BudgetExceeded as e:
        outcome, mode, error = "budget", e.which, str(e)
    except GraphRecursionError as e:
        outcome, mode, error = "budget", "steps", f"steps budget exhausted: {e}"
    except Exception as e:  # the user's graph or factory crashed, or a fault went unhandled
        if isinstance(e, FaultError):
            outcome, mode, error = "failure", f"unhandled_{e.code}", f"{type(e).__name__}: {e}"
        else:
            outcome, error = "error", f"{type(e).__name__}: {e}"
            trace.emit("trial_error", error=error, traceback=traceback.format_exc(limit=8))
    finally:
        clock.take()
    trace.emit("trial_end", outcome=outcome, failure_mode=mode, steps=steps)
    record = TrialRecord(
        trial_id=spec.id, spec=spec.model_dump(mode="json"), scenario=sc.name, agent=spec.agent,
        profile=spec.profile, seed=spec.seed, replicate=spec.replicate, outcome=outcome,
        failure_mode=mode, error=error, steps=steps, model_calls=s.model_calls,
        tool_calls=s.tool_calls, tokens_in=s.tokens_in, tokens_out=s.tokens_out,
        sim_time_s=round(env.now - start, 6), wall_time_s=round(time.perf_counter() - wall0, 6),
        turns_completed=turns_done, golden_length=len(sc.golden_path), checks=checks,
        answer=answers[-1] if answers else None, faults_fired=dict(s.fault_runtime.fired),
        faults_not_fired=s.fault_runtime.unfired(),
        clarifications=sum(e["event"] == "clarification_asked" for e in trace.events),
        guesses=sum(len(e.get("guessed") or ()) for e in trace.events if e["event"] == "model_call"),
        injections_obeyed=sum(e["event"] == "injection_obeyed" for e in trace.events),
        graph_nodes=topology[0], graph_edges=topology[1])
    return record, trace.events


def _topology(graph) -> tuple[list[str], list[list[str]]]:
    """The compiled graph's nodes and declared edges (START/END included as __start__/__end__)."""
    try:
        g = graph.get_graph()
    except Exception:  # a graph LangGraph cannot draw still runs; it just has no topology
        return [], []
    return list(g.nodes), sorted([e.source, e.target] for e in g.edges)


def _asks(reply: AIMessage) -> bool:
    """Whether the agent's reply asks the user something instead of answering."""
    if (reply.additional_kwargs or {}).get(ANN, {}).get("clarify"):
        return True
    return reply.content.rstrip().endswith("?")


def _turn_literals(sc) -> list[tuple[list, list]]:
    """Per turn: the literal values its request supplies, and literals of writes from it on."""
    out = []
    for k, turn in enumerate(sc.turns):
        lits = [(sid, a, v) for sid in turn.steps for a, v in next(
            g for g in sc.golden_path if g.id == sid).args.items() if not REF.search(str(v))]
        later = {sid for t in sc.turns[k:] for sid in t.steps}
        writes = [(g.id, a, v) for g in sc.golden_path if g.id in later and sc.tools[g.tool].effect.writes
                  for a, v in g.args.items() if not REF.search(str(v))]
        out.append((lits, writes))
    return out


def _check_budgets(s: Session, steps: int, elapsed: float, b: dict, stream) -> None:
    which = None
    if steps > b["max_steps"]:
        which, detail = "steps", f"{steps} graph steps (limit {b['max_steps']})"
    elif s.tokens_in + s.tokens_out > b["max_tokens"]:
        which, detail = "tokens", f"{s.tokens_in + s.tokens_out} tokens (limit {b['max_tokens']})"
    elif elapsed > b["max_sim_time_s"]:
        which, detail = "time", f"{elapsed:.0f} s of virtual time (limit {b['max_sim_time_s']:.0f} s)"
    if which:
        stream.close()
        raise BudgetExceeded(which, detail)


def _final_checks(s: Session, final_answer: str) -> list[Check]:
    sc, golden = s.scenario, s.oracle.golden
    out = []
    for chk in sc.success.state:
        actual = get_path(s.world, chk.path)
        expected = chk.equals if chk.equals is not None else get_path(golden.world, chk.path)
        actual = None if actual is MISSING else actual
        out.append(Check(name=chk.name or f"state {chk.path}", passed=_numbers_equal(actual, expected),
                         expected=expected, actual=actual))
    for f in sc.success.answer_must_contain:
        v = resolve(f, golden.outputs)
        out.append(Check(name="final answer contains", passed=_fact_in(v, final_answer), expected=v))
    return out


def run_jobs(jobs: Iterable[Job], concurrency: int = 1,
             on_done: Callable[[TrialRecord, list[dict]], None] | None = None,
             stagger_s: float = 0.0) -> list[TrialRecord]:
    """Run jobs in groups of `concurrency` sessions sharing one SimPy environment;
    within a group, session i arrives at i x stagger_s of virtual time."""
    jobs = list(jobs)
    records: list[TrialRecord] = []

    def done(ev) -> None:
        record, events = ev.value
        records.append(record)
        if on_done:
            on_done(record, events)

    for i in range(0, len(jobs), max(1, concurrency)):
        env = simpy.Environment()
        for n, j in enumerate(jobs[i:i + max(1, concurrency)]):
            if stagger_s:
                j = Job(j.spec, j.scenario, j.factory, j.model_factory, start_at=n * stagger_s)
            env.process(session(env, j)).callbacks.append(done)
        env.run()
    return records
