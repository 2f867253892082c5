from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from vault.chain.deployment import (
    Deployment,
    record_deployment,
    recorded_deployment,
    verify_deployment,
)
from vault.chain.operator import load_operator
from vault.config import Settings
from vault.errors import ContractMissing
from vault.runtime import ensure_deployment
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


def test_deployment_round_trips_through_database(
    session_factory: sessionmaker[Session], registry: Deployment
) -> None:
    factory = session_factory
    assert recorded_deployment(factory, registry.chain_id) is None
    record_deployment(factory, registry)
    assert recorded_deployment(factory, registry.chain_id) == registry


def test_processes_starting_together_deploy_one_registry(settings: Settings, w3: Web3) -> None:
    """Two vaults opening a fresh database at the same moment: one deploys, the other
    finds its record (before, each deployed and used its own registry)."""
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    operator = load_operator(settings.resolved_operator_key_file)
    start = threading.Barrier(2)
    results: list[tuple[Deployment, bool]] = []

    def open_one() -> None:
        factory = make_session_factory(make_engine(settings.resolved_database_url))
        start.wait()
        results.append(
            ensure_deployment(settings=settings, w3=w3, factory=factory, operator=operator)
        )

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({deployment.address for deployment, _ in results}) == 1
    assert sorted(deployed for _, deployed in results) == [False, True]
    recorded = recorded_deployment(make_session_factory(engine), settings.chain_id)
    assert recorded is not None and recorded.address == results[0][0].address
