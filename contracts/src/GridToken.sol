// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title GridToken: the settlement currency of the gridledger market ("Grid Euro").
/// @notice One token unit is one micro-euro (6 decimals), the unit every amount in gridledger uses.
/// @dev Minting is restricted to MINTER_ROLE; the ERC20 Transfer event records every mint.
contract GridToken is ERC20, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin receives DEFAULT_ADMIN_ROLE and MINTER_ROLE.
    constructor(address admin) ERC20("Grid Euro", "gEUR") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Micro-units: 1 gEUR = 1,000,000 base units.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Create `amountMicro` new tokens for `to`.
    function mint(address to, uint256 amountMicro) external onlyRole(MINTER_ROLE) {
        _mint(to, amountMicro);
    }
}
