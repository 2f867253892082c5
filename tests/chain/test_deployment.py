from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3

from vault.chain.deployment import (
    Deployment,
    record_deployment,
    recorded_deployment,
    verify_deployment,
)
from vault.errors import ContractMissing
from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade


def test_deployed_registry_has_code(w3: Web3, registry: Deployment) -> None:
    assert w3.eth.get_code(Web3.to_checksum_address(registry.address))
    verify_deployment(w3, registry)


def test_verify_refuses_address_without_code(w3: Web3, registry: Deployment) -> None:
    empty = Deployment(registry.chain_id, "0x" + "11" * 20, 0, registry.code_hash)
    with pytest.raises(ContractMissing):
        verify_deployment(w3, empty)


def test_verify_refuses_other_code(w3: Web3, registry: Deployment) -> None:
    swapped = Deployment(registry.chain_id, registry.address, 0, "0x" + "00" * 32)
    with pytest.raises(ContractMissing):
        verify_deployment(w3, swapped)


def test_deployment_round_trips_through_database(tmp_path: Path, registry: Deployment) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    assert recorded_deployment(factory, registry.chain_id) is None
    record_deployment(factory, registry)
    assert recorded_deployment(factory, registry.chain_id) == registry
