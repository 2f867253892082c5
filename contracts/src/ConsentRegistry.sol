// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/**
 * @title ConsentRegistry
 * @notice Records patients' consent to providers' access. Skeleton: roles only.
 */
contract ConsentRegistry is AccessControl {
    /// @notice Role that registers providers and anchors the audit log.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @param admin Account granted the admin and operator roles.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }
}
