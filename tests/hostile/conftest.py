"""Fixtures for hostile-input tests: the real app, on the session's Anvil node, real faces.

The API fixtures of ``tests/api`` are function-scoped; the fuzzing tests here share one
vault per module (enrolling a face costs a chain transaction and a second of CPU).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.api.conftest import api_settings, client, new_provider, vault
from tests.api.support import (
    ADMIN_TOKEN,
    OBAMA_ENROLL,
    OBAMA_PROBE,
    admin_headers,
    enroll,
    patient_session,
    sign_in_provider,
)
from vault.api.app import create_app
from vault.config import Settings
from vault.runtime import Vault, open_vault

__all__ = ["api_settings", "client", "new_provider", "vault"]

#: ``VAULT_FUZZ_LONG=1``: the fuzzing tests run unseeded and with ten times the examples
#: (a long mode outside the test command; a failure prints the seed to repeat it).
FUZZ_LONG = os.environ.get("VAULT_FUZZ_LONG") == "1"


@dataclass(frozen=True)
class Actors:
    """One enrolled patient with a session and one signed-in provider, on a shared vault."""

    client: TestClient
    vault: Vault
    handle: str
    patient_token: str
    provider: LocalAccount
    provider_token: str
    record_id: str


@pytest.fixture(scope="module")
def vault_overrides() -> dict[str, object]:
    """Settings a test module changes for its shared vault (override in the module)."""
    return {}


@pytest.fixture(scope="module")
def shared_vault(  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory,
    anvil,
    project_root: Path,
    vault_overrides: dict[str, object],
) -> Iterator[Vault]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("hostile") / "data",
        chain_rpc_url=anvil.url,
        project_root=project_root,
        admin_token=SecretStr(ADMIN_TOKEN),
        **vault_overrides,  # type: ignore[arg-type]
    )
    opened = open_vault(settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def actors(shared_vault: Vault) -> Iterator[Actors]:
    with TestClient(create_app(shared_vault)) as test_client:
        handle = enroll(test_client, OBAMA_ENROLL)
        patient_token = patient_session(test_client, handle, OBAMA_PROBE)
        account: LocalAccount = Account.from_key(secrets.token_bytes(32))
        reply = test_client.post(
            "/admin/providers", json={"address": account.address}, headers=admin_headers()
        )
        assert reply.status_code == 201, reply.json()
        provider_token = sign_in_provider(test_client, account)
        created = test_client.post(
            "/patient/records",
            json={"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}},
            headers={"Authorization": f"Bearer {patient_token}"},
        )
        assert created.status_code == 201, created.json()
        yield Actors(
            client=test_client,
            vault=shared_vault,
            handle=handle,
            patient_token=patient_token,
            provider=account,
            provider_token=provider_token,
            record_id=created.json()["record_id"],
        )
