"""The vault's exception hierarchy.

Every error the vault raises on purpose derives from :class:`VaultError`. Each class
carries a stable machine-readable ``code``; only the API layer maps classes to HTTP
status codes (``vault.api.errors``), and only the CLI maps them to exit codes.
Subclasses mix in the natural builtin (``ValueError``, ``LookupError``...) so callers
that do not know the vault's types still catch them sensibly.
"""

from __future__ import annotations

from typing import Any


class VaultError(Exception):
    """Root of every error the vault raises deliberately."""

    code: str = "vault_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


# --- configuration -------------------------------------------------------------------


class ConfigurationError(VaultError):
    """Settings are missing, malformed, or use a placeholder secret."""

    code = "configuration_error"


# --- input ---------------------------------------------------------------------------


class InvalidInput(VaultError, ValueError):
    """The caller sent something the vault refuses to process."""

    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    """The input exceeds a configured size limit."""

    code = "payload_too_large"


class NotFound(VaultError, LookupError):
    """The named object does not exist (or the caller may not know it exists)."""

    code = "not_found"


class Conflict(VaultError):
    """The request conflicts with the current state (duplicate, stale version...)."""

    code = "conflict"


# --- authorization -------------------------------------------------------------------


class AuthenticationFailed(VaultError):
    """The caller could not be authenticated."""

    code = "authentication_failed"


class AccessDenied(VaultError, PermissionError):
    """The caller is authenticated but not allowed to do this."""

    code = "access_denied"


class LockedOut(AccessDenied):
    """Too many failed attempts; try again later (``details['retry_after']`` seconds)."""

    code = "locked_out"


# --- dependencies ----------------------------------------------------------------------


class DependencyUnavailable(VaultError):
    """A component the vault relies on (database, chain, blob store) cannot answer.

    The vault fails closed on these: nothing is allowed that needs the component.
    """

    code = "dependency_unavailable"


class DatabaseUnavailable(DependencyUnavailable):
    """The database cannot be reached or is locked."""

    code = "database_unavailable"


class ChainUnavailable(DependencyUnavailable):
    """The chain's JSON-RPC endpoint cannot be reached."""

    code = "chain_unavailable"


class WrongChain(ChainUnavailable):
    """The endpoint answers with another chain id than the configured one."""

    code = "wrong_chain"


class ContractMissing(ChainUnavailable):
    """No contract code at the recorded deployment address (e.g. a reset chain)."""

    code = "contract_missing"


class ToolchainError(VaultError):
    """A build tool (node, solc-js, anvil, forge) is missing or failed."""

    code = "toolchain_error"


# --- records and crypto ----------------------------------------------------------------


class DecryptionFailed(VaultError):
    """A ciphertext or wrapped key could not be opened.

    Deliberately opaque: wrong key, tampered bytes, ciphertext moved to another record,
    shredded key and malformed input all raise this one error with the same message, so
    a caller learns nothing about which check failed.
    """

    code = "decryption_failed"


class InvalidRecord(InvalidInput):
    """A health record failed FHIR validation; ``details['errors']`` names the fields."""

    code = "invalid_record"


class RecordDeleted(VaultError, LookupError):
    """The record (or its patient) was deleted; only a tombstone remains."""

    code = "record_deleted"


class TamperDetected(VaultError):
    """Stored ciphertext does not match the SHA-256 recorded when it was written."""

    code = "tamper_detected"


class BlobStoreError(DependencyUnavailable):
    """The blob store failed to read or write (disk full, permissions, network)."""

    code = "blob_store_error"


class KeyringError(ConfigurationError):
    """The master keyring is missing, malformed, or lacks a key version in use."""

    code = "keyring_error"


# --- biometrics ----------------------------------------------------------------------


class InvalidImage(InvalidInput):
    """The bytes are not a readable JPEG, PNG or WebP photo (or the file is truncated)."""

    code = "invalid_image"


class ImageTooLarge(PayloadTooLarge):
    """The photo has more bytes or more pixels than configured (decompression bombs)."""

    code = "image_too_large"


class NoFace(InvalidInput):
    """No face was found in the photo."""

    code = "no_face"


class MultipleFaces(InvalidInput):
    """More than one face was found; the photo does not say whose it is."""

    code = "multiple_faces"


class FaceTooSmall(InvalidInput):
    """The face is too small (too few pixels) to be measured reliably."""

    code = "face_too_small"


class EnrollmentRejected(InvalidInput):
    """The enrollment photos are unusable together (wrong count, or not one person)."""

    code = "enrollment_rejected"


class VerificationFailed(AuthenticationFailed):
    """The face did not open the claimed patient's template (or there is none).

    Deliberately the same error whether the handle is unknown or the face is wrong.
    """

    code = "verification_failed"


class BiometricLockedOut(LockedOut):
    """Too many failed face verifications for this handle; ``details['retry_after']``."""

    code = "biometric_locked_out"


# --- chain ---------------------------------------------------------------------------
# Raised by vault.chain (registry client, relayer). The contract's custom errors are
# decoded into the ConsentRejected family (``details['error']`` names the Solidity error,
# ``details['args']`` its arguments); see vault.chain.reverts for the mapping.


class TransactionFailed(VaultError):
    """A transaction reverted without a reason the vault recognizes (or ran out of gas)."""

    code = "transaction_failed"


class TransactionNotConfirmed(TransactionFailed, DependencyUnavailable):
    """A transaction could not be sent, or no receipt arrived in time.

    It may still be mined: the request stays pending and may be retried; a retry of an
    already-mined signed message fails with :class:`StaleConsentNonce`.
    """

    code = "transaction_not_confirmed"


class ConsentRejected(VaultError):
    """The consent registry refused the operation (a decoded custom error)."""

    code = "consent_rejected"


class InvalidConsentSignature(ConsentRejected, AccessDenied):
    """The signature is malformed, malleable, for another domain, or not by the expected key."""

    code = "invalid_consent_signature"


class ConsentSignatureExpired(ConsentRejected, InvalidInput):
    """The signed message's deadline has passed; sign a fresh one."""

    code = "consent_signature_expired"


class StaleConsentNonce(ConsentRejected, Conflict):
    """The signed nonce was already used or is out of order (replay, or a concurrent change)."""

    code = "stale_consent_nonce"


class InvalidConsentTerms(ConsentRejected, InvalidInput):
    """Zero id, scope, purpose, address or reason; expiry in the past; bad duration or range."""

    code = "invalid_consent_terms"


class UnknownPatient(ConsentRejected, NotFound):
    """No patient is registered on chain under this id."""

    code = "unknown_patient"


class PatientAlreadyRegistered(ConsentRejected, Conflict):
    """A patient is already registered on chain under this id."""

    code = "patient_already_registered"


class ControllerKeyInUse(ConsentRejected, Conflict):
    """The key controls, or once controlled, a patient; keys are never reused."""

    code = "controller_key_in_use"


class ProviderNotActive(ConsentRejected, Conflict):
    """The provider is not registered on chain or has been deactivated."""

    code = "provider_not_active"


class ProviderAlreadyActive(ConsentRejected, Conflict):
    """The provider is already registered and active."""

    code = "provider_already_active"


class ConsentNotGranted(ConsentRejected, NotFound):
    """There is no unrevoked consent with these terms to revoke."""

    code = "consent_not_granted"


class ChainRoleMissing(ConsentRejected, AccessDenied):
    """The account lacks the registry role the operation needs (operator, emergency...)."""

    code = "chain_role_missing"


class AuditAnchorOutOfSequence(ConsentRejected, Conflict):
    """The anchor does not start right after the last anchored sequence number."""

    code = "audit_anchor_out_of_sequence"


class UnknownAuditSequence(ConsentRejected, NotFound):
    """No anchor covers this audit sequence number yet."""

    code = "unknown_audit_sequence"


class TemplateCorrupt(VaultError):
    """A stored template failed authentication (tampered with, or moved to another handle)."""

    code = "template_corrupt"
