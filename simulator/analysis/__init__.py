"""Statistics for success-decay analysis: pure functions over plain rows of trial outcomes.

A row is a dict with `task` (the unit that was randomised), `trial`, `success` (or a
`reward`, success meaning reward > 1 - 1e-6 as in tau-bench), optional `length` (steps),
optional `sim_time_s`, and any other keys naming grid cells (agent, profile, fault, ...).
Everything random takes an explicit seed; every output is JSON-serialisable.

- tables:    load_table, normalise_rows, success_by_cell
- passk:     pass_hat_k, pass_at_k and their curves (tau-bench; Chen et al. 2021)
- decay:     logistic_horizon (METR, arXiv:2503.14499), constant_hazard_fit (Ord 2025),
             weibull_fit
- summaries: analyze, fault_effects (one-call summaries built from the above)
- logistic, resample: the logistic fit and the task-clustered bootstrap they share
"""
from .decay import constant_hazard_fit, logistic_horizon, weibull_fit
from .passk import pass_at_k, pass_at_k_curve, pass_hat_k, pass_hat_k_curve, task_counts
from .summaries import analyze, fault_effects
from .tables import load_table, normalise_rows, success_by_cell

__all__ = [
    "analyze", "constant_hazard_fit", "fault_effects", "load_table", "logistic_horizon",
    "normalise_rows", "pass_at_k", "pass_at_k_curve", "pass_hat_k", "pass_hat_k_curve",
    "success_by_cell", "task_counts", "weibull_fit",
]
