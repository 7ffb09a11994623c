"""What a trial cost in money: the model's tokens at the profile's prices, the human
reviewer's time at the scenario's rates, and what its failure costs the business.

A failure is priced by how it reaches the business, not by its mode: an agent that gives
up or runs out of budget fails loudly and a person takes over; one that reports success
over a wrong world state or a wrong answer fails silently and the damage is found later;
one that did an action twice leaves something to undo. Harness errors are not priced.
"""
from __future__ import annotations

from .judge import duplicated
from .records import TrialRecord

# failure modes in which the agent itself stops short, so the user sees that it failed
LOUD_MODES = frozenset({"gave_up", "awaiting_human", "user_ended", "recursion_limit"})


def impact(r: TrialRecord) -> str | None:
    """silent_wrong, duplicate_write or loud; None for a success or a harness error."""
    if r.outcome in ("success", "error"):
        return None
    if duplicated(r.checks):
        return "duplicate_write"
    if r.outcome == "budget" or not (r.answer or "").strip():
        return "loud"
    modes = {r.failure_mode, r.failure_cause}
    if modes & LOUD_MODES or any(m and m.startswith("unhandled_") for m in modes):
        return "loud"
    return "silent_wrong"


def charge(r: TrialRecord, prices, costs) -> TrialRecord:
    """The record with its impact and its cost in US dollars: model, review, failure, total."""
    kind = impact(r)
    model = prices.usd(r.tokens_by_role)
    review = r.reviews * costs.review.per_review + r.review_s / 60 * costs.review.per_minute
    failure = getattr(costs.failure, kind) if kind else 0.0
    usd = {"model": model, "review": review, "failure": failure, "total": model + review + failure}
    return r.model_copy(update={"impact": kind, "cost_usd": {k: round(v, 9) for k, v in usd.items()}})
