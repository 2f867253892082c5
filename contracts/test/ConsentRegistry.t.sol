// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ConsentRegistry} from "../src/ConsentRegistry.sol";

contract ConsentRegistryTest is Test {
    ConsentRegistry internal registry;
    address internal admin = makeAddr("admin");

    function setUp() public {
        registry = new ConsentRegistry(admin);
    }

    function test_AdminHoldsOperatorRole() public view {
        assertTrue(registry.hasRole(registry.OPERATOR_ROLE(), admin));
    }

    function testFuzz_OthersHoldNoRole(address other) public view {
        vm.assume(other != admin);
        assertFalse(registry.hasRole(registry.OPERATOR_ROLE(), other));
    }
}
