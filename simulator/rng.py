"""Seeded random streams.

Every source of randomness draws from its own stream, derived from a digest of
(seed, keys...). Two designs run on the same seed therefore see the same user,
the same latencies and the same fault schedule (common random numbers), and
nothing ever touches the global `random` state.
"""
from __future__ import annotations

import hashlib
import math
import random


def derive_seed(seed: int, *keys: object) -> int:
    h = hashlib.blake2b(digest_size=8)
    h.update(str(int(seed)).encode())
    for k in keys:
        h.update(b"\x1f")
        h.update(str(k).encode())
    return int.from_bytes(h.digest(), "big")


def stream(seed: int, *keys: object) -> random.Random:
    return random.Random(derive_seed(seed, *keys))


def lognormal(rng: random.Random, median: float, p95: float) -> float:
    """Draw from the lognormal with the given median and 95th percentile.

    Latencies are specified by median and p95 because that is how people read
    dashboards; sigma follows from p95 = median * exp(1.645 sigma).
    """
    if median <= 0:
        return 0.0
    sigma = math.log(max(p95, median) / median) / 1.6448536269514722
    return median * math.exp(sigma * rng.gauss(0.0, 1.0))
