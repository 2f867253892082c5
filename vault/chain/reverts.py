"""Turn the registry's revert data into the vault's exception types.

Custom errors arrive as ``selector || abi-encoded args`` in three places: a failed
``eth_call``, a failed ``eth_estimateGas`` (web3 raises ``ContractCustomError`` with the
data), and a mined transaction with status 0 (replayed with ``eth_call`` to recover it).
Every path ends in :meth:`RevertDecoder.exception`, so the same Solidity error always
becomes the same Python class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.conversions import to_bytes
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError, ContractPanicError

from vault import errors

ERROR_CLASSES: dict[str, type[errors.VaultError]] = {
    "ConsentRegistryExpiredSignature": errors.ConsentSignatureExpired,
    "ConsentRegistryInvalidSignature": errors.InvalidConsentSignature,
    "InvalidAccountNonce": errors.StaleConsentNonce,
    "ConsentRegistryInvalidPatient": errors.InvalidConsentTerms,
    "ConsentRegistryUnknownPatient": errors.UnknownPatient,
    "ConsentRegistryPatientExists": errors.PatientAlreadyRegistered,
    "ConsentRegistryInvalidController": errors.InvalidConsentTerms,
    "ConsentRegistryControllerInUse": errors.ControllerKeyInUse,
    "ConsentRegistryInvalidProvider": errors.InvalidConsentTerms,
    "ConsentRegistryProviderNotActive": errors.ProviderNotActive,
    "ConsentRegistryProviderAlreadyActive": errors.ProviderAlreadyActive,
    "ConsentRegistryInvalidTerms": errors.InvalidConsentTerms,
    "ConsentRegistryInvalidExpiry": errors.InvalidConsentTerms,
    "ConsentRegistryConsentNotGranted": errors.ConsentNotGranted,
    "ConsentRegistryInvalidEmergencyDuration": errors.InvalidConsentTerms,
    "ConsentRegistryMissingReason": errors.InvalidConsentTerms,
    "ConsentRegistryAnchorNotContiguous": errors.AuditAnchorOutOfSequence,
    "ConsentRegistryInvalidAnchor": errors.InvalidConsentTerms,
    "ConsentRegistryUnknownSequence": errors.UnknownAuditSequence,
    "AccessControlUnauthorizedAccount": errors.ChainRoleMissing,
}


@dataclass(frozen=True)
class DecodedRevert:
    """A custom error: its Solidity name and arguments (bytes as 0x-hex, for JSON details)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _ErrorAbi:
    name: str
    arg_names: list[str]
    arg_types: list[str]


def _jsonable(value: Any, abi_type: str) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    return "0x" + value.hex() if isinstance(value, bytes) else value


class RevertDecoder:
    """Decodes revert data against the custom errors in a contract ABI."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self._errors: dict[bytes, _ErrorAbi] = {}
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [i["type"] for i in item.get("inputs", [])]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            names = [i.get("name") or f"arg{n}" for n, i in enumerate(item.get("inputs", []))]
            self._errors[selector] = _ErrorAbi(item["name"], names, types)

    def decode(self, data: bytes | str | None) -> DecodedRevert | None:
        """The custom error in ``data``, or None if empty, unknown or malformed."""
        raw = _as_bytes(data)
        if raw is None or len(raw) < 4 or raw[:4] not in self._errors:
            return None
        spec = self._errors[raw[:4]]
        try:
            values = abi_decode(spec.arg_types, raw[4:])
        except Exception:
            return None
        args = {
            name: _jsonable(value, abi_type)
            for name, value, abi_type in zip(spec.arg_names, values, spec.arg_types, strict=True)
        }
        return DecodedRevert(spec.name, args)

    def exception(
        self, data: bytes | str | None, *, context: str, tx_hash: str | None = None
    ) -> errors.VaultError:
        """The vault exception for revert ``data`` (``TransactionFailed`` if unrecognized)."""
        details: dict[str, Any] = {"context": context}
        if tx_hash is not None:
            details["tx_hash"] = tx_hash
        decoded = self.decode(data)
        if decoded is None:
            raw = _as_bytes(data)
            details["revert_data"] = "0x" + raw.hex() if raw else None
            return errors.TransactionFailed(
                f"{context}: reverted without a known reason", details=details
            )
        details["error"] = decoded.name
        details["args"] = decoded.args
        cls = ERROR_CLASSES.get(decoded.name, errors.ConsentRejected)
        return cls(f"{context}: {decoded.name}", details=details)

    def from_web3(self, exc: ContractLogicError, *, context: str) -> errors.VaultError:
        """Translate web3's revert exception (from eth_call / estimate_gas)."""
        if isinstance(exc, ContractPanicError):
            return errors.TransactionFailed(
                f"{context}: contract panic ({exc.message})", details={"context": context}
            )
        data = exc.data if isinstance(exc.data, str) else None
        return self.exception(data, context=context)


def _as_bytes(data: bytes | str | None) -> bytes | None:
    if data is None:
        return None
    if isinstance(data, bytes):
        return data
    if data.startswith("0x"):
        try:
            return to_bytes(hexstr=data)
        except ValueError:
            return None
    return None
