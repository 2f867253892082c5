// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ConsentRegistry} from "../../src/ConsentRegistry.sol";
import {IConsentRegistry} from "../../src/interfaces/IConsentRegistry.sol";
import {RegistryTestBase} from "../utils/RegistryTestBase.sol";

/// @dev Drives the registry with random legitimate and hostile calls and keeps a ghost
/// model of what every consent should be. Reuses the test base only for its signing helpers.
contract RegistryHandler is RegistryTestBase {
    uint256 internal constant PATIENTS = 3;
    uint256 internal constant PROVIDERS = 2;

    bytes32[PATIENTS] internal patientIds;
    uint256[PATIENTS] internal currentKeys;
    uint256[PATIENTS] internal retiredKeys;
    uint256[PATIENTS] internal rotations;
    address[PROVIDERS] internal providers;
    bytes32[2] internal scopes = [keccak256("Observation"), keccak256("Condition")];
    bytes32[2] internal purposes = [keccak256("TREAT"), keccak256("HRESCH")];

    struct Model {
        uint256 signedGrants; // grants accepted with a valid patient signature
        bool revoked; // revoked since the last signed grant
        uint64 expiresAt;
    }

    mapping(bytes32 tupleKey => Model) public model;
    mapping(bytes32 tupleKey => bytes) internal lastGrantSignature;
    mapping(bytes32 tupleKey => IConsentRegistry.GrantRequest) internal lastGrantRequest;
    uint256 public forgeriesAccepted;
    uint256 public replaysAccepted;
    uint256 public badAnchorsAccepted;
    uint256 public calls;

    constructor(ConsentRegistry registry_, address admin_) {
        registry = registry_;
        admin = admin_;
        for (uint256 i = 0; i < PATIENTS; i++) {
            patientIds[i] = keccak256(abi.encode("invariant-patient", i));
            currentKeys[i] = uint256(keccak256(abi.encode("invariant-key", i, 0)));
            _register(patientIds[i], currentKeys[i]);
        }
        for (uint256 i = 0; i < PROVIDERS; i++) {
            providers[i] = makeAddr(string(abi.encode("invariant-provider", i)));
            vm.prank(admin);
            registry.registerProvider(providers[i]);
        }
    }

    function setUp() public pure override {}

    // ---------------------------------------------------------------- views

    function tuple(uint256 p, uint256 v, uint256 s, uint256 u)
        public
        view
        returns (bytes32 patientId, address provider_, bytes32 scope, bytes32 purpose)
    {
        return (patientIds[p % PATIENTS], providers[v % PROVIDERS], scopes[s % 2], purposes[u % 2]);
    }

    function tupleKey(bytes32 patientId, address provider_, bytes32 scope, bytes32 purpose)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(patientId, provider_, scope, purpose));
    }

    function _request(uint256 p, uint256 v, uint256 s, uint256 u, uint64 expiresAt)
        internal
        view
        returns (IConsentRegistry.GrantRequest memory q)
    {
        (q.patientId, q.provider, q.scope, q.purpose) = tuple(p, v, s, u);
        q.expiresAt = expiresAt;
        q.nonce = registry.nonces(vm.addr(currentKeys[p % PATIENTS]));
        q.deadline = block.timestamp + 1 hours;
    }

    // -------------------------------------------------------------- actions

    function grant(uint256 p, uint256 v, uint256 s, uint256 u, uint64 ttl) external {
        calls++;
        IConsentRegistry.GrantRequest memory q = _request(p, v, s, u, uint64(block.timestamp + bound(ttl, 1, 30 days)));
        if (registry.providerStatus(q.provider) != IConsentRegistry.ProviderStatus.Active) return;
        bytes memory sig = _sign(currentKeys[p % PATIENTS], _digest(_grantHash(q)));
        registry.grantConsent(q, sig);
        bytes32 k = tupleKey(q.patientId, q.provider, q.scope, q.purpose);
        model[k] = Model({signedGrants: model[k].signedGrants + 1, revoked: false, expiresAt: q.expiresAt});
        lastGrantSignature[k] = sig;
        lastGrantRequest[k] = q;
    }

    function revoke(uint256 p, uint256 v, uint256 s, uint256 u) external {
        calls++;
        (bytes32 patientId, address provider_, bytes32 scope, bytes32 purpose) = tuple(p, v, s, u);
        bytes32 k = tupleKey(patientId, provider_, scope, purpose);
        if (model[k].signedGrants == 0 || model[k].revoked) return;
        uint256 key = currentKeys[p % PATIENTS];
        IConsentRegistry.RevokeRequest memory q = IConsentRegistry.RevokeRequest({
            patientId: patientId,
            provider: provider_,
            scope: scope,
            purpose: purpose,
            nonce: registry.nonces(vm.addr(key)),
            deadline: block.timestamp + 1 hours
        });
        registry.revokeConsent(q, _sign(key, _digest(_revokeHash(q))));
        model[k].revoked = true;
    }

    /// A grant signed by anyone but the patient's current key (random key or the retired one).
    function forgeGrant(uint256 p, uint256 v, uint256 s, uint256 u, uint256 forgerSeed, bool useRetired) external {
        calls++;
        uint256 i = p % PATIENTS;
        uint256 forger = useRetired && retiredKeys[i] != 0 ? retiredKeys[i] : bound(forgerSeed, 1, SECP256K1_N - 1);
        if (forger == currentKeys[i]) return;
        IConsentRegistry.GrantRequest memory q = _request(p, v, s, u, uint64(block.timestamp + 30 days));
        try registry.grantConsent(q, _sign(forger, _digest(_grantHash(q)))) {
            forgeriesAccepted++;
        } catch {}
    }

    /// Re-submit the last accepted grant signature for a tuple (e.g. after its revocation).
    function replayGrant(uint256 p, uint256 v, uint256 s, uint256 u) external {
        calls++;
        (bytes32 patientId, address provider_, bytes32 scope, bytes32 purpose) = tuple(p, v, s, u);
        bytes32 k = tupleKey(patientId, provider_, scope, purpose);
        if (model[k].signedGrants == 0) return;
        try registry.grantConsent(lastGrantRequest[k], lastGrantSignature[k]) {
            replaysAccepted++;
        } catch {}
    }

    function rotate(uint256 p) external {
        calls++;
        uint256 i = p % PATIENTS;
        rotations[i]++;
        uint256 nextKey = uint256(keccak256(abi.encode("invariant-key", i, rotations[i])));
        _rotate(patientIds[i], currentKeys[i], nextKey);
        retiredKeys[i] = currentKeys[i];
        currentKeys[i] = nextKey;
    }

    function toggleProvider(uint256 v) external {
        calls++;
        address provider_ = providers[v % PROVIDERS];
        bool active = registry.providerStatus(provider_) == IConsentRegistry.ProviderStatus.Active;
        vm.prank(admin);
        if (active) registry.deactivateProvider(provider_);
        else registry.registerProvider(provider_);
    }

    function anchor(uint64 size) external {
        calls++;
        uint64 first = registry.nextAuditSequence();
        uint64 last = first + uint64(bound(size, 0, 1000));
        vm.prank(admin);
        registry.anchorAuditRoot(keccak256(abi.encode(first, last)), first, last);
    }

    function anchorOutOfSequence(uint64 first, uint64 size) external {
        calls++;
        if (first == registry.nextAuditSequence()) return;
        first = uint64(bound(first, 0, type(uint64).max - 2000));
        uint64 last = first + uint64(bound(size, 0, 1000));
        vm.prank(admin);
        try registry.anchorAuditRoot(keccak256("bad"), first, last) {
            badAnchorsAccepted++;
        } catch {}
    }

    function warp(uint256 seconds_) external {
        calls++;
        vm.warp(block.timestamp + bound(seconds_, 1, 10 days));
    }
}
