"""``vault bench store``'s encryption section: every size gets its ratio and its floor."""

from __future__ import annotations

import re

from vault.bench.store import SIZES, bench_encryption

RATIO = r"(\d+\.\d\d)x"


def test_encryption_rows_carry_ratio_and_library_floor() -> None:
    lines: list[str] = []
    bench_encryption(lines.append, seconds=0.001, rounds=1)

    rows = {}
    for line in lines:
        found = re.match(rf"\s+(\d+ [KM]B) \|.* {RATIO} +{RATIO} \|.* {RATIO} +{RATIO}$", line)
        if found:
            rows[found.group(1)] = [float(x) for x in found.groups()[1:]]
    assert sorted(rows) == sorted(label for label, _size in SIZES)
    for ratios in rows.values():
        # Measured in microseconds here, so noisy: the test checks the shape, not figures.
        assert all(ratio > 0 for ratio in ratios)
    assert any("floor/bare is the best ratio" in line for line in lines)
