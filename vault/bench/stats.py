"""Latency percentiles as every benchmark here reports them."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile_ms(seconds: Iterable[float], q: float) -> float:
    """Nearest-rank ``q``-th percentile (0 < q <= 100) of durations in seconds, in
    milliseconds; NaN when there are none."""
    ordered = sorted(seconds)
    if not ordered:
        return math.nan
    return 1000 * ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
