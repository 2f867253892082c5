from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from vault.api.app import create_app
from vault.config import Settings
from vault.runtime import Vault, open_vault


@pytest.fixture
def vault(settings: Settings) -> Iterator[Vault]:
    """A vault opened on a temporary SQLite database and the session's Anvil node."""
    opened = open_vault(settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def client(vault: Vault) -> Iterator[TestClient]:
    with TestClient(create_app(vault)) as test_client:
        yield test_client
