// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {IConsentRegistry} from "../src/interfaces/IConsentRegistry.sol";
import {RegistryTestBase} from "./utils/RegistryTestBase.sol";

contract ConsentRegistryAuditTest is RegistryTestBase {
    bytes32 internal constant ROOT = keccak256("root");

    function _anchor(uint64 first, uint64 last) internal {
        vm.prank(admin);
        registry.anchorAuditRoot(keccak256(abi.encode(first, last)), first, last);
    }

    function test_AnchorAuditRoot() public {
        vm.expectEmit(address(registry));
        emit IConsentRegistry.AuditRootAnchored(0, ROOT, 1, 10);
        vm.prank(admin);
        registry.anchorAuditRoot(ROOT, 1, 10);

        assertEq(registry.anchorCount(), 1);
        assertEq(registry.nextAuditSequence(), 11);
        IConsentRegistry.AuditAnchor memory a = registry.anchorAt(0);
        assertEq(a.root, ROOT);
        assertEq(a.firstSequence, 1);
        assertEq(a.lastSequence, 10);
        assertEq(a.anchoredAt, block.timestamp);
    }

    function test_AnchorAuditRoot_SingleEntry() public {
        _anchor(1, 1);
        _anchor(2, 2);
        assertEq(registry.nextAuditSequence(), 3);
    }

    function test_RevertWhen_AnchorAuditRoot_NotOperator() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, relayer, registry.OPERATOR_ROLE()
            )
        );
        vm.prank(relayer);
        registry.anchorAuditRoot(ROOT, 1, 1);
    }

    function test_RevertWhen_AnchorAuditRoot_Gap() public {
        _anchor(1, 5);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryAnchorNotContiguous.selector, uint64(6), uint64(7))
        );
        _anchor(7, 9);
    }

    function test_RevertWhen_AnchorAuditRoot_Overlap() public {
        _anchor(1, 5);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryAnchorNotContiguous.selector, uint64(6), uint64(5))
        );
        _anchor(5, 9);
    }

    function test_RevertWhen_AnchorAuditRoot_Rewrite() public {
        _anchor(1, 5);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryAnchorNotContiguous.selector, uint64(6), uint64(1))
        );
        _anchor(1, 5);
    }

    function test_RevertWhen_AnchorAuditRoot_FirstNotOne() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryAnchorNotContiguous.selector, uint64(1), uint64(0))
        );
        _anchor(0, 3);
    }

    function test_RevertWhen_AnchorAuditRoot_ReversedRange() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentRegistryInvalidAnchor.selector, ROOT, uint64(5), uint64(4))
        );
        vm.prank(admin);
        registry.anchorAuditRoot(ROOT, 5, 4);
    }

    function test_RevertWhen_AnchorAuditRoot_ZeroRoot() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentRegistry.ConsentRegistryInvalidAnchor.selector, bytes32(0), uint64(1), uint64(1)
            )
        );
        vm.prank(admin);
        registry.anchorAuditRoot(bytes32(0), 1, 1);
    }

    function test_RevertWhen_AnchorAt_OutOfRange() public {
        vm.expectRevert();
        registry.anchorAt(0);
    }

    function testFuzz_AnchorIndexOf(uint8 count, uint64 probe) public {
        count = uint8(bound(count, 1, 40));
        uint64 next = 1;
        for (uint256 i = 0; i < count; i++) {
            uint64 last = next + uint64(uint256(keccak256(abi.encode(i))) % 7);
            _anchor(next, last);
            next = last + 1;
        }
        probe = uint64(bound(probe, 1, next - 1));
        uint256 index = registry.anchorIndexOf(probe);
        IConsentRegistry.AuditAnchor memory a = registry.anchorAt(index);
        assertLe(a.firstSequence, probe);
        assertGe(a.lastSequence, probe);
    }

    function testFuzz_RevertWhen_AnchorIndexOf_NotAnchored(uint64 probe) public {
        _anchor(1, 10);
        vm.assume(probe == 0 || probe > 10);
        vm.expectRevert(abi.encodeWithSelector(IConsentRegistry.ConsentRegistryUnknownSequence.selector, probe));
        registry.anchorIndexOf(probe);
    }

    function testFuzz_AnchorsStayContiguous(uint64 first, uint64 last) public {
        _anchor(1, 10);
        first = uint64(bound(first, 0, type(uint64).max - 1));
        last = uint64(bound(last, first, type(uint64).max - 1));
        vm.prank(admin);
        if (first != 11) vm.expectRevert();
        registry.anchorAuditRoot(ROOT, first, last);
    }
}
