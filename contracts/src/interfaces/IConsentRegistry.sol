// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title IConsentRegistry
 * @notice Types, events and errors of the consent registry. Nothing personal is stored:
 * patients are opaque `bytes32` ids, providers are addresses, scopes and purposes are
 * `bytes32` codes, reasons are salted hashes.
 */
interface IConsentRegistry {
    /// @notice Lifecycle of a provider. `None` means never registered.
    enum ProviderStatus {
        None,
        Active,
        Inactive
    }

    /// @notice Why {isAllowed} answered yes (or `None` when it answered no).
    enum AccessBasis {
        None,
        Consent,
        Emergency
    }

    /**
     * @notice One consent between a patient and a provider for a scope and a purpose.
     * @dev `grantedAt == 0` means never granted; `revokedAt != 0` means revoked (until the
     * next signed grant, which resets it). One storage slot.
     */
    struct Consent {
        uint64 grantedAt;
        uint64 expiresAt;
        uint64 revokedAt;
    }

    /// @notice A Merkle root over audit-log entries `firstSequence..lastSequence` (inclusive).
    struct AuditAnchor {
        bytes32 root;
        uint64 firstSequence;
        uint64 lastSequence;
        uint64 anchoredAt;
    }

    /// @notice Fields of a consent grant, signed by the patient's controller (EIP-712 `GrantConsent`).
    struct GrantRequest {
        bytes32 patientId;
        address provider;
        bytes32 scope;
        bytes32 purpose;
        uint64 expiresAt;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice Fields of a consent revocation, signed by the patient's controller (EIP-712 `RevokeConsent`).
    struct RevokeRequest {
        bytes32 patientId;
        address provider;
        bytes32 scope;
        bytes32 purpose;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice Fields of a break-glass access, signed by the provider (EIP-712 `EmergencyAccess`).
    struct EmergencyRequest {
        bytes32 patientId;
        address provider;
        bytes32 scope;
        bytes32 reasonHash;
        uint64 duration;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A patient id was bound to its first controller key.
    event PatientRegistered(bytes32 indexed patientId, address indexed controller);

    /// @notice The patient's controller key changed (re-enrollment); consents are kept.
    event ControllerRotated(
        bytes32 indexed patientId, address indexed previousController, address indexed newController
    );

    /// @notice A provider was registered or re-activated by an operator.
    event ProviderRegistered(address indexed provider);

    /// @notice A provider was deactivated by an operator; it is allowed nothing from now on.
    event ProviderDeactivated(address indexed provider);

    /// @notice A patient-signed consent was granted (or renewed with a new expiry).
    event ConsentGranted(
        bytes32 indexed patientId, address indexed provider, bytes32 indexed scope, bytes32 purpose, uint64 expiresAt
    );

    /// @notice A patient-signed consent was revoked; effective in this block.
    event ConsentRevoked(bytes32 indexed patientId, address indexed provider, bytes32 indexed scope, bytes32 purpose);

    /// @notice A provider with the emergency role opened break-glass access until `expiresAt`.
    event EmergencyAccessOpened(
        bytes32 indexed patientId, address indexed provider, bytes32 indexed scope, bytes32 reasonHash, uint64 expiresAt
    );

    /// @notice An audit-log Merkle root was anchored for `firstSequence..lastSequence`.
    event AuditRootAnchored(uint256 indexed index, bytes32 root, uint64 firstSequence, uint64 lastSequence);

    /// @notice The signature's deadline has passed.
    error ConsentRegistryExpiredSignature(uint256 deadline);

    /// @notice The signature is malformed, malleable (high s), or not by the expected signer.
    error ConsentRegistryInvalidSignature(address expectedSigner);

    /// @notice The patient id is zero.
    error ConsentRegistryInvalidPatient();

    /// @notice No patient is registered under this id.
    error ConsentRegistryUnknownPatient(bytes32 patientId);

    /// @notice A patient is already registered under this id.
    error ConsentRegistryPatientExists(bytes32 patientId);

    /// @notice The controller is the zero address.
    error ConsentRegistryInvalidController();

    /// @notice The key controls, or once controlled, a patient; keys are never reused.
    error ConsentRegistryControllerInUse(address controller);

    /// @notice The provider is the zero address.
    error ConsentRegistryInvalidProvider();

    /// @notice The provider is not registered or has been deactivated.
    error ConsentRegistryProviderNotActive(address provider);

    /// @notice The provider is already registered and active.
    error ConsentRegistryProviderAlreadyActive(address provider);

    /// @notice The scope or the purpose is zero.
    error ConsentRegistryInvalidTerms();

    /// @notice The expiry is not in the future.
    error ConsentRegistryInvalidExpiry(uint64 expiresAt);

    /// @notice There is no unrevoked consent to revoke.
    error ConsentRegistryConsentNotGranted(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose);

    /// @notice The emergency duration is zero or longer than the maximum.
    error ConsentRegistryInvalidEmergencyDuration(uint64 duration);

    /// @notice The emergency reason hash is zero.
    error ConsentRegistryMissingReason();

    /// @notice The anchor does not start right after the last anchored sequence.
    error ConsentRegistryAnchorNotContiguous(uint64 expectedFirst, uint64 firstSequence);

    /// @notice The anchor's range is empty or reversed, or its root is zero.
    error ConsentRegistryInvalidAnchor(bytes32 root, uint64 firstSequence, uint64 lastSequence);

    /// @notice No anchor covers this sequence number.
    error ConsentRegistryUnknownSequence(uint64 sequence);
}
