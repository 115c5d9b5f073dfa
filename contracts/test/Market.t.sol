// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {Market} from "../src/Market.sol";
import {Registry} from "../src/Registry.sol";
import {Base, Attest} from "./utils/Base.sol";

contract MarketTest is Base {
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    uint64 internal constant T0 = 1_700_000_100;

    event Deposited(address indexed account, address indexed payer, uint256 amountMicro);
    event WithdrawalRequested(address indexed account, uint256 amountMicro, uint64 unlockAfterSeq);
    event Withdrawn(address indexed account, uint256 amountMicro);
    event IntervalCommitted(
        uint64 indexed intervalStartS,
        bytes32 ordersRoot,
        bytes32 resultRoot,
        bytes32 readingsRoot,
        uint128 clearingPriceMicroPerKwh,
        uint64 volumeWh,
        uint64 seq
    );
    event IntervalSettled(uint64 indexed intervalStartS, uint256 entryCount, uint256 movedMicro, bytes32 entriesHash);

    function setUp() public {
        _deploy();
        _addParticipant(ALICE);
        _addParticipant(BOB);
    }

    function _unauthorized(address caller) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector, caller, keccak256("OPERATOR_ROLE")
        );
    }

    function _conserved() internal view {
        vm.assertEq(
            market.escrowOf(ALICE) + market.escrowOf(BOB) + market.escrowOf(GRID),
            token.balanceOf(address(market)),
            "escrow == market balance"
        );
    }

    // ---------------------------------------------------------------- constructor

    function test_revert_constructorZeroAddress() public {
        vm.expectRevert(Market.ZeroAddress.selector);
        new Market(token, registry, address(0), OPERATOR, 900, 96);
        vm.expectRevert(Market.ZeroAddress.selector);
        new Market(token, Registry(address(0)), GRID, OPERATOR, 900, 96);
    }

    function test_constructorWiring() public view {
        vm.assertEq(address(market.token()), address(token), "token");
        vm.assertEq(address(market.registry()), address(registry), "registry");
        vm.assertEq(market.gridOperator(), GRID, "grid operator");
        vm.assertTrue(market.hasRole(market.OPERATOR_ROLE(), OPERATOR), "operator role");
    }

    // ---------------------------------------------------------------- escrow

    function test_deposit() public {
        vm.prank(OPERATOR);
        token.mint(ALICE, 500);
        vm.startPrank(ALICE);
        token.approve(address(market), 500);
        vm.expectEmit(true, true, false, true);
        emit Deposited(ALICE, ALICE, 300);
        market.deposit(300);
        vm.stopPrank();
        vm.assertEq(market.escrowOf(ALICE), 300, "escrow");
        vm.assertEq(token.balanceOf(ALICE), 200, "wallet");
        _conserved();
    }

    function test_depositFor() public {
        vm.startPrank(OPERATOR);
        token.mint(OPERATOR, 1_000);
        vm.expectEmit(true, true, false, true);
        emit Deposited(BOB, OPERATOR, 1_000);
        market.depositFor(BOB, 1_000);
        vm.stopPrank();
        vm.assertEq(market.escrowOf(BOB), 1_000, "escrow");
        _conserved();
    }

    function test_revert_depositZeroOrUnknown() public {
        vm.expectRevert(Market.ZeroAmount.selector);
        market.deposit(0);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.UnknownParticipant.selector, address(0xDEAD)));
        market.depositFor(address(0xDEAD), 1);
    }

    function test_revert_depositWithoutAllowance() public {
        vm.prank(OPERATOR);
        token.mint(ALICE, 10);
        vm.prank(ALICE);
        vm.expectRevert(); // ERC20InsufficientAllowance from the token
        market.deposit(10);
    }

    function test_withdrawalFlow() public {
        _fund(ALICE, 1_000);
        _commit(T0); // ALICE may hold positions in T0 (committed) and in the open interval
        vm.expectEmit(true, false, false, true);
        emit WithdrawalRequested(ALICE, 600, 2);
        vm.prank(ALICE);
        market.requestWithdrawal(600);
        (uint256 amount, uint64 unlockAfterSeq) = market.withdrawalRequest(ALICE);
        vm.assertEq(amount, 600, "requested");
        vm.assertEq(unlockAfterSeq, 2, "unlock after the open interval");

        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Market.WithdrawalLocked.selector, ALICE, uint64(2), uint64(0)));
        market.withdraw();

        _settle(T0, _pair(ALICE, -700, BOB, 700)); // the open position is paid from escrow
        _commit(T0 + 900);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Market.WithdrawalLocked.selector, ALICE, uint64(2), uint64(1)));
        market.withdraw();
        _settle(T0 + 900, _empty());

        vm.expectEmit(true, false, false, true);
        emit Withdrawn(ALICE, 300);
        vm.prank(ALICE);
        market.withdraw(); // min(600 requested, 300 left)
        vm.assertEq(token.balanceOf(ALICE), 300, "paid out");
        vm.assertEq(market.escrowOf(ALICE), 0, "escrow emptied");
        _conserved();
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Market.NoWithdrawalRequested.selector, ALICE));
        market.withdraw();
    }

    function test_withdrawBeforeAnyCommitWaitsForTheFirstInterval() public {
        _fund(ALICE, 100);
        vm.prank(ALICE);
        market.requestWithdrawal(100);
        _commit(T0);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Market.WithdrawalLocked.selector, ALICE, uint64(1), uint64(0)));
        market.withdraw();
        _settle(T0, _empty());
        vm.prank(ALICE);
        market.withdraw();
        vm.assertEq(token.balanceOf(ALICE), 100, "paid");
    }

    function test_revert_requestWithdrawalZeroOrTooMuch() public {
        _fund(ALICE, 100);
        vm.startPrank(ALICE);
        vm.expectRevert(Market.ZeroAmount.selector);
        market.requestWithdrawal(0);
        vm.expectRevert(abi.encodeWithSelector(Market.InsufficientEscrow.selector, ALICE, 100, 101));
        market.requestWithdrawal(101);
        vm.stopPrank();
    }

    function test_newRequestRestartsTheLock() public {
        _fund(ALICE, 100);
        vm.prank(ALICE);
        market.requestWithdrawal(10);
        _commit(T0);
        vm.prank(ALICE);
        market.requestWithdrawal(20);
        (uint256 amount, uint64 unlockAfterSeq) = market.withdrawalRequest(ALICE);
        vm.assertEq(amount, 20, "replaced");
        vm.assertEq(unlockAfterSeq, 2, "restarted");
    }

    // ---------------------------------------------------------------- commit

    function test_commitInterval() public {
        bytes32 a = keccak256("orders");
        bytes32 b = keccak256("result");
        bytes32 c = keccak256("readings");
        vm.expectEmit(true, false, false, true);
        emit IntervalCommitted(T0, a, b, c, 123_456, 789, 1);
        vm.prank(OPERATOR);
        market.commitInterval(T0, a, b, c, 123_456, 789);
        (bytes32 ra, bytes32 rb, bytes32 rc, uint128 price, uint64 volume, bool committed, bool settled) =
            market.interval(T0);
        vm.assertEq(ra, a, "orders root");
        vm.assertEq(rb, b, "result root");
        vm.assertEq(rc, c, "readings root");
        vm.assertEq(price, 123_456, "price");
        vm.assertEq(volume, 789, "volume");
        vm.assertTrue(committed && !settled, "flags");
        vm.assertEq(market.intervalAt(1), T0, "by seq");
        (uint64 last, uint64 nCommitted, uint64 nSettled) = market.progress();
        vm.assertTrue(last == T0 && nCommitted == 1 && nSettled == 0, "progress");
    }

    function test_revert_commitTwiceOrBackwards() public {
        _commit(T0);
        vm.startPrank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.AlreadyCommitted.selector, T0));
        market.commitInterval(T0, 0, 0, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Market.NotIncreasing.selector, T0 - 900, T0));
        market.commitInterval(T0 - 900, 0, 0, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Market.NotIncreasing.selector, uint64(0), T0));
        market.commitInterval(0, 0, 0, 0, 0, 0);
        vm.stopPrank();
    }

    function test_revert_commitNotOperator() public {
        vm.prank(ALICE);
        vm.expectRevert(_unauthorized(ALICE));
        market.commitInterval(T0, 0, 0, 0, 0, 0);
    }

    // ---------------------------------------------------------------- settle

    function test_settleMovesEscrowExactly() public {
        _fund(BOB, 10_000);
        _commit(T0);
        bytes32[] memory entries = new bytes32[](3);
        entries[0] = _entry(GRID, 200);
        entries[1] = _entry(ALICE, 2_500);
        entries[2] = _entry(BOB, -2_700);
        entries = _sorted(entries);
        vm.expectEmit(true, false, false, true);
        emit IntervalSettled(T0, 3, 2_700, keccak256(abi.encodePacked(entries)));
        _settle(T0, entries);
        vm.assertEq(market.escrowOf(ALICE), 2_500, "seller");
        vm.assertEq(market.escrowOf(BOB), 7_300, "buyer");
        vm.assertEq(market.escrowOf(GRID), 200, "grid fee");
        (,,,,,, bool settled) = market.interval(T0);
        vm.assertTrue(settled, "settled");
        _conserved();
    }

    function test_settleEmptyInterval() public {
        _commit(T0);
        _settle(T0, _empty());
        (,,,,,, bool settled) = market.interval(T0);
        vm.assertTrue(settled, "settled");
    }

    function test_revert_settleUncommittedTwiceOrOutOfOrder() public {
        vm.startPrank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.NotCommitted.selector, T0));
        market.settleInterval(T0, _empty(), Attest.entries(market, T0, _empty()));
        market.commitInterval(T0, 0, 0, 0, 0, 0);
        market.commitInterval(T0 + 900, 0, 0, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Market.SettleOutOfOrder.selector, T0 + 900, T0));
        market.settleInterval(T0 + 900, _empty(), Attest.entries(market, T0 + 900, _empty()));
        market.settleInterval(T0, _empty(), Attest.entries(market, T0, _empty()));
        vm.expectRevert(abi.encodeWithSelector(Market.AlreadySettled.selector, T0));
        market.settleInterval(T0, _empty(), Attest.entries(market, T0, _empty()));
        market.settleInterval(T0 + 900, _empty(), Attest.entries(market, T0 + 900, _empty()));
        vm.stopPrank();
    }

    function test_revert_settleNotOperator() public {
        _commit(T0);
        vm.prank(BOB);
        vm.expectRevert(_unauthorized(BOB));
        market.settleInterval(T0, _empty(), Attest.entries(market, T0, _empty()));
    }

    function test_revert_notBalanced() public {
        _fund(BOB, 100);
        _commit(T0);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.NotBalanced.selector, int256(-1)));
        market.settleInterval(T0, _pair(ALICE, 99, BOB, -100), Attest.entries(market, T0, _pair(ALICE, 99, BOB, -100)));
    }

    function test_revert_insufficientEscrow() public {
        _fund(BOB, 100);
        _commit(T0);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.InsufficientEscrow.selector, BOB, 100, 101));
        market.settleInterval(T0, _pair(ALICE, 101, BOB, -101), Attest.entries(market, T0, _pair(ALICE, 101, BOB, -101)));
    }

    function test_revert_suspendedCannotTrade() public {
        _fund(BOB, 100);
        _commit(T0);
        vm.prank(OPERATOR);
        registry.suspend(ALICE);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.ParticipantNotActive.selector, ALICE));
        market.settleInterval(T0, _pair(ALICE, 10, BOB, -10), Attest.entries(market, T0, _pair(ALICE, 10, BOB, -10)));
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.ParticipantNotActive.selector, address(0xDEAD)));
        market.settleInterval(T0, _pair(address(0xDEAD), 10, BOB, -10), Attest.entries(market, T0, _pair(address(0xDEAD), 10, BOB, -10)));
    }

    function test_revert_entriesUnsortedOrDuplicate() public {
        _fund(BOB, 100);
        _commit(T0);
        bytes32[] memory entries = new bytes32[](2);
        entries[0] = _entry(ALICE, 10); // 0xA11CE > 0xB0B
        entries[1] = _entry(BOB, -10);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.EntriesNotSorted.selector, 1));
        market.settleInterval(T0, entries, Attest.entries(market, T0, entries));
        entries[0] = _entry(BOB, -10);
        entries[1] = _entry(BOB, 10);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.EntriesNotSorted.selector, 1));
        market.settleInterval(T0, entries, Attest.entries(market, T0, entries));
        entries = new bytes32[](1);
        entries[0] = _entry(address(0), 0);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.EntriesNotSorted.selector, 0));
        market.settleInterval(T0, entries, Attest.entries(market, T0, entries));
    }

    // ---------------------------------------------------------------- fuzz

    /// Any balanced transfer between funded accounts moves exactly the amount and conserves escrow.
    function testFuzz_settleConserves(uint96 fundA, uint96 fundB, int96 delta, uint8 feeRaw) public {
        fundA = uint96(_bound(fundA, 0, 1e15));
        fundB = uint96(_bound(fundB, 0, 1e15));
        int256 fee = int256(_bound(feeRaw, 0, 100));
        if (fundA > 0) _fund(ALICE, fundA);
        if (fundB > 0) _fund(BOB, fundB);
        _commit(T0);
        // ALICE pays delta + fee if delta < 0, BOB pays -delta... keep the grid fee from the payer.
        int256 d = int256(delta) % 1e15;
        int256 payA = d < 0 ? d - fee : d;
        int256 payB = d < 0 ? -d : -d - fee;
        bytes32[] memory entries = new bytes32[](3);
        entries[0] = _entry(GRID, int96(fee));
        entries[1] = _entry(ALICE, int96(payA));
        entries[2] = _entry(BOB, int96(payB));
        entries = _sorted(entries);
        bool feasible = (payA >= 0 || uint256(-payA) <= fundA) && (payB >= 0 || uint256(-payB) <= fundB);
        vm.prank(OPERATOR);
        if (!feasible) vm.expectRevert();
        market.settleInterval(T0, entries, Attest.entries(market, T0, entries));
        if (feasible) {
            vm.assertEq(int256(market.escrowOf(ALICE)), int256(uint256(fundA)) + payA, "alice");
            vm.assertEq(int256(market.escrowOf(BOB)), int256(uint256(fundB)) + payB, "bob");
            vm.assertEq(market.escrowOf(GRID), uint256(fee), "grid");
        }
        _conserved();
    }

    function testFuzz_unbalancedAlwaysReverts(int96 a, int96 b) public {
        vm.assume(int256(a) + int256(b) != 0);
        _fund(ALICE, type(uint96).max);
        _fund(BOB, type(uint96).max);
        _commit(T0);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.NotBalanced.selector, int256(a) + int256(b)));
        market.settleInterval(T0, _pair(ALICE, a, BOB, b), Attest.entries(market, T0, _pair(ALICE, a, BOB, b)));
    }

    function testFuzz_commitIdsStrictlyIncrease(uint64 first, uint64 second) public {
        vm.assume(first > 0);
        _commit(first);
        vm.prank(OPERATOR);
        if (second <= first) vm.expectRevert();
        market.commitInterval(second, 0, 0, 0, 0, 0);
    }

    function testFuzz_withdrawNeverExceedsEscrow(uint64 fund, uint64 request, uint64 spend) public {
        fund = uint64(_bound(fund, 1, type(uint64).max));
        request = uint64(_bound(request, 1, fund));
        spend = uint64(_bound(spend, 0, fund));
        _fund(ALICE, fund);
        vm.prank(ALICE);
        market.requestWithdrawal(request);
        _commit(T0);
        _settle(T0, _pair(ALICE, -int96(uint96(spend)), BOB, int96(uint96(spend))));
        vm.prank(ALICE);
        market.withdraw();
        uint256 left = uint256(fund) - spend;
        uint256 paid = request < left ? request : left;
        vm.assertEq(token.balanceOf(ALICE), paid, "paid min(requested, escrow)");
        vm.assertEq(market.escrowOf(ALICE), left - paid, "rest stays");
        _conserved();
    }
}
