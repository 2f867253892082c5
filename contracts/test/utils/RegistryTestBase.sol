// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {ConsentRegistry} from "../../src/ConsentRegistry.sol";
import {IConsentRegistry} from "../../src/interfaces/IConsentRegistry.sol";

/// @dev Fresh registry per test, named actors, and EIP-712 signing computed independently
/// of the contract (the domain separator is rebuilt here, not read from the registry).
abstract contract RegistryTestBase is Test {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant REGISTER_TYPEHASH =
        keccak256("RegisterPatient(bytes32 patientId,address controller,uint256 nonce,uint256 deadline)");
    bytes32 internal constant ROTATE_TYPEHASH =
        keccak256("RotateController(bytes32 patientId,address newController,uint256 nonce,uint256 deadline)");
    bytes32 internal constant GRANT_TYPEHASH = keccak256(
        "GrantConsent(bytes32 patientId,address provider,bytes32 scope,bytes32 purpose,uint64 expiresAt,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant REVOKE_TYPEHASH = keccak256(
        "RevokeConsent(bytes32 patientId,address provider,bytes32 scope,bytes32 purpose,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant EMERGENCY_TYPEHASH = keccak256(
        "EmergencyAccess(bytes32 patientId,address provider,bytes32 scope,bytes32 reasonHash,uint64 duration,uint256 nonce,uint256 deadline)"
    );
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    bytes32 internal constant PATIENT = keccak256("patient-1");
    bytes32 internal constant SCOPE = keccak256("Observation");
    bytes32 internal constant TREAT = keccak256("TREAT");
    bytes32 internal constant HRESCH = keccak256("HRESCH");
    bytes32 internal constant REASON = keccak256("salt|unconscious on arrival");

    ConsentRegistry internal registry;
    address internal admin = makeAddr("admin");
    address internal relayer = makeAddr("relayer");
    address internal provider;
    uint256 internal providerKey;
    uint256 internal patientKey;
    address internal patient;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        registry = new ConsentRegistry(admin);
        (patient, patientKey) = makeAddrAndKey("patient-key");
        (provider, providerKey) = makeAddrAndKey("provider");
        vm.prank(admin);
        registry.registerProvider(provider);
    }

    // ------------------------------------------------------------------ digests

    function _domainSeparator(uint256 chainId, address verifyingContract) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("ConsentRegistry"), keccak256("1"), chainId, verifyingContract)
        );
    }

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return _digestFor(structHash, block.chainid, address(registry));
    }

    function _digestFor(bytes32 structHash, uint256 chainId, address verifyingContract)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(chainId, verifyingContract), structHash));
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev The other valid-looking encoding of the same signature: (r, n - s, flipped v).
    function _malleate(bytes memory signature) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function _registerHash(bytes32 patientId, address controller, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(REGISTER_TYPEHASH, patientId, controller, nonce, deadline));
    }

    function _rotateHash(bytes32 patientId, address newController, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(ROTATE_TYPEHASH, patientId, newController, nonce, deadline));
    }

    function _grantHash(IConsentRegistry.GrantRequest memory q) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(GRANT_TYPEHASH, q.patientId, q.provider, q.scope, q.purpose, q.expiresAt, q.nonce, q.deadline)
        );
    }

    function _revokeHash(IConsentRegistry.RevokeRequest memory q) internal pure returns (bytes32) {
        return keccak256(abi.encode(REVOKE_TYPEHASH, q.patientId, q.provider, q.scope, q.purpose, q.nonce, q.deadline));
    }

    function _emergencyHash(IConsentRegistry.EmergencyRequest memory q) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                EMERGENCY_TYPEHASH, q.patientId, q.provider, q.scope, q.reasonHash, q.duration, q.nonce, q.deadline
            )
        );
    }

    // ------------------------------------------------------------------ actions

    function _register(bytes32 patientId, uint256 key) internal {
        _registerExpecting(patientId, key, "");
    }

    /// @dev Registers as the operator; if `revertData` is set, expects exactly that revert.
    function _registerExpecting(bytes32 patientId, uint256 key, bytes memory revertData) internal {
        address controller = vm.addr(key);
        uint256 nonce = registry.nonces(controller);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _sign(key, _digest(_registerHash(patientId, controller, nonce, deadline)));
        if (revertData.length > 0) vm.expectRevert(revertData);
        vm.prank(admin);
        registry.registerPatient(patientId, controller, nonce, deadline, sig);
    }

    function _grantRequest(uint256 key, bytes32 scope, bytes32 purpose, uint64 expiresAt)
        internal
        view
        returns (IConsentRegistry.GrantRequest memory)
    {
        return IConsentRegistry.GrantRequest({
            patientId: PATIENT,
            provider: provider,
            scope: scope,
            purpose: purpose,
            expiresAt: expiresAt,
            nonce: registry.nonces(vm.addr(key)),
            deadline: block.timestamp + 1 hours
        });
    }

    function _revokeRequest(uint256 key, bytes32 scope, bytes32 purpose)
        internal
        view
        returns (IConsentRegistry.RevokeRequest memory)
    {
        return IConsentRegistry.RevokeRequest({
            patientId: PATIENT,
            provider: provider,
            scope: scope,
            purpose: purpose,
            nonce: registry.nonces(vm.addr(key)),
            deadline: block.timestamp + 1 hours
        });
    }

    function _grant(uint256 key, bytes32 scope, bytes32 purpose, uint64 expiresAt) internal {
        IConsentRegistry.GrantRequest memory q = _grantRequest(key, scope, purpose, expiresAt);
        bytes memory sig = _sign(key, _digest(_grantHash(q)));
        vm.prank(relayer);
        registry.grantConsent(q, sig);
    }

    function _revoke(uint256 key, bytes32 scope, bytes32 purpose) internal {
        IConsentRegistry.RevokeRequest memory q = _revokeRequest(key, scope, purpose);
        bytes memory sig = _sign(key, _digest(_revokeHash(q)));
        vm.prank(relayer);
        registry.revokeConsent(q, sig);
    }

    function _rotate(bytes32 patientId, uint256 currentKey, uint256 newKey) internal {
        _rotateExpecting(patientId, currentKey, newKey, "");
    }

    /// @dev Rotates (both keys sign); if `revertData` is set, expects exactly that revert.
    function _rotateExpecting(bytes32 patientId, uint256 currentKey, uint256 newKey, bytes memory revertData) internal {
        address newController = vm.addr(newKey);
        uint256 nonce = registry.nonces(vm.addr(currentKey));
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 digest = _digest(_rotateHash(patientId, newController, nonce, deadline));
        if (revertData.length > 0) vm.expectRevert(revertData);
        vm.prank(relayer);
        registry.rotateController(
            patientId, newController, nonce, deadline, _sign(currentKey, digest), _sign(newKey, digest)
        );
    }

    function _emergencyRequest(bytes32 scope, uint64 duration)
        internal
        view
        returns (IConsentRegistry.EmergencyRequest memory)
    {
        return IConsentRegistry.EmergencyRequest({
            patientId: PATIENT,
            provider: provider,
            scope: scope,
            reasonHash: REASON,
            duration: duration,
            nonce: registry.nonces(provider),
            deadline: block.timestamp + 1 hours
        });
    }

    function _grantEmergencyRole(address account) internal {
        bytes32 role = registry.EMERGENCY_ROLE();
        vm.prank(admin);
        registry.grantRole(role, account);
    }

    function _inFuture(uint256 secondsAhead) internal view returns (uint64) {
        return uint64(block.timestamp + secondsAhead);
    }
}
