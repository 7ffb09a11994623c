"""Behaviour profiles of the simulated model: named, documented, calibrated presets.

All error parameters live on the log-odds scale, so effects add up:

    logit(p_error) = logit(base_hazard)
                   + task difficulty            (drawn once per task family: difficulty_sd)
                   + step difficulty            (the golden step's own, plus one drawn once per
                                                 step of a task family: step_difficulty_sd)
                   + scenario.difficulty        (set by the scenario author)
                   + context_rot * bend(log2(context / effective_context))
                   + self_conditioning * (uncorrected own errors still in context)

bend(u) is max(0, u) when context_softness is 0: nothing changes below the effective
length. With softness w it is w * log2(1 + 2^(u / w)), the same line far past the
effective length but bending smoothly into it, so degradation starts well before.

Task and step difficulty separate what public curves separate: the spread between tasks
sets how consistent repeated trials are (pass^k), while fixed hard steps within a task make
long tasks fail for many reasons, which keeps success falling steeply with length.

A final answer quotes facts from context; with recall_in_answer > 0 each quoted fact is
misremembered with that share of the hazard, so a recall task degrades with context too.
Stated confidence is sigmoid(logit(1 - p_error) + overconfidence + N(0, 0.5)), shifted up
by confidence_discrimination on calls it gets right and down on its errors: at 0
confidence carries no signal about correctness.

`base_hazard` is the per-decision error probability on a short, clean context
for a task of average difficulty. What an error costs depends on the mode drawn
(`error_modes`) and on whether the model notices the consequence: a fabricated id
usually comes back "not found" and is noticed and retried, while a stale id that
points at a real record passes silently and corrupts everything downstream.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .registry import UnknownName, lookup, register
from .rng import lognormal
from .spec import MAX_VIRTUAL_S, VIRTUAL_S

ERROR_MODES = ("wrong_tool", "fabricated_arg", "stale_arg", "skipped_step",
               "premature_finish", "repeated_call", "give_up")
# the model's own decisions that start an error: its error modes, a guessed value the
# user withheld, and an injected instruction it obeyed
ROOT_MODES = frozenset(ERROR_MODES) | {"guessed", "obeyed_injection"}


# Profile numbers on the log-odds scale are summed into one logit per decision; past +-10
# (a 1.5% error rate becomes 99.97% or 0.0007%) a term only saturates, and these bounds keep
# the sum far from overflowing exp().
MAX_LOG_ODDS = 10.0
# Ten million tokens is past every model's context window.
MAX_TOKENS = 10_000_000


class ModelLatency(BaseModel):
    # NaN passes every comparison-based bound and inf breaks sums of virtual time: finite only
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    first_token_median_s: float = Field(0.6, ge=0, le=MAX_VIRTUAL_S, description=f"0 to {VIRTUAL_S}")
    first_token_p95_s: float = Field(2.0, ge=0, le=MAX_VIRTUAL_S, description=f"0 to {VIRTUAL_S}")
    # a token a minute is a stalled model, not a slow one
    per_output_token_s: float = Field(0.012, ge=0, le=60, description="0 to 60 s")
    per_1k_input_tokens_s: float = Field(0.02, ge=0, le=60, description="0 to 60 s")

    def draw(self, rng, input_tokens: int, output_tokens: int) -> float:
        """One call's latency: a heavy-tailed time to first token, then time per token."""
        return (lognormal(rng, self.first_token_median_s, self.first_token_p95_s)
                + output_tokens * self.per_output_token_s + input_tokens / 1000 * self.per_1k_input_tokens_s)


# A thousand dollars per million tokens is far past any list price: above it, a price is a typo.
MAX_PRICE = 1000.0


class Price(BaseModel):
    """List prices in US dollars per million tokens."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    input_per_mtok: float = Field(0.0, ge=0, le=MAX_PRICE, description=f"USD per million input tokens, 0 to {MAX_PRICE:g}")
    output_per_mtok: float = Field(0.0, ge=0, le=MAX_PRICE,
                                   description=f"USD per million output tokens (reasoning included), 0 to {MAX_PRICE:g}")


class Prices(Price):
    """The profile's prices, and other prices for roles a design gives a different model
    (a cheap summarizer beside an expensive agent)."""
    roles: dict[str, Price] = Field(default_factory=dict, description="role -> its own prices")

    def usd(self, tokens_by_role: dict[str, list[int]]) -> float:
        total = 0.0
        for role, (tin, tout) in tokens_by_role.items():
            p = self.roles.get(role, self)
            total += (tin * p.input_per_mtok + tout * p.output_per_mtok) / 1e6
        return total


class ProfileError(ValueError):
    """A profile override that cannot work, named with the rule it breaks."""


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    summary: str
    calibration: list[str] = Field(default_factory=list, description="public figures this preset was tuned to resemble")
    # 1e-6 and 1 - 1e-6 keep logit(base_hazard) within +-14
    base_hazard: float = Field(ge=1e-6, le=1 - 1e-6,
                               description="per-decision error probability, 0.000001 to 0.999999")
    difficulty_sd: float = Field(ge=0, le=MAX_LOG_ODDS,
                                 description=f"SD of the per-task log-odds shift, 0 to {MAX_LOG_ODDS:g}")
    step_difficulty_sd: float = Field(0.0, ge=0, le=MAX_LOG_ODDS,
                                      description="SD of a log-odds shift drawn once per golden step of a task "
                                                  f"family (repeated trials share it), 0 to {MAX_LOG_ODDS:g}")
    effective_context: int = Field(gt=0, le=MAX_TOKENS, description="tokens before context rot starts, 1 to 10,000,000")
    context_rot: float = Field(ge=0, le=MAX_LOG_ODDS, description="log-odds added per doubling of context past "
                               f"effective_context, 0 to {MAX_LOG_ODDS:g}")
    context_softness: float = Field(0.0, ge=0, le=10, description="width in doublings of the bend into context rot: "
                                    "0 is a hard threshold at effective_context, 1 starts degrading about two "
                                    "doublings before it; 0 to 10")
    recall_in_answer: float = Field(0.0, ge=0, le=1, description="share of the hazard with which each fact quoted in "
                                    "a final answer is misremembered, 0 to 1")
    self_conditioning: float = Field(ge=0, le=MAX_LOG_ODDS, description="log-odds added per uncorrected own error "
                                     f"in context, 0 to {MAX_LOG_ODDS:g}")
    error_modes: dict[str, float] = Field(description="relative weight of each error mode, 0 to 1000, "
                                          f"at least one above 0; modes: {', '.join(ERROR_MODES)}")
    notice_error: float = Field(ge=0, le=1, description="P(notices an explicit error result and retries)")
    notice_malformed: float = Field(ge=0, le=1, description="P(notices a malformed or truncated result)")
    notice_silent_wrong: float = Field(ge=0, le=1, description="P(notices a valid-looking wrong value)")
    clarify_when_ambiguous: float = Field(ge=0, le=1, description="P(asks instead of guessing a missing value)")
    obey_injection: float = Field(ge=0, le=1, description="P(follows an instruction inside a tool result)")
    max_retries_per_step: int = Field(3, ge=0, le=100,
                                      description="rejected results on one step before giving up, 0 to 100")
    ambiguity_penalty: float = Field(0.5, ge=0, le=MAX_LOG_ODDS, description="log-odds added while the request has "
                                     f"typos or loose wording, 0 to {MAX_LOG_ODDS:g}")
    track_goal_change: float = Field(0.8, ge=0, le=1, description="P(uses a value the user changed mid-session)")
    refetch_missing: float = Field(0.85, ge=0, le=1, description="P(re-reads a forgotten input instead of inventing it)")
    summary_recall: float = Field(0.9, ge=0, le=1, description="P(a fact survives when it writes a summary)")
    confidence_discrimination: float = Field(0.0, ge=0, le=MAX_LOG_ODDS,
                                             description="log-odds by which stated confidence is higher on right "
                                                         f"calls than on wrong ones, halved each way; 0 to {MAX_LOG_ODDS:g}")
    overconfidence: float = Field(0.0, ge=-MAX_LOG_ODDS, le=MAX_LOG_ODDS,
                                  description=f"log-odds added to stated confidence, "
                                              f"-{MAX_LOG_ODDS:g} to {MAX_LOG_ODDS:g}")
    reasoning_tokens: int = Field(0, ge=0, le=1_000_000,
                                  description="hidden output tokens charged per call, 0 to 1,000,000")
    context_window: int = Field(128_000, gt=0, le=MAX_TOKENS, description="tokens, 1 to 10,000,000")
    latency: ModelLatency = Field(default_factory=ModelLatency)
    prices: Prices = Field(default_factory=Prices, description="US dollars per million tokens (input_per_mtok, "
                           "output_per_mtok, and roles: {role: {...}}); unpriced profiles cost nothing")

    @model_validator(mode="after")
    def _modes(self):
        unknown = sorted(set(self.error_modes) - set(ERROR_MODES))
        if unknown:
            raise ValueError(f"error_modes: unknown mode {unknown[0]!r}; modes: {', '.join(ERROR_MODES)}")
        bad = [m for m, w in self.error_modes.items() if not 0 <= w <= 1000]
        if bad:
            raise ValueError(f"error_modes.{bad[0]}: a weight is from 0 to 1000")
        if not any(self.error_modes.values()):
            raise ValueError("error_modes: at least one weight must be above 0")
        if self.latency.first_token_p95_s < self.latency.first_token_median_s:
            raise ValueError("latency.first_token_p95_s is below first_token_median_s: a 95th percentile "
                             "is never below the median")
        return self


STRONG = Profile(
    name="strong",
    summary="a frontier tool-calling model (GPT-4o / Claude 3.7 Sonnet class)",
    calibration=[
        "constant-hazard horizon: per-step reliability ~0.99 on the chain template, H50 ~ 69 steps "
        "(Ord 2025 on METR data: p = 0.99 gives H50 ~ 69)",
        "context rot: 87.3% -> 62.4% from ~300 to ~113K tokens (Chroma 2025, GPT-4.1 on LongMemEval), "
        "falling gradually: context_rot = 0.7 bent over 1.5 doublings (context_softness) below a 32K "
        "effective length, with recalled facts under the same hazard (recall_in_answer = 1); measured "
        "with scenarios/sweeps/context.yaml",
        "effective length 32K: NoLiMa / RULER effective lengths of 32K-64K for GPT-4-class models",
        "pass^k: per-task difficulty spread (difficulty_sd) so pass^k falls far slower than p^k "
        "(tau-bench retail, GPT-4o: 0.604 / 0.491 / 0.430 / 0.383)",
        "silent faults: truncation diagnosed 4.3% of the time (AgentChaos) -> notice_silent_wrong = 0.05",
        "stated confidence: high on almost every call and only modestly higher on right calls than wrong "
        "ones (verbalized confidence of GPT-4-class models separates them with AUROC ~0.6-0.7, Xiong et al., "
        "ICLR 2024): confidence_discrimination = 0.3 gives AUROC 0.69 on chain-16 (3,383 calls)",
    ],
    base_hazard=0.015,
    difficulty_sd=0.9,
    effective_context=32_000,
    context_rot=0.7,
    context_softness=1.5,
    recall_in_answer=1.0,
    self_conditioning=0.35,
    error_modes={"wrong_tool": 0.15, "fabricated_arg": 0.25, "stale_arg": 0.2, "skipped_step": 0.1,
                 "premature_finish": 0.1, "repeated_call": 0.15, "give_up": 0.05},
    notice_error=0.95,
    notice_malformed=0.8,
    notice_silent_wrong=0.05,
    clarify_when_ambiguous=0.7,
    obey_injection=0.1,
    overconfidence=0.5,
    confidence_discrimination=0.3,
    ambiguity_penalty=0.4,
    track_goal_change=0.9,
    refetch_missing=0.9,
    summary_recall=0.95,
    latency=ModelLatency(first_token_median_s=0.7, first_token_p95_s=2.5,
                         per_output_token_s=0.012, per_1k_input_tokens_s=0.02),
    # GPT-4o's list price (OpenAI, 2025): $2.50 in, $10.00 out per million tokens
    prices=Prices(input_per_mtok=2.5, output_per_mtok=10.0),
)

WEAK = Profile(
    name="weak",
    summary="a small open-weights tool-calling model (7-8B class)",
    calibration=[
        "per-step reliability ~0.96 on the chain template, H50 ~ 17 steps",
        "NoLiMa (2025): 10 of 12 models below half their baseline at 32K; effective length 8K",
        "self-conditioning ('The Illusion of Diminishing Returns', 2025): smaller models degrade "
        "faster once their own mistakes are in context: self_conditioning = 0.6",
        "multi-turn underspecification ('LLMs Get Lost in Multi-Turn Conversation', 2025): "
        "unreliability grows more than aptitude falls: wider difficulty_sd",
        "stated confidence: overconfident (mean 0.89 against 77% of calls right on chain-16) and modestly "
        "informative: confidence_discrimination = 0.3 gives AUROC 0.72 (2,992 calls)",
    ],
    # 0.07 before context bent in below the effective length and answers were recalled under
    # the hazard; 0.045 keeps the same horizon with both
    base_hazard=0.045,
    difficulty_sd=1.3,
    effective_context=8_000,
    context_rot=1.0,
    context_softness=1.5,
    recall_in_answer=1.0,
    self_conditioning=0.6,
    error_modes={"wrong_tool": 0.2, "fabricated_arg": 0.25, "stale_arg": 0.15, "skipped_step": 0.1,
                 "premature_finish": 0.12, "repeated_call": 0.1, "give_up": 0.08},
    notice_error=0.8,
    notice_malformed=0.5,
    notice_silent_wrong=0.02,
    clarify_when_ambiguous=0.3,
    obey_injection=0.4,
    overconfidence=1.0,
    confidence_discrimination=0.3,
    ambiguity_penalty=1.0,
    track_goal_change=0.6,
    refetch_missing=0.6,
    summary_recall=0.75,
    context_window=32_000,
    latency=ModelLatency(first_token_median_s=0.3, first_token_p95_s=1.2,
                         per_output_token_s=0.006, per_1k_input_tokens_s=0.01),
    # an 8B open-weights model on a hosted endpoint: about $0.20 per million tokens either way
    prices=Prices(input_per_mtok=0.2, output_per_mtok=0.2),
)

# Fitted with `attrition calibrate` to tau-bench's GPT-4o airline results (50 tasks x 4 trials,
# ../shared/external), simulated as 16-call chain tasks. The table has one length, so the step
# spread cannot come from it: step_difficulty_sd = 3 is set so that success also falls with
# length as METR measures (logistic slope near -0.7 per doubling); base_hazard and
# difficulty_sd are the fit. Everything else is strong's.
TAU_AIRLINE = Profile(**{
    **STRONG.model_dump(),
    "name": "tau-airline",
    "summary": "GPT-4o on tau-bench airline: inconsistent between repeated trials (pass^1..4 0.42 / 0.27 / "
               "0.22 / 0.20)",
    "calibration": [
        "tau-bench airline, GPT-4o (50 tasks x 4 trials): pass^1..4 0.420 / 0.273 / 0.220 / 0.200; fitted by "
        "attrition calibrate on chain-16 (600 tasks x 8 replicates, objective pass_k): base_hazard 0.0148 "
        "(95% CI 0.0060-0.034), difficulty_sd 1.95 (0.96-2.96); simulated pass^1..4 0.415 / 0.286 / 0.223 / 0.185",
        "METR (Kwa et al. 2025): success falls about 0.7 log-odds per doubling of task length; "
        "step_difficulty_sd = 3 (not identifiable from a one-length table)",
        "context, noticing, latency: as strong",
    ],
    "base_hazard": 0.0148,
    "difficulty_sd": 1.95,
    "step_difficulty_sd": 3.0,
})

for _p in (STRONG, WEAK, TAU_AIRLINE):
    register("profile", _p.name, _p, summary=_p.summary)


def get_profile(name: str, /, **overrides) -> Profile:
    try:
        base = lookup("profile", name).obj
    except UnknownName as e:
        raise KeyError(str(e)) from None
    if not overrides:
        return base
    data = base.model_dump()
    for k, v in overrides.items():
        # a partial override of a nested setting (one price, one latency) keeps the rest, whether
        # given as a mapping (prices: {input_per_mtok: 3}) or by a dotted name (prices.input_per_mtok=3)
        *outer, last = k.split(".")
        at = data
        for part in outer:
            at = at.setdefault(part, {}) if isinstance(at, dict) else at
        if not isinstance(at, dict):
            raise ProfileError(f"profile {name!r}: {k}: {'.'.join(outer)} is not a group of settings")
        # error_modes is a weight table, restated whole; settings groups keep what is not given
        group = isinstance(getattr(base, last, None), BaseModel) if not outer else isinstance(at.get(last), dict)
        at[last] = {**at[last], **v} if group and isinstance(v, dict) else v
    try:
        return Profile.model_validate(data)
    except ValidationError as e:
        raise ProfileError(f"profile {name!r}: " + "; ".join(_override_problem(err) for err in e.errors())) from None


def _override_problem(err: dict) -> str:
    loc = ".".join(map(str, err["loc"]))
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown profile parameter; a profile has: {', '.join(Profile.model_fields)}"
    f = Profile.model_fields.get(err["loc"][0]) if err["loc"] else None
    why = f" ({f.description})" if f is not None and f.description and len(err["loc"]) == 1 else ""
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}{why}" if loc else msg
