"""The engine: each trial is a SimPy process on a virtual clock.

LangGraph runs one step at a time (the graph's stream); model and tool calls inside a
step charge latency to the session clock, and the engine then advances SimPy by that
much and checks the budgets. Several sessions can share one environment, so whatever
they share (a provider's rate limit, an outage window) hits them at the same virtual
time. The scripted user (user.py) says what to send and when; the judge (judge.py)
decides the outcome; the record is built from the session. Nothing sleeps.
"""
from __future__ import annotations

import time
import traceback
from typing import Callable, Iterable

import simpy
from langgraph.errors import GraphRecursionError

from .budgets import BudgetExceeded, budgets_for, check_budgets, recursion_limit
from .costs import charge
from .driver import INTERRUPT, Driver, build, messages_in
from .faults.errors import FaultError
from .gateway import Gateway
from .jobs import Job
from .judge import judge
from .kit import Kit
from .live import ProviderError, factory as live_factory
from .profiles import get_profile
from .records import TrialRecord
from .reviewer import AwaitingHuman, Reviewer
from .session import Session, stream_key
from .user import Conversation, ScriptedUser
from .vclock import CURRENT, Clock, install


class Run:
    """The graph of one trial, driven step by step."""

    def __init__(self, env: simpy.Environment, s: Session, driver: Driver, budgets: dict, conv: Conversation,
                 reviewer: Reviewer):
        self.env, self.s, self.driver, self.budgets, self.conv = env, s, driver, budgets, conv
        self.reviewer = reviewer
        self.start, self.steps, self.turns = env.now, 0, 0

    def turn(self, msg):
        """Run the graph on one user message, through the reviews it asks for; return what it produced."""
        self.turns += 1
        config = self.driver.config(self.conv.thread, self.turns, recursion_limit(self.budgets))
        payload = self.driver.inputs(msg, self.conv.history)
        produced: list = []
        while True:
            interrupts = yield from self.stream(payload, config, produced)
            if interrupts is None:
                return produced
            payload, waited = self.reviewer.answer(interrupts, self.driver.can_resume)
            if waited > 0:
                yield self.env.timeout(waited)
            check_budgets(self.s, self.steps, self.env.now - self.start, self.budgets)

    def stream(self, payload, config, produced: list):
        """One stream, step by step: charge each step's latency, check the budgets; return the
        interrupts it stopped at (None if it finished)."""
        steps = self.driver.start(payload, config)
        interrupts = None
        while True:
            token = CURRENT.set(self.s)  # library sleeps inside this step go to our clock
            try:
                update = steps.next()
            except StopIteration:
                return interrupts
            finally:
                CURRENT.reset(token)
            self.steps += 1
            nodes = list(update) if isinstance(update, dict) else []
            for node in nodes:
                if node == INTERRUPT:
                    interrupts = (interrupts or ()) + tuple(update[node])
                else:
                    produced.extend(messages_in(update[node]))
            dt = self.s.clock.take()
            self.s.trace.emit("step", n=self.steps, nodes=nodes, latency_s=round(dt, 6))
            if dt > 0:
                yield self.env.timeout(dt)
            try:
                check_budgets(self.s, self.steps, self.env.now - self.start, self.budgets)
            except BudgetExceeded:
                steps.close()
                raise

    def converse(self, user: ScriptedUser):
        script = user.script()
        action = next(script, None)
        while action is not None:
            if isinstance(action, float):
                yield self.env.timeout(action)
                action = script.send(None)
            else:
                produced = yield from self.turn(action)
                try:
                    action = script.send(produced)
                except StopIteration:
                    action = None


def session(env: simpy.Environment, job: Job):
    """One trial as a SimPy process; its value is (TrialRecord, events)."""
    spec, sc = job.spec, job.scenario
    if job.start_at:
        yield env.timeout(job.start_at)
    wall0, start = time.perf_counter(), env.now
    shared = env.__dict__.setdefault("_attrition_shared", {})
    s = Session(spec.id, spec.seed, spec.replicate, sc, get_profile(spec.profile, **spec.profile_params),
                Clock(env), scenario_key=stream_key(sc, spec.scenario.params), faults=spec.faults, shared=shared)
    s.trace.emit("trial_start", spec=spec.model_dump(mode="json"), scenario=sc.name,
                 golden_length=len(sc.golden_path))
    conv = Conversation(thread=spec.id)
    user = ScriptedUser(s, conv)
    outcome, mode, error, checks, graph, run, driver = None, None, None, user.checks, None, None, None
    cause = None
    try:
        models = job.model_factory or (live_factory(s, spec.model) if spec.model else None)
        graph, owned = build(job.factory, Kit(s, Gateway(s).tools(), dict(spec.agent_params), models))
        s.graph = graph  # the model looks up which agent of a multi-agent graph holds which tools
        install()  # the design may have brought in library retry loops to route onto our clock
        driver = Driver(graph, owned)
        run = Run(env, s, driver, budgets_for(job), conv, Reviewer(s, job.reviewer))
        yield from run.converse(user)
        outcome, mode, checks, cause = judge(s, user.answers, user.checks)
    except BudgetExceeded as e:
        outcome, mode, error = "budget", e.which, str(e)
    except GraphRecursionError as e:
        outcome, mode, error = "budget", "recursion_limit", f"recursion_limit budget exhausted: {e}"
    except ProviderError as e:  # the provider failed, not the agent
        outcome, error = "error", str(e)
    except AwaitingHuman as e:
        outcome, mode, error = "failure", "awaiting_human", str(e)
    except FaultError as e:  # an injected failure the design did not handle
        outcome, mode, error = "failure", f"unhandled_{e.code}", f"{type(e).__name__}: {e}"
    except (Exception, SystemExit, KeyboardInterrupt) as e:
        # the user's graph or factory crashed, or called sys.exit: the trial's own error. User
        # code runs in a worker process, so a real Ctrl-C reaches the driver, not this line.
        outcome, error = "error", f"{type(e).__name__}: {e}"
        # the frames nearest the raise say where the user's code broke
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__, limit=-8))
        s.trace.emit("trial_error", error=error, traceback=tb)
    finally:
        s.clock.take()
        if driver is not None:
            driver.close()
    if s.provider_error and outcome != "error":  # the design caught it and went on: still not the agent's doing
        outcome, mode, error = "error", None, s.provider_error
    steps = run.steps if run else 0
    s.trace.emit("trial_end", outcome=outcome, failure_mode=mode, steps=steps)
    record = TrialRecord.from_session(
        spec, s, outcome=outcome, failure_mode=mode, error=error, steps=steps, sim_time_s=env.now - start,
        wall_time_s=time.perf_counter() - wall0, turns_completed=user.turns_done, answers=user.answers,
        checks=checks, graph=graph, failure_cause=cause)
    return charge(record, s.profile.prices, sc.costs), s.trace.events


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

    size = max(1, concurrency)
    for i in range(0, len(jobs), size):
        env = simpy.Environment()
        for n, j in enumerate(jobs[i:i + size]):
            env.process(session(env, j.arriving_at(n * stagger_s) if stagger_s else j)).callbacks.append(done)
        env.run()
    return records
