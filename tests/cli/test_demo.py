"""`vault demo` as a newcomer runs it: a real `vault serve` subprocess, then the demo against it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.served import run_vault, served_vault, vault_env
from vault.chain.node import free_port


def run_demo(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_vault(args, env, timeout=300)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A `vault serve` on a temporary data dir and a free port; stopped (SIGTERM) after."""
    env = vault_env(tmp_path / "data")
    with served_vault(env) as base:
        yield base, env


def test_demo_plays_the_whole_story(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    result = run_demo(["demo", "--url", base], env)
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
    result = run_demo(["demo", "--url", f"http://127.0.0.1:{free_port()}"], env)
    assert result.returncode == 2
    assert result.stderr.startswith("error[vault_unreachable]: no vault answers at")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_demo_with_a_wrong_admin_token_names_the_failing_step(
    served: tuple[str, dict[str, str]],
) -> None:
    base, env = served
    result = run_demo(["demo", "--url", base], dict(env, VAULT_ADMIN_TOKEN="not-the-admin-token"))
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error[authentication_failed]: register the provider: HTTP 401"
    ), result.stderr
    assert "Traceback" not in result.stderr
