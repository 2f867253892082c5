"""`vault bench api` with tiny limits: it serves each shape itself and prints its tables."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.served import VAULT, vault_env
from vault.bench.api import default_shapes
from vault.bench.shapes import Shape

LIMITS = ("--requests", "20", "--seconds", "2")
ROW = re.compile(
    r"^\s+(1|8|32) \| +(\d+) +([\d.]+) +([\d.]+) +(\d+) +(\d+) \| "
    r"+(\d+) +([\d.]+) +([\d.]+) +(\d+) +(\d+) \| +([\d.]+)$",
    re.MULTILINE,
)


def _bench(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = vault_env(tmp_path / "data")
    return subprocess.run(
        [*VAULT, "bench", "api", *LIMITS, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _check_shape(out: str, label: str) -> None:
    section = out[out.index(f"{label}: ") :]
    rows = ROW.findall(section)[:3]
    assert [int(r[0]) for r in rows] == [1, 8, 32], out
    for row in rows:
        # Every request of both endpoints answered, each with a throughput and a ratio.
        assert int(row[1]) > 0 and int(row[6]) > 0 and float(row[11]) > 0
        assert row[5] == "0" and row[10] == "0"
    lag = section[section.index("revoke-to-deny") :]
    assert "refused (403)" in lag.splitlines()[0]
    assert re.search(r"reads started after the response: \d+, allowed: 0;", lag)
    assert "lag: 0 blocks" in lag.splitlines()[1]


def test_bench_api_on_sqlite_prints_both_endpoints_and_zero_lag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _bench(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_shape(result.stdout, "sqlite x1")
    assert re.search(r"sqlite x1 +enforced +\d+ req/s, p99 +[\d.]+ ms", result.stdout)


@pytest.mark.postgres
def test_bench_api_on_postgresql_with_two_processes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = os.environ.get("VAULT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("VAULT_TEST_POSTGRES_URL is unset")
    result = _bench(tmp_path, "--database-url", url, "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    _check_shape(result.stdout, "sqlite x1")
    _check_shape(result.stdout, "postgresql x2")
    assert re.search(r"targets on postgresql x2: p99 <= 20 ms: (met|MISSED)", result.stdout)


def test_bad_workers_are_one_line_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _bench(tmp_path, "--workers", "two")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error[invalid_input]: --workers")
    assert len(result.stderr.strip().splitlines()) == 1


def test_default_shapes_are_sqlite_then_each_postgresql_worker_count() -> None:
    assert default_shapes(None, [1, 2]) == [Shape("sqlite", 1)]
    assert default_shapes("postgresql+psycopg://x@/y", [1, 2]) == [
        Shape("sqlite", 1),
        Shape("postgresql", 1),
        Shape("postgresql", 2),
    ]


def test_the_product_app_never_imports_the_bench() -> None:
    """The product app has no route that serves a record without a consent decision: the
    benchmark's unchecked read lives only in vault.bench, which the product never imports."""
    code = (
        "import sys, vault.api.app, vault.cli.serve, vault.api.routes.providers;"
        "print(sorted(m for m in sys.modules if m.startswith('vault.bench')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
