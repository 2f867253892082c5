// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {IConsentRegistry} from "../src/interfaces/IConsentRegistry.sol";
import {RegistryTestBase} from "./utils/RegistryTestBase.sol";

contract ConsentRegistryEmergencyTest is RegistryTestBase {
    function setUp() public override {
        super.setUp();
        _register(PATIENT, patientKey);
        _grantEmergencyRole(provider);
    }

    function test_OpenEmergencyAccess() public {
        uint64 expiresAt = _inFuture(4 hours);
        vm.expectEmit(address(registry));
        emit IConsentRegistry.EmergencyAccessOpened(PATIENT, provider, SCOPE, REASON, expiresAt);
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, 4 hours);

        assertEq(registry.emergencyAccessUntil(PATIENT, provider, SCOPE), expiresAt);
        assertEq(
            uint8(registry.accessBasis(PATIENT, provider, SCOPE, HRESCH)), uint8(IConsentRegistry.AccessBasis.Emergency)
        );
        assertFalse(registry.isAllowed(PATIENT, provider, keccak256("Condition"), TREAT));
    }

    function test_OpenEmergencyAccess_ExpiresByItself() public {
        bytes32 all = registry.ALL_SCOPES();
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, all, REASON, 1 hours);
        assertTrue(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
        vm.warp(block.timestamp + 1 hours);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function test_AccessBasisAt_EmergencyEndsOnCallerClock() public {
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, 1 hours);
        uint64 end = _inFuture(1 hours);
        assertEq(
            uint8(registry.accessBasisAt(PATIENT, provider, SCOPE, TREAT, end - 1)),
            uint8(IConsentRegistry.AccessBasis.Emergency)
        );
        assertEq(
            uint8(registry.accessBasisAt(PATIENT, provider, SCOPE, TREAT, end)),
            uint8(IConsentRegistry.AccessBasis.None)
        );
    }

    function test_Emergency_EndsWhenRoleRevoked() public {
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, 1 hours);
        bytes32 role = registry.EMERGENCY_ROLE();
        vm.prank(admin);
        registry.revokeRole(role, provider);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function test_Emergency_EndsWhenProviderDeactivated() public {
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, 1 hours);
        vm.prank(admin);
        registry.deactivateProvider(provider);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function test_AccessBasis_ConsentTakesPrecedence() public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(1 days));
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, 1 hours);
        assertEq(
            uint8(registry.accessBasis(PATIENT, provider, SCOPE, TREAT)), uint8(IConsentRegistry.AccessBasis.Consent)
        );
    }

    function test_OpenEmergencyAccessBySig() public {
        IConsentRegistry.EmergencyRequest memory q = _emergencyRequest(SCOPE, 2 hours);
        bytes memory sig = _sign(providerKey, _digest(_emergencyHash(q)));
        vm.prank(relayer);
        registry.openEmergencyAccessBySig(q, sig);
        assertTrue(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
        assertEq(registry.nonces(provider), 1);
    }

    function test_RevertWhen_OpenEmergencyAccessBySig_SignedByPatient() public {
        IConsentRegistry.EmergencyRequest memory q = _emergencyRequest(SCOPE, 2 hours);
        bytes memory sig = _sign(patientKey, _digest(_emergencyHash(q)));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, provider));
        registry.openEmergencyAccessBySig(q, sig);
    }

    function test_RevertWhen_OpenEmergencyAccess_NoRole() public {
        address other = makeAddr("clinic");
        vm.prank(admin);
        registry.registerProvider(other);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, other, registry.EMERGENCY_ROLE()
            )
        );
        vm.prank(other);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, 1 hours);
    }

    function test_RevertWhen_OpenEmergencyAccess_ProviderInactive() public {
        vm.prank(admin);
        registry.deactivateProvider(provider);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryProviderNotActive.selector, provider));
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, 1 hours);
    }

    function test_RevertWhen_OpenEmergencyAccess_UnknownPatient() public {
        bytes32 nobody = keccak256("nobody");
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryUnknownPatient.selector, nobody));
        vm.prank(provider);
        registry.openEmergencyAccess(nobody, SCOPE, REASON, 1 hours);
    }

    function test_RevertWhen_OpenEmergencyAccess_ZeroScope() public {
        vm.expectRevert(IConsentRegistry.ConsentRegistryInvalidTerms.selector);
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, bytes32(0), REASON, 1 hours);
    }

    function test_RevertWhen_OpenEmergencyAccess_NoReason() public {
        vm.expectRevert(IConsentRegistry.ConsentRegistryMissingReason.selector);
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, bytes32(0), 1 hours);
    }

    function test_RevertWhen_OpenEmergencyAccess_ZeroDuration() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidEmergencyDuration.selector, uint64(0))
        );
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, 0);
    }

    function testFuzz_RevertWhen_OpenEmergencyAccess_TooLong(uint64 duration) public {
        duration = uint64(bound(duration, registry.MAX_EMERGENCY_DURATION() + 1, type(uint64).max));
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidEmergencyDuration.selector, duration)
        );
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, duration);
    }

    function testFuzz_EmergencyWindow(uint64 duration, uint256 elapsed) public {
        duration = uint64(bound(duration, 1, registry.MAX_EMERGENCY_DURATION()));
        elapsed = bound(elapsed, 0, 2 days);
        vm.prank(provider);
        registry.openEmergencyAccess(PATIENT, SCOPE, REASON, duration);
        vm.warp(block.timestamp + elapsed);
        assertEq(registry.isAllowed(PATIENT, provider, SCOPE, TREAT), elapsed < duration);
    }
}
