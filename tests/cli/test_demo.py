"""`vault demo` as a newcomer runs it: a real `vault serve` subprocess, then the demo against it."""

from __future__ import annotations

import os
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


def run_vault(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(VAULT + args, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A `vault serve` on a temporary data dir and a free port; stopped (SIGTERM) after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env["VAULT_DATA_DIR"] = str(tmp_path / "data")
    env["VAULT_PORT"] = str(free_port())
    proc = subprocess.Popen(
        [*VAULT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{env['VAULT_PORT']}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "vault serve did not answer in time"
            time.sleep(0.2)
        yield base, env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_demo_plays_the_whole_story(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    result = run_vault(["demo", "--url", base], env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    steps = [
        "[patient] enrolls from 3 photos",
        "117 resources stored",
        "[operator] registers a provider on chain",
        "[provider] signs in with Ethereum (EIP-4361)",
        "refused: HTTP 401 verification_failed",
        "request granted",
        "[provider] reads the Observation",
        "Observation: ",
        "revocation mined in block",
        "[operator] anchors the access log",
        "[patient] checks every proof against the chain itself",
        "The story is complete",
    ]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)
    # Refused before consent and right after the revoke.
    assert out.count("refused: HTTP 403 access_denied") == 2
    history = out[out.index("reads the access history") :]
    for action, outcome in [("read", "denied"), ("read", "allowed"), ("revoke", "allowed")]:
        assert f"{action:<8} {outcome:<8}" in history
    verified = next(line for line in out.splitlines() if "inclusion proof reaches the root" in line)
    done, total = verified.split()[0].split("/")
    assert done == total and int(total) >= 6
    assert result.stderr == ""


def test_demo_against_nothing_fails_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env["VAULT_DATA_DIR"] = str(tmp_path / "data")
    result = run_vault(["demo", "--url", f"http://127.0.0.1:{free_port()}"], env)
    assert result.returncode == 2
    assert result.stderr.startswith("error[vault_unreachable]: no vault answers at")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_demo_with_a_wrong_admin_token_names_the_failing_step(
    served: tuple[str, dict[str, str]],
) -> None:
    base, env = served
    result = run_vault(["demo", "--url", base], dict(env, VAULT_ADMIN_TOKEN="not-the-admin-token"))
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error[authentication_failed]: register the provider: HTTP 401"
    ), result.stderr
    assert "Traceback" not in result.stderr
