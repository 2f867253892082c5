// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IConsentRegistry} from "../src/interfaces/IConsentRegistry.sol";
import {RegistryTestBase} from "./utils/RegistryTestBase.sol";

contract ConsentRegistryProvidersTest is RegistryTestBase {
    function test_RegisterProvider() public {
        address other = makeAddr("lab");
        vm.expectEmit(address(registry));
        emit IConsentRegistry.ProviderRegistered(other);
        vm.prank(admin);
        registry.registerProvider(other);
        assertEq(uint8(registry.providerStatus(other)), uint8(IConsentRegistry.ProviderStatus.Active));
    }

    function test_RegisterProvider_Reactivates() public {
        vm.startPrank(admin);
        registry.deactivateProvider(provider);
        registry.registerProvider(provider);
        vm.stopPrank();
        assertEq(uint8(registry.providerStatus(provider)), uint8(IConsentRegistry.ProviderStatus.Active));
    }

    function test_RevertWhen_RegisterProvider_NotOperator() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, relayer, registry.OPERATOR_ROLE()
            )
        );
        vm.prank(relayer);
        registry.registerProvider(relayer);
    }

    function test_RevertWhen_RegisterProvider_Zero() public {
        vm.expectRevert(IConsentRegistry.ConsentRegistryInvalidProvider.selector);
        vm.prank(admin);
        registry.registerProvider(address(0));
    }

    function test_RevertWhen_RegisterProvider_AlreadyActive() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryProviderAlreadyActive.selector, provider)
        );
        vm.prank(admin);
        registry.registerProvider(provider);
    }

    function test_DeactivateProvider() public {
        vm.expectEmit(address(registry));
        emit IConsentRegistry.ProviderDeactivated(provider);
        vm.prank(admin);
        registry.deactivateProvider(provider);
        assertEq(uint8(registry.providerStatus(provider)), uint8(IConsentRegistry.ProviderStatus.Inactive));
    }

    function test_RevertWhen_DeactivateProvider_NotActive() public {
        address stranger = makeAddr("stranger");
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryProviderNotActive.selector, stranger));
        vm.prank(admin);
        registry.deactivateProvider(stranger);
    }

    function test_RevertWhen_DeactivateProvider_NotOperator() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, relayer, registry.OPERATOR_ROLE()
            )
        );
        vm.prank(relayer);
        registry.deactivateProvider(provider);
    }
}

contract ConsentRegistryConsentTest is RegistryTestBase {
    function setUp() public override {
        super.setUp();
        _register(PATIENT, patientKey);
    }

    function test_GrantConsent() public {
        uint64 expiresAt = _inFuture(30 days);
        vm.expectEmit(address(registry));
        emit IConsentRegistry.ConsentGranted(PATIENT, provider, SCOPE, TREAT, expiresAt);
        _grant(patientKey, SCOPE, TREAT, expiresAt);

        IConsentRegistry.Consent memory c = registry.consentOf(PATIENT, provider, SCOPE, TREAT);
        assertEq(c.grantedAt, block.timestamp);
        assertEq(c.expiresAt, expiresAt);
        assertEq(c.revokedAt, 0);
        assertTrue(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
        assertEq(
            uint8(registry.accessBasis(PATIENT, provider, SCOPE, TREAT)), uint8(IConsentRegistry.AccessBasis.Consent)
        );
    }

    function test_IsAllowed_HonorsPurpose() public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(30 days));
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, HRESCH));
        assertFalse(registry.isAllowed(PATIENT, provider, keccak256("Condition"), TREAT));
    }

    function test_IsAllowed_AllScopesCoversEveryScope() public {
        _grant(patientKey, registry.ALL_SCOPES(), TREAT, _inFuture(30 days));
        assertTrue(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
        assertTrue(registry.isAllowed(PATIENT, provider, keccak256("Condition"), TREAT));
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, HRESCH));
    }

    function test_IsAllowed_FalseAtAndAfterExpiry() public {
        uint64 expiresAt = _inFuture(1 days);
        _grant(patientKey, SCOPE, TREAT, expiresAt);
        vm.warp(expiresAt - 1);
        assertTrue(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
        vm.warp(expiresAt);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function test_AccessBasisAt_UsesTheLaterClock() public {
        uint64 expiresAt = _inFuture(1 days);
        _grant(patientKey, SCOPE, TREAT, expiresAt);
        assertEq(
            uint8(registry.accessBasisAt(PATIENT, provider, SCOPE, TREAT, expiresAt - 1)),
            uint8(IConsentRegistry.AccessBasis.Consent)
        );
        assertEq(
            uint8(registry.accessBasisAt(PATIENT, provider, SCOPE, TREAT, expiresAt)),
            uint8(IConsentRegistry.AccessBasis.None)
        );
    }

    function testFuzz_AccessBasisAt_NeverLooserThanBlockTime(uint64 ttl, uint64 callerTime, uint256 elapsed) public {
        ttl = uint64(bound(ttl, 1, 30 days));
        _grant(patientKey, SCOPE, TREAT, _inFuture(ttl));
        vm.warp(block.timestamp + bound(elapsed, 0, 60 days));
        bool atBlock = registry.isAllowed(PATIENT, provider, SCOPE, TREAT);
        bool atCaller =
            registry.accessBasisAt(PATIENT, provider, SCOPE, TREAT, callerTime) != IConsentRegistry.AccessBasis.None;
        if (!atBlock) assertFalse(atCaller);
        if (callerTime <= block.timestamp) assertEq(atCaller, atBlock);
    }

    function test_IsAllowed_FalseForDeactivatedProvider() public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(30 days));
        vm.prank(admin);
        registry.deactivateProvider(provider);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function test_IsAllowed_FalseForUnknownPatient() public view {
        assertFalse(registry.isAllowed(keccak256("nobody"), provider, SCOPE, TREAT));
    }

    function test_GrantConsent_RenewsAndClearsRevocation() public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(1 days));
        _revoke(patientKey, SCOPE, TREAT);
        vm.warp(block.timestamp + 10);
        uint64 later = _inFuture(60 days);
        _grant(patientKey, SCOPE, TREAT, later);
        IConsentRegistry.Consent memory c = registry.consentOf(PATIENT, provider, SCOPE, TREAT);
        assertEq(c.expiresAt, later);
        assertEq(c.revokedAt, 0);
        assertTrue(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function test_RevertWhen_GrantConsent_UnknownPatient() public {
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        q.patientId = keccak256("nobody");
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryUnknownPatient.selector, q.patientId));
        registry.grantConsent(q, _sign(patientKey, _digest(_grantHash(q))));
    }

    function test_RevertWhen_GrantConsent_ProviderNotRegistered() public {
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        q.provider = makeAddr("unregistered");
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryProviderNotActive.selector, q.provider));
        registry.grantConsent(q, _sign(patientKey, _digest(_grantHash(q))));
    }

    function test_RevertWhen_GrantConsent_ProviderDeactivated() public {
        vm.prank(admin);
        registry.deactivateProvider(provider);
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryProviderNotActive.selector, provider));
        registry.grantConsent(q, _sign(patientKey, _digest(_grantHash(q))));
    }

    function test_RevertWhen_GrantConsent_ZeroScope() public {
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, bytes32(0), TREAT, _inFuture(1 days));
        vm.expectRevert(IConsentRegistry.ConsentRegistryInvalidTerms.selector);
        registry.grantConsent(q, _sign(patientKey, _digest(_grantHash(q))));
    }

    function test_RevertWhen_GrantConsent_ZeroPurpose() public {
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, bytes32(0), _inFuture(1 days));
        vm.expectRevert(IConsentRegistry.ConsentRegistryInvalidTerms.selector);
        registry.grantConsent(q, _sign(patientKey, _digest(_grantHash(q))));
    }

    function test_RevertWhen_GrantConsent_ExpiryNotInFuture() public {
        uint64 now_ = uint64(block.timestamp);
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, now_);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidExpiry.selector, now_));
        registry.grantConsent(q, _sign(patientKey, _digest(_grantHash(q))));
    }

    function test_RevertWhen_GrantConsent_Replayed() public {
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        bytes memory sig = _sign(patientKey, _digest(_grantHash(q)));
        registry.grantConsent(q, sig);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, patient, 2));
        registry.grantConsent(q, sig);
    }

    function test_RevokeConsent() public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(30 days));
        vm.expectEmit(address(registry));
        emit IConsentRegistry.ConsentRevoked(PATIENT, provider, SCOPE, TREAT);
        _revoke(patientKey, SCOPE, TREAT);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
        assertEq(registry.consentOf(PATIENT, provider, SCOPE, TREAT).revokedAt, block.timestamp);
    }

    function test_RevokeConsent_WorksForDeactivatedProvider() public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(30 days));
        vm.prank(admin);
        registry.deactivateProvider(provider);
        _revoke(patientKey, SCOPE, TREAT);
        vm.prank(admin);
        registry.registerProvider(provider);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function test_RevertWhen_RevokeConsent_NeverGranted() public {
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentRegistry.ConsentRegistryConsentNotGranted.selector, PATIENT, provider, SCOPE, TREAT
            )
        );
        registry.revokeConsent(q, _sign(patientKey, _digest(_revokeHash(q))));
    }

    function test_RevertWhen_RevokeConsent_AlreadyRevoked() public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(30 days));
        _revoke(patientKey, SCOPE, TREAT);
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentRegistry.ConsentRegistryConsentNotGranted.selector, PATIENT, provider, SCOPE, TREAT
            )
        );
        registry.revokeConsent(q, _sign(patientKey, _digest(_revokeHash(q))));
    }

    function test_RevertWhen_RevokeConsent_UnknownPatient() public {
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        q.patientId = keccak256("nobody");
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryUnknownPatient.selector, q.patientId));
        registry.revokeConsent(q, "");
    }

    function test_RevertWhen_RevokeConsent_SignedByProvider() public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(30 days));
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.revokeConsent(q, _sign(providerKey, _digest(_revokeHash(q))));
    }

    function test_RevertWhen_RevokeConsent_DeadlinePassed() public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(30 days));
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        bytes memory sig = _sign(patientKey, _digest(_revokeHash(q)));
        vm.warp(q.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryExpiredSignature.selector, q.deadline));
        registry.revokeConsent(q, sig);
    }

    function test_ConsentOf_ZeroWhenNeverGranted() public view {
        IConsentRegistry.Consent memory c = registry.consentOf(PATIENT, provider, SCOPE, TREAT);
        assertEq(c.grantedAt, 0);
        assertEq(c.expiresAt, 0);
        assertEq(c.revokedAt, 0);
    }
}
