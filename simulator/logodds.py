"""The log-odds scale the simulated model adds its hazards on (see profiles.py)."""
from __future__ import annotations

import math


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def bend(u: float, width: float) -> float:
    """max(0, u), or its smooth version w * log2(1 + 2^(u/w)) for a width w > 0 (written
    so that 2^(u/w) never overflows)."""
    if width <= 0:
        return max(0.0, u)
    t = u / width
    return width * ((t + math.log2(1 + 2 ** -t)) if t > 0 else math.log2(1 + 2 ** t))
