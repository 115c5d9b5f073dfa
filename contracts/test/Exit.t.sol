// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Market} from "../src/Market.sol";
import {Attest, Base} from "./utils/Base.sol";
import {NettingTree} from "./utils/Merkle.sol";

/// Exit without the operator, and batched deposits.
contract ExitTest is Base {
    uint64 internal constant T0 = 1_700_000_100;
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    uint256 internal constant WINDOW_S = 900 * 96;

    event ExitWithdrawn(address indexed account, uint256 amountMicro);
    event Deposited(address indexed account, address indexed payer, uint256 amountMicro);

    function setUp() public {
        vm.warp(T0);
        _deploy();
        _addParticipant(ALICE);
        _addParticipant(BOB);
        _fund(ALICE, 1_000);
        _fund(BOB, 1_000);
    }

    function _notStalled(uint256 opensAtS) internal view returns (bytes memory) {
        return abi.encodeWithSelector(Market.NotStalled.selector, opensAtS, block.timestamp);
    }

    function test_exitWindowFromDeploy() public {
        vm.assertEq(market.exitWindowS(), WINDOW_S, "96 intervals of 900 s");
        vm.assertEq(market.exitOpensAtS(), T0 + WINDOW_S, "from the deploy");
        vm.warp(T0 + WINDOW_S - 1);
        vm.assertFalse(market.isStalled(), "not yet");
        vm.prank(ALICE);
        vm.expectRevert(_notStalled(T0 + WINDOW_S));
        market.exitWithdraw();
        vm.warp(T0 + WINDOW_S);
        vm.assertTrue(market.isStalled(), "stalled");
        vm.expectEmit(true, false, false, true);
        emit ExitWithdrawn(ALICE, 1_000);
        vm.prank(ALICE);
        market.exitWithdraw();
        vm.assertEq(token.balanceOf(ALICE), 1_000, "paid out");
        vm.assertEq(market.escrowOf(ALICE), 0, "escrow emptied");
        vm.prank(ALICE);
        vm.expectRevert(Market.ZeroAmount.selector);
        market.exitWithdraw();
    }

    function test_settlementRestartsTheWindowButCommitsDoNot() public {
        vm.warp(T0 + WINDOW_S - 10);
        _commit(T0);
        vm.assertEq(market.exitOpensAtS(), T0 + WINDOW_S, "a commit changes nothing");
        _settle(T0, _empty());
        vm.assertEq(market.exitOpensAtS(), T0 + 2 * WINDOW_S - 10, "restarted");
        vm.warp(T0 + WINDOW_S + 1);
        vm.prank(ALICE);
        vm.expectRevert(_notStalled(T0 + 2 * WINDOW_S - 10));
        market.exitWithdraw();
    }

    function test_exitIgnoresTheWithdrawalLockAndClearsTheRequest() public {
        _commit(T0);
        vm.prank(ALICE);
        market.requestWithdrawal(400);
        vm.warp(T0 + WINDOW_S);
        vm.prank(ALICE);
        market.exitWithdraw(); // interval T0 was never settled: the lock would hold
        (uint256 amount,) = market.withdrawalRequest(ALICE);
        vm.assertEq(amount, 0, "request cleared");
        vm.assertEq(token.balanceOf(ALICE), 1_000, "whole escrow");
    }

    function test_exitClaimsTheLastRootFirst() public {
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = NettingTree.leaf(1, ALICE, 300);
        leaves[1] = NettingTree.leaf(1, BOB, -300);
        bytes32[][] memory tree = NettingTree.layers(leaves);
        bytes32 root = NettingTree.root(tree);
        _commit(T0);
        bytes[] memory att = _attRoot(T0, root, 300, 300, 2);
        vm.prank(OPERATOR);
        market.settleIntervalRoot(T0, root, 300, 300, 2, att);
        vm.warp(block.timestamp + WINDOW_S);
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(Market.UnclaimedSettlement.selector, BOB, 0, 1));
        market.exitWithdraw(); // a debtor cannot leave its unclaimed debit behind
        vm.prank(BOB);
        market.exitClaimAndWithdraw(1, -300, NettingTree.proof(tree, 1));
        vm.prank(ALICE);
        market.exitClaimAndWithdraw(1, 300, NettingTree.proof(tree, 0));
        vm.assertEq(token.balanceOf(BOB), 700, "debtor pays");
        vm.assertEq(token.balanceOf(ALICE), 1_300, "creditor paid");
        vm.assertEq(token.balanceOf(address(market)), 0, "both left");
    }

    function test_revert_exitClaimBeforeTheWindow() public {
        vm.prank(ALICE);
        vm.expectRevert(_notStalled(T0 + WINDOW_S));
        market.exitClaimAndWithdraw(1, 0, new bytes32[](0));
    }

    function testFuzz_exitOnlyAfterTheWindow(uint32 elapsedS) public {
        vm.warp(T0 + elapsedS);
        vm.prank(ALICE);
        (bool ok,) = address(market).call(abi.encodeCall(Market.exitWithdraw, ()));
        vm.assertEq(ok, elapsedS >= WINDOW_S, "exit iff stalled");
        vm.assertEq(token.balanceOf(ALICE), ok ? 1_000 : 0, "paid iff exited");
    }

    function test_revert_invalidExitWindow() public {
        vm.expectRevert(abi.encodeWithSelector(Market.InvalidExitWindow.selector, 0, 96));
        new Market(token, registry, GRID, OPERATOR, 0, 96);
        vm.expectRevert(abi.encodeWithSelector(Market.InvalidExitWindow.selector, 900, 0));
        new Market(token, registry, GRID, OPERATOR, 900, 0);
    }

    // ------------------------------------------------------------------ depositForMany

    function test_depositForManyMovesTheTotalOnce() public {
        address[] memory accounts = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (accounts[0], accounts[1], amounts[0], amounts[1]) = (ALICE, BOB, 5, 7);
        vm.startPrank(OPERATOR);
        token.mint(OPERATOR, 12);
        vm.expectEmit(true, true, false, true);
        emit Deposited(ALICE, OPERATOR, 5);
        vm.expectEmit(true, true, false, true);
        emit Deposited(BOB, OPERATOR, 7);
        market.depositForMany(accounts, amounts);
        vm.stopPrank();
        vm.assertEq(market.escrowOf(ALICE), 1_005, "alice");
        vm.assertEq(market.escrowOf(BOB), 1_007, "bob");
        vm.assertEq(token.balanceOf(OPERATOR), 0, "total paid");
    }

    function test_revert_depositForMany() public {
        address[] memory accounts = new address[](2);
        (accounts[0], accounts[1]) = (ALICE, address(0xDEAD));
        uint256[] memory amounts = new uint256[](2);
        (amounts[0], amounts[1]) = (1, 1);
        vm.startPrank(OPERATOR);
        token.mint(OPERATOR, 2);
        vm.expectRevert(abi.encodeWithSelector(Market.LengthMismatch.selector, 2, 1));
        market.depositForMany(accounts, new uint256[](1));
        vm.expectRevert(abi.encodeWithSelector(Market.UnknownParticipant.selector, address(0xDEAD)));
        market.depositForMany(accounts, amounts);
        accounts[1] = BOB;
        amounts[1] = 0;
        vm.expectRevert(Market.ZeroAmount.selector);
        market.depositForMany(accounts, amounts);
        vm.stopPrank();
        vm.assertEq(market.escrowOf(ALICE), 1_000, "nothing half-written");
    }

    function testFuzz_depositForManyConserves(uint64 a, uint64 b) public {
        vm.assume(a > 0 && b > 0);
        address[] memory accounts = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (accounts[0], accounts[1], amounts[0], amounts[1]) = (ALICE, BOB, a, b);
        uint256 before = token.balanceOf(address(market));
        vm.startPrank(OPERATOR);
        token.mint(OPERATOR, uint256(a) + b);
        market.depositForMany(accounts, amounts);
        vm.stopPrank();
        vm.assertEq(token.balanceOf(address(market)) - before, uint256(a) + b, "tokens in");
        vm.assertEq(market.escrowOf(ALICE) + market.escrowOf(BOB), 2_000 + uint256(a) + b, "escrow");
    }
}
