"""The consent gate's per-block decision cache, against the real contract on Anvil.

What must hold: a decision is reused only while the chain's head is the block it was
made for and the clock is inside the span the chain vouched for; any new block (a
revoke, a deactivation, by this client or any other) drops it before the next read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from eth_account.signers.local import LocalAccount

from vault.access.accounts import PatientAccount
from vault.access.gate import ConsentGate
from vault.audit.log import AuditLog
from vault.chain.codes import purpose_id, scope_id
from vault.chain.jsonrpc import AsyncJsonRpc, JsonRpc
from vault.chain.registry import AccessBasis, ConsentRegistryClient
from vault.errors import AccessDenied, ChainUnavailable
from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade


class Patient(NamedTuple):  # the same shape as the conftest fixture's value
    patient_id: bytes
    key: LocalAccount


OBSERVATION = scope_id("Observation")
TREAT = purpose_id("TREAT")


class Counting:
    """Counts calls to one method of the real client (the calls still reach the node)."""

    def __init__(self, target: Any, name: str) -> None:
        self.calls = 0
        original: Callable[..., Any] = getattr(target, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        setattr(target, name, counted)


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade(engine)
    return AuditLog(session_factory=make_session_factory(engine))


def _gate(
    client: ConsentRegistryClient, audit: AuditLog, *, clock: Callable[[], float] | None = None
) -> ConsentGate:
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return ConsentGate(
        registry=client,
        audit=audit,
        latest_block=client.latest_block,
        latest_block_async=client.latest_block_async,  # as the API wires it
        cache_seconds=60,
        **kwargs,
    )


def _account(patient: Patient) -> PatientAccount:
    return PatientAccount("pat_test", "rec_test", patient.patient_id, patient.key.address)


def _grant(client: ConsentRegistryClient, patient: Patient, provider: str, expires_at: int) -> None:
    client.grant_consent(
        client.sign_grant(
            patient.key,
            patient_id=patient.patient_id,
            provider=provider,
            scope=OBSERVATION,
            purpose=TREAT,
            expires_at=expires_at,
        )
    )


def _revoke(client: ConsentRegistryClient, patient: Patient, provider: str) -> None:
    client.revoke_consent(
        client.sign_revocation(
            patient.key,
            patient_id=patient.patient_id,
            provider=provider,
            scope=OBSERVATION,
            purpose=TREAT,
        )
    )


def _dead_client(client: ConsentRegistryClient, artifact: Any) -> ConsentRegistryClient:
    """The same registry, through a JSON-RPC endpoint where nothing answers."""
    dead = ConsentRegistryClient(
        w3=client.w3, address=client.address, abi=artifact.abi, chain_id=31337
    )
    dead._rpc = JsonRpc(f"http://127.0.0.1:{_free_port()}")
    return dead


def _read_together(
    gate: ConsentGate, account: PatientAccount, provider: str, readers: int
) -> list[AccessBasis | BaseException]:
    """``readers`` coroutines asking ``gate`` at once, each with its own head; their
    answers, or what each raised."""

    async def read() -> AccessBasis:
        return await gate.basis_async(
            account, provider, "Observation", "TREAT", head=gate.watch_head()
        )

    async def together() -> list[AccessBasis | BaseException]:
        return list(await asyncio.gather(*(read() for _ in range(readers)), return_exceptions=True))

    return asyncio.run(together())


def test_decision_is_reused_within_one_block(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    calls = Counting(client, "access_basis_span")
    heads = Counting(client, "latest_block")
    gate = _gate(client, audit)
    for _ in range(5):
        assert gate.basis(_account(patient), provider.address, "Observation", "TREAT") is (
            AccessBasis.CONSENT
        )
    assert calls.calls == 1  # one pair of eth_calls, then the cache
    assert heads.calls == 5  # but the head is asked on every read


def test_revoke_is_enforced_on_the_next_read(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    gate = _gate(client, audit)
    account = _account(patient)
    assert gate.basis(account, provider.address, "Observation", "TREAT") is AccessBasis.CONSENT
    _revoke(client, patient, provider.address)
    assert gate.basis(account, provider.address, "Observation", "TREAT") is AccessBasis.NONE


def test_change_made_by_another_client_is_seen(
    client: ConsentRegistryClient,
    patient: Patient,
    provider: LocalAccount,
    audit: AuditLog,
    registry_artifact: Any,
    operator: LocalAccount,
) -> None:
    """Another API process (or the operator's CLI) deactivates the provider."""
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    gate = _gate(client, audit)
    account = _account(patient)
    assert gate.basis(account, provider.address, "Observation", "TREAT") is AccessBasis.CONSENT
    other = ConsentRegistryClient.connect(
        w3=client.w3, address=client.address, artifact=registry_artifact, operator=operator
    )
    other.deactivate_provider(provider.address)
    assert gate.basis(account, provider.address, "Observation", "TREAT") is AccessBasis.NONE


def test_consent_expiring_inside_the_span_is_not_cached(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    now = [float(client.chain_time())]
    expires_at = int(now[0]) + 10  # inside the 60 s the cache would otherwise cover
    _grant(client, patient, provider.address, expires_at)
    gate = _gate(client, audit, clock=lambda: now[0])
    account = _account(patient)
    assert gate.basis(account, provider.address, "Observation", "TREAT") is AccessBasis.CONSENT
    now[0] = float(expires_at)  # no block mined since: only the clock moved
    assert gate.basis(account, provider.address, "Observation", "TREAT") is AccessBasis.NONE


def test_cached_decision_is_not_used_past_its_span(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    now = [float(client.chain_time())]
    _grant(client, patient, provider.address, int(now[0]) + 3600)
    gate = _gate(client, audit, clock=lambda: now[0])
    calls = Counting(client, "access_basis_span")
    account = _account(patient)
    gate.basis(account, provider.address, "Observation", "TREAT")
    now[0] += 61
    gate.basis(account, provider.address, "Observation", "TREAT")
    assert calls.calls == 2


def test_async_read_is_decided_and_audited_like_the_sync_one(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    gate = _gate(client, audit)
    account = _account(patient)

    async def read() -> AccessBasis:
        decision = await gate.authorize_read_async(
            account=account,
            provider=provider.address,
            category="Observation",
            purpose="TREAT",
            record_id="r1",
            head=gate.watch_head(),
        )
        return decision.basis

    assert asyncio.run(read()) is AccessBasis.CONSENT
    _revoke(client, patient, provider.address)
    with pytest.raises(AccessDenied):
        asyncio.run(read())
    entries = audit.entries()
    assert [(e.event.outcome, e.event.reason) for e in entries] == [
        ("allowed", ""),
        ("denied", "no_consent"),
    ]
    assert audit.verify_chain() == 2


def test_readers_missing_the_cache_together_share_one_decision(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    """After a new block every reader misses at once: the ones deciding the same terms
    for the same block and second share one pair of eth_calls."""
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    now = float(client.chain_time())
    gate = _gate(client, audit, clock=lambda: now)
    calls = Counting(client, "access_basis_span")
    account = _account(patient)
    assert _read_together(gate, account, provider.address, 8) == [AccessBasis.CONSENT] * 8
    assert calls.calls == 1
    _revoke(client, patient, provider.address)  # a new block: every reader misses again
    assert _read_together(gate, account, provider.address, 8) == [AccessBasis.NONE] * 8
    assert calls.calls == 2


def test_a_shared_decision_that_fails_fails_every_reader(
    client: ConsentRegistryClient,
    patient: Patient,
    provider: LocalAccount,
    audit: AuditLog,
    registry_artifact: Any,
) -> None:
    """The head answers but the decision's eth_calls cannot: every reader sharing that
    decision is refused, each with an exception of its own."""
    gate = ConsentGate(
        registry=_dead_client(client, registry_artifact),
        audit=audit,
        latest_block=client.latest_block,
        latest_block_async=client.latest_block_async,
        cache_seconds=60,
    )
    outcomes = _read_together(gate, _account(patient), provider.address, 4)
    assert all(isinstance(o, ChainUnavailable) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 4


def test_unreachable_chain_is_refused_and_audited(
    client: ConsentRegistryClient,
    patient: Patient,
    provider: LocalAccount,
    audit: AuditLog,
    registry_artifact: Any,
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    node = [client.latest_block]
    gate = ConsentGate(
        registry=client, audit=audit, latest_block=lambda: node[0](), cache_seconds=60
    )
    account = _account(patient)
    gate.basis(account, provider.address, "Observation", "TREAT")  # cached for this block
    # The node stops answering: the cache must not answer instead.
    node[0] = _dead_client(client, registry_artifact).latest_block
    with pytest.raises(ChainUnavailable):
        gate.authorize_read(
            account=account, provider=provider.address, category="Observation", purpose="TREAT"
        )
    assert [e.event.reason for e in audit.entries()] == ["chain_unavailable"]


def test_unreachable_chain_is_refused_and_audited_on_the_async_path(
    client: ConsentRegistryClient,
    patient: Patient,
    provider: LocalAccount,
    audit: AuditLog,
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    dead = AsyncJsonRpc(f"http://127.0.0.1:{_free_port()}")
    node = [client.latest_block_async]
    gate = ConsentGate(
        registry=client,
        audit=audit,
        latest_block=client.latest_block,
        latest_block_async=lambda: node[0](),
        cache_seconds=60,
    )
    account = _account(patient)

    async def read() -> AccessBasis:
        decision = await gate.authorize_read_async(
            account=account, provider=provider.address, category="Observation", purpose="TREAT"
        )
        return decision.basis

    assert asyncio.run(read()) is AccessBasis.CONSENT  # and cached for this block
    node[0] = lambda: dead.call("eth_getBlockByNumber", ["latest", False])  # type: ignore[assignment,return-value]
    with pytest.raises(ChainUnavailable):
        asyncio.run(read())
    assert [e.event.reason for e in audit.entries()] == ["", "chain_unavailable"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
