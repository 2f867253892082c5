// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {ConsentRegistry} from "../../src/ConsentRegistry.sol";
import {IConsentRegistry} from "../../src/interfaces/IConsentRegistry.sol";
import {RegistryHandler} from "./RegistryHandler.sol";

contract ConsentRegistryInvariantTest is Test {
    ConsentRegistry internal registry;
    RegistryHandler internal handler;

    function setUp() public {
        vm.warp(1_700_000_000);
        address admin = makeAddr("admin");
        registry = new ConsentRegistry(admin);
        handler = new RegistryHandler(registry, admin);
        targetContract(address(handler));
        excludeSender(address(registry));
    }

    /// Every consent on chain came from a grant signed by the patient's then-current key;
    /// no forged or rotated-away-key grant is ever accepted.
    function invariant_NoConsentWithoutPatientSignature() public view {
        assertEq(handler.forgeriesAccepted(), 0);
        _forEachTuple(_checkSigned);
    }

    /// A revoked consent stays revoked (and denied) until a newly signed grant; replays fail.
    function invariant_RevokedStaysRevoked() public view {
        assertEq(handler.replaysAccepted(), 0);
        _forEachTuple(_checkRevoked);
    }

    /// isAllowed equals the model: signed, unrevoked, unexpired, provider active.
    function invariant_IsAllowedMatchesModel() public view {
        _forEachTuple(_checkAllowed);
    }

    /// Anchors cover 1..next-1 contiguously: no gap, no overlap, no rewrite.
    function invariant_AnchorsContiguous() public view {
        assertEq(handler.badAnchorsAccepted(), 0);
        uint256 count = registry.anchorCount();
        uint64 expected = 1;
        for (uint256 i = 0; i < count; i++) {
            IConsentRegistry.AuditAnchor memory a = registry.anchorAt(i);
            assertEq(a.firstSequence, expected);
            assertGe(a.lastSequence, a.firstSequence);
            expected = a.lastSequence + 1;
        }
        assertEq(registry.nextAuditSequence(), expected);
    }

    function _forEachTuple(function(bytes32, address, bytes32, bytes32) view check) internal view {
        for (uint256 p = 0; p < 3; p++) {
            for (uint256 v = 0; v < 2; v++) {
                for (uint256 s = 0; s < 2; s++) {
                    for (uint256 u = 0; u < 2; u++) {
                        (bytes32 patientId, address provider, bytes32 scope, bytes32 purpose) =
                            handler.tuple(p, v, s, u);
                        check(patientId, provider, scope, purpose);
                    }
                }
            }
        }
    }

    function _model(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose)
        internal
        view
        returns (uint256 signedGrants, bool revoked, uint64 expiresAt)
    {
        return handler.model(handler.tupleKey(patientId, provider, scope, purpose));
    }

    function _checkSigned(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose) internal view {
        (uint256 signedGrants,,) = _model(patientId, provider, scope, purpose);
        if (registry.consentOf(patientId, provider, scope, purpose).grantedAt != 0) assertGt(signedGrants, 0);
    }

    function _checkRevoked(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose) internal view {
        (, bool revoked,) = _model(patientId, provider, scope, purpose);
        if (!revoked) return;
        assertGt(registry.consentOf(patientId, provider, scope, purpose).revokedAt, 0);
        assertFalse(registry.isAllowed(patientId, provider, scope, purpose));
    }

    function _checkAllowed(bytes32 patientId, address provider, bytes32 scope, bytes32 purpose) internal view {
        (uint256 signedGrants, bool revoked, uint64 expiresAt) = _model(patientId, provider, scope, purpose);
        bool expected = signedGrants > 0 && !revoked && expiresAt > block.timestamp
            && registry.providerStatus(provider) == IConsentRegistry.ProviderStatus.Active;
        assertEq(registry.isAllowed(patientId, provider, scope, purpose), expected);
    }
}
