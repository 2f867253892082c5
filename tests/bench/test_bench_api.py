"""`vault bench api` with tiny limits against a real `vault serve` (bench endpoints on)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vault.chain.node import free_port

VAULT = [sys.executable, "-m", "vault"]


def _serve(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*VAULT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_healthy(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "vault serve did not answer in time"
        time.sleep(0.2)


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env["VAULT_DATA_DIR"] = str(tmp_path / "data")
    env["VAULT_PORT"] = str(free_port())
    env["VAULT_BENCH_ENDPOINTS"] = str(getattr(request, "param", True)).lower()
    proc = _serve(env)
    base = f"http://127.0.0.1:{env['VAULT_PORT']}"
    try:
        _wait_healthy(base, proc)
        yield base, env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_bench_api_prints_both_endpoints_and_zero_lag(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    result = subprocess.run(
        [*VAULT, "bench", "api", "--url", base, "--requests", "20", "--seconds", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    rows = [line for line in out.splitlines() if re.match(r"^\s+(1|8|32) \|", line)]
    assert [int(r.split("|")[0]) for r in rows] == [1, 8, 32]
    for row in rows:
        enforced, bare = (cell.split() for cell in row.split("|")[1:3])
        # req/s, p50, p99, n, errors: every request answered, and a throughput for each.
        assert float(enforced[0]) > 0 and float(bare[0]) > 0
        assert enforced[4] == "0" and bare[4] == "0"
        assert int(enforced[3]) > 0 and int(bare[3]) > 0
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
