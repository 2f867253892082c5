// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IConsentRegistry} from "../src/interfaces/IConsentRegistry.sol";
import {RegistryTestBase} from "./utils/RegistryTestBase.sol";

/// @dev Fuzz tests for every signature path: register, rotate, grant, revoke, emergency.
/// Each path is attacked with a wrong signer, a replay, an expired deadline, a domain for
/// another chain id or another contract, a malleable (high-s) twin, and a rotated-away key.
contract ConsentRegistrySignaturesTest is RegistryTestBase {
    function setUp() public override {
        super.setUp();
        _register(PATIENT, patientKey);
        _grantEmergencyRole(provider);
    }

    function _key(uint256 seed) internal pure returns (uint256) {
        return bound(seed, 1, SECP256K1_N - 1);
    }

    function _otherDomainDigest(bytes32 structHash, uint256 chainId, address verifying, bool otherChain)
        internal
        view
        returns (bytes32)
    {
        if (otherChain) {
            vm.assume(chainId != block.chainid);
            return _digestFor(structHash, chainId, address(registry));
        }
        vm.assume(verifying != address(registry));
        return _digestFor(structHash, block.chainid, verifying);
    }

    // ------------------------------------------------------------------ grant

    function testFuzz_GrantConsent(uint64 ttl, bytes32 scope, bytes32 purpose) public {
        vm.assume(scope != bytes32(0) && purpose != bytes32(0));
        ttl = uint64(bound(ttl, 1, 3650 days));
        _grant(patientKey, scope, purpose, _inFuture(ttl));
        assertTrue(registry.isAllowed(PATIENT, provider, scope, purpose));
    }

    function testFuzz_RevertWhen_GrantConsent_WrongSigner(uint256 seed) public {
        uint256 key = _key(seed);
        vm.assume(key != patientKey);
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.grantConsent(q, _sign(key, _digest(_grantHash(q))));
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function testFuzz_RevertWhen_GrantConsent_Replayed(uint8 grants) public {
        grants = uint8(bound(grants, 1, 8));
        IConsentRegistry.GrantRequest memory first = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        bytes memory sig = _sign(patientKey, _digest(_grantHash(first)));
        registry.grantConsent(first, sig);
        for (uint256 i = 1; i < grants; i++) {
            _grant(patientKey, keccak256(abi.encode(i)), TREAT, _inFuture(1 days));
        }
        _revoke(patientKey, SCOPE, TREAT);
        uint256 current = registry.nonces(patient);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, patient, current));
        registry.grantConsent(first, sig);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function testFuzz_RevertWhen_GrantConsent_DeadlinePassed(uint256 late) public {
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(400 days));
        bytes memory sig = _sign(patientKey, _digest(_grantHash(q)));
        vm.warp(q.deadline + bound(late, 1, 365 days));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryExpiredSignature.selector, q.deadline));
        registry.grantConsent(q, sig);
    }

    function testFuzz_RevertWhen_GrantConsent_OtherDomain(uint256 chainId, address verifying, bool otherChain) public {
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        bytes memory sig = _sign(patientKey, _otherDomainDigest(_grantHash(q), chainId, verifying, otherChain));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.grantConsent(q, sig);
    }

    function testFuzz_RevertWhen_GrantConsent_Malleable(bytes32 scope) public {
        vm.assume(scope != bytes32(0));
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, scope, TREAT, _inFuture(1 days));
        bytes memory sig = _sign(patientKey, _digest(_grantHash(q)));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.grantConsent(q, _malleate(sig));
        registry.grantConsent(q, sig); // the canonical form still works
    }

    function testFuzz_RevertWhen_GrantConsent_RotatedAwayKey(uint256 seed) public {
        uint256 nextKey = _key(seed);
        vm.assume(nextKey != patientKey && nextKey != providerKey);
        _rotate(PATIENT, patientKey, nextKey);
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, vm.addr(nextKey))
        );
        registry.grantConsent(q, _sign(patientKey, _digest(_grantHash(q))));
    }

    function testFuzz_RevertWhen_GrantConsent_TamperedTerms(bytes32 scope, uint64 expiresAt) public {
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        bytes memory sig = _sign(patientKey, _digest(_grantHash(q)));
        vm.assume(scope != bytes32(0) && scope != SCOPE);
        q.scope = scope;
        q.expiresAt = uint64(bound(expiresAt, block.timestamp + 1, type(uint64).max));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.grantConsent(q, sig);
    }

    function testFuzz_RevertWhen_GrantConsent_GarbageSignature(bytes memory sig) public {
        IConsentRegistry.GrantRequest memory q = _grantRequest(patientKey, SCOPE, TREAT, _inFuture(1 days));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.grantConsent(q, sig);
    }

    // ----------------------------------------------------------------- revoke

    function testFuzz_RevertWhen_RevokeConsent_WrongSigner(uint256 seed) public {
        uint256 key = _key(seed);
        vm.assume(key != patientKey);
        _grant(patientKey, SCOPE, TREAT, _inFuture(1 days));
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.revokeConsent(q, _sign(key, _digest(_revokeHash(q))));
        assertTrue(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function testFuzz_RevertWhen_RevokeConsent_Replayed(uint64 ttl) public {
        ttl = uint64(bound(ttl, 1, 365 days));
        _grant(patientKey, SCOPE, TREAT, _inFuture(ttl));
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        bytes memory sig = _sign(patientKey, _digest(_revokeHash(q)));
        registry.revokeConsent(q, sig);
        _grant(patientKey, SCOPE, TREAT, _inFuture(ttl));
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, patient, q.nonce + 2));
        registry.revokeConsent(q, sig);
    }

    function testFuzz_RevertWhen_RevokeConsent_DeadlinePassed(uint256 late) public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(400 days));
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        bytes memory sig = _sign(patientKey, _digest(_revokeHash(q)));
        vm.warp(q.deadline + bound(late, 1, 365 days));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryExpiredSignature.selector, q.deadline));
        registry.revokeConsent(q, sig);
    }

    function testFuzz_RevertWhen_RevokeConsent_OtherDomain(uint256 chainId, address verifying, bool otherChain) public {
        _grant(patientKey, SCOPE, TREAT, _inFuture(1 days));
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        bytes memory sig = _sign(patientKey, _otherDomainDigest(_revokeHash(q), chainId, verifying, otherChain));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.revokeConsent(q, sig);
    }

    function testFuzz_RevertWhen_RevokeConsent_Malleable(bytes32 purpose) public {
        vm.assume(purpose != bytes32(0));
        _grant(patientKey, SCOPE, purpose, _inFuture(1 days));
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, purpose);
        bytes memory sig = _sign(patientKey, _digest(_revokeHash(q)));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.revokeConsent(q, _malleate(sig));
        registry.revokeConsent(q, sig);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, purpose));
    }

    function testFuzz_RevertWhen_RevokeConsent_RotatedAwayKey(uint256 seed) public {
        uint256 nextKey = _key(seed);
        vm.assume(nextKey != patientKey && nextKey != providerKey);
        _grant(patientKey, SCOPE, TREAT, _inFuture(1 days));
        _rotate(PATIENT, patientKey, nextKey);
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(patientKey, SCOPE, TREAT);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, vm.addr(nextKey))
        );
        registry.revokeConsent(q, _sign(patientKey, _digest(_revokeHash(q))));
        assertTrue(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    // --------------------------------------------------------------- rotation

    function testFuzz_RotateController(uint256 seed) public {
        uint256 nextKey = _key(seed);
        vm.assume(nextKey != patientKey && nextKey != providerKey);
        _rotate(PATIENT, patientKey, nextKey);
        assertEq(registry.controllerOf(PATIENT), vm.addr(nextKey));
    }

    function testFuzz_RevertWhen_RotateController_WrongCurrentSigner(uint256 seed) public {
        uint256 key = _key(seed);
        vm.assume(key != patientKey);
        uint256 nextKey = 0xA11CE;
        address next = vm.addr(nextKey);
        bytes32 digest = _digest(_rotateHash(PATIENT, next, 1, block.timestamp));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.rotateController(PATIENT, next, 1, block.timestamp, _sign(key, digest), _sign(nextKey, digest));
    }

    function testFuzz_RevertWhen_RotateController_WrongNewSigner(uint256 seed) public {
        uint256 key = _key(seed);
        uint256 nextKey = 0xA11CE;
        vm.assume(key != nextKey);
        address next = vm.addr(nextKey);
        bytes32 digest = _digest(_rotateHash(PATIENT, next, 1, block.timestamp));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, next));
        registry.rotateController(PATIENT, next, 1, block.timestamp, _sign(patientKey, digest), _sign(key, digest));
    }

    function testFuzz_RevertWhen_RotateController_Replayed(uint256 seed) public {
        uint256 nextKey = _key(seed);
        vm.assume(nextKey != patientKey && nextKey != providerKey && nextKey != 0xB0B);
        address next = vm.addr(nextKey);
        bytes32 digest = _digest(_rotateHash(PATIENT, next, 1, block.timestamp));
        bytes memory a = _sign(patientKey, digest);
        bytes memory b = _sign(nextKey, digest);
        registry.rotateController(PATIENT, next, 1, block.timestamp, a, b);
        _rotate(PATIENT, nextKey, 0xB0B);
        // Replaying the first rotation: the new key is already bound, so nothing moves.
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryControllerInUse.selector, next));
        registry.rotateController(PATIENT, next, 1, block.timestamp, a, b);
        assertEq(registry.controllerOf(PATIENT), vm.addr(0xB0B));
    }

    function testFuzz_RevertWhen_RotateController_DeadlinePassed(uint256 late) public {
        uint256 nextKey = 0xA11CE;
        address next = vm.addr(nextKey);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 digest = _digest(_rotateHash(PATIENT, next, 1, deadline));
        bytes memory a = _sign(patientKey, digest);
        bytes memory b = _sign(nextKey, digest);
        vm.warp(deadline + bound(late, 1, 365 days));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryExpiredSignature.selector, deadline));
        registry.rotateController(PATIENT, next, 1, deadline, a, b);
    }

    function testFuzz_RevertWhen_RotateController_OtherDomain(uint256 chainId, address verifying, bool otherChain)
        public
    {
        uint256 nextKey = 0xA11CE;
        address next = vm.addr(nextKey);
        bytes32 digest =
            _otherDomainDigest(_rotateHash(PATIENT, next, 1, block.timestamp), chainId, verifying, otherChain);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.rotateController(PATIENT, next, 1, block.timestamp, _sign(patientKey, digest), _sign(nextKey, digest));
    }

    function testFuzz_RevertWhen_RotateController_Malleable(bool malleateCurrent) public {
        uint256 nextKey = 0xA11CE;
        address next = vm.addr(nextKey);
        bytes32 digest = _digest(_rotateHash(PATIENT, next, 1, block.timestamp));
        bytes memory a = _sign(patientKey, digest);
        bytes memory b = _sign(nextKey, digest);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentRegistry.ConsentRegistryInvalidSignature.selector, malleateCurrent ? patient : next
            )
        );
        registry.rotateController(
            PATIENT, next, 1, block.timestamp, malleateCurrent ? _malleate(a) : a, malleateCurrent ? b : _malleate(b)
        );
    }

    function testFuzz_RevertWhen_RotateController_ByRotatedAwayKey(uint256 seed) public {
        uint256 nextKey = _key(seed);
        vm.assume(nextKey != patientKey && nextKey != providerKey && nextKey != 0xB0B);
        _rotate(PATIENT, patientKey, nextKey);
        address attacker = vm.addr(0xB0B);
        uint256 nonce = registry.nonces(patient);
        bytes32 digest = _digest(_rotateHash(PATIENT, attacker, nonce, block.timestamp));
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, vm.addr(nextKey))
        );
        registry.rotateController(
            PATIENT, attacker, nonce, block.timestamp, _sign(patientKey, digest), _sign(0xB0B, digest)
        );
    }

    // ----------------------------------------------------------- registration

    function testFuzz_RegisterPatient(bytes32 patientId, uint256 seed) public {
        vm.assume(patientId != bytes32(0) && patientId != PATIENT);
        uint256 key = _key(seed);
        vm.assume(key != patientKey);
        _register(patientId, key);
        assertEq(registry.controllerOf(patientId), vm.addr(key));
    }

    function testFuzz_RevertWhen_RegisterPatient_WrongSigner(uint256 seed) public {
        uint256 key = _key(seed);
        address controller = vm.addr(0xC0FFEE);
        vm.assume(key != 0xC0FFEE);
        bytes32 id = keccak256("patient-2");
        bytes memory sig = _sign(key, _digest(_registerHash(id, controller, 0, block.timestamp)));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, controller));
        vm.prank(admin);
        registry.registerPatient(id, controller, 0, block.timestamp, sig);
    }

    function testFuzz_RevertWhen_RegisterPatient_OtherDomain(uint256 chainId, address verifying, bool otherChain)
        public
    {
        address controller = vm.addr(0xC0FFEE);
        bytes32 id = keccak256("patient-2");
        bytes32 digest =
            _otherDomainDigest(_registerHash(id, controller, 0, block.timestamp), chainId, verifying, otherChain);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, controller));
        vm.prank(admin);
        registry.registerPatient(id, controller, 0, block.timestamp, _sign(0xC0FFEE, digest));
    }

    function testFuzz_RevertWhen_RegisterPatient_Malleable(bytes32 id) public {
        vm.assume(id != bytes32(0) && id != PATIENT);
        address controller = vm.addr(0xC0FFEE);
        bytes memory sig = _sign(0xC0FFEE, _digest(_registerHash(id, controller, 0, block.timestamp)));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, controller));
        vm.prank(admin);
        registry.registerPatient(id, controller, 0, block.timestamp, _malleate(sig));
    }

    function testFuzz_RevertWhen_RegisterPatient_DeadlinePassed(uint256 late) public {
        address controller = vm.addr(0xC0FFEE);
        bytes32 id = keccak256("patient-2");
        uint256 deadline = block.timestamp;
        bytes memory sig = _sign(0xC0FFEE, _digest(_registerHash(id, controller, 0, deadline)));
        vm.warp(deadline + bound(late, 1, 365 days));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryExpiredSignature.selector, deadline));
        vm.prank(admin);
        registry.registerPatient(id, controller, 0, deadline, sig);
    }

    function testFuzz_RevertWhen_RegisterPatient_ReplayedUnderOtherId(bytes32 otherId) public {
        vm.assume(otherId != bytes32(0) && otherId != PATIENT);
        // The patient's own registration signature cannot bind its key to another id.
        bytes memory sig = _sign(patientKey, _digest(_registerHash(otherId, patient, 0, block.timestamp)));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryControllerInUse.selector, patient));
        vm.prank(admin);
        registry.registerPatient(otherId, patient, 0, block.timestamp, sig);
    }

    // -------------------------------------------------------------- emergency

    function testFuzz_RevertWhen_EmergencyBySig_WrongSigner(uint256 seed) public {
        uint256 key = _key(seed);
        vm.assume(key != providerKey);
        IConsentRegistry.EmergencyRequest memory q = _emergencyRequest(SCOPE, 1 hours);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, provider));
        registry.openEmergencyAccessBySig(q, _sign(key, _digest(_emergencyHash(q))));
    }

    function testFuzz_RevertWhen_EmergencyBySig_Replayed(uint64 duration) public {
        duration = uint64(bound(duration, 1, registry.MAX_EMERGENCY_DURATION()));
        IConsentRegistry.EmergencyRequest memory q = _emergencyRequest(SCOPE, duration);
        q.deadline = block.timestamp + 2 days;
        bytes memory sig = _sign(providerKey, _digest(_emergencyHash(q)));
        registry.openEmergencyAccessBySig(q, sig);
        vm.warp(block.timestamp + duration);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, provider, 1));
        registry.openEmergencyAccessBySig(q, sig);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function testFuzz_RevertWhen_EmergencyBySig_DeadlinePassed(uint256 late) public {
        IConsentRegistry.EmergencyRequest memory q = _emergencyRequest(SCOPE, 1 hours);
        bytes memory sig = _sign(providerKey, _digest(_emergencyHash(q)));
        vm.warp(q.deadline + bound(late, 1, 365 days));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryExpiredSignature.selector, q.deadline));
        registry.openEmergencyAccessBySig(q, sig);
    }

    function testFuzz_RevertWhen_EmergencyBySig_OtherDomain(uint256 chainId, address verifying, bool otherChain)
        public
    {
        IConsentRegistry.EmergencyRequest memory q = _emergencyRequest(SCOPE, 1 hours);
        bytes memory sig = _sign(providerKey, _otherDomainDigest(_emergencyHash(q), chainId, verifying, otherChain));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, provider));
        registry.openEmergencyAccessBySig(q, sig);
    }

    function testFuzz_RevertWhen_EmergencyBySig_Malleable(bytes32 reasonHash) public {
        vm.assume(reasonHash != bytes32(0));
        IConsentRegistry.EmergencyRequest memory q = _emergencyRequest(SCOPE, 1 hours);
        q.reasonHash = reasonHash;
        bytes memory sig = _sign(providerKey, _digest(_emergencyHash(q)));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, provider));
        registry.openEmergencyAccessBySig(q, _malleate(sig));
    }

    function testFuzz_RevertWhen_EmergencyBySig_ProviderWithoutRole(uint256 seed) public {
        uint256 key = _key(seed);
        address other = vm.addr(key);
        vm.assume(other != provider);
        vm.prank(admin);
        registry.registerProvider(other);
        IConsentRegistry.EmergencyRequest memory q = _emergencyRequest(SCOPE, 1 hours);
        q.provider = other;
        q.nonce = registry.nonces(other);
        vm.expectRevert(); // AccessControlUnauthorizedAccount(other, EMERGENCY_ROLE)
        registry.openEmergencyAccessBySig(q, _sign(key, _digest(_emergencyHash(q))));
    }
}
