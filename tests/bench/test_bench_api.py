"""`vault bench api` with tiny limits against a real `vault serve` (bench endpoints on)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.served import VAULT, served_vault, vault_env
from vault.bench.api import Read, ServerCpu, Sustained
from vault.demo.client import VaultApi, VaultUnreachable


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str]]]:
    bench = str(getattr(request, "param", True)).lower()
    env = vault_env(tmp_path / "data", VAULT_BENCH_ENDPOINTS=bench)
    with served_vault(env) as base:
        yield base, env


LIMITS = ("--requests", "20", "--seconds", "5", "--sustain", "2")


def test_bench_api_prints_both_endpoints_and_zero_lag(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    result = subprocess.run(
        [*VAULT, "bench", "api", "--url", base, *LIMITS],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    rows = [line for line in out.splitlines() if re.match(r"^\s+(1|8|32) \| +\d", line)]
    # The enforced/bare table, then the unchecked one.
    assert [int(r.split("|")[0]) for r in rows] == [1, 8, 32, 1, 8, 32]
    for row in rows[:3]:
        enforced, bare = (cell.split() for cell in row.split("|")[1:3])
        # req/s, p50, p99, n, errors: every request answered, and a throughput for each.
        assert float(enforced[0]) > 0 and float(bare[0]) > 0
        assert enforced[4] == "0" and bare[4] == "0"
        assert int(enforced[3]) > 0 and int(bare[3]) > 0
    for row in rows[3:]:
        unchecked, ratio = (cell.split() for cell in row.split("|")[1:3])
        assert float(unchecked[0]) > 0 and unchecked[4] == "0" and int(unchecked[3]) > 0
        assert float(ratio[0]) > 0
    cpu_rows = re.findall(
        r"^\s+(1|8|32) \| enforced +(\d+\.\d+) \| bare +(\d+\.\d+) \| enforcement adds"
        r" +-?\d+\.\d+ \| unchecked +(\d+\.\d+) \| checks add",
        out,
        flags=re.MULTILINE,
    )
    assert [int(conc) for conc, *_ in cpu_rows] == [1, 8, 32]
    # The server did work for every cell it answered (the meter reads its process clock).
    assert all(float(cpu) > 0 for _, *cpus in cpu_rows for cpu in cpus)
    # The floor at concurrency 1, on the vault's own node (found from VAULT_DATA_DIR).
    floor = re.search(
        r"bare request \(1 / its throughput\) +(\d+\.\d+) ms\n"
        r"  \+ head round trip to the node +(\d+\.\d+) ms \((\d+) eth_getBlockByNumber.*\n"
        r"  \+ one audit entry committed +(\d+\.\d+) ms \((\d+) appends.*\n"
        r"  = at least +(\d+\.\d+) ms per enforced read: enforced/bare can reach at most "
        r"(\d+\.\d+) at concurrency 1",
        out,
    )
    assert floor is not None, out
    bare_ms, trip_ms, trips, commit_ms, commits, least_ms, ceiling = map(float, floor.groups())
    assert trip_ms > 0 and commit_ms > 0 and trips > 0 and commits > 0
    assert least_ms == pytest.approx(bare_ms + trip_ms + commit_ms, abs=0.0021)
    assert ceiling == pytest.approx(bare_ms / least_ms, abs=0.011)
    sustained = re.search(
        r"reads (\d+) \(\d+/s\), errors 0; p50 [\d.]+ ms, p99 [\d.]+ ms, p99.9 [\d.]+ ms, "
        r"max [\d.]+ ms\n  slowest 0.5 s window: p99 [\d.]+ ms",
        out,
    )
    assert sustained is not None and int(sustained.group(1)) > 0, out
    # The sustained reads ran before the revoke: all of them were allowed.
    assert out.index("sustained enforced read") < out.index("revoke-to-deny lag")
    assert "first read started after the response" in out and "refused (403)" in out
    assert re.search(r"reads started after the response: \d+, allowed: 0", out)
    assert "lag: 0 blocks" in out
    blocks = re.search(
        r"revoke mined in block (\d+); chain head after the response: block (\d+)", out
    )
    assert blocks is not None and blocks.group(1) == blocks.group(2)


@pytest.mark.parametrize("served", [False], indirect=True)
def test_bare_endpoint_is_not_mounted_by_default(served: tuple[str, dict[str, str]]) -> None:
    base, _ = served
    assert httpx.get(f"{base}/bench/bare?size=10").status_code == 404
    assert httpx.get(f"{base}/bench/cpu").status_code == 404
    assert httpx.get(f"{base}/bench/records/pat_x/rec_y").status_code == 404


def test_unchecked_read_takes_the_operators_token_only(
    served: tuple[str, dict[str, str]],
) -> None:
    """The bench's unchecked read hands out records: with bench endpoints on it still
    refuses anyone but the operator, before it looks anything up."""
    base, _ = served
    url = f"{base}/bench/records/pat_nobody/rec_nothing"
    for headers in ({}, {"Authorization": "Bearer not-the-admin-token"}):
        reply = httpx.get(url, headers=headers)
        assert reply.status_code == 401, headers
        assert reply.json()["code"] == "authentication_failed"


def test_a_malformed_node_url_is_refused_before_anything_is_measured(tmp_path: Path) -> None:
    env = vault_env(tmp_path / "data", VAULT_ADMIN_TOKEN="operator-token-for-this-test")
    result = subprocess.run(
        [*VAULT, "bench", "api", "--url", "http://127.0.0.1:1", "--rpc-url", "http://[::1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error[invalid_input]: not a node URL")
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_cpu_meter_failures_are_vault_errors_with_a_code() -> None:
    # Nothing listens on port 1: a one-line CLI error, not a traceback.
    with pytest.raises(VaultUnreachable):
        ServerCpu(VaultApi("http://127.0.0.1:1")).seconds()


def test_a_sustained_run_names_its_slowest_window() -> None:
    """The worst half-second is found by the reads that started in it, and its p99 is the
    nearest-rank one: one stall in a quiet run is what the window line shows."""
    reads = [Read(started=i * 0.01, status=200, elapsed=0.008) for i in range(300)]
    reads[160] = Read(started=1.6, status=200, elapsed=0.120)  # in the window from 1.5 s
    run = Sustained(3.0, reads)
    at, p99 = run.worst_window()
    assert (at, round(p99, 3)) == (1.5, 120.0)
    assert round(run.percentile_ms(50), 3) == 8.0
    assert round(run.percentile_ms(100), 3) == 120.0
