"""Small, exact statistics used in every report."""
from __future__ import annotations

import math


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default).

    Preferred over the normal approximation below a few hundred trials: it stays
    inside [0, 1] and does not collapse to a point at 0 or n successes (with 0
    failures in n trials the upper bound on the failure rate is z^2 / (n + z^2),
    close to the rule of three's 3/n).
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def mean_ci(values: list[float], z: float = 1.959963984540054) -> tuple[float, float, float]:
    """Mean with a normal-approximation 95% interval."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    m = sum(values) / n
    if n == 1:
        return m, m, m
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    h = z * sd / math.sqrt(n)
    return m, m - h, m + h
