// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {Base} from "./utils/Base.sol";

contract GridTokenTest is Base {
    function setUp() public {
        _deploy();
    }

    function test_metadata() public view {
        vm.assertEq(token.decimals(), 6, "micro-units");
        vm.assertEq(keccak256(bytes(token.symbol())), keccak256("gEUR"), "symbol");
        vm.assertEq(keccak256(bytes(token.name())), keccak256("Grid Euro"), "name");
    }

    function test_minterMints() public {
        vm.prank(OPERATOR);
        token.mint(address(0xB0B), 1_234_567);
        vm.assertEq(token.balanceOf(address(0xB0B)), 1_234_567, "balance");
        vm.assertEq(token.totalSupply(), 1_234_567, "supply");
    }

    function test_revert_mintWithoutRole() public {
        bytes32 role = token.MINTER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), role)
        );
        token.mint(address(this), 1);
    }

    function testFuzz_mintAddsUp(address to, uint128 a, uint128 b) public {
        vm.assume(to != address(0));
        vm.startPrank(OPERATOR);
        token.mint(to, a);
        token.mint(to, b);
        vm.stopPrank();
        vm.assertEq(token.balanceOf(to), uint256(a) + b, "sum of mints");
    }
}
