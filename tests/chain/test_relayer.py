"""The relayer under concurrency and after failures, on the real Anvil node.

The session's node is shared: tests that switch automine off switch it back on in
``finally``, and no test moves chain time.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from vault import errors
from vault.chain.codes import purpose_id, scope_id
from vault.chain.compiler import ContractArtifact
from vault.chain.deployment import deploy_registry
from vault.chain.registry import ConsentRegistryClient
from vault.chain.relayer import TxOutcome

THREADS = 8
GRANTS_PER_THREAD = 12
TREAT = purpose_id("TREAT")
SCOPES = [scope_id(name) for name in ("Observation", "Condition", "MedicationRequest")]


class Patient(NamedTuple):
    patient_id: bytes
    key: LocalAccount


def new_key() -> LocalAccount:
    account: LocalAccount = Account.from_key(secrets.token_bytes(32))
    return account


def register(client: ConsentRegistryClient) -> Patient:
    p = Patient(secrets.token_bytes(32), new_key())
    client.register_patient(client.sign_registration(p.key, patient_id=p.patient_id))
    return p


def sign_grant(client: ConsentRegistryClient, p: Patient, provider: str, n: int) -> Any:
    return client.sign_grant(
        p.key,
        patient_id=p.patient_id,
        provider=provider,
        scope=secrets.token_bytes(32) if n >= len(SCOPES) else SCOPES[n],
        purpose=TREAT,
        expires_at=client.chain_time() + 3600,
    )


@contextmanager
def manual_mining(w3: Web3) -> Iterator[None]:
    """Automine off for a block of code (restored, and pending transactions mined, after)."""
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def assert_contiguous(outcomes: list[TxOutcome]) -> None:
    nonces = sorted(o.nonce for o in outcomes)
    assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))


# ------------------------------------------------------------------- concurrency


def test_concurrent_relayed_grants_do_not_collide(
    client: ConsentRegistryClient, provider: LocalAccount
) -> None:
    patients = [register(client) for _ in range(THREADS)]
    outcomes: list[TxOutcome] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(p: Patient) -> None:
        start.wait()
        for n in range(GRANTS_PER_THREAD):
            try:
                outcome = client.grant_consent(sign_grant(client, p, provider.address, n))
            except BaseException as exc:  # collect, the assertion below shows them
                with lock:
                    failures.append(exc)
            else:
                with lock:
                    outcomes.append(outcome)

    threads = [threading.Thread(target=work, args=(p,)) for p in patients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert failures == []
    assert len(outcomes) == THREADS * GRANTS_PER_THREAD
    assert_contiguous(outcomes)
    for p in patients:
        for scope in SCOPES:
            assert client.is_allowed(p.patient_id, provider.address, scope, TREAT)
    print(f"\n{len(outcomes)} concurrent relayed grants from {THREADS} threads, 0 nonce errors")


def test_concurrent_mix_of_good_and_refused_submissions(
    client: ConsentRegistryClient, provider: LocalAccount
) -> None:
    """Refused submissions (replays) fail alone and never strand the good ones."""
    patients = [register(client) for _ in range(THREADS)]
    outcomes: list[TxOutcome] = []
    refused: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(p: Patient) -> None:
        start.wait()
        for n in range(6):
            signed = sign_grant(client, p, provider.address, n)
            for attempt in (signed, signed):  # the second is a replay
                try:
                    outcome = client.grant_consent(attempt)
                except errors.StaleConsentNonce as exc:
                    with lock:
                        refused[type(exc).__name__] += 1
                except BaseException as exc:
                    with lock:
                        unexpected.append(exc)
                else:
                    with lock:
                        outcomes.append(outcome)

    threads = [threading.Thread(target=work, args=(p,)) for p in patients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert unexpected == []
    assert len(outcomes) == THREADS * 6
    assert refused == {"StaleConsentNonce": THREADS * 6}
    assert_contiguous(outcomes)


# ---------------------------------------------------------------------- recovery


def test_reverted_transaction_is_decoded_and_does_not_block_the_next(
    client: ConsentRegistryClient,
    provider: LocalAccount,
    patient: tuple[bytes, LocalAccount],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = Patient(*patient)
    signed = sign_grant(client, p, provider.address, 0)
    client.grant_consent(signed)
    assert client.relayer is not None
    # Skip the estimate, so the replay is mined and reverts on chain (status 0).
    monkeypatch.setattr(client.relayer, "_estimate", lambda call, context: 300_000)
    with pytest.raises(errors.StaleConsentNonce) as caught:
        client.grant_consent(signed)
    assert caught.value.details["tx_hash"].startswith("0x")
    receipt = client.w3.eth.get_transaction_receipt(caught.value.details["tx_hash"])
    assert receipt["status"] == 0
    failed_nonce = client.w3.eth.get_transaction(caught.value.details["tx_hash"])["nonce"]
    monkeypatch.undo()
    after = client.grant_consent(sign_grant(client, p, provider.address, 1))
    assert after.nonce == failed_nonce + 1
    assert client.is_allowed(p.patient_id, provider.address, SCOPES[1], TREAT)


def test_failed_send_resyncs_and_the_next_transaction_goes_through(
    client: ConsentRegistryClient,
    provider: LocalAccount,
    patient: tuple[bytes, LocalAccount],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = Patient(*patient)
    real_send = client.w3.eth.send_raw_transaction
    calls = {"n": 0}

    def flaky_send(raw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("node hiccup")
        return real_send(raw)

    monkeypatch.setattr(client.w3.eth, "send_raw_transaction", flaky_send)
    with pytest.raises(errors.TransactionNotConfirmed):
        client.grant_consent(sign_grant(client, p, provider.address, 0))
    # The patient's signed nonce was not used: a fresh signature of the same grant works.
    outcome = client.grant_consent(sign_grant(client, p, provider.address, 0))
    assert outcome.gas_used > 0
    assert client.is_allowed(p.patient_id, provider.address, SCOPES[0], TREAT)


def test_another_writer_on_the_operator_key_is_absorbed(
    w3: Web3,
    client: ConsentRegistryClient,
    operator: LocalAccount,
    registry_artifact: ContractArtifact,
) -> None:
    client.register_provider(new_key().address)  # the relayer now caches its next nonce
    deploy_registry(w3, operator, registry_artifact)  # same key, outside the relayer
    outcome = client.register_provider(new_key().address)  # "nonce too low" -> resync -> ok
    assert outcome.nonce == w3.eth.get_transaction_count(operator.address) - 1


def test_unconfirmed_then_dropped_transaction_does_not_strand_the_queue(
    w3: Web3,
    operator: LocalAccount,
    registry_artifact: ContractArtifact,
    client: ConsentRegistryClient,
    provider: LocalAccount,
    patient: tuple[bytes, LocalAccount],
) -> None:
    p = Patient(*patient)
    impatient = ConsentRegistryClient.connect(
        w3=w3,
        address=client.address,
        artifact=registry_artifact,
        operator=operator,
        receipt_timeout=0.3,
    )
    with manual_mining(w3):
        with pytest.raises(errors.TransactionNotConfirmed) as caught:
            impatient.grant_consent(sign_grant(impatient, p, provider.address, 0))
        lost = caught.value.details["tx_hash"]
        w3.provider.make_request("anvil_dropTransaction", [lost])  # type: ignore[arg-type]

    # The relayer resynced from the pending count, so it reuses the dropped nonce (no gap).
    outcome = impatient.grant_consent(sign_grant(impatient, p, provider.address, 0))
    assert outcome.nonce == caught.value.details["nonce"]
    assert impatient.is_allowed(p.patient_id, provider.address, SCOPES[0], TREAT)
