"""escalate: a human reviews a write only when the model stated low confidence on it."""
import pytest
from langchain_core.messages import AIMessage

from attrition_designs.escalate import unsure

from conftest import run

CAREFUL = {"catches_errors": 1.0}
# a weak model whose confidence says a lot about being right, so gating on it can work
TELLING = {"confidence_discrimination": 3.0}


def reviews(records):
    return sum(r.reviews for r, _ in records)


def trials(agent, *, n=6, seed=5, profile_params=None, **agent_params):
    return run("support_refund", agent, trials=n, seed=seed, profile="weak", profile_params=profile_params,
               agent_params=agent_params or None, reviewer=CAREFUL)


def test_threshold_zero_never_asks_and_one_asks_about_every_write():
    assert reviews(trials("escalate", threshold=0)) == 0
    every = trials("human-approval")
    assert reviews(trials("escalate", threshold=1)) == reviews(every) > 0


def test_a_middle_threshold_asks_about_some_writes_and_those_are_more_often_wrong():
    every = trials("human-approval", n=20, profile_params=TELLING)
    some = trials("escalate", n=20, profile_params=TELLING, threshold=0.9)
    assert 0 < reviews(some) < reviews(every)

    def wrong_share(records):
        flags = [w for _, ev in records for e in ev if e["event"] == "review" for w in e["wrong"]]
        return sum(flags) / len(flags)
    # the reviewer's time goes where the errors are: reviewed writes are wrong more often than writes at large
    assert wrong_share(some) > wrong_share(every)


def test_a_bad_threshold_is_the_trial_s_error_with_the_reason():
    (r, _), = run("support_refund", "escalate", trials=1, seed=0, agent_params={"threshold": 1.5})
    assert r.outcome == "error" and "threshold must be a number from 0 to 1, not 1.5" in r.error
    (r, _), = run("support_refund", "escalate", trials=1, seed=0, agent_params={"missing": "maybe"})
    assert r.outcome == "error" and "missing must be review or skip" in r.error


@pytest.mark.parametrize("metadata, missing, expected", [
    ({"confidence": 0.5}, "review", True), ({"confidence": 0.95}, "review", False),
    ({}, "review", True), ({}, "skip", False),  # a provider's model that states no confidence
])
def test_unsure_reads_the_stated_confidence(metadata, missing, expected):
    assert unsure(AIMessage("", response_metadata=metadata), 0.8, missing) is expected
