"""Confidence bounds, the margin rule and D<->sys against values known in closed form."""

from __future__ import annotations

import math

import numpy as np

from vault.bench.face_stats import (
    OPEN_CODE,
    Rate,
    d_sys,
    fmr,
    lower_bound,
    margin_threshold,
    threshold_at_fnmr,
    upper_bound,
)


def _cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def test_clopper_pearson_bounds() -> None:
    # k = 0: the bound solves (1 - p)^n = 1 - confidence.
    assert math.isclose(upper_bound(0, 1000, 0.8), 1 - 0.2 ** (1 / 1000), rel_tol=1e-9)
    # 5 of 1000, two-sided 95 %: each bound puts 2.5 % in its tail (exact sums).
    low, high = lower_bound(5, 1000, 0.975), upper_bound(5, 1000, 0.975)
    assert math.isclose(1 - _cdf(4, 1000, low), 0.025, rel_tol=1e-6)
    assert math.isclose(_cdf(5, 1000, high), 0.025, rel_tol=1e-6)
    assert math.isclose(low, 0.0016254, rel_tol=1e-4)
    assert math.isclose(high, 0.0116295, rel_tol=1e-4)
    assert upper_bound(10, 10, 0.8) == 1.0 and lower_bound(0, 10, 0.8) == 0.0
    rate = Rate(3, 100) + Rate(2, 100)
    assert (rate.errors, rate.attempts, rate.value) == (5, 200, 0.025)


def test_margin_threshold_keeps_the_bound_at_the_target() -> None:
    impostor = np.random.default_rng(0).normal(size=200_000)
    threshold = margin_threshold(impostor, 1e-3, 0.8)
    accepted = fmr(impostor, threshold)
    assert accepted.upper80 <= 1e-3 < fmr(impostor, np.nextafter(threshold, -np.inf)).upper80
    assert accepted.value < 1e-3  # the margin: stricter than the plain quantile
    # An impostor set the code already refuses entirely needs no score threshold...
    assert margin_threshold(np.full(10_000, -np.inf), 1e-3, 0.8) == OPEN_CODE
    # ...unless there are too few attempts to show it: then refuse every one seen.
    few = np.array([0.1, 0.2, -np.inf])
    assert margin_threshold(few, 1e-3, 0.8) == 0.2


def test_threshold_at_fnmr() -> None:
    genuine = np.arange(100, dtype=np.float64)
    threshold = threshold_at_fnmr(genuine, 0.03)
    assert np.sum(~(genuine > threshold)) == 3


def test_d_sys_is_zero_for_one_distribution_and_one_for_disjoint_ones() -> None:
    rng = np.random.default_rng(1)
    assert d_sys(rng.normal(size=2000), rng.normal(size=20_000)) < 0.02
    assert d_sys(rng.normal(8, 1, size=2000), rng.normal(size=20_000)) > 0.97
    assert 0.2 < d_sys(rng.normal(1, 1, size=2000), rng.normal(size=20_000)) < 0.6
