"""`vault serve`, `vault chain` and `vault doctor` as an operator runs them: subprocesses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tests.served import run_vault, served_vault, vault_env
from vault.config import Settings
from vault.runtime import settings_environment


@pytest.fixture
def operator_env(tmp_path: Path) -> dict[str, str]:
    return vault_env(tmp_path / "data")


@pytest.fixture
def served(operator_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    with served_vault(operator_env) as base:
        yield base, operator_env


def test_serve_answers_healthz_and_stops_its_chain(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    reply = httpx.get(f"{base}/healthz")
    assert reply.status_code == 200
    body = reply.json()
    assert body["chain"]["chain_id"] == 31337
    assert body["chain"]["contract_address"].startswith("0x")
    secrets_dir = Path(env["VAULT_DATA_DIR"]) / "secrets"
    for secret in secrets_dir.iterdir():
        assert secret.stat().st_mode & 0o077 == 0, secret


def test_doctor_healthy_then_names_the_stopped_chain(served: tuple[str, dict[str, str]]) -> None:
    _, env = served
    healthy = run_vault(["doctor"], env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "all checks passed" in healthy.stdout
    assert run_vault(["chain", "down"], env).stdout.strip() == "stopped"
    broken = run_vault(["doctor"], env)
    assert broken.returncode == 1
    assert "[FAIL] chain" in broken.stdout
    assert "vault chain up" in broken.stdout


def test_restart_keeps_the_deployment(operator_env: dict[str, str]) -> None:
    up = run_vault(["chain", "up"], operator_env)
    assert up.returncode == 0, up.stderr
    try:
        first = run_vault(["chain", "deploy"], operator_env)
        assert first.returncode == 0, first.stderr
        address = first.stdout.strip().splitlines()[-1]
        assert run_vault(["chain", "down"], operator_env).returncode == 0
        assert run_vault(["chain", "up"], operator_env).returncode == 0
        status = run_vault(["chain", "status"], operator_env)
        assert status.returncode == 0, status.stderr
        assert address in status.stdout
    finally:
        run_vault(["chain", "down"], operator_env)


def test_reset_chain_is_named_and_not_silently_redeployed(operator_env: dict[str, str]) -> None:
    assert run_vault(["chain", "up"], operator_env).returncode == 0
    try:
        assert run_vault(["chain", "deploy"], operator_env).returncode == 0
        run_vault(["chain", "down"], operator_env)
        (Path(operator_env["VAULT_DATA_DIR"]) / "chain" / "state.json").unlink()
        run_vault(["chain", "up"], operator_env)
        status = run_vault(["chain", "status"], operator_env)
        assert status.returncode == 2
        assert status.stderr.startswith("error[contract_missing]")
        assert "Traceback" not in status.stderr
        forced = run_vault(["chain", "deploy", "--force"], operator_env)
        assert forced.returncode == 0, forced.stderr
        assert "deployed ConsentRegistry" in forced.stdout
    finally:
        run_vault(["chain", "down"], operator_env)


def test_placeholder_secret_is_refused(operator_env: dict[str, str]) -> None:
    env = dict(operator_env, VAULT_PEPPER="changeme")
    result = run_vault(["doctor"], env)
    assert result.returncode == 2
    assert result.stderr.startswith("error[configuration_error]")
    assert "Traceback" not in result.stderr


def test_operator_registers_a_provider_and_anchors(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    address = "0x" + "12" * 20
    added = run_vault(["providers", "add", address, "--emergency"], env)
    assert added.returncode == 0, added.stderr
    assert "active, emergency role" in added.stdout
    removed = run_vault(["providers", "remove", address], env)
    assert removed.returncode == 0 and "inactive" in removed.stdout
    bad = run_vault(["providers", "add", "0x12"], env)
    assert bad.returncode == 2 and bad.stderr.startswith("error[invalid_input]")
    assert run_vault(["audit", "anchor"], env).stdout.strip() == "nothing new to anchor"
    # The admin API answers to the generated admin token.
    token = (Path(env["VAULT_DATA_DIR"]) / "secrets" / "admin.token").read_text().strip()
    reply = httpx.get(
        f"{base}/admin/providers/{address}", headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 200 and reply.json()["status"] == "inactive"
    assert httpx.get(f"{base}/admin/providers/{address}").status_code == 401
    verified = run_vault(["audit", "verify"], env)
    assert verified.returncode == 0 and "intact" in verified.stdout


def test_workers_rebuild_the_settings_the_command_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = Settings(
        data_dir=tmp_path,
        port=8123,
        chain_rpc_url="http://127.0.0.1:9",
        anchor_interval_seconds=2.5,
        pepper=SecretStr("ab" * 16),
    )
    env = settings_environment(given)
    assert env["VAULT_PORT"] == "8123" and env["VAULT_PEPPER"] == "ab" * 16
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"VAULT_{name.upper()}", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Settings() == given
