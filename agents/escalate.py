"""escalate: the tool-calling loop that asks a human only when the model is unsure.

    agent --(tool calls)--> tools --> agent --(no tool calls)--> END
                            (interrupt() for each write stated with low confidence)

Reviewing every write (human-approval) catches what a reviewer can catch but pays a review,
and a wait, for every write; most of them were right. escalate spends the reviewer's time
where the model itself is unsure: a write waits for a human only when the confidence the
model stated on the message that asked for it is below `threshold`. How much that saves
and what it misses depends on how much the model's confidence says about being right
(the profile's confidence_discrimination); `attrition compare` measures both.

Confidence is read from the message's `response_metadata["confidence"]` (the simulated
model states one on every decision). A provider's model that states none is treated as
unsure (`missing=review`), so nothing goes unreviewed by accident; `missing=skip` runs such
calls without review. The reviewer's answers follow LangChain's human-in-the-loop format
(see human-approval); who answers and how well is the environment's reviewer policy.

Params:
  threshold=0.9   review a call when the stated confidence is below this, 0 to 1
                  (0: never review; 1: review every call in scope). Stated confidences
                  cluster between 0.8 and 1, so useful thresholds lie there too: with the
                  weak preset, 0.95 reviews about a third of writes and catches about
                  half of the wrong ones
  review=writes   which calls may be reviewed: writes, or all (every tool call)
  missing=review  a call without a stated confidence: review, or skip
"""
from attrition_designs._parts import reviewing_loop, writes

PARAMS = {"threshold": 0.9, "review": "writes", "missing": "review"}


def _threshold(value) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(value, bool) or not 0 <= t <= 1:
        raise ValueError(f"threshold must be a number from 0 to 1, not {value!r}")
    return t


def unsure(message, threshold: float, missing: str = "review") -> bool:
    """Whether the message that made a call stated less confidence than `threshold` (or none,
    with missing=review)."""
    confidence = (getattr(message, "response_metadata", None) or {}).get("confidence")
    return missing == "review" if confidence is None else confidence < threshold


def build(kit):
    p = {**PARAMS, **kit.params}
    threshold = _threshold(p["threshold"])
    if p["review"] not in ("writes", "all"):
        raise ValueError(f"review must be writes or all, not {p['review']!r}")
    if p["missing"] not in ("review", "skip"):
        raise ValueError(f"missing must be review or skip, not {p['missing']!r}")
    tools_by_name = {t.name: t for t in kit.tools}

    def gated(call, message) -> bool:
        in_scope = p["review"] == "all" or writes(tools_by_name.get(call["name"]))
        return in_scope and unsure(message, threshold, p["missing"])

    return reviewing_loop(kit, gated)
