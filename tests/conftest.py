"""Shared fixtures: a real Anvil node, the real compiled contract, real databases.

The node is started once per test session from the pinned npm binary and killed in a
finalizer; each test that needs a clean contract deploys its own. The databases (SQLite
and PostgreSQL, one fresh database per test) come from ``tests/backends.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from tests.backends import (
    SQLITE_ONLY_MARKER,
    database_url,
    empty_database_url,
    engine,
    postgres_template,
    session_factory,
    sqlite_template,
)
from vault.chain.compiler import ContractArtifact, load_artifact
from vault.chain.deployment import Deployment, deploy_registry
from vault.chain.node import AnvilProcess, EmbeddedChain
from vault.chain.operator import fund_on_anvil
from vault.chain.rpc import connect
from vault.config import ANVIL_CHAIN_ID, Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = PROJECT_ROOT / "sample_data"

# Fixtures from tests/backends.py, for every directory: migrated databases of both backends.
__all__ = [
    "database_url",
    "empty_database_url",
    "engine",
    "postgres_template",
    "session_factory",
    "sqlite_template",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", SQLITE_ONLY_MARKER)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def registry_artifact() -> ContractArtifact:
    """ConsentRegistry compiled from contracts/src with the pinned solc-js."""
    return load_artifact(PROJECT_ROOT, "ConsentRegistry")


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilProcess]:
    """A real Anvil node for the whole test session."""
    chain = EmbeddedChain(
        chain_dir=tmp_path_factory.mktemp("anvil"),
        node_modules=PROJECT_ROOT / "node_modules",
        chain_id=ANVIL_CHAIN_ID,
    )
    node, _ = chain.up()
    try:
        yield node
    finally:
        chain.down()


@pytest.fixture(scope="session")
def w3(anvil: AnvilProcess) -> Web3:
    return connect(anvil.url)


def funded_account(w3: Web3) -> LocalAccount:
    """A fresh random account with gas money on the test chain."""
    account: LocalAccount = Account.from_key(secrets.token_bytes(32))
    fund_on_anvil(w3, account.address)
    return account


@pytest.fixture(scope="session")
def operator(w3: Web3) -> LocalAccount:
    """The operator (relayer, admin) account for the session's deployments."""
    return funded_account(w3)


@pytest.fixture
def registry(w3: Web3, operator: LocalAccount, registry_artifact: ContractArtifact) -> Deployment:
    """A freshly deployed ConsentRegistry, administered by ``operator``."""
    return deploy_registry(w3, operator, registry_artifact)


@pytest.fixture
def settings(tmp_path: Path, anvil: AnvilProcess, database_url: str) -> Settings:
    """Settings for a vault in a temporary data dir on each database backend, attached to
    the session's node."""
    return Settings(
        data_dir=tmp_path / "data",
        chain_rpc_url=anvil.url,
        project_root=PROJECT_ROOT,
        database_url=database_url,
    )
