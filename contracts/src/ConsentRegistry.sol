// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";

/**
 * @title ConsentRegistry
 * @notice Patients' consent to providers' access to their health data, with break-glass
 * emergency access and anchors of the vault's audit log.
 *
 * Every consent change is an EIP-712 message signed by the patient's current controller key
 * (derived from a fresh biometric match off chain) and may be relayed by anyone: the
 * operator pays gas but cannot forge a consent. Nonces are per signing key (OpenZeppelin
 * {Nonces}) and must be used in order; a key is bound to one patient forever, so a
 * rotated-away key can never sign again.
 *
 * Roles: `DEFAULT_ADMIN_ROLE` manages roles; `OPERATOR_ROLE` registers patients (with the
 * patient key's own signature) and providers and anchors audit roots; `EMERGENCY_ROLE`
 * marks providers allowed to open break-glass access.
 */
contract ConsentRegistry is IConsentRegistry, AccessControl, EIP712, Nonces {
    /// @notice Role that registers patients and providers and anchors the audit log.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @notice Role a provider needs to open emergency (break-glass) access.
    bytes32 public constant EMERGENCY_ROLE = keccak256("EMERGENCY_ROLE");

    /// @notice Scope code that stands for every data category of a patient.
    bytes32 public constant ALL_SCOPES = keccak256("*");

    /// @notice Longest break-glass window a single emergency access may open.
    uint64 public constant MAX_EMERGENCY_DURATION = 24 hours;

    /// @notice EIP-712 type hash of `RegisterPatient`, signed by the first controller.
    bytes32 public constant REGISTER_PATIENT_TYPEHASH =
        keccak256("RegisterPatient(bytes32 patientId,address controller,uint256 nonce,uint256 deadline)");

    /// @notice EIP-712 type hash of `RotateController`, signed by the current and the new controller.
    bytes32 public constant ROTATE_CONTROLLER_TYPEHASH =
        keccak256("RotateController(bytes32 patientId,address newController,uint256 nonce,uint256 deadline)");

    /// @notice EIP-712 type hash of `GrantConsent`, signed by the patient's controller.
    bytes32 public constant GRANT_CONSENT_TYPEHASH = keccak256(
        "GrantConsent(bytes32 patientId,address provider,bytes32 scope,bytes32 purpose,uint64 expiresAt,uint256 nonce,uint256 deadline)"
    );

    /// @notice EIP-712 type hash of `RevokeConsent`, signed by the patient's controller.
    bytes32 public constant REVOKE_CONSENT_TYPEHASH = keccak256(
        "RevokeConsent(bytes32 patientId,address provider,bytes32 scope,bytes32 purpose,uint256 nonce,uint256 deadline)"
    );

    /// @notice EIP-712 type hash of `EmergencyAccess`, signed by the provider.
    bytes32 public constant EMERGENCY_ACCESS_TYPEHASH = keccak256(
        "EmergencyAccess(bytes32 patientId,address provider,bytes32 scope,bytes32 reasonHash,uint64 duration,uint256 nonce,uint256 deadline)"
    );

    uint64 private constant FIRST_AUDIT_SEQUENCE = 1;

    mapping(bytes32 patientId => address controller) private _controllers;
    mapping(address key => bytes32 patientId) private _boundKeys;
    mapping(address provider => ProviderStatus) private _providers;
    mapping(bytes32 consentKey => Consent) private _consents;
    mapping(bytes32 emergencyKey => uint64 expiresAt) private _emergencies;
    AuditAnchor[] private _anchors;
    uint64 private _nextSequence = FIRST_AUDIT_SEQUENCE;

    /// @param admin Account granted the admin and operator roles (the vault's operator).
    constructor(address admin) EIP712("ConsentRegistry", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }

    // ------------------------------------------------------------------ patients

    /**
     * @notice Bind `patientId` to its first controller key. The key signs `RegisterPatient`
     * itself, proving possession; only an operator may submit, so ids cannot be squatted.
     * @param patientId Opaque, non-zero patient id (no personal data).
     * @param controller The patient's signing address.
     * @param nonce The controller's current nonce (0 for a fresh key).
     * @param deadline Last timestamp at which the signature is accepted.
     * @param signature The controller's EIP-712 signature.
     */
    function registerPatient(
        bytes32 patientId,
        address controller,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external onlyRole(OPERATOR_ROLE) {
        if (patientId == bytes32(0)) revert ConsentRegistryInvalidPatient();
        if (controller == address(0)) revert ConsentRegistryInvalidController();
        if (_controllers[patientId] != address(0)) revert ConsentRegistryPatientExists(patientId);
        if (_boundKeys[controller] != bytes32(0)) revert ConsentRegistryControllerInUse(controller);
        bytes32 structHash = keccak256(abi.encode(REGISTER_PATIENT_TYPEHASH, patientId, controller, nonce, deadline));
        _consumeSignature(controller, structHash, nonce, deadline, signature);

        _controllers[patientId] = controller;
        _boundKeys[controller] = patientId;
        emit PatientRegistered(patientId, controller);
    }

    /**
     * @notice Replace the patient's controller key (re-enrollment), keeping every consent.
     * Both the current and the new key sign the same `RotateController` message (the new
     * one proves possession, so a patient cannot lock themselves out with a wrong address).
     * Relayable by anyone. The old key can never sign for any patient again.
     * @param patientId The patient.
     * @param newController The new signing address; must never have controlled a patient.
     * @param nonce The current controller's nonce.
     * @param deadline Last timestamp at which the signatures are accepted.
     * @param currentSignature Signature by the current controller.
     * @param newSignature Signature by `newController` over the same message.
     */
    function rotateController(
        bytes32 patientId,
        address newController,
        uint256 nonce,
        uint256 deadline,
        bytes calldata currentSignature,
        bytes calldata newSignature
    ) external {
        address current = _requireController(patientId);
        if (newController == address(0)) revert ConsentRegistryInvalidController();
        if (_boundKeys[newController] != bytes32(0)) revert ConsentRegistryControllerInUse(newController);
        bytes32 structHash =
            keccak256(abi.encode(ROTATE_CONTROLLER_TYPEHASH, patientId, newController, nonce, deadline));
        _consumeSignature(current, structHash, nonce, deadline, currentSignature);
        _checkSigner(newController, _hashTypedDataV4(structHash), newSignature);

        _controllers[patientId] = newController;
        _boundKeys[newController] = patientId;
        emit ControllerRotated(patientId, current, newController);
    }

    // ----------------------------------------------------------------- providers

    /**
     * @notice Register a provider, or re-activate a deactivated one.
     * @dev Re-activation revives the provider's unexpired, unrevoked consents.
     * @param provider The provider's address (its Sign-In with Ethereum key).
     */
    function registerProvider(address provider) external onlyRole(OPERATOR_ROLE) {
        if (provider == address(0)) revert ConsentRegistryInvalidProvider();
        if (_providers[provider] == ProviderStatus.Active) revert ConsentRegistryProviderAlreadyActive(provider);
        _providers[provider] = ProviderStatus.Active;
        emit ProviderRegistered(provider);
    }

    /**
     * @notice Deactivate a provider: from this block on it is allowed nothing, consent or emergency.
     * @param provider An active provider.
     */
    function deactivateProvider(address provider) external onlyRole(OPERATOR_ROLE) {
        if (_providers[provider] != ProviderStatus.Active) revert ConsentRegistryProviderNotActive(provider);
        _providers[provider] = ProviderStatus.Inactive;
        emit ProviderDeactivated(provider);
    }

    // ------------------------------------------------------------------- consent

    /**
     * @notice Grant (or renew) consent signed by the patient's current controller. Relayable by anyone.
     * @dev Overwrites an earlier grant for the same terms and clears its revocation.
     * @param request Patient, active provider, non-zero scope and purpose, future expiry, nonce, deadline.
     * @param signature The controller's EIP-712 `GrantConsent` signature.
     */
    function grantConsent(GrantRequest calldata request, bytes calldata signature) external {
        address controller = _requireController(request.patientId);
        if (_providers[request.provider] != ProviderStatus.Active) {
            revert ConsentRegistryProviderNotActive(request.provider);
        }
        if (request.scope == bytes32(0) || request.purpose == bytes32(0)) revert ConsentRegistryInvalidTerms();
        if (request.expiresAt <= block.timestamp) revert ConsentRegistryInvalidExpiry(request.expiresAt);
        bytes32 structHash = keccak256(
            abi.encode(
                GRANT_CONSENT_TYPEHASH,
                request.patientId,
                request.provider,
                request.scope,
                request.purpose,
                request.expiresAt,
                request.nonce,
                request.deadline
            )
        );
        _consumeSignature(controller, structHash, request.nonce, request.deadline, signature);

        _consents[_consentKey(request.patientId, request.provider, request.scope, request.purpose)] =
            Consent({grantedAt: uint64(block.timestamp), expiresAt: request.expiresAt, revokedAt: 0});
        emit ConsentGranted(request.patientId, request.provider, request.scope, request.purpose, request.expiresAt);
    }

    /**
     * @notice Revoke consent, signed by the patient's current controller; effective in this
     * block. Relayable by anyone. Works whatever the provider's status, so it cannot be blocked.
     * @param request Patient, provider, scope, purpose of a granted, unrevoked consent; nonce, deadline.
     * @param signature The controller's EIP-712 `RevokeConsent` signature.
     */
    function revokeConsent(RevokeRequest calldata request, bytes calldata signature) external {
        address controller = _requireController(request.patientId);
        bytes32 key = _consentKey(request.patientId, request.provider, request.scope, request.purpose);
        Consent storage consent = _consents[key];
        if (consent.grantedAt == 0 || consent.revokedAt != 0) {
            revert ConsentRegistryConsentNotGranted(request.patientId, request.provider, request.scope, request.purpose);
        }
        bytes32 structHash = keccak256(
            abi.encode(
                REVOKE_CONSENT_TYPEHASH,
                request.patientId,
                request.provider,
                request.scope,
                request.purpose,
                request.nonce,
                request.deadline
            )
        );
        _consumeSignature(controller, structHash, request.nonce, request.deadline, signature);

        consent.revokedAt = uint64(block.timestamp);
        emit ConsentRevoked(request.patientId, request.provider, request.scope, request.purpose);
    }

    // ----------------------------------------------------------------- emergency

    /**
     * @notice Open break-glass access as the calling provider (which pays its own gas).
     * @param patientId A registered patient.
     * @param scope Scope to open, or {ALL_SCOPES}.
     * @param reasonHash Salted hash of the written reason (kept off chain), non-zero.
     * @param duration Seconds, 1..{MAX_EMERGENCY_DURATION}.
     */
    function openEmergencyAccess(bytes32 patientId, bytes32 scope, bytes32 reasonHash, uint64 duration) external {
        _openEmergency(patientId, _msgSender(), scope, reasonHash, duration);
    }

    /**
     * @notice Open break-glass access signed by the provider, relayed by anyone (the vault).
     * @param request Patient, provider, scope, reason hash, duration, the provider's nonce, deadline.
     * @param signature The provider's EIP-712 `EmergencyAccess` signature.
     */
    function openEmergencyAccessBySig(EmergencyRequest calldata request, bytes calldata signature) external {
        bytes32 structHash = keccak256(
            abi.encode(
                EMERGENCY_ACCESS_TYPEHASH,
                request.patientId,
                request.provider,
                request.scope,
                request.reasonHash,
                request.duration,
                request.nonce,
                request.deadline
            )
        );
        _consumeSignature(request.provider, structHash, request.nonce, request.deadline, signature);
        _openEmergency(request.patientId, request.provider, request.scope, request.reasonHash, request.duration);
    }

    // --------------------------------------------------------------------- audit

    /**
     * @notice Anchor the Merkle root of audit entries `firstSequence..lastSequence`.
     * Ranges are contiguous from 1: no gap, no overlap, no rewrite.
     * @param root Merkle root of the entries (non-zero).
     * @param firstSequence Must equal {nextAuditSequence}.
     * @param lastSequence Inclusive, `>= firstSequence`.
     */
    function anchorAuditRoot(bytes32 root, uint64 firstSequence, uint64 lastSequence) external onlyRole(OPERATOR_ROLE) {
        if (root == bytes32(0) || lastSequence < firstSequence) {
            revert ConsentRegistryInvalidAnchor(root, firstSequence, lastSequence);
        }
        uint64 expected = _nextSequence;
        if (firstSequence != expected) revert ConsentRegistryAnchorNotContiguous(expected, firstSequence);

        _nextSequence = lastSequence + 1;
        _anchors.push(
            AuditAnchor({
                root: root,
                firstSequence: firstSequence,
                lastSequence: lastSequence,
                anchoredAt: uint64(block.timestamp)
            })
        );
        emit AuditRootAnchored(_anchors.length - 1, root, firstSequence, lastSequence);
    }

    // --------------------------------------------------------------------- views

    /**
     * @notice Whether `provider` may read `scope` of `patientId` for `purpose` now (this block).
     * @dev True if the provider is active and either holds an unexpired, unrevoked consent for
     * (`scope` or {ALL_SCOPES}, `purpose`), or holds {EMERGENCY_ROLE} and an open emergency
     * window for `scope` or {ALL_SCOPES} (emergency ignores purpose).
     */
    function isAllowed(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose)
        external
        view
        returns (bool)
    {
        return _accessBasisAt(patientId, provider, scope, purpose, block.timestamp) != AccessBasis.None;
    }

    /**
     * @notice Like {isAllowed}, but says on which basis access stands (to audit emergency reads).
     * @return The basis: `None` (denied), `Consent`, or `Emergency`.
     */
    function accessBasis(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose)
        external
        view
        returns (AccessBasis)
    {
        return _accessBasisAt(patientId, provider, scope, purpose, block.timestamp);
    }

    /**
     * @notice {accessBasis} evaluated at `max(block.timestamp, timestamp)`: a caller whose
     * clock runs ahead of the last block (an idle dev chain mines no blocks) sees expiries
     * and emergency windows end on its own clock. It can only make the answer stricter.
     * @param timestamp The caller's current time (unix seconds).
     */
    function accessBasisAt(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose, uint64 timestamp)
        external
        view
        returns (AccessBasis)
    {
        uint256 at = timestamp > block.timestamp ? timestamp : block.timestamp;
        return _accessBasisAt(patientId, provider, scope, purpose, at);
    }

    /// @notice The consent record for these exact terms (zeroes if never granted).
    function consentOf(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose)
        external
        view
        returns (Consent memory)
    {
        return _consents[_consentKey(patientId, provider, scope, purpose)];
    }

    /// @notice End of the emergency window for these terms (0 if never opened; may be in the past).
    function emergencyAccessUntil(bytes32 patientId, address provider, bytes32 scope) external view returns (uint64) {
        return _emergencies[_emergencyKey(patientId, provider, scope)];
    }

    /// @notice The patient's current controller, or zero if not registered.
    function controllerOf(bytes32 patientId) external view returns (address) {
        return _controllers[patientId];
    }

    /// @notice The patient `key` currently controls, or zero (also zero for a rotated-away key).
    function patientOf(address key) external view returns (bytes32) {
        bytes32 patientId = _boundKeys[key];
        return _controllers[patientId] == key ? patientId : bytes32(0);
    }

    /// @notice The provider's lifecycle status.
    function providerStatus(address provider) external view returns (ProviderStatus) {
        return _providers[provider];
    }

    /// @notice The first sequence number the next anchor must start at.
    function nextAuditSequence() external view returns (uint64) {
        return _nextSequence;
    }

    /// @notice How many audit anchors exist.
    function anchorCount() external view returns (uint256) {
        return _anchors.length;
    }

    /// @notice The anchor at `index` (panics if out of range).
    function anchorAt(uint256 index) external view returns (AuditAnchor memory) {
        return _anchors[index];
    }

    /**
     * @notice The index of the anchor whose range covers `sequence` (binary search).
     * @dev Reverts with {ConsentRegistryUnknownSequence} if that sequence is not anchored yet.
     */
    function anchorIndexOf(uint64 sequence) external view returns (uint256) {
        if (sequence < FIRST_AUDIT_SEQUENCE || sequence >= _nextSequence) {
            revert ConsentRegistryUnknownSequence(sequence);
        }
        uint256 low = 0;
        uint256 high = _anchors.length - 1;
        while (low < high) {
            uint256 mid = (low + high + 1) / 2;
            if (_anchors[mid].firstSequence <= sequence) low = mid;
            else high = mid - 1;
        }
        return low;
    }

    /// @notice The EIP-712 domain separator for this chain and contract.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internal

    function _openEmergency(bytes32 patientId, address provider, bytes32 scope, bytes32 reasonHash, uint64 duration)
        private
    {
        _requireController(patientId);
        _checkRole(EMERGENCY_ROLE, provider);
        if (_providers[provider] != ProviderStatus.Active) revert ConsentRegistryProviderNotActive(provider);
        if (scope == bytes32(0)) revert ConsentRegistryInvalidTerms();
        if (reasonHash == bytes32(0)) revert ConsentRegistryMissingReason();
        if (duration == 0 || duration > MAX_EMERGENCY_DURATION) {
            revert ConsentRegistryInvalidEmergencyDuration(duration);
        }
        uint64 expiresAt = uint64(block.timestamp) + duration;
        _emergencies[_emergencyKey(patientId, provider, scope)] = expiresAt;
        emit EmergencyAccessOpened(patientId, provider, scope, reasonHash, expiresAt);
    }

    function _accessBasisAt(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose, uint256 at)
        private
        view
        returns (AccessBasis)
    {
        if (_providers[provider] != ProviderStatus.Active) return AccessBasis.None;
        if (
            _consentStands(_consentKey(patientId, provider, scope, purpose), at)
                || _consentStands(_consentKey(patientId, provider, ALL_SCOPES, purpose), at)
        ) return AccessBasis.Consent;
        if (
            (_emergencies[_emergencyKey(patientId, provider, scope)] > at
                    || _emergencies[_emergencyKey(patientId, provider, ALL_SCOPES)] > at)
                && hasRole(EMERGENCY_ROLE, provider)
        ) return AccessBasis.Emergency;
        return AccessBasis.None;
    }

    function _consentStands(bytes32 key, uint256 at) private view returns (bool) {
        Consent storage consent = _consents[key];
        return consent.grantedAt != 0 && consent.revokedAt == 0 && consent.expiresAt > at;
    }

    function _requireController(bytes32 patientId) private view returns (address controller) {
        controller = _controllers[patientId];
        if (controller == address(0)) revert ConsentRegistryUnknownPatient(patientId);
    }

    /// @dev Deadline, then signer, then nonce: a valid signature with a stale nonce is a replay.
    function _consumeSignature(
        address signer,
        bytes32 structHash,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) private {
        if (block.timestamp > deadline) revert ConsentRegistryExpiredSignature(deadline);
        _checkSigner(signer, _hashTypedDataV4(structHash), signature);
        _useCheckedNonce(signer, nonce);
    }

    /// @dev ECDSA rejects malformed and high-s (malleable) signatures; all map to one error.
    function _checkSigner(address expected, bytes32 digest, bytes calldata signature) private pure {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError || recovered != expected) {
            revert ConsentRegistryInvalidSignature(expected);
        }
    }

    function _consentKey(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(patientId, provider, scope, purpose));
    }

    function _emergencyKey(bytes32 patientId, address provider, bytes32 scope) private pure returns (bytes32) {
        return keccak256(abi.encode(patientId, provider, scope));
    }
}
