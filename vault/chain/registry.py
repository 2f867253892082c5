"""Typed client of the ConsentRegistry contract: views, signed messages, relayed writes.

Reads fail closed: a node that does not answer raises :class:`ChainUnavailable`, an
address without the contract raises :class:`ContractMissing`; neither ever reads as
"allowed". The consent gate's calls (:meth:`ConsentRegistryClient.latest_block`,
:meth:`~ConsentRegistryClient.access_basis`, :meth:`~ConsentRegistryClient.access_basis_span`)
are raw JSON-RPC through :class:`~vault.chain.jsonrpc.JsonRpcClient`, because the API makes
them on every provider read; everything else goes through web3.py.

Writes go through a :class:`~vault.chain.relayer.Relayer` (the operator pays gas); the
patient's key only signs EIP-712 messages, built here with the patient's current on-chain
nonce and a short deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from vault.chain import eip712
from vault.chain.compiler import ContractArtifact
from vault.chain.eip712 import (
    ConsentGrant,
    ConsentRevocation,
    ControllerRotation,
    EmergencyAccessRequest,
    PatientRegistration,
    RegistryDomain,
    Signed,
    SignedRotation,
)
from vault.chain.history import HistoryReader, RegistryEvent
from vault.chain.jsonrpc import JsonRpcClient
from vault.chain.nonce_guard import NonceGuard
from vault.chain.relayer import Relayer, TxOutcome
from vault.chain.reverts import RevertDecoder
from vault.errors import ChainUnavailable, ContractMissing, InvalidInput, VaultError

DEFAULT_SIGNATURE_TTL = 600  # seconds a signed message stays submittable
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = b"\x00" * 32

_ACCESS_BASIS_SELECTOR = function_signature_to_4byte_selector(
    "accessBasisAt(bytes32,address,bytes32,bytes32,uint64)"
)


class AccessBasis(IntEnum):
    """Why access stands: not at all, a patient-signed consent, or break-glass."""

    NONE = 0
    CONSENT = 1
    EMERGENCY = 2


class ProviderStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    INACTIVE = 2


@dataclass(frozen=True)
class ConsentState:
    """The on-chain record for one (patient, provider, scope, purpose); zeros if never granted."""

    granted_at: int
    expires_at: int
    revoked_at: int

    @property
    def ever_granted(self) -> bool:
        return self.granted_at != 0

    def stands_at(self, timestamp: int) -> bool:
        """Granted, not revoked, not expired at ``timestamp`` (provider status not included)."""
        return self.granted_at != 0 and self.revoked_at == 0 and self.expires_at > timestamp


@dataclass(frozen=True)
class BlockRef:
    """A block as the consent cache keys on it: the hash tells a reset chain from the old."""

    number: int
    hash: str
    timestamp: int


@dataclass(frozen=True)
class AuditAnchorRecord:
    index: int
    root: bytes
    first_seq: int
    last_seq: int
    anchored_at: int


class ConsentRegistryClient:
    """One deployed registry on one chain. Thread-safe if its relayer is (it is)."""

    def __init__(
        self,
        *,
        w3: Web3,
        address: str,
        abi: list[dict[str, Any]],
        chain_id: int,
        relayer: Relayer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.w3 = w3
        self.address = _checksum(address)
        self.contract = w3.eth.contract(address=self.address, abi=abi)
        self.domain = RegistryDomain(chain_id=chain_id, verifying_contract=self.address)
        self.decoder = RevertDecoder(abi)
        self.relayer = relayer
        self._clock = clock
        self._history = HistoryReader(w3=w3, contract=self.contract, abi=abi)
        endpoint = str(getattr(w3.provider, "endpoint_uri", ""))
        self._rpc = JsonRpcClient(endpoint)

    @classmethod
    def connect(
        cls,
        *,
        w3: Web3,
        address: str,
        artifact: ContractArtifact,
        operator: LocalAccount | None = None,
        chain_id: int | None = None,
        receipt_timeout: float = 60.0,
        nonce_guard: NonceGuard | None = None,
    ) -> ConsentRegistryClient:
        """A client for ``address``; with ``operator``, a relayer that sends as that account."""
        chain_id = chain_id if chain_id is not None else int(w3.eth.chain_id)
        decoder = RevertDecoder(artifact.abi)
        relayer = (
            Relayer(
                w3=w3,
                account=operator,
                decoder=decoder,
                chain_id=chain_id,
                receipt_timeout=receipt_timeout,
                nonce_guard=nonce_guard,
            )
            if operator is not None
            else None
        )
        return cls(w3=w3, address=address, abi=artifact.abi, chain_id=chain_id, relayer=relayer)

    # ------------------------------------------------------------ the hot path

    def access_basis(
        self, patient_id: bytes, provider: str, scope: bytes, purpose: bytes
    ) -> AccessBasis:
        """On what basis ``provider`` may read ``scope`` of the patient for ``purpose`` now.

        One ``eth_call`` at ``latest``, no caching: a revoke mined in block N is honored by
        the first call after its receipt. Expiry and emergency windows are judged at the
        later of the block's time and this process's clock (``accessBasisAt``), because an
        idle chain (Anvil mines only on demand) would otherwise keep an expired consent
        alive until its next block. Raises ``ChainUnavailable`` / ``ContractMissing``.
        """
        call = self._access_basis_call(patient_id, provider, scope, purpose, int(self._clock()))
        return self._access_basis_of(self._rpc.call("eth_call", [call, "latest"]))

    def access_basis_span(
        self,
        patient_id: bytes,
        provider: str,
        scope: bytes,
        purpose: bytes,
        *,
        block_hash: str,
        start: int,
        end: int,
    ) -> tuple[AccessBasis, AccessBasis]:
        """The basis at times ``start`` and ``end`` (unix seconds), both in block ``block_hash``.

        One JSON-RPC batch of two ``eth_call``s pinned to the block by hash (EIP-1898), so
        both answers describe exactly that block's state. Within one state the contract's
        windows only close as time passes (every window opens in the transaction that
        creates it), so equal answers at ``start`` and ``end`` hold for every time between:
        what lets :class:`~vault.access.gate.ConsentGate` cache a decision per block.
        """
        block = {"blockHash": block_hash, "requireCanonical": True}
        replies = self._rpc.batch(
            [
                (
                    "eth_call",
                    [self._access_basis_call(patient_id, provider, scope, purpose, at), block],
                )
                for at in (start, end)
            ]
        )
        return self._access_basis_of(replies[0]), self._access_basis_of(replies[1])

    def latest_block(self) -> BlockRef:
        """Number, hash and time of the chain's latest block (one raw JSON-RPC call)."""
        return _block_ref(self._rpc.call("eth_getBlockByNumber", ["latest", False]))

    def _access_basis_call(
        self, patient_id: bytes, provider: str, scope: bytes, purpose: bytes, at: int
    ) -> dict[str, str]:
        data = _ACCESS_BASIS_SELECTOR + abi_encode(
            ["bytes32", "bytes32", "bytes32", "bytes32", "uint64"],
            [_b32(patient_id), _address_word(provider), _b32(scope), _b32(purpose), at],
        )
        return {"to": self.address, "data": "0x" + data.hex()}

    def _access_basis_of(self, reply: object) -> AccessBasis:
        result = reply.get("result") if isinstance(reply, dict) else None
        if not isinstance(result, str) or len(result) != 66:
            if isinstance(reply, dict) and "error" in reply:
                raise ChainUnavailable(
                    "the node refused the consent check", details={"error": str(reply["error"])}
                )
            raise ContractMissing(
                f"no consent registry answers at {self.address}", details={"address": self.address}
            )
        value = int(result, 16)
        if value not in (0, 1, 2):
            raise ContractMissing(f"the contract at {self.address} is not the consent registry")
        return AccessBasis(value)

    def is_allowed(self, patient_id: bytes, provider: str, scope: bytes, purpose: bytes) -> bool:
        """True iff access stands now on consent or emergency grounds. Fails closed (raises)."""
        return self.access_basis(patient_id, provider, scope, purpose) is not AccessBasis.NONE

    # ------------------------------------------------------------------- views

    def consent(
        self, patient_id: bytes, provider: str, scope: bytes, purpose: bytes
    ) -> ConsentState:
        """The consent record for these exact terms (all zeros if never granted)."""
        granted, expires, revoked = self._view(
            "consentOf", _b32(patient_id), _checksum(provider), _b32(scope), _b32(purpose)
        )
        return ConsentState(int(granted), int(expires), int(revoked))

    def emergency_access_until(self, patient_id: bytes, provider: str, scope: bytes) -> int:
        """End (unix seconds) of the last emergency window; 0 if none was ever opened."""
        return int(
            self._view("emergencyAccessUntil", _b32(patient_id), _checksum(provider), _b32(scope))
        )

    def controller_of(self, patient_id: bytes) -> str | None:
        controller = str(self._view("controllerOf", _b32(patient_id)))
        return None if int(controller, 16) == 0 else _checksum(controller)

    def patient_of(self, key_address: str) -> bytes | None:
        """The patient this key currently controls (None for unknown or rotated-away keys)."""
        patient_id = bytes(self._view("patientOf", _checksum(key_address)))
        return None if patient_id == ZERO_BYTES32 else patient_id

    def nonce_of(self, address: str) -> int:
        """The next EIP-712 nonce of a signing key (patient controller or provider)."""
        return int(self._view("nonces", _checksum(address)))

    def provider_status(self, provider: str) -> ProviderStatus:
        return ProviderStatus(int(self._view("providerStatus", _checksum(provider))))

    def has_role(self, role: str, account: str) -> bool:
        """``role`` is the constant's name: ``OPERATOR_ROLE``, ``EMERGENCY_ROLE``..."""
        return bool(self._view("hasRole", self._role(role), _checksum(account)))

    def next_audit_sequence(self) -> int:
        return int(self._view("nextAuditSequence"))

    def anchor_count(self) -> int:
        return int(self._view("anchorCount"))

    def anchor_at(self, index: int) -> AuditAnchorRecord:
        root, first, last, at = self._view("anchorAt", index)
        return AuditAnchorRecord(index, bytes(root), int(first), int(last), int(at))

    def anchor_covering(self, seq: int) -> AuditAnchorRecord:
        """The anchor whose range holds audit sequence ``seq`` (raises ``UnknownAuditSequence``)."""
        return self.anchor_at(int(self._view("anchorIndexOf", seq)))

    # ---------------------------------------------------------------- messages

    def chain_time(self) -> int:
        """Timestamp of the latest block."""
        return self.latest_block().timestamp

    def _deadline(self, ttl: int) -> int:
        # The contract compares deadlines with block time; take whichever clock is later.
        return max(int(self._clock()), self.chain_time()) + ttl

    def sign_registration(
        self, controller: LocalAccount, *, patient_id: bytes, ttl: int = DEFAULT_SIGNATURE_TTL
    ) -> Signed[PatientRegistration]:
        message = PatientRegistration(
            patient_id=_b32(patient_id),
            controller=controller.address,
            nonce=self.nonce_of(controller.address),
            deadline=self._deadline(ttl),
        )
        return eip712.sign(message, self.domain, controller)

    def sign_rotation(
        self,
        *,
        patient_id: bytes,
        current: LocalAccount,
        new: LocalAccount,
        ttl: int = DEFAULT_SIGNATURE_TTL,
    ) -> SignedRotation:
        message = ControllerRotation(
            patient_id=_b32(patient_id),
            new_controller=new.address,
            nonce=self.nonce_of(current.address),
            deadline=self._deadline(ttl),
        )
        return eip712.sign_rotation(message, self.domain, current=current, new=new)

    def sign_grant(
        self,
        controller: LocalAccount,
        *,
        patient_id: bytes,
        provider: str,
        scope: bytes,
        purpose: bytes,
        expires_at: int,
        ttl: int = DEFAULT_SIGNATURE_TTL,
    ) -> Signed[ConsentGrant]:
        message = ConsentGrant(
            patient_id=_b32(patient_id),
            provider=_checksum(provider),
            scope=_b32(scope),
            purpose=_b32(purpose),
            expires_at=int(expires_at),
            nonce=self.nonce_of(controller.address),
            deadline=self._deadline(ttl),
        )
        return eip712.sign(message, self.domain, controller)

    def sign_revocation(
        self,
        controller: LocalAccount,
        *,
        patient_id: bytes,
        provider: str,
        scope: bytes,
        purpose: bytes,
        ttl: int = DEFAULT_SIGNATURE_TTL,
    ) -> Signed[ConsentRevocation]:
        message = ConsentRevocation(
            patient_id=_b32(patient_id),
            provider=_checksum(provider),
            scope=_b32(scope),
            purpose=_b32(purpose),
            nonce=self.nonce_of(controller.address),
            deadline=self._deadline(ttl),
        )
        return eip712.sign(message, self.domain, controller)

    def sign_emergency(
        self,
        provider: LocalAccount,
        *,
        patient_id: bytes,
        scope: bytes,
        reason_hash: bytes,
        duration: int,
        ttl: int = DEFAULT_SIGNATURE_TTL,
    ) -> Signed[EmergencyAccessRequest]:
        message = EmergencyAccessRequest(
            patient_id=_b32(patient_id),
            provider=provider.address,
            scope=_b32(scope),
            reason_hash=_b32(reason_hash),
            duration=int(duration),
            nonce=self.nonce_of(provider.address),
            deadline=self._deadline(ttl),
        )
        return eip712.sign(message, self.domain, provider)

    # ------------------------------------------------------------------ writes

    def register_patient(self, signed: Signed[PatientRegistration]) -> TxOutcome:
        m = signed.message
        call = self.contract.functions.registerPatient(
            m.patient_id, _checksum(m.controller), m.nonce, m.deadline, signed.signature
        )
        return self._send(call, "register patient")

    def rotate_controller(self, signed: SignedRotation) -> TxOutcome:
        m = signed.message
        call = self.contract.functions.rotateController(
            m.patient_id,
            _checksum(m.new_controller),
            m.nonce,
            m.deadline,
            signed.current_signature,
            signed.new_signature,
        )
        return self._send(call, "rotate controller")

    def grant_consent(self, signed: Signed[ConsentGrant]) -> TxOutcome:
        m = signed.message
        request = (
            m.patient_id,
            _checksum(m.provider),
            m.scope,
            m.purpose,
            m.expires_at,
            m.nonce,
            m.deadline,
        )
        call = self.contract.functions.grantConsent(request, signed.signature)
        return self._send(call, "grant consent")

    def revoke_consent(self, signed: Signed[ConsentRevocation]) -> TxOutcome:
        m = signed.message
        request = (m.patient_id, _checksum(m.provider), m.scope, m.purpose, m.nonce, m.deadline)
        call = self.contract.functions.revokeConsent(request, signed.signature)
        return self._send(call, "revoke consent")

    def open_emergency_access(self, signed: Signed[EmergencyAccessRequest]) -> TxOutcome:
        m = signed.message
        request = (
            m.patient_id,
            _checksum(m.provider),
            m.scope,
            m.reason_hash,
            m.duration,
            m.nonce,
            m.deadline,
        )
        call = self.contract.functions.openEmergencyAccessBySig(request, signed.signature)
        return self._send(call, "open emergency access")

    def register_provider(self, provider: str) -> TxOutcome:
        call = self.contract.functions.registerProvider(_checksum(provider))
        return self._send(call, "register provider")

    def deactivate_provider(self, provider: str) -> TxOutcome:
        call = self.contract.functions.deactivateProvider(_checksum(provider))
        return self._send(call, "deactivate provider")

    def grant_role(self, role: str, account: str) -> TxOutcome:
        """Admin only. ``role``: ``EMERGENCY_ROLE``, ``OPERATOR_ROLE``..."""
        call = self.contract.functions.grantRole(self._role(role), _checksum(account))
        return self._send(call, f"grant {role}")

    def revoke_role(self, role: str, account: str) -> TxOutcome:
        call = self.contract.functions.revokeRole(self._role(role), _checksum(account))
        return self._send(call, f"revoke {role}")

    def anchor(self, *, root: bytes, first_seq: int, last_seq: int) -> tuple[str, int]:
        """Anchor an audit Merkle root (``vault.audit.log.AnchorSink``): (tx hash, block)."""
        call = self.contract.functions.anchorAuditRoot(_b32(root), first_seq, last_seq)
        outcome = self._send(call, "anchor audit root")
        return outcome.tx_hash, outcome.block_number

    # ------------------------------------------------------------------ events

    def history(
        self,
        *,
        patient_id: bytes | None = None,
        provider: str | None = None,
        from_block: int = 0,
        to_block: int | str = "latest",
    ) -> list[RegistryEvent]:
        """Registrations, rotations, grants, revokes and emergency accesses, oldest first.

        Filter by patient, by provider, or both (provider-only skips patient key events).
        """
        return self._history.events(
            patient_id=None if patient_id is None else _b32(patient_id),
            provider=provider,
            from_block=from_block,
            to_block=to_block,
        )

    # ---------------------------------------------------------------- internal

    def _role(self, role: str) -> bytes:
        if role == "DEFAULT_ADMIN_ROLE":
            return ZERO_BYTES32
        if not role.endswith("_ROLE"):
            raise InvalidInput(f"unknown role {role!r}")
        return bytes(Web3.keccak(text=role))

    def _view(self, name: str, *args: Any) -> Any:
        try:
            return self.contract.functions[name](*args).call(block_identifier="latest")
        except ContractLogicError as exc:
            raise self.decoder.from_web3(exc, context=name) from exc
        except BadFunctionCallOutput as exc:
            raise ContractMissing(
                f"no consent registry answers at {self.address}", details={"address": self.address}
            ) from exc
        except VaultError:
            raise
        except Exception as exc:
            raise ChainUnavailable(f"chain RPC unreachable: {type(exc).__name__}") from exc

    def _send(self, call: Any, context: str) -> TxOutcome:
        if self.relayer is None:
            raise ChainUnavailable("this registry client has no relayer account; it can only read")
        return self.relayer.send(call, context=context)


def _checksum(address: str) -> ChecksumAddress:
    try:
        return Web3.to_checksum_address(address)
    except ValueError as exc:
        raise InvalidInput(f"not an address: {address!r}") from exc


def _b32(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidInput("expected 32 bytes (a patient id, scope, purpose or hash)")
    return bytes(value)


def _address_word(address: str) -> bytes:
    return b"\x00" * 12 + bytes.fromhex(_checksum(address)[2:])


def _block_ref(reply: object) -> BlockRef:
    block = reply.get("result") if isinstance(reply, dict) else None
    try:
        assert isinstance(block, dict)
        return BlockRef(
            number=int(block["number"], 16),
            hash=str(block["hash"]),
            timestamp=int(block["timestamp"], 16),
        )
    except (AssertionError, KeyError, TypeError, ValueError):
        raise ChainUnavailable(
            "the node did not return its latest block", details={"reply": str(reply)[:200]}
        ) from None
