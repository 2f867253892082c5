"""Every custom error of the registry, raised by the real contract, decoded to its type."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import NamedTuple

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from vault import errors
from vault.chain import eip712
from vault.chain.codes import new_reason_salt, purpose_id, reason_hash, scope_id
from vault.chain.compiler import ContractArtifact
from vault.chain.operator import fund_on_anvil
from vault.chain.registry import ConsentRegistryClient
from vault.chain.reverts import RevertDecoder
from vault.errors import TransactionFailed

OBSERVATION = scope_id("Observation")
TREAT = purpose_id("TREAT")
ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20


class Patient(NamedTuple):
    patient_id: bytes
    key: LocalAccount


class Actors(NamedTuple):
    client: ConsentRegistryClient
    patient: Patient
    provider: LocalAccount


def new_key() -> LocalAccount:
    account: LocalAccount = Account.from_key(secrets.token_bytes(32))
    return account


def grant(a: Actors, **overrides: object) -> eip712.Signed[eip712.ConsentGrant]:
    terms: dict[str, object] = {
        "patient_id": a.patient.patient_id,
        "provider": a.provider.address,
        "scope": OBSERVATION,
        "purpose": TREAT,
        "expires_at": a.client.chain_time() + 3600,
    }
    terms.update(overrides)
    return a.client.sign_grant(a.patient.key, **terms)  # type: ignore[arg-type]


def _expired_signature(a: Actors) -> None:
    a.client.grant_consent(grant(a, ttl=-10))


def _wrong_signer(a: Actors) -> None:
    honest = grant(a)
    forged = eip712.sign(honest.message, a.client.domain, new_key())
    a.client.grant_consent(forged)


def _replayed(a: Actors) -> None:
    signed = grant(a)
    a.client.grant_consent(signed)
    a.client.grant_consent(signed)


def _zero_patient_id(a: Actors) -> None:
    a.client.register_patient(a.client.sign_registration(new_key(), patient_id=ZERO32))


def _unknown_patient(a: Actors) -> None:
    a.client.grant_consent(grant(a, patient_id=secrets.token_bytes(32)))


def _patient_exists(a: Actors) -> None:
    a.client.register_patient(
        a.client.sign_registration(new_key(), patient_id=a.patient.patient_id)
    )


def _zero_controller(a: Actors) -> None:
    message = eip712.PatientRegistration(secrets.token_bytes(32), ZERO_ADDRESS, 0, 2**40)
    a.client.register_patient(eip712.Signed(message, b"\x00" * 65))


def _controller_in_use(a: Actors) -> None:
    a.client.register_patient(
        a.client.sign_registration(a.patient.key, patient_id=secrets.token_bytes(32))
    )


def _zero_provider(a: Actors) -> None:
    a.client.register_provider(ZERO_ADDRESS)


def _provider_not_active(a: Actors) -> None:
    a.client.grant_consent(grant(a, provider=new_key().address))


def _provider_already_active(a: Actors) -> None:
    a.client.register_provider(a.provider.address)


def _zero_scope(a: Actors) -> None:
    a.client.grant_consent(grant(a, scope=ZERO32))


def _expiry_in_past(a: Actors) -> None:
    a.client.grant_consent(grant(a, expires_at=a.client.chain_time() - 1))


def _nothing_to_revoke(a: Actors) -> None:
    a.client.revoke_consent(
        a.client.sign_revocation(
            a.patient.key,
            patient_id=a.patient.patient_id,
            provider=a.provider.address,
            scope=OBSERVATION,
            purpose=TREAT,
        )
    )


def _emergency(a: Actors, *, reason: bytes, duration: int) -> None:
    a.client.grant_role("EMERGENCY_ROLE", a.provider.address)
    a.client.open_emergency_access(
        a.client.sign_emergency(
            a.provider,
            patient_id=a.patient.patient_id,
            scope=OBSERVATION,
            reason_hash=reason,
            duration=duration,
        )
    )


def _emergency_zero_duration(a: Actors) -> None:
    _emergency(a, reason=reason_hash("sepsis", new_reason_salt()), duration=0)


def _emergency_without_reason(a: Actors) -> None:
    _emergency(a, reason=ZERO32, duration=60)


def _emergency_without_role(a: Actors) -> None:
    a.client.open_emergency_access(
        a.client.sign_emergency(
            a.provider,
            patient_id=a.patient.patient_id,
            scope=OBSERVATION,
            reason_hash=reason_hash("sepsis", new_reason_salt()),
            duration=60,
        )
    )


def _anchor_gap(a: Actors) -> None:
    a.client.anchor(root=b"\x01" * 32, first_seq=5, last_seq=9)


def _anchor_zero_root(a: Actors) -> None:
    a.client.anchor(root=ZERO32, first_seq=1, last_seq=1)


def _unknown_sequence(a: Actors) -> None:
    a.client.anchor_covering(1)


CASES: list[tuple[Callable[[Actors], None], type[errors.VaultError], str]] = [
    (_expired_signature, errors.ConsentSignatureExpired, "ConsentRegistryExpiredSignature"),
    (_wrong_signer, errors.InvalidConsentSignature, "ConsentRegistryInvalidSignature"),
    (_replayed, errors.StaleConsentNonce, "InvalidAccountNonce"),
    (_zero_patient_id, errors.InvalidConsentTerms, "ConsentRegistryInvalidPatient"),
    (_unknown_patient, errors.UnknownPatient, "ConsentRegistryUnknownPatient"),
    (_patient_exists, errors.PatientAlreadyRegistered, "ConsentRegistryPatientExists"),
    (_zero_controller, errors.InvalidConsentTerms, "ConsentRegistryInvalidController"),
    (_controller_in_use, errors.ControllerKeyInUse, "ConsentRegistryControllerInUse"),
    (_zero_provider, errors.InvalidConsentTerms, "ConsentRegistryInvalidProvider"),
    (_provider_not_active, errors.ProviderNotActive, "ConsentRegistryProviderNotActive"),
    (
        _provider_already_active,
        errors.ProviderAlreadyActive,
        "ConsentRegistryProviderAlreadyActive",
    ),
    (_zero_scope, errors.InvalidConsentTerms, "ConsentRegistryInvalidTerms"),
    (_expiry_in_past, errors.InvalidConsentTerms, "ConsentRegistryInvalidExpiry"),
    (_nothing_to_revoke, errors.ConsentNotGranted, "ConsentRegistryConsentNotGranted"),
    (
        _emergency_zero_duration,
        errors.InvalidConsentTerms,
        "ConsentRegistryInvalidEmergencyDuration",
    ),
    (_emergency_without_reason, errors.InvalidConsentTerms, "ConsentRegistryMissingReason"),
    (_emergency_without_role, errors.ChainRoleMissing, "AccessControlUnauthorizedAccount"),
    (_anchor_gap, errors.AuditAnchorOutOfSequence, "ConsentRegistryAnchorNotContiguous"),
    (_anchor_zero_root, errors.InvalidConsentTerms, "ConsentRegistryInvalidAnchor"),
    (_unknown_sequence, errors.UnknownAuditSequence, "ConsentRegistryUnknownSequence"),
]


@pytest.fixture
def actors(
    client: ConsentRegistryClient, patient: tuple[bytes, LocalAccount], provider: LocalAccount
) -> Actors:
    return Actors(client, Patient(*patient), provider)


@pytest.mark.parametrize(
    ("action", "expected", "solidity_name"),
    CASES,
    ids=[action.__name__.lstrip("_") for action, _, _ in CASES],
)
def test_custom_error_decodes_to_vault_type(
    actors: Actors,
    action: Callable[[Actors], None],
    expected: type[errors.VaultError],
    solidity_name: str,
) -> None:
    with pytest.raises(expected) as caught:
        action(actors)
    assert caught.value.details["error"] == solidity_name
    assert type(caught.value) is expected
    assert isinstance(caught.value, errors.ConsentRejected)


def test_every_contract_error_has_a_mapping(registry_artifact: ContractArtifact) -> None:
    from vault.chain.reverts import ERROR_CLASSES

    custom = {
        item["name"]
        for item in registry_artifact.abi
        if item["type"] == "error" and item["name"].startswith("ConsentRegistry")
    }
    assert custom <= set(ERROR_CLASSES)
    assert custom | {"InvalidAccountNonce", "AccessControlUnauthorizedAccount"} >= set(
        ERROR_CLASSES
    )


def test_missing_operator_role_is_decoded(
    w3: Web3, client: ConsentRegistryClient, registry_artifact: ContractArtifact
) -> None:
    outsider = new_key()
    fund_on_anvil(w3, outsider.address)
    as_outsider = ConsentRegistryClient.connect(
        w3=w3, address=client.address, artifact=registry_artifact, operator=outsider
    )
    with pytest.raises(errors.ChainRoleMissing) as caught:
        as_outsider.register_provider(new_key().address)
    assert caught.value.details["args"]["account"] == outsider.address
    operator_role = Web3.keccak(text="OPERATOR_ROLE").hex().removeprefix("0x")
    assert caught.value.details["args"]["neededRole"] == "0x" + operator_role


def test_error_details_carry_arguments(actors: Actors) -> None:
    signed = grant(actors)
    actors.client.grant_consent(signed)
    with pytest.raises(errors.StaleConsentNonce) as caught:
        actors.client.grant_consent(signed)
    args = caught.value.details["args"]
    assert args["account"] == actors.patient.key.address
    assert args["currentNonce"] == 2


def test_unknown_revert_data_is_a_transaction_failure(registry_artifact: ContractArtifact) -> None:
    decoder = RevertDecoder(registry_artifact.abi)
    assert decoder.decode("0xdeadbeef") is None
    assert decoder.decode(None) is None
    assert decoder.decode("0x") is None
    failure = decoder.exception("0xdeadbeef", context="test")
    assert type(failure) is TransactionFailed
    assert failure.details["revert_data"] == "0xdeadbeef"
    # A known selector with truncated arguments is not trusted either.
    selector = Web3.keccak(text="ConsentRegistryUnknownPatient(bytes32)")[:4]
    assert decoder.decode(bytes(selector) + b"\x01") is None
