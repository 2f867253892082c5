"""Error rates with confidence bounds, the margin rule for thresholds, and D↔sys.

* Confidence bounds are exact (Clopper-Pearson): the binomial tail is summed in log space
  and inverted by bisection, so the bound for 0 errors in n attempts is 1 - a^(1/n) at
  confidence 1 - a.
* The operating threshold is the loosest one whose upper 80 % bound of the FMR is at or
  below the target (the FIDO Alliance's way of stating FAR and FRR requirements).
* D↔sys is the global linkability of Gomez-Barrero et al., "Unlinkable and irreversible
  biometric template protection based on Bloom filters" / "General framework to evaluate
  unlinkability in biometric template protection systems" (IEEE TIFS 13(6), 2018): the
  mated-score-weighted mean of the local measure D↔(s) = max(0, 2·LR(s)/(1+LR(s)) - 1),
  LR the ratio of mated to non-mated score densities (equal priors). Densities are
  Gaussian kernel estimates (Scott's bandwidth) on a common grid, as in the authors'
  reference code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
#: Accepted attempts score strictly above the threshold; this one accepts any opened κ.
OPEN_CODE = -1.0


def _log_binom_cdf(k: int, n: int, p: float) -> float:
    """log P(X <= k) for X ~ Binomial(n, p), 0 < p < 1."""
    i = np.arange(k + 1, dtype=np.float64)
    log_pmf = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(v + 1) for v in i])
        - np.array([math.lgamma(n - v + 1) for v in i])
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )
    top = float(log_pmf.max())
    return top + math.log(float(np.exp(log_pmf - top).sum()))


def upper_bound(k: int, n: int, confidence: float) -> float:
    """One-sided upper Clopper-Pearson bound of a rate with ``k`` events in ``n`` trials."""
    if n <= 0:
        return 1.0
    if k >= n:
        return 1.0
    alpha = math.log(1.0 - confidence)
    lo, hi = k / n, 1.0
    for _ in range(80):  # P(X <= k; p) falls as p rises: find where it crosses alpha
        mid = (lo + hi) / 2
        if _log_binom_cdf(k, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def lower_bound(k: int, n: int, confidence: float) -> float:
    """One-sided lower Clopper-Pearson bound (0 for k = 0)."""
    if k <= 0 or n <= 0:
        return 0.0
    return 1.0 - upper_bound(n - k, n, confidence)


@dataclass(frozen=True, slots=True)
class Rate:
    """``errors`` of ``attempts``, with a two-sided 95 % and a one-sided 80 % bound."""

    errors: int
    attempts: int

    @property
    def value(self) -> float:
        return self.errors / self.attempts if self.attempts else float("nan")

    @property
    def low95(self) -> float:
        return lower_bound(self.errors, self.attempts, 0.975)

    @property
    def high95(self) -> float:
        return upper_bound(self.errors, self.attempts, 0.975)

    @property
    def upper80(self) -> float:
        return upper_bound(self.errors, self.attempts, 0.8)

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.errors + other.errors, self.attempts + other.attempts)

    def text(self, digits: int = 2) -> str:
        return (
            f"{self.value:.{digits}%} [95% {self.low95:.{digits}%}-{self.high95:.{digits}%}, "
            f"80% upper {self.upper80:.{digits}%}] ({self.errors}/{self.attempts})"
        )


def fmr(impostor: FloatArray, threshold: float) -> Rate:
    return Rate(int(np.sum(impostor > threshold)), len(impostor))


def fnmr(genuine: FloatArray, threshold: float) -> Rate:
    return Rate(int(np.sum(~(genuine > threshold))), len(genuine))


def margin_threshold(impostor: FloatArray, target: float, confidence: float) -> float:
    """The loosest threshold whose FMR's upper ``confidence`` bound is <= ``target``.

    Scores are "higher is more similar", ``-inf`` for an attempt that did not open;
    accepted means strictly above the threshold. If the code alone (every opened κ
    accepted) already meets the bound, :data:`OPEN_CODE` is returned.
    """
    n = len(impostor)
    finite = np.sort(impostor[np.isfinite(impostor)])[::-1]
    # The most accepted impostors whose bound still meets the target (the bound rises
    # with the count: bisect). If even 0 does not, 0 is the best there is: the report
    # then shows a bound above the target.
    lo, hi = 0, len(finite) + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if upper_bound(mid, n, confidence) <= target:
            lo = mid
        else:
            hi = mid
    if lo >= len(finite):
        return OPEN_CODE
    return float(finite[lo])  # accepting strictly above it accepts exactly `lo`


def threshold_at_fnmr(genuine: FloatArray, target: float) -> float:
    """The strictest threshold whose FNMR does not exceed ``target``."""
    ordered = np.sort(genuine)
    rejected = int(np.floor(target * len(ordered)))  # attempts at or below the threshold
    if rejected == 0:
        finite = ordered[np.isfinite(ordered)]
        return float(np.nextafter(finite[0], -np.inf)) if finite.size else OPEN_CODE
    return float(ordered[rejected - 1])


def _kde(samples: FloatArray, grid: FloatArray) -> FloatArray:
    bandwidth = max(float(samples.std(ddof=1)) * len(samples) ** (-0.2), 1e-9)  # Scott
    density = np.zeros_like(grid)
    for start in range(0, len(samples), 2048):
        chunk = samples[start : start + 2048]
        density += np.exp(-0.5 * ((grid[:, None] - chunk[None, :]) / bandwidth) ** 2).sum(axis=1)
    result: FloatArray = density / (len(samples) * bandwidth * math.sqrt(2 * math.pi))
    return result


def d_sys(mated: FloatArray, non_mated: FloatArray, *, points: int = 512) -> float:
    """Global linkability D↔sys in [0, 1] (0: the scores cannot tell mated pairs apart)."""
    mated = np.asarray(mated, dtype=np.float64)
    non_mated = np.asarray(non_mated, dtype=np.float64)
    lo = min(float(mated.min()), float(non_mated.min()))
    hi = max(float(mated.max()), float(non_mated.max()))
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    grid = np.linspace(lo - pad, hi + pad, points)
    p_m = _kde(mated, grid)
    p_nm = _kde(non_mated, grid)
    ratio = p_m / np.maximum(p_nm, 1e-300)
    local = np.clip(2.0 * ratio / (1.0 + ratio) - 1.0, 0.0, 1.0)
    weights = p_m / p_m.sum()
    return float(np.sum(weights * local))
