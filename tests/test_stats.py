import math

import pytest
from hypothesis import given, strategies as st

from simulator.stats import mean_ci, wilson


def test_wilson_closed_form():
    # p = 0.5, n = 10, z = 1.96: centre 0.5, half-width z*sqrt(.25/10 + z^2/400)/(1 + z^2/10)
    z = 1.959963984540054
    lo, hi = wilson(5, 10)
    half = z * math.sqrt(0.25 / 10 + z * z / 400) / (1 + z * z / 10)
    assert lo == pytest.approx(0.5 - half) and hi == pytest.approx(0.5 + half)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)


def test_wilson_rule_of_three():
    # 0 failures in n trials: the 95% upper bound on the failure rate is z^2/(n+z^2), near 3/n
    lo, hi = wilson(0, 100)
    assert lo == 0.0
    assert hi == pytest.approx(1.959963984540054 ** 2 / (100 + 1.959963984540054 ** 2))
    assert 0.03 < hi < 0.04


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_contains_the_estimate(k, n):
    k = min(k, n)
    lo, hi = wilson(k, n)
    assert 0.0 <= lo <= k / n + 1e-12 and k / n - 1e-12 <= hi <= 1.0


def test_mean_ci():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert hi - m == pytest.approx(1.959963984540054 * 1.0 / math.sqrt(3))
