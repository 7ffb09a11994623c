"""The simulated model's calibration knobs: step difficulty, graded context rot, recall in
the final answer, and confidence that carries a signal. Each at 0 leaves the model as it was
(the golden traces check that); these tests check what each does when turned up."""
import math

import pytest

from simulator.brain import Brain
from simulator.logodds import bend
from simulator.profiles import get_profile
from simulator.scenario_refs import resolve_scenario
from simulator.session import Session
from simulator.vclock import Clock

from conftest import run


def logit(p):
    return math.log(p / (1 - p))


def session(scenario="support_refund", params=None, seed=0, replicate=0, **over):
    sc, _ = resolve_scenario(scenario, params)
    s = Session("t" * 16, seed, replicate, sc, get_profile("strong", **over), Clock())
    s.difficulty = 0.0
    return s


@pytest.mark.parametrize("u", [-6.0, -1.0, 0.0, 0.5, 3.0, 23.0])
def test_bend_is_the_hinge_at_zero_width_and_its_smooth_version_otherwise(u):
    assert bend(u, 0) == max(0.0, u)
    assert bend(u, 1.0) == pytest.approx(math.log2(1 + 2 ** u))  # closed form at w = 1
    assert bend(u, 0.5) >= max(0.0, u) and bend(u, 0.5) - max(0.0, u) <= 0.5 + 1e-12  # within w of the hinge
    assert bend(1e6, 1e-3) == pytest.approx(1e6)  # never overflows


def test_graded_context_rot_starts_before_the_effective_length():
    hard, soft = Brain(session(context_softness=0.0), "agent"), Brain(session(context_softness=1.0), "agent")
    p = hard.s.profile
    quarter = p.effective_context // 4
    assert hard.hazard(quarter, 0) == pytest.approx(p.base_hazard)
    # at a quarter of the effective length: rot * log2(1 + 1/4) log-odds already
    assert logit(soft.hazard(quarter, 0)) == pytest.approx(logit(p.base_hazard) + p.context_rot * math.log2(1.25))
    # far past it the two agree to within rot * log2(1 + 2^-u)
    far = 64 * p.effective_context
    assert logit(soft.hazard(far, 0)) - logit(hard.hazard(far, 0)) == pytest.approx(
        p.context_rot * math.log2(1 + 2 ** -6))
    ramp = [soft.hazard(int(p.effective_context * 2 ** k), 0) for k in range(-6, 4)]
    assert ramp == sorted(ramp) and len(set(ramp)) == len(ramp)  # strictly rising: no flat segment


def test_step_difficulty_is_the_steps_own_plus_a_draw_shared_by_replicates():
    a, b = session("chain", {"length": 8}, step_difficulty_sd=1.5, context_softness=0.0), \
        session("chain", {"length": 8}, replicate=3, step_difficulty_sd=1.5)
    steps = [st.id for st in a.scenario.golden_path]
    shifts = [a.step_difficulty(x) for x in steps]
    assert shifts == [b.step_difficulty(x) for x in steps]  # the same hard steps in every replicate
    assert len(set(shifts)) == len(steps)                     # steps of one task differ
    other = session("chain", {"length": 8, "task": 1}, step_difficulty_sd=1.5)
    assert [other.step_difficulty(x) for x in steps] != shifts  # another task family, other draws
    assert all(session("chain", {"length": 8}).step_difficulty(x) == 0.0 for x in steps)
    brain = Brain(a, "agent")
    assert logit(brain.hazard(100, 0, step=steps[2])) == pytest.approx(logit(a.profile.base_hazard) + shifts[2])


def test_a_scenario_annotates_a_hard_step():
    sc, _ = resolve_scenario("support_refund")
    data = sc.model_dump()
    data["golden_path"][1]["difficulty"] = 2.5
    hard = type(sc).model_validate(data)
    assert hard.digest() != sc.digest()
    s = Session("t" * 16, 0, 0, hard, get_profile("strong"), Clock())
    assert s.step_difficulty(hard.golden_path[1].id) == 2.5 and s.step_difficulty(hard.golden_path[0].id) == 0.0
    # unannotated steps leave the digest (and so every trial id) as it was before steps had one
    assert sc.digest() == "bcbf4e5440bf8d83"


def test_recall_in_answer_misquotes_facts_in_the_final_answer():
    kw = dict(trials=12, seed=5, profile_params={"base_hazard": 0.3, "max_retries_per_step": 100})
    slipped = run("support_refund", **kw | {"profile_params": kw["profile_params"] | {"recall_in_answer": 1.0}})
    plain = run("support_refund", **kw | {"profile_params": kw["profile_params"] | {"recall_in_answer": 0.0}})
    slips = [e for _, ev in slipped for e in ev if e.get("misremembered")]
    assert slips and not [e for _, ev in plain for e in ev if e.get("misremembered")]
    assert {e["mode"] for e in slips} <= {"finish", "premature_finish"}  # only answers quote facts
    failed = [r for r, ev in slipped if any(e.get("misremembered") for e in ev)]
    assert any(r.outcome == "failure" for r in failed)


def test_a_misquoted_fact_is_the_failures_mode_and_cause():
    got = run("recall", params={"context": 40000}, trials=20, seed=2,
              profile_params={"recall_in_answer": 1.0, "base_hazard": 0.2, "error_modes": {"wrong_tool": 1.0}})
    slipped = [r for r, ev in got if any(e.get("misremembered") for e in ev)]
    assert slipped and all(r.outcome == "failure" for r in slipped)
    assert {(r.failure_mode, r.failure_cause) for r in slipped} == {("misremembered", "misremembered")}


def auroc(pairs):
    """P(confidence of a right call > confidence of a wrong one), ties counted half."""
    right = [c for c, ok in pairs if ok]
    wrong = [c for c, ok in pairs if not ok]
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return wins / (len(right) * len(wrong))


def test_confidence_separates_right_from_wrong_calls_as_the_knob_says():
    from simulator.profiles import ROOT_MODES
    got = {}
    for disc in (0.0, 0.5, 1.5):
        pairs = [(e["confidence"], e["mode"] not in ROOT_MODES)
                 for _, ev in run("chain", params={"length": 16}, trials=24, seed=2,
                                  profile_params={"base_hazard": 0.15, "confidence_discrimination": disc})
                 for e in ev if e["event"] == "model_call" and e.get("confidence") is not None
                 and e["mode"] not in ("finish",)]
        assert sum(not ok for _, ok in pairs) >= 20
        got[disc] = auroc(pairs)
    # at 0, confidence follows only the hazard, which is nearly the same for right and wrong calls
    assert 0.4 < got[0.0] < 0.65, got
    # with Gaussian noise of SD 0.5 on the logit, AUROC = Phi(disc / (0.5 * sqrt 2)): 0.76 at 0.5,
    # 0.98 at 1.5, give or take the hazard's own share and the sample
    phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
    assert got[0.5] == pytest.approx(phi(0.5 / (0.5 * math.sqrt(2))), abs=0.08), got
    assert got[1.5] == pytest.approx(phi(1.5 / (0.5 * math.sqrt(2))), abs=0.04), got


def test_the_tau_airline_preset_is_less_consistent_between_repeated_trials_than_strong():
    def consistency(profile):
        succ = {}
        for t in range(30):
            for r, _ in run("chain", params={"length": 16, "task": t}, trials=4, seed=3, profile=profile):
                succ.setdefault(t, []).append(r.outcome == "success")
        p1 = sum(map(sum, succ.values())) / 120
        p4 = sum(all(v) for v in succ.values()) / 30
        return p4 / p1
    # pass^4 / pass^1 is tau-bench airline's 0.48; strong's tasks are far more repeatable
    assert consistency("tau-airline") < 0.65 < consistency("strong")
