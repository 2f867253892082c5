// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IConsentRegistry} from "../src/interfaces/IConsentRegistry.sol";
import {RegistryTestBase} from "./utils/RegistryTestBase.sol";

contract ConsentRegistryPatientsTest is RegistryTestBase {
    function test_Constructor_GrantsAdminAndOperator() public view {
        assertTrue(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(registry.hasRole(registry.OPERATOR_ROLE(), admin));
        assertFalse(registry.hasRole(registry.EMERGENCY_ROLE(), admin));
        assertEq(registry.nextAuditSequence(), 1);
    }

    function test_DomainSeparator_MatchesEip712() public view {
        assertEq(registry.domainSeparator(), _domainSeparator(block.chainid, address(registry)));
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = registry.eip712Domain();
        assertEq(name, "ConsentRegistry");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(registry));
    }

    function test_RegisterPatient() public {
        vm.expectEmit(address(registry));
        emit IConsentRegistry.PatientRegistered(PATIENT, patient);
        _register(PATIENT, patientKey);
        assertEq(registry.controllerOf(PATIENT), patient);
        assertEq(registry.patientOf(patient), PATIENT);
        assertEq(registry.nonces(patient), 1);
    }

    function test_RevertWhen_RegisterPatient_NotOperator() public {
        uint256 deadline = block.timestamp + 1;
        bytes memory sig = _sign(patientKey, _digest(_registerHash(PATIENT, patient, 0, deadline)));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, relayer, registry.OPERATOR_ROLE()
            )
        );
        vm.prank(relayer);
        registry.registerPatient(PATIENT, patient, 0, deadline, sig);
    }

    function test_RevertWhen_RegisterPatient_ZeroId() public {
        _registerExpecting(
            bytes32(0), patientKey, abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidPatient.selector)
        );
    }

    function test_RevertWhen_RegisterPatient_ZeroController() public {
        vm.expectRevert(IConsentRegistry.ConsentRegistryInvalidController.selector);
        vm.prank(admin);
        registry.registerPatient(PATIENT, address(0), 0, block.timestamp, "");
    }

    function test_RevertWhen_RegisterPatient_IdTaken() public {
        _register(PATIENT, patientKey);
        uint256 otherKey = 0xBEEF;
        _registerExpecting(
            PATIENT, otherKey, abi.encodeWithSelector(IConsentRegistry.ConsentRegistryPatientExists.selector, PATIENT)
        );
    }

    function test_RevertWhen_RegisterPatient_KeyControlsAnotherPatient() public {
        _register(PATIENT, patientKey);
        _registerExpecting(
            keccak256("patient-2"),
            patientKey,
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryControllerInUse.selector, patient)
        );
    }

    function test_RevertWhen_RegisterPatient_SignatureByOtherKey() public {
        uint256 deadline = block.timestamp + 1;
        bytes memory sig = _sign(0xBEEF, _digest(_registerHash(PATIENT, patient, 0, deadline)));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        vm.prank(admin);
        registry.registerPatient(PATIENT, patient, 0, deadline, sig);
    }

    function test_RevertWhen_RegisterPatient_DeadlinePassed() public {
        uint256 deadline = block.timestamp - 1;
        bytes memory sig = _sign(patientKey, _digest(_registerHash(PATIENT, patient, 0, deadline)));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryExpiredSignature.selector, deadline));
        vm.prank(admin);
        registry.registerPatient(PATIENT, patient, 0, deadline, sig);
    }

    function test_RevertWhen_RegisterPatient_WrongNonce() public {
        uint256 deadline = block.timestamp + 1;
        bytes memory sig = _sign(patientKey, _digest(_registerHash(PATIENT, patient, 5, deadline)));
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, patient, 0));
        vm.prank(admin);
        registry.registerPatient(PATIENT, patient, 5, deadline, sig);
    }

    function test_RotateController_KeepsConsents() public {
        _register(PATIENT, patientKey);
        _grant(patientKey, SCOPE, TREAT, _inFuture(30 days));
        (address next, uint256 nextKey) = makeAddrAndKey("patient-key-2");

        vm.expectEmit(address(registry));
        emit IConsentRegistry.ControllerRotated(PATIENT, patient, next);
        _rotate(PATIENT, patientKey, nextKey);

        assertEq(registry.controllerOf(PATIENT), next);
        assertEq(registry.patientOf(next), PATIENT);
        assertEq(registry.patientOf(patient), bytes32(0));
        assertTrue(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
        // The new key signs from now on; the old one cannot.
        _revoke(nextKey, SCOPE, TREAT);
        assertFalse(registry.isAllowed(PATIENT, provider, SCOPE, TREAT));
    }

    function test_RevertWhen_RotateController_UnknownPatient() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryUnknownPatient.selector, PATIENT));
        registry.rotateController(PATIENT, address(1), 0, block.timestamp, "", "");
    }

    function test_RevertWhen_RotateController_ZeroController() public {
        _register(PATIENT, patientKey);
        vm.expectRevert(IConsentRegistry.ConsentRegistryInvalidController.selector);
        registry.rotateController(PATIENT, address(0), 1, block.timestamp, "", "");
    }

    function test_RevertWhen_RotateController_BackToRetiredKey() public {
        _register(PATIENT, patientKey);
        uint256 nextKey = 0xA11CE;
        _rotate(PATIENT, patientKey, nextKey);
        _rotateExpecting(
            PATIENT,
            nextKey,
            patientKey,
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryControllerInUse.selector, patient)
        );
    }

    function test_RevertWhen_RotateController_ToOtherPatientsKey() public {
        _register(PATIENT, patientKey);
        uint256 otherKey = 0xB0B;
        _register(keccak256("patient-2"), otherKey);
        _rotateExpecting(
            PATIENT,
            patientKey,
            otherKey,
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryControllerInUse.selector, vm.addr(otherKey))
        );
    }

    function test_RevertWhen_RotateController_NewKeyDidNotSign() public {
        _register(PATIENT, patientKey);
        address next = vm.addr(0xA11CE);
        uint256 deadline = block.timestamp + 1;
        bytes32 digest = _digest(_rotateHash(PATIENT, next, 1, deadline));
        bytes memory current = _sign(patientKey, digest);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, next));
        registry.rotateController(PATIENT, next, 1, deadline, current, _sign(0xBAD, digest));
    }

    function test_RevertWhen_RotateController_CurrentKeyDidNotSign() public {
        _register(PATIENT, patientKey);
        uint256 nextKey = 0xA11CE;
        address next = vm.addr(nextKey);
        uint256 deadline = block.timestamp + 1;
        bytes32 digest = _digest(_rotateHash(PATIENT, next, 1, deadline));
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidSignature.selector, patient));
        registry.rotateController(PATIENT, next, 1, deadline, _sign(nextKey, digest), _sign(nextKey, digest));
    }

    function test_RevertWhen_RotateController_DeadlinePassed() public {
        _register(PATIENT, patientKey);
        uint256 nextKey = 0xA11CE;
        address next = vm.addr(nextKey);
        uint256 deadline = block.timestamp;
        bytes32 digest = _digest(_rotateHash(PATIENT, next, 1, deadline));
        bytes memory a = _sign(patientKey, digest);
        bytes memory b = _sign(nextKey, digest);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryExpiredSignature.selector, deadline));
        registry.rotateController(PATIENT, next, 1, deadline, a, b);
    }
}
