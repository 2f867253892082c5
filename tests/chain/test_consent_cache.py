"""The consent gate against the real contract on Anvil, audited to each database backend.

What must hold: a decision is reused only while the chain's head is the block it was
made for and the clock is inside the span the chain vouched for; any new block (a
revoke, a deactivation, by this client or any other) drops it before the next read.
Every decision (allowed, denied, unavailable) is in the audit log before the gate
returns, and a log that cannot be written refuses the read.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from vault.access.accounts import PatientAccount
from vault.access.gate import ConsentGate
from vault.audit.log import AuditLog
from vault.chain.codes import ALL_SCOPES, purpose_id, scope_id
from vault.chain.compiler import ContractArtifact
from vault.chain.jsonrpc import JsonRpcClient
from vault.chain.registry import AccessBasis, ConsentRegistryClient
from vault.errors import AccessDenied, ChainUnavailable, ContractMissing, DatabaseUnavailable


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
def audit(session_factory: sessionmaker[Session]) -> AuditLog:
    return AuditLog(session_factory=session_factory)


def _gate(
    client: ConsentRegistryClient,
    audit: AuditLog,
    *,
    clock: Callable[[], float] | None = None,
    cache_seconds: int = 60,
) -> ConsentGate:
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return ConsentGate(registry=client, audit=audit, cache_seconds=cache_seconds, **kwargs)


def _account(patient: Patient) -> PatientAccount:
    return PatientAccount("pat_test", "rec_test", patient.patient_id, patient.key.address)


async def _reading(gate: ConsentGate, patient: Patient, provider: str) -> AccessBasis:
    decision = await gate.authorize_read(
        account=_account(patient),
        provider=provider,
        category="Observation",
        purpose="TREAT",
        record_id="r1",
    )
    return decision.basis


def _read(gate: ConsentGate, patient: Patient, provider: str) -> AccessBasis:
    """One read of an Observation: its basis, or the refusal raised."""
    return asyncio.run(_reading(gate, patient, provider))


def _read_or_denied(gate: ConsentGate, patient: Patient, provider: str) -> AccessBasis:
    try:
        return _read(gate, patient, provider)
    except AccessDenied:
        return AccessBasis.NONE


def _read_together(
    gate: ConsentGate, patient: Patient, provider: str, readers: int
) -> list[AccessBasis | type[BaseException]]:
    """``readers`` coroutines reading at once: each one's basis, or the type it raised."""

    async def together() -> list[AccessBasis | BaseException]:
        reads = (_reading(gate, patient, provider) for _ in range(readers))
        return list(await asyncio.gather(*reads, return_exceptions=True))

    return [o if isinstance(o, AccessBasis) else type(o) for o in asyncio.run(together())]


def _list(gate: ConsentGate, patient: Patient, provider: str, categories: Any) -> frozenset[str]:
    return asyncio.run(
        gate.authorize_list(
            account=_account(patient), provider=provider, categories=categories, purpose="TREAT"
        )
    )


def _grant(
    client: ConsentRegistryClient,
    patient: Patient,
    provider: str,
    expires_at: int,
    scope: bytes = OBSERVATION,
) -> None:
    client.grant_consent(
        client.sign_grant(
            patient.key,
            patient_id=patient.patient_id,
            provider=provider,
            scope=scope,
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dead_rpc() -> JsonRpcClient:
    """A JSON-RPC endpoint where nothing answers."""
    return JsonRpcClient(f"http://127.0.0.1:{_free_port()}")


def _outcomes(audit: AuditLog) -> list[tuple[str, str, str, str]]:
    return [
        (e.event.action, e.event.outcome, e.event.reason, e.event.scope) for e in audit.entries()
    ]


# ------------------------------------------------------------------ the cache


def test_decision_is_reused_within_one_block(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    calls = Counting(client, "access_basis_span")
    heads = Counting(client, "latest_block")
    gate = _gate(client, audit)
    for _ in range(5):
        assert _read(gate, patient, provider.address) is AccessBasis.CONSENT
    assert calls.calls == 1  # one pair of eth_calls, then the cache
    assert heads.calls == 5  # but the head is asked on every read
    assert len(audit.entries()) == 5  # and every read is audited, cached or not


def test_revoke_is_enforced_on_the_next_read(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    gate = _gate(client, audit)
    assert _read(gate, patient, provider.address) is AccessBasis.CONSENT
    _revoke(client, patient, provider.address)
    with pytest.raises(AccessDenied):
        _read(gate, patient, provider.address)
    assert _outcomes(audit) == [
        ("read", "allowed", "", "Observation"),
        ("read", "denied", "no_consent", "Observation"),
    ]
    assert audit.verify_chain() == 2


def test_readers_together_share_a_head_and_see_a_revoke_together(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    """Readers arriving together share one head fetch; none of them, before or after the
    revoke's receipt, is answered from a block older than its arrival."""
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    heads = Counting(client, "latest_block")
    gate = _gate(client, audit)
    assert _read_together(gate, patient, provider.address, 16) == [AccessBasis.CONSENT] * 16
    assert heads.calls == 1
    _revoke(client, patient, provider.address)
    assert _read_together(gate, patient, provider.address, 16) == [AccessDenied] * 16
    assert audit.verify_chain() == 32


def test_change_made_by_another_client_is_seen(
    client: ConsentRegistryClient,
    patient: Patient,
    provider: LocalAccount,
    audit: AuditLog,
    registry_artifact: ContractArtifact,
    operator: LocalAccount,
) -> None:
    """Another API process (or the operator's CLI) deactivates the provider."""
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    gate = _gate(client, audit)
    assert _read(gate, patient, provider.address) is AccessBasis.CONSENT
    other = ConsentRegistryClient.connect(
        w3=client.w3, address=client.address, artifact=registry_artifact, operator=operator
    )
    other.deactivate_provider(provider.address)
    assert _read_or_denied(gate, patient, provider.address) is AccessBasis.NONE


def test_consent_expiring_inside_the_span_is_not_cached(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    now = [float(client.chain_time())]
    expires_at = int(now[0]) + 10  # inside the 60 s the cache would otherwise cover
    _grant(client, patient, provider.address, expires_at)
    gate = _gate(client, audit, clock=lambda: now[0])
    assert _read(gate, patient, provider.address) is AccessBasis.CONSENT
    now[0] = float(expires_at)  # no block mined since: only the clock moved
    assert _read_or_denied(gate, patient, provider.address) is AccessBasis.NONE


def test_cached_decision_is_not_used_past_its_span(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    now = [float(client.chain_time())]
    _grant(client, patient, provider.address, int(now[0]) + 3600)
    gate = _gate(client, audit, clock=lambda: now[0])
    calls = Counting(client, "access_basis_span")
    _read(gate, patient, provider.address)
    now[0] += 61
    _read(gate, patient, provider.address)
    assert calls.calls == 2


def test_without_a_cache_each_read_asks_the_chain_at_latest(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    calls = Counting(client, "access_basis")
    gate = _gate(client, audit, cache_seconds=0)
    assert _read_or_denied(gate, patient, provider.address) is AccessBasis.NONE
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    assert _read(gate, patient, provider.address) is AccessBasis.CONSENT
    assert calls.calls == 2


# ------------------------------------------------------------------ listings


def test_a_listing_is_decided_per_category_and_audited_once(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    gate = _gate(client, audit)
    allowed = _list(gate, patient, provider.address, {"Observation", "Condition", "Binary"})
    assert allowed == {"Observation"}
    with pytest.raises(AccessDenied):
        _list(gate, patient, provider.address, {"Condition"})
    with pytest.raises(AccessDenied):  # a patient with nothing to list: nothing allowed
        _list(gate, patient, provider.address, ())
    assert _outcomes(audit) == [
        ("list", "allowed", "", "Observation"),
        ("list", "denied", "no_consent", "Condition"),
        ("list", "denied", "no_consent", ""),
    ]


def test_a_listing_takes_every_category_at_one_head(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600, scope=ALL_SCOPES)
    heads = Counting(client, "latest_block")
    gate = _gate(client, audit)
    both = _list(gate, patient, provider.address, {"Observation", "Condition"})
    assert both == {"Observation", "Condition"}
    assert heads.calls == 1


# ------------------------------------------------------------------ fail closed


def test_unreachable_chain_is_refused_and_audited_even_with_a_cached_yes(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount, audit: AuditLog
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    gate = _gate(client, audit)
    assert _read(gate, patient, provider.address) is AccessBasis.CONSENT  # cached now
    client._rpc = _dead_rpc()  # the node stops answering: the cache must not answer instead
    with pytest.raises(ChainUnavailable):
        _read(gate, patient, provider.address)
    with pytest.raises(ChainUnavailable):
        _list(gate, patient, provider.address, {"Observation"})
    assert _outcomes(audit)[1:] == [
        ("read", "denied", "chain_unavailable", "Observation"),
        ("list", "denied", "chain_unavailable", "Observation"),
    ]


def test_a_decision_the_chain_cannot_give_is_refused_for_every_reader(
    client: ConsentRegistryClient,
    patient: Patient,
    provider: LocalAccount,
    audit: AuditLog,
    registry_artifact: ContractArtifact,
) -> None:
    """The head answers but the decision's eth_calls cannot: every reader is refused and
    audited."""
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    dead = ConsentRegistryClient(
        w3=client.w3, address=client.address, abi=registry_artifact.abi, chain_id=31337
    )
    dead._rpc = _dead_rpc()
    client.access_basis_span = dead.access_basis_span  # type: ignore[method-assign]
    gate = _gate(client, audit)
    assert _read_together(gate, patient, provider.address, 8) == [ChainUnavailable] * 8
    assert [reason for _, _, reason, _ in _outcomes(audit)] == ["chain_unavailable"] * 8


def test_an_address_without_the_registry_is_refused_and_audited(
    w3: Any, registry_artifact: ContractArtifact, patient: Patient, audit: AuditLog
) -> None:
    empty = ConsentRegistryClient.connect(
        w3=w3, address="0x" + "11" * 20, artifact=registry_artifact
    )
    for cache_seconds in (0, 60):
        with pytest.raises(ContractMissing):
            _read(_gate(empty, audit, cache_seconds=cache_seconds), patient, "0x" + "22" * 20)
    assert [reason for _, _, reason, _ in _outcomes(audit)] == ["contract_missing"] * 2


def test_an_audit_log_that_cannot_be_written_refuses_the_read(
    client: ConsentRegistryClient,
    patient: Patient,
    provider: LocalAccount,
    session_factory: sessionmaker[Session],
) -> None:
    _grant(client, patient, provider.address, client.chain_time() + 3600)
    audit = AuditLog(session_factory=session_factory)
    gate = _gate(client, audit)
    assert _read(gate, patient, provider.address) is AccessBasis.CONSENT
    with session_factory() as session, session.begin():
        session.execute(text("DROP TABLE audit_entries"))
    with pytest.raises(DatabaseUnavailable):  # the chain said yes; no entry, no read
        _read(gate, patient, provider.address)
