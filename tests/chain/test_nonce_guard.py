"""Two relayers sharing one operator key, as two API processes do: the nonce guard."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, text
from web3 import Web3

from tests.chain.test_relayer import (
    GRANTS_PER_THREAD,
    Patient,
    assert_contiguous,
    new_key,
    register,
    sign_grant,
)
from vault.chain.compiler import ContractArtifact
from vault.chain.deployment import Deployment
from vault.chain.nonce_guard import guard_for
from vault.chain.registry import ConsentRegistryClient
from vault.chain.relayer import TxOutcome

THREADS_PER_PROCESS = 4


def relay_from_two_clients(
    clients: list[ConsentRegistryClient], patients: list[Patient], provider: str
) -> tuple[list[TxOutcome], list[BaseException]]:
    outcomes: list[TxOutcome] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(patients))

    def work(client: ConsentRegistryClient, p: Patient) -> None:
        start.wait()
        for n in range(GRANTS_PER_THREAD):
            try:
                outcome = client.grant_consent(sign_grant(client, p, provider, n))
            except BaseException as exc:
                with lock:
                    failures.append(exc)
            else:
                with lock:
                    outcomes.append(outcome)

    threads = [
        threading.Thread(target=work, args=(clients[i % len(clients)], p))
        for i, p in enumerate(patients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return outcomes, failures


def test_two_relayers_with_one_key_never_race_for_a_nonce(
    engine: Engine,
    w3: Web3,
    operator: LocalAccount,
    registry: Deployment,
    registry_artifact: ContractArtifact,
    client: ConsentRegistryClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Two clients, two relayers, two nonce caches, two guards on the shared database (a
    # lock file beside SQLite, an advisory lock on PostgreSQL), one key: what two
    # processes have.
    clients = [
        ConsentRegistryClient.connect(
            w3=w3,
            address=registry.address,
            artifact=registry_artifact,
            operator=operator,
            nonce_guard=guard_for(engine),
        )
        for _ in range(2)
    ]
    provider_key = new_key()
    client.register_provider(provider_key.address)
    patients = [register(client) for _ in range(2 * THREADS_PER_PROCESS)]
    with caplog.at_level(logging.WARNING, logger="vault.chain.relayer"):
        outcomes, failures = relay_from_two_clients(clients, patients, provider_key.address)
    assert failures == []
    assert len(outcomes) == len(patients) * GRANTS_PER_THREAD
    assert_contiguous(outcomes)
    races = [r for r in caplog.records if "nonce race" in r.getMessage()]
    assert races == [], f"{len(races)} nonce races despite the guard"


def test_guard_follows_the_database(engine: Engine) -> None:
    guard = guard_for(engine)
    with guard():
        if engine.dialect.name == "sqlite":
            assert Path(str(engine.url.database)).with_suffix(".relayer.lock").exists()
        else:
            with engine.connect() as conn:
                held = conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks JOIN pg_database d ON d.oid = database"
                        " WHERE locktype = 'advisory' AND granted"
                        " AND d.datname = current_database()"
                    )
                )
            assert held == 1
