"""The typed registry client against the real contract on the session's Anvil node."""

from __future__ import annotations

import secrets
from typing import NamedTuple

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from vault.audit.log import AuditEvent, AuditLog
from vault.chain import eip712
from vault.chain.codes import ALL_SCOPES, new_reason_salt, purpose_id, reason_hash, scope_id
from vault.chain.compiler import ContractArtifact
from vault.chain.registry import (
    AccessBasis,
    ConsentRegistryClient,
    ProviderStatus,
)
from vault.chain.rpc import connect
from vault.errors import ChainUnavailable, ContractMissing, InvalidInput

OBSERVATION = scope_id("Observation")
CONDITION = scope_id("Condition")
TREAT = purpose_id("TREAT")
HRESCH = purpose_id("HRESCH")


class Patient(NamedTuple):  # the same shape as the conftest fixture's value
    patient_id: bytes
    key: LocalAccount


def new_key() -> LocalAccount:
    account: LocalAccount = Account.from_key(secrets.token_bytes(32))
    return account


def new_patient_id() -> bytes:
    return secrets.token_bytes(32)


def _later(client: ConsentRegistryClient, seconds: int) -> int:
    return client.chain_time() + seconds


def _grant(
    client: ConsentRegistryClient,
    patient: Patient,
    provider: str,
    *,
    scope: bytes = OBSERVATION,
    purpose: bytes = TREAT,
    expires_at: int | None = None,
) -> None:
    signed = client.sign_grant(
        patient.key,
        patient_id=patient.patient_id,
        provider=provider,
        scope=scope,
        purpose=purpose,
        expires_at=expires_at if expires_at is not None else _later(client, 3600),
    )
    client.grant_consent(signed)


# --------------------------------------------------------------- EIP-712 agreement


@pytest.mark.parametrize(
    ("message_type", "constant"),
    [
        (eip712.PatientRegistration, "REGISTER_PATIENT_TYPEHASH"),
        (eip712.ControllerRotation, "ROTATE_CONTROLLER_TYPEHASH"),
        (eip712.ConsentGrant, "GRANT_CONSENT_TYPEHASH"),
        (eip712.ConsentRevocation, "REVOKE_CONSENT_TYPEHASH"),
        (eip712.EmergencyAccessRequest, "EMERGENCY_ACCESS_TYPEHASH"),
    ],
)
def test_type_hashes_match_contract(
    client: ConsentRegistryClient, message_type: type, constant: str
) -> None:
    assert eip712.type_hash(message_type) == client.contract.functions[constant]().call()


def test_domain_separator_matches_contract(client: ConsentRegistryClient) -> None:
    message = eip712.ConsentGrant(b"\x01" * 32, client.address, OBSERVATION, TREAT, 1, 0, 1)
    encoded = encode_typed_data(full_message=message.typed_data(client.domain))
    assert encoded.header == client.contract.functions.domainSeparator().call()


def test_signature_recovers_to_signer(client: ConsentRegistryClient) -> None:
    key = new_key()
    signed = client.sign_registration(key, patient_id=new_patient_id())
    typed = encode_typed_data(full_message=signed.message.typed_data(client.domain))
    assert Account.recover_message(typed, signature=signed.signature) == key.address


# ---------------------------------------------------------------------- patients


def test_register_patient(client: ConsentRegistryClient, patient: Patient) -> None:
    assert client.controller_of(patient.patient_id) == patient.key.address
    assert client.patient_of(patient.key.address) == patient.patient_id
    assert client.nonce_of(patient.key.address) == 1
    assert client.controller_of(new_patient_id()) is None


def test_rotation_keeps_consents_and_retires_old_key(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount
) -> None:
    _grant(client, patient, provider.address)
    new = new_key()
    client.rotate_controller(
        client.sign_rotation(patient_id=patient.patient_id, current=patient.key, new=new)
    )
    assert client.controller_of(patient.patient_id) == new.address
    assert client.patient_of(patient.key.address) is None
    assert client.is_allowed(patient.patient_id, provider.address, OBSERVATION, TREAT)
    rotated = Patient(patient.patient_id, new)
    client.revoke_consent(
        client.sign_revocation(
            rotated.key,
            patient_id=patient.patient_id,
            provider=provider.address,
            scope=OBSERVATION,
            purpose=TREAT,
        )
    )
    assert not client.is_allowed(patient.patient_id, provider.address, OBSERVATION, TREAT)


# ---------------------------------------------------------------------- providers


def test_provider_lifecycle(client: ConsentRegistryClient) -> None:
    account = new_key()
    assert client.provider_status(account.address) is ProviderStatus.NONE
    client.register_provider(account.address)
    assert client.provider_status(account.address) is ProviderStatus.ACTIVE
    client.deactivate_provider(account.address)
    assert client.provider_status(account.address) is ProviderStatus.INACTIVE


# ----------------------------------------------------------------------- consent


def test_grant_then_is_allowed(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount
) -> None:
    expires_at = _later(client, 3600)
    _grant(client, patient, provider.address, expires_at=expires_at)
    assert client.is_allowed(patient.patient_id, provider.address, OBSERVATION, TREAT)
    assert client.access_basis(patient.patient_id, provider.address, OBSERVATION, TREAT) is (
        AccessBasis.CONSENT
    )
    assert not client.is_allowed(patient.patient_id, provider.address, OBSERVATION, HRESCH)
    assert not client.is_allowed(patient.patient_id, provider.address, CONDITION, TREAT)
    state = client.consent(patient.patient_id, provider.address, OBSERVATION, TREAT)
    assert state.expires_at == expires_at
    assert state.revoked_at == 0
    assert state.stands_at(expires_at - 1)
    assert not state.stands_at(expires_at)


def test_all_scopes_grant(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount
) -> None:
    _grant(client, patient, provider.address, scope=ALL_SCOPES)
    assert client.is_allowed(patient.patient_id, provider.address, CONDITION, TREAT)


def test_revoke_is_enforced_from_the_next_call(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount
) -> None:
    _grant(client, patient, provider.address)
    signed = client.sign_revocation(
        patient.key,
        patient_id=patient.patient_id,
        provider=provider.address,
        scope=OBSERVATION,
        purpose=TREAT,
    )
    client.revoke_consent(signed)
    assert not client.is_allowed(patient.patient_id, provider.address, OBSERVATION, TREAT)
    assert client.consent(patient.patient_id, provider.address, OBSERVATION, TREAT).revoked_at


def test_expiry_is_judged_by_the_vault_clock_on_an_idle_chain(
    w3: Web3,
    registry_artifact: ContractArtifact,
    client: ConsentRegistryClient,
    patient: Patient,
    provider: LocalAccount,
) -> None:
    expires_at = _later(client, 600)
    _grant(client, patient, provider.address, expires_at=expires_at)
    # No block is mined after the grant; a vault clock past the expiry must still deny.
    late = ConsentRegistryClient(
        w3=w3,
        address=client.address,
        abi=registry_artifact.abi,
        chain_id=client.domain.chain_id,
        clock=lambda: float(expires_at),
    )
    assert client.is_allowed(patient.patient_id, provider.address, OBSERVATION, TREAT)
    assert not late.is_allowed(patient.patient_id, provider.address, OBSERVATION, TREAT)


def test_a_span_is_read_at_the_block_it_names(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount
) -> None:
    """Both eth_calls of a span are pinned to one block by hash (EIP-1898): the block
    before a grant still says no, the grant's block says yes at both ends of the span,
    a consent expiring inside the span differs at its ends, and a block the node does not
    have is refused, never read as allowed."""
    before = client.latest_block()
    expires_at = _later(client, 600)
    _grant(client, patient, provider.address, expires_at=expires_at)
    after = client.latest_block()
    assert after.number == before.number + 1 and after.hash != before.hash
    terms = (patient.patient_id, provider.address, OBSERVATION, TREAT)
    start = after.timestamp
    assert client.access_basis_span(
        *terms, block_hash=before.hash, start=start, end=start + 60
    ) == (AccessBasis.NONE, AccessBasis.NONE)
    assert client.access_basis_span(*terms, block_hash=after.hash, start=start, end=start + 60) == (
        AccessBasis.CONSENT,
        AccessBasis.CONSENT,
    )
    assert client.access_basis_span(*terms, block_hash=after.hash, start=start, end=expires_at) == (
        AccessBasis.CONSENT,
        AccessBasis.NONE,
    )
    with pytest.raises(ChainUnavailable):
        client.access_basis_span(*terms, block_hash="0x" + "ab" * 32, start=start, end=start)


def test_deactivated_provider_is_denied(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount
) -> None:
    _grant(client, patient, provider.address)
    client.deactivate_provider(provider.address)
    assert not client.is_allowed(patient.patient_id, provider.address, OBSERVATION, TREAT)


# --------------------------------------------------------------------- emergency


def test_emergency_access_by_provider_signature(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount
) -> None:
    client.grant_role("EMERGENCY_ROLE", provider.address)
    assert client.has_role("EMERGENCY_ROLE", provider.address)
    reason = reason_hash("unconscious on arrival", new_reason_salt())
    signed = client.sign_emergency(
        provider, patient_id=patient.patient_id, scope=ALL_SCOPES, reason_hash=reason, duration=900
    )
    client.open_emergency_access(signed)
    basis = client.access_basis(patient.patient_id, provider.address, CONDITION, HRESCH)
    assert basis is AccessBasis.EMERGENCY
    until = client.emergency_access_until(patient.patient_id, provider.address, ALL_SCOPES)
    assert until >= client.chain_time() + 899
    client.revoke_role("EMERGENCY_ROLE", provider.address)
    assert not client.is_allowed(patient.patient_id, provider.address, CONDITION, HRESCH)


# ------------------------------------------------------------------------- audit


def test_anchor_implements_the_audit_sink(client: ConsentRegistryClient) -> None:
    assert client.next_audit_sequence() == 1
    tx_hash, block = client.anchor(root=b"\xaa" * 32, first_seq=1, last_seq=4)
    client.anchor(root=b"\xbb" * 32, first_seq=5, last_seq=5)
    assert tx_hash.startswith("0x")
    assert block > 0
    assert client.anchor_count() == 2
    assert client.next_audit_sequence() == 6
    first = client.anchor_covering(3)
    assert (first.index, first.root, first.first_seq, first.last_seq) == (0, b"\xaa" * 32, 1, 4)
    assert client.anchor_covering(5).root == b"\xbb" * 32


def test_audit_log_anchors_through_the_client(
    client: ConsentRegistryClient, session_factory: sessionmaker[Session]
) -> None:
    log = AuditLog(session_factory=session_factory)
    for n in range(3):
        log.append(
            AuditEvent("p1", "0xprovider", "read", "allowed", "Observation", "TREAT", f"r{n}")
        )
    first = log.anchor(client)
    log.append(AuditEvent("p1", "0xprovider", "read", "denied", "Observation", "TREAT", "r3"))
    second = log.anchor(client)
    assert first is not None and second is not None
    assert (first.first_seq, first.last_seq, second.first_seq, second.last_seq) == (1, 3, 4, 4)
    on_chain = [client.anchor_at(i) for i in range(client.anchor_count())]
    assert [(a.root, a.first_seq, a.last_seq) for a in on_chain] == [
        (first.root, 1, 3),
        (second.root, 4, 4),
    ]


# ------------------------------------------------------------------------ history


def test_history_lists_every_change_for_a_patient(
    client: ConsentRegistryClient, patient: Patient, provider: LocalAccount
) -> None:
    client.grant_role("EMERGENCY_ROLE", provider.address)
    _grant(client, patient, provider.address)
    client.revoke_consent(
        client.sign_revocation(
            patient.key,
            patient_id=patient.patient_id,
            provider=provider.address,
            scope=OBSERVATION,
            purpose=TREAT,
        )
    )
    reason = reason_hash("trauma bay", new_reason_salt())
    client.open_emergency_access(
        client.sign_emergency(
            provider,
            patient_id=patient.patient_id,
            scope=OBSERVATION,
            reason_hash=reason,
            duration=60,
        )
    )
    new = new_key()
    client.rotate_controller(
        client.sign_rotation(patient_id=patient.patient_id, current=patient.key, new=new)
    )
    other = Patient(new_patient_id(), new_key())
    client.register_patient(client.sign_registration(other.key, patient_id=other.patient_id))

    events = client.history(patient_id=patient.patient_id)
    assert [e.kind for e in events] == [
        "patient_registered",
        "consent_granted",
        "consent_revoked",
        "emergency_access_opened",
        "controller_rotated",
    ]
    granted, revoked, emergency = events[1], events[2], events[3]
    assert granted.provider == provider.address
    assert granted.scope == OBSERVATION
    assert granted.purpose == TREAT
    assert granted.expires_at is not None
    assert revoked.purpose == TREAT
    assert emergency.reason_hash == reason
    assert events[4].previous_controller == patient.key.address
    assert events[4].controller == new.address
    assert all(e.block_timestamp > 0 for e in events)

    by_provider = client.history(provider=provider.address)
    assert [e.kind for e in by_provider] == [
        "consent_granted",
        "consent_revoked",
        "emergency_access_opened",
    ]


def test_history_needs_a_filter(client: ConsentRegistryClient) -> None:
    with pytest.raises(InvalidInput):
        client.history()


# ------------------------------------------------------------------- fail closed


def test_read_only_client_cannot_write(
    w3: Web3, client: ConsentRegistryClient, registry_artifact: ContractArtifact
) -> None:
    reader = ConsentRegistryClient.connect(
        w3=w3, address=client.address, artifact=registry_artifact
    )
    with pytest.raises(ChainUnavailable):
        reader.register_provider(new_key().address)


def test_missing_contract_fails_closed(w3: Web3, registry_artifact: ContractArtifact) -> None:
    empty = ConsentRegistryClient.connect(
        w3=w3, address="0x" + "11" * 20, artifact=registry_artifact
    )
    with pytest.raises(ContractMissing):
        empty.is_allowed(new_patient_id(), new_key().address, OBSERVATION, TREAT)
    with pytest.raises(ContractMissing):
        empty.controller_of(new_patient_id())


def test_unreachable_node_fails_closed(
    client: ConsentRegistryClient, registry_artifact: ContractArtifact
) -> None:
    dead = ConsentRegistryClient(
        w3=connect("http://127.0.0.1:1", timeout=0.5),
        address=client.address,
        abi=registry_artifact.abi,
        chain_id=client.domain.chain_id,
    )
    with pytest.raises(ChainUnavailable):
        dead.is_allowed(new_patient_id(), new_key().address, OBSERVATION, TREAT)
    with pytest.raises(ChainUnavailable):
        dead.provider_status(new_key().address)


def test_bad_input_is_refused_before_the_chain(client: ConsentRegistryClient) -> None:
    with pytest.raises(InvalidInput):
        client.is_allowed(b"short", new_key().address, OBSERVATION, TREAT)
    with pytest.raises(InvalidInput):
        client.is_allowed(new_patient_id(), "not-an-address", OBSERVATION, TREAT)
    with pytest.raises(InvalidInput):
        scope_id("observation; drop")
    with pytest.raises(InvalidInput):
        purpose_id("PLEASE")
