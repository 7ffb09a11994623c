"""Behaviour profiles of the simulated model: named, documented, calibrated presets.

All error parameters live on the log-odds scale, so effects add up:

    logit(p_error) = logit(base_hazard)
                   + task difficulty            (drawn once per task family)
                   + scenario.difficulty        (set by the scenario author)
                   + context_rot * log2(context / effective_context)   (past the effective length)
                   + self_conditioning * (uncorrected own errors still in context)

`base_hazard` is the per-decision error probability on a short, clean context
for a task of average difficulty. What an error costs depends on the mode drawn
(`error_modes`) and on whether the model notices the consequence: a fabricated id
usually comes back "not found" and is noticed and retried, while a stale id that
points at a real record passes silently and corrupts everything downstream.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .registry import UnknownName, lookup, register

ERROR_MODES = ("wrong_tool", "fabricated_arg", "stale_arg", "skipped_step",
               "premature_finish", "repeated_call", "give_up")
# the model's own decisions that start an error: its error modes, a guessed value the
# user withheld, and an injected instruction it obeyed
ROOT_MODES = frozenset(ERROR_MODES) | {"guessed", "obeyed_injection"}


class ModelLatency(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_token_median_s: float = 0.6
    first_token_p95_s: float = 2.0
    per_output_token_s: float = 0.012
    per_1k_input_tokens_s: float = 0.02


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    summary: str
    calibration: list[str] = Field(default_factory=list, description="public figures this preset was tuned to resemble")
    base_hazard: float = Field(gt=0, lt=1)
    difficulty_sd: float = Field(ge=0, description="SD of the per-task log-odds shift")
    effective_context: int = Field(gt=0, description="tokens before context rot starts")
    context_rot: float = Field(ge=0, description="log-odds added per doubling of context past effective_context")
    self_conditioning: float = Field(ge=0, description="log-odds added per uncorrected own error in context")
    error_modes: dict[str, float]
    notice_error: float = Field(ge=0, le=1, description="P(notices an explicit error result and retries)")
    notice_malformed: float = Field(ge=0, le=1, description="P(notices a malformed or truncated result)")
    notice_silent_wrong: float = Field(ge=0, le=1, description="P(notices a valid-looking wrong value)")
    clarify_when_ambiguous: float = Field(ge=0, le=1, description="P(asks instead of guessing a missing value)")
    obey_injection: float = Field(ge=0, le=1, description="P(follows an instruction inside a tool result)")
    max_retries_per_step: int = Field(3, ge=0, description="rejected results on one step before giving up")
    ambiguity_penalty: float = Field(0.5, ge=0, description="log-odds added while the request has typos or loose wording")
    track_goal_change: float = Field(0.8, ge=0, le=1, description="P(uses a value the user changed mid-session)")
    refetch_missing: float = Field(0.85, ge=0, le=1, description="P(re-reads a forgotten input instead of inventing it)")
    summary_recall: float = Field(0.9, ge=0, le=1, description="P(a fact survives when it writes a summary)")
    overconfidence: float = Field(0.0, description="log-odds added to stated confidence")
    reasoning_tokens: int = Field(0, ge=0, description="hidden output tokens charged per call")
    context_window: int = Field(128_000, gt=0)
    latency: ModelLatency = Field(default_factory=ModelLatency)


STRONG = Profile(
    name="strong",
    summary="a frontier tool-calling model (GPT-4o / Claude 3.7 Sonnet class)",
    calibration=[
        "constant-hazard horizon: per-step reliability ~0.99 on the chain template, H50 ~ 69 steps "
        "(Ord 2025 on METR data: p = 0.99 gives H50 ~ 69)",
        "context rot: 87.3% -> 62.4% from ~270 to ~113K tokens (Chroma 2025, GPT-4.1) is ~+1.4 "
        "log-odds of error over ~1.8 doublings past a 32K effective length: context_rot = 0.8",
        "effective length 32K: NoLiMa / RULER effective lengths of 32K-64K for GPT-4-class models",
        "pass^k: per-task difficulty spread (difficulty_sd) so pass^k falls far slower than p^k "
        "(tau-bench retail, GPT-4o: 0.604 / 0.491 / 0.430 / 0.383)",
        "silent faults: truncation diagnosed 4.3% of the time (AgentChaos) -> notice_silent_wrong = 0.05",
    ],
    base_hazard=0.015,
    difficulty_sd=0.9,
    effective_context=32_000,
    context_rot=0.8,
    self_conditioning=0.35,
    error_modes={"wrong_tool": 0.15, "fabricated_arg": 0.25, "stale_arg": 0.2, "skipped_step": 0.1,
                 "premature_finish": 0.1, "repeated_call": 0.15, "give_up": 0.05},
    notice_error=0.95,
    notice_malformed=0.8,
    notice_silent_wrong=0.05,
    clarify_when_ambiguous=0.7,
    obey_injection=0.1,
    overconfidence=0.5,
    ambiguity_penalty=0.4,
    track_goal_change=0.9,
    refetch_missing=0.9,
    summary_recall=0.95,
    latency=ModelLatency(first_token_median_s=0.7, first_token_p95_s=2.5,
                         per_output_token_s=0.012, per_1k_input_tokens_s=0.02),
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
    ],
    base_hazard=0.07,
    difficulty_sd=1.3,
    effective_context=8_000,
    context_rot=1.0,
    self_conditioning=0.6,
    error_modes={"wrong_tool": 0.2, "fabricated_arg": 0.25, "stale_arg": 0.15, "skipped_step": 0.1,
                 "premature_finish": 0.12, "repeated_call": 0.1, "give_up": 0.08},
    notice_error=0.8,
    notice_malformed=0.5,
    notice_silent_wrong=0.02,
    clarify_when_ambiguous=0.3,
    obey_injection=0.4,
    overconfidence=1.0,
    ambiguity_penalty=1.0,
    track_goal_change=0.6,
    refetch_missing=0.6,
    summary_recall=0.75,
    context_window=32_000,
    latency=ModelLatency(first_token_median_s=0.3, first_token_p95_s=1.2,
                         per_output_token_s=0.006, per_1k_input_tokens_s=0.01),
)

for _p in (STRONG, WEAK):
    register("profile", _p.name, _p, summary=_p.summary)


def get_profile(name: str, **overrides) -> Profile:
    try:
        base = lookup("profile", name).obj
    except UnknownName as e:
        raise KeyError(str(e)) from None
    if not overrides:
        return base
    return Profile.model_validate({**base.model_dump(), **overrides})
