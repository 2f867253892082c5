"""API fixtures: the real app on a fresh database of each backend and the session's node."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.api.support import ADMIN_TOKEN, admin_headers, sign_in_provider
from vault.api.app import create_app
from vault.chain.node import AnvilProcess
from vault.config import Settings
from vault.runtime import Vault, open_vault


@pytest.fixture
def api_settings(
    tmp_path: Path, anvil: AnvilProcess, project_root: Path, database_url: str
) -> Settings:
    """A vault's settings on each database backend (``database_url``'s parameter)."""
    return Settings(
        data_dir=tmp_path / "data",
        chain_rpc_url=anvil.url,
        project_root=project_root,
        admin_token=SecretStr(ADMIN_TOKEN),
        database_url=database_url,
    )


@pytest.fixture
def vault(api_settings: Settings) -> Iterator[Vault]:
    """A vault opened on a fresh database and the session's Anvil node; it deploys its own
    registry (the database has no deployment record)."""
    opened = open_vault(api_settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def client(vault: Vault) -> Iterator[TestClient]:
    with TestClient(create_app(vault)) as test_client:
        yield test_client


@pytest.fixture
def new_provider(client: TestClient) -> Callable[..., tuple[LocalAccount, str]]:
    def make(*, emergency: bool = False) -> tuple[LocalAccount, str]:
        account: LocalAccount = Account.from_key(secrets.token_bytes(32))
        reply = client.post(
            "/admin/providers",
            json={"address": account.address, "emergency": emergency},
            headers=admin_headers(),
        )
        assert reply.status_code == 201, reply.json()
        return account, sign_in_provider(client, account)

    return make
