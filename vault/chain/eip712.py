"""EIP-712 messages of the consent registry, built and signed with eth_account.

The type strings here must match the contract's ``*_TYPEHASH`` constants byte for byte;
the integration tests compare them. A message is a frozen dataclass; :func:`sign` turns it
into a :class:`Signed` message bound to one chain id and one registry address (the
EIP-712 domain), so a signature cannot be replayed on another chain or contract.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, TypeVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

DOMAIN_NAME = "ConsentRegistry"
DOMAIN_VERSION = "1"

_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


@dataclass(frozen=True)
class RegistryDomain:
    """The EIP-712 domain: one registry on one chain."""

    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": Web3.to_checksum_address(self.verifying_contract),
        }


class _Message:
    """Base of the typed messages: ``PRIMARY_TYPE`` plus ``(field, solidity type)`` pairs.

    Dataclass field order is the EIP-712 member order.
    """

    PRIMARY_TYPE: ClassVar[str]
    SOLIDITY_TYPES: ClassVar[dict[str, str]]

    @classmethod
    def type_string(cls) -> str:
        members = ",".join(f"{t} {_camel(n)}" for n, t in cls.SOLIDITY_TYPES.items())
        return f"{cls.PRIMARY_TYPE}({members})"

    def message_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if self.SOLIDITY_TYPES[f.name] == "address":
                value = Web3.to_checksum_address(value)
            data[_camel(f.name)] = value
        return data

    def typed_data(self, domain: RegistryDomain) -> dict[str, Any]:
        """The full EIP-712 structure for ``Account.sign_typed_data(full_message=...)``."""
        return {
            "types": {
                "EIP712Domain": _DOMAIN_FIELDS,
                self.PRIMARY_TYPE: [
                    {"name": _camel(n), "type": t} for n, t in self.SOLIDITY_TYPES.items()
                ],
            },
            "primaryType": self.PRIMARY_TYPE,
            "domain": domain.as_dict(),
            "message": self.message_data(),
        }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class PatientRegistration(_Message):
    """Signed by the patient's first controller key, proving possession."""

    PRIMARY_TYPE: ClassVar[str] = "RegisterPatient"
    SOLIDITY_TYPES: ClassVar[dict[str, str]] = {
        "patient_id": "bytes32",
        "controller": "address",
        "nonce": "uint256",
        "deadline": "uint256",
    }
    patient_id: bytes
    controller: str
    nonce: int
    deadline: int


@dataclass(frozen=True)
class ControllerRotation(_Message):
    """Signed by both the current and the new controller key (nonce of the current one)."""

    PRIMARY_TYPE: ClassVar[str] = "RotateController"
    SOLIDITY_TYPES: ClassVar[dict[str, str]] = {
        "patient_id": "bytes32",
        "new_controller": "address",
        "nonce": "uint256",
        "deadline": "uint256",
    }
    patient_id: bytes
    new_controller: str
    nonce: int
    deadline: int


@dataclass(frozen=True)
class ConsentGrant(_Message):
    """A patient's consent for one provider, scope and purpose until ``expires_at`` (unix s)."""

    PRIMARY_TYPE: ClassVar[str] = "GrantConsent"
    SOLIDITY_TYPES: ClassVar[dict[str, str]] = {
        "patient_id": "bytes32",
        "provider": "address",
        "scope": "bytes32",
        "purpose": "bytes32",
        "expires_at": "uint64",
        "nonce": "uint256",
        "deadline": "uint256",
    }
    patient_id: bytes
    provider: str
    scope: bytes
    purpose: bytes
    expires_at: int
    nonce: int
    deadline: int


@dataclass(frozen=True)
class ConsentRevocation(_Message):
    """A patient's revocation of the consent with these exact terms."""

    PRIMARY_TYPE: ClassVar[str] = "RevokeConsent"
    SOLIDITY_TYPES: ClassVar[dict[str, str]] = {
        "patient_id": "bytes32",
        "provider": "address",
        "scope": "bytes32",
        "purpose": "bytes32",
        "nonce": "uint256",
        "deadline": "uint256",
    }
    patient_id: bytes
    provider: str
    scope: bytes
    purpose: bytes
    nonce: int
    deadline: int


@dataclass(frozen=True)
class EmergencyAccessRequest(_Message):
    """A provider's break-glass request, signed by the provider's own key."""

    PRIMARY_TYPE: ClassVar[str] = "EmergencyAccess"
    SOLIDITY_TYPES: ClassVar[dict[str, str]] = {
        "patient_id": "bytes32",
        "provider": "address",
        "scope": "bytes32",
        "reason_hash": "bytes32",
        "duration": "uint64",
        "nonce": "uint256",
        "deadline": "uint256",
    }
    patient_id: bytes
    provider: str
    scope: bytes
    reason_hash: bytes
    duration: int
    nonce: int
    deadline: int


M = TypeVar("M", bound=_Message)


@dataclass(frozen=True)
class Signed(Generic[M]):
    """A message with its 65-byte ``r || s || v`` signature (v in {27, 28}, low s)."""

    message: M
    signature: bytes


@dataclass(frozen=True)
class SignedRotation:
    """A rotation signed by the current key and by the new key."""

    message: ControllerRotation
    current_signature: bytes
    new_signature: bytes


def sign(message: M, domain: RegistryDomain, signer: LocalAccount) -> Signed[M]:
    """Sign ``message`` for ``domain`` with ``signer``'s key (never leaves this process)."""
    signed = Account.sign_typed_data(signer.key, full_message=message.typed_data(domain))
    return Signed(message=message, signature=bytes(signed.signature))


def sign_rotation(
    message: ControllerRotation,
    domain: RegistryDomain,
    *,
    current: LocalAccount,
    new: LocalAccount,
) -> SignedRotation:
    """Both signatures of a controller rotation."""
    if Web3.to_checksum_address(new.address) != Web3.to_checksum_address(message.new_controller):
        raise ValueError("the new key must be the rotation's new_controller")
    return SignedRotation(
        message=message,
        current_signature=sign(message, domain, current).signature,
        new_signature=sign(message, domain, new).signature,
    )


def type_hash(message_type: type[_Message]) -> bytes:
    """``keccak256`` of the type string, as the contract's ``*_TYPEHASH`` constant."""
    return bytes(Web3.keccak(text=message_type.type_string()))
