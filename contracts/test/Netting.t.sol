// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {Market} from "../src/Market.sol";
import {Base, Attest} from "./utils/Base.sol";
import {NettingTree} from "./utils/Merkle.sol";

/// The netting-root settlement path: settleIntervalRoot, claim, claimMany, claimAndWithdraw.
contract NettingTest is Base {
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    address internal constant CAROL = address(0xCA201);
    uint64 internal constant T0 = 1_700_000_100;

    event IntervalSettledByRoot(
        uint64 indexed intervalStartS, uint32 indexed rootSeq, bytes32 root, uint256 movedMicro, uint32 accountCount
    );
    event Claimed(address indexed account, uint32 indexed rootSeq, int256 deltaMicro);

    address[] internal accounts;

    function setUp() public {
        _deploy();
        _addParticipant(ALICE);
        _addParticipant(BOB);
        _addParticipant(CAROL);
        accounts.push(ALICE);
        accounts.push(BOB);
        accounts.push(CAROL);
        accounts.push(GRID);
    }

    // ---------------------------------------------------------------- helpers

    /// Commit interval `id`, post the root of `cumulative` (one per entry of `accounts`) as root
    /// number `rootSeq`, and return the tree for proofs.
    function _postRoot(uint64 id, uint32 rootSeq, int96[4] memory cumulative, uint128 movedMicro)
        internal
        returns (bytes32[][] memory tree)
    {
        bytes32[] memory leaves = new bytes32[](accounts.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            leaves[i] = NettingTree.leaf(rootSeq, accounts[i], cumulative[i]);
        }
        tree = NettingTree.layers(leaves);
        _commit(id);
        vm.prank(OPERATOR);
        market.settleIntervalRoot(id, NettingTree.root(tree), movedMicro, movedMicro, uint32(accounts.length), Attest.root(market, id, NettingTree.root(tree), movedMicro, movedMicro, uint32(accounts.length)));
    }

    function _claim(address caller, uint256 index, uint32 rootSeq, int96 cumulative, bytes32[][] memory tree)
        internal
    {
        vm.prank(caller);
        market.claim(accounts[index], rootSeq, cumulative, NettingTree.proof(tree, index));
    }

    function _conservedWithUnclaimed(int256 unclaimedNet) internal view {
        uint256 total;
        for (uint256 i = 0; i < accounts.length; ++i) {
            total += market.escrowOf(accounts[i]);
        }
        vm.assertEq(int256(total) + unclaimedNet, int256(token.balanceOf(address(market))), "conservation");
    }

    // ---------------------------------------------------------------- settle by root

    function test_settleRootTakesTheNextSettleSlot() public {
        _fund(BOB, 1_000);
        bytes32[] memory leaves = new bytes32[](1);
        leaves[0] = NettingTree.leaf(1, ALICE, 0);
        _commit(T0);
        vm.expectEmit(true, true, false, true);
        emit IntervalSettledByRoot(T0, 1, leaves[0], 250, 4);
        vm.prank(OPERATOR);
        market.settleIntervalRoot(T0, leaves[0], 250, 250, 4, Attest.root(market, T0, leaves[0], 250, 250, 4));
        (,, uint64 settled) = market.progress();
        vm.assertEq(settled, 1, "settled count");
        vm.assertEq(market.rootCount(), 1, "root count");
        vm.assertEq(market.settlementRoot(1), leaves[0], "root stored");
        (,,,,,, bool isSettled) = market.interval(T0);
        vm.assertTrue(isSettled, "interval settled");
        (uint256 credits, uint256 debits) = market.nettingCapacity();
        vm.assertEq(credits, 250, "credit capacity");
        vm.assertEq(debits, 250, "debit capacity");
        vm.assertEq(market.escrowOf(BOB), 1_000, "nothing moves before a claim");
        // A direct settlement after a root keeps the one settle sequence.
        _commit(T0 + 900);
        _settle(T0 + 900, _empty());
        vm.assertEq(market.rootCount(), 1, "direct settle is not a root");
    }

    function test_revert_settleRootErrors() public {
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.NotCommitted.selector, T0));
        market.settleIntervalRoot(T0, bytes32(uint256(1)), 0, 0, 0, Attest.root(market, T0, bytes32(uint256(1)), 0, 0, 0));
        _commit(T0);
        vm.startPrank(OPERATOR);
        vm.expectRevert(Market.ZeroRoot.selector);
        market.settleIntervalRoot(T0, bytes32(0), 0, 0, 0, Attest.root(market, T0, bytes32(0), 0, 0, 0));
        vm.expectRevert(abi.encodeWithSelector(Market.NotBalanced.selector, int256(-1)));
        market.settleIntervalRoot(T0, bytes32(uint256(1)), 1, 2, 0, Attest.root(market, T0, bytes32(uint256(1)), 1, 2, 0));
        market.settleIntervalRoot(T0, bytes32(uint256(1)), 0, 0, 0, Attest.root(market, T0, bytes32(uint256(1)), 0, 0, 0));
        vm.expectRevert(abi.encodeWithSelector(Market.AlreadySettled.selector, T0));
        market.settleIntervalRoot(T0, bytes32(uint256(1)), 0, 0, 0, Attest.root(market, T0, bytes32(uint256(1)), 0, 0, 0));
        vm.expectRevert(abi.encodeWithSelector(Market.AlreadySettled.selector, T0));
        market.settleInterval(T0, _empty(), Attest.entries(market, T0, _empty()));
        vm.stopPrank();
        vm.prank(ALICE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, ALICE, keccak256("OPERATOR_ROLE")
            )
        );
        market.settleIntervalRoot(T0 + 900, bytes32(uint256(1)), 0, 0, 0, Attest.root(market, T0 + 900, bytes32(uint256(1)), 0, 0, 0));
    }

    // ---------------------------------------------------------------- claims

    function test_oneClaimCatchesUpOnEveryRoot() public {
        _fund(BOB, 1_000);
        // Root 1: Bob pays Alice 300, the grid takes 20. Root 2: Bob pays Alice 100 more.
        _postRoot(T0, 1, [int96(300), -320, 0, 20], 320);
        bytes32[][] memory tree = _postRoot(T0 + 900, 2, [int96(400), -420, 0, 20], 100);
        _conservedWithUnclaimed(0); // nothing claimed: escrow + (sum of cumulatives = 0)
        vm.expectEmit(true, true, false, true);
        emit Claimed(BOB, 2, -420);
        _claim(BOB, 1, 2, -420, tree);
        vm.assertEq(market.escrowOf(BOB), 580, "Bob debited both intervals at once");
        _conservedWithUnclaimed(400 + 20);
        _claim(OPERATOR, 0, 2, 400, tree); // the operator may claim for anyone
        vm.assertEq(market.escrowOf(ALICE), 400, "Alice credited");
        _conservedWithUnclaimed(20);
        (uint256 escrow, int256 applied, uint32 claimed) = market.accountState(ALICE);
        vm.assertEq(escrow, 400, "state escrow");
        vm.assertEq(applied, 400, "state applied");
        vm.assertEq(claimed, 2, "state claimed root");
        (uint256 credits, uint256 debits) = market.nettingCapacity();
        vm.assertEq(credits, 20, "credits left: the grid's");
        vm.assertEq(debits, 0, "debits left");
    }

    function test_revert_doubleOrOlderClaim() public {
        _fund(BOB, 1_000);
        bytes32[][] memory first = _postRoot(T0, 1, [int96(300), -300, 0, 0], 300);
        bytes32[][] memory second = _postRoot(T0 + 900, 2, [int96(300), -300, 0, 0], 0);
        _claim(BOB, 1, 2, -300, second);
        vm.expectRevert(abi.encodeWithSelector(Market.AlreadyClaimed.selector, BOB, 2, 2));
        _claim(BOB, 1, 2, -300, second);
        // The older root would undo the newer one's cumulative: refused too.
        vm.expectRevert(abi.encodeWithSelector(Market.AlreadyClaimed.selector, BOB, 1, 2));
        _claim(BOB, 1, 1, -300, first);
        vm.expectRevert(abi.encodeWithSelector(Market.UnknownRoot.selector, 3));
        _claim(BOB, 1, 3, -300, second);
        vm.expectRevert(abi.encodeWithSelector(Market.UnknownRoot.selector, 0));
        _claim(BOB, 1, 0, -300, second);
        vm.assertEq(market.escrowOf(BOB), 700, "debited once");
    }

    function test_revert_forgedProofs() public {
        _fund(BOB, 1_000);
        bytes32[][] memory tree = _postRoot(T0, 1, [int96(300), -300, 0, 0], 300);
        vm.startPrank(ALICE);
        // A larger credit than the leaf says.
        bytes32[] memory aliceProof = NettingTree.proof(tree, 0);
        vm.expectRevert(abi.encodeWithSelector(Market.InvalidProof.selector, ALICE, 1));
        market.claim(ALICE, 1, 301, aliceProof);
        // Carol's (zero) leaf and proof presented as Alice's.
        vm.stopPrank();
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.InvalidProof.selector, ALICE, 1));
        market.claim(ALICE, 1, 0, NettingTree.proof(tree, 2));
        // An inner node passed off as a leaf (the double hash rules it out).
        bytes32[] memory upper = new bytes32[](1);
        upper[0] = tree[1][1];
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Market.InvalidProof.selector, ALICE, 1));
        market.claim(ALICE, 1, 300, upper);
    }

    function test_revert_strangerCannotClaimForAnother() public {
        _fund(BOB, 1_000);
        bytes32[][] memory tree = _postRoot(T0, 1, [int96(300), -300, 0, 0], 300);
        vm.expectRevert(abi.encodeWithSelector(Market.NotAccountOrOperator.selector, ALICE, BOB));
        _claim(ALICE, 1, 1, -300, tree);
    }

    function test_revert_claimBeyondPostedTotals() public {
        // A malformed tree: Alice's leaf credits 500 but the root posted only 300.
        _fund(BOB, 1_000);
        bytes32[][] memory tree = _postRoot(T0, 1, [int96(500), -300, 0, 0], 300);
        vm.expectRevert(abi.encodeWithSelector(Market.ClaimExceedsPosted.selector, ALICE, int256(500)));
        _claim(ALICE, 0, 1, 500, tree);
    }

    function test_revert_debitBeyondEscrow() public {
        _fund(BOB, 100);
        bytes32[][] memory tree = _postRoot(T0, 1, [int96(300), -300, 0, 0], 300);
        vm.expectRevert(abi.encodeWithSelector(Market.InsufficientEscrow.selector, BOB, 100, 300));
        _claim(BOB, 1, 1, -300, tree);
    }

    function test_claimManyAppliesABatch() public {
        _fund(BOB, 1_000);
        bytes32[][] memory tree = _postRoot(T0, 1, [int96(300), -320, 0, 20], 320);
        Market.Claim[] memory claims = new Market.Claim[](3);
        claims[0] = Market.Claim(ALICE, 300, NettingTree.proof(tree, 0));
        claims[1] = Market.Claim(BOB, -320, NettingTree.proof(tree, 1));
        claims[2] = Market.Claim(GRID, 20, NettingTree.proof(tree, 3));
        vm.prank(OPERATOR);
        market.claimMany(1, claims);
        vm.assertEq(market.escrowOf(ALICE), 300, "alice");
        vm.assertEq(market.escrowOf(BOB), 680, "bob");
        vm.assertEq(market.escrowOf(GRID), 20, "grid");
        _conservedWithUnclaimed(0);
        vm.prank(ALICE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, ALICE, keccak256("OPERATOR_ROLE")
            )
        );
        market.claimMany(1, claims);
    }

    // ---------------------------------------------------------------- withdrawals

    function test_debitBeforeWithdrawal() public {
        _fund(BOB, 1_000);
        vm.prank(BOB);
        market.requestWithdrawal(1_000);
        bytes32[][] memory tree = _postRoot(T0, 1, [int96(300), -300, 0, 0], 300);
        // Bob's debit is unclaimed: no withdrawal, even though the lock itself has passed.
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(Market.UnclaimedSettlement.selector, BOB, 0, 1));
        market.withdraw();
        vm.prank(BOB);
        market.claimAndWithdraw(1, -300, NettingTree.proof(tree, 1));
        vm.assertEq(token.balanceOf(BOB), 700, "paid what is left after the debit");
        vm.assertEq(market.escrowOf(BOB), 0, "escrow emptied");
        _conservedWithUnclaimed(300);
    }

    function test_claimAndWithdrawAfterAnEarlierClaim() public {
        _fund(BOB, 1_000);
        bytes32[][] memory tree = _postRoot(T0, 1, [int96(300), -300, 0, 0], 300);
        _claim(BOB, 1, 1, -300, tree);
        vm.prank(BOB);
        market.requestWithdrawal(700);
        _commit(T0 + 900);
        _settle(T0 + 900, _empty());
        // Already at the newest root: the claim part is skipped, the withdrawal goes through.
        vm.prank(BOB);
        market.claimAndWithdraw(1, -300, NettingTree.proof(tree, 1));
        vm.assertEq(token.balanceOf(BOB), 700, "paid");
        // A stale or bogus leaf cannot smuggle anything in: the skipped claim applies nothing.
        vm.assertEq(market.escrowOf(BOB), 0, "escrow");
    }

    function test_firstDepositSkipsRootsTheAccountWasNeverIn() public {
        _postRoot(T0, 1, [int96(0), 0, 0, 0], 0);
        _fund(CAROL, 500); // empty escrow before: the claim cursor moves to root 1
        (,, uint32 claimed) = market.accountState(CAROL);
        vm.assertEq(claimed, 1, "cursor moved");
        vm.prank(CAROL);
        market.requestWithdrawal(500);
        _commit(T0 + 900);
        _settle(T0 + 900, _empty());
        vm.prank(CAROL);
        market.withdraw();
        vm.assertEq(token.balanceOf(CAROL), 500, "withdrawn without a proof");
        // A deposit on top of existing escrow does not move the cursor.
        _fund(ALICE, 10);
        _postRoot(T0 + 1_800, 2, [int96(0), 0, 0, 0], 0);
        _fund(ALICE, 10);
        (,, claimed) = market.accountState(ALICE);
        vm.assertEq(claimed, 1, "cursor not moved over root 2");
    }

    // ---------------------------------------------------------------- fuzz

    /// Random two-root histories, claimed by random subsets in random order: escrow + unclaimed
    /// always equals the token balance, and claiming everything lands on the cumulative deltas.
    function testFuzz_claimsConserve(uint64 pay1, uint64 pay2, uint8 feeRaw, uint8 order) public {
        uint256 fund = 1e15;
        _fund(ALICE, fund);
        _fund(BOB, fund);
        int96 p1 = int96(int256(_bound(pay1, 0, 4e14)));
        int96 p2 = int96(int256(_bound(pay2, 0, 4e14)));
        int96 fee = int96(int256(_bound(feeRaw, 0, 50)));
        // Root 1: Bob pays Alice p1 (+fee to the grid); root 2: Alice pays Carol p2 (+fee).
        int96[4] memory c1 = [p1, -p1 - fee, int96(0), fee];
        int96[4] memory c2 = [p1 - p2 - fee, -p1 - fee, p2, 2 * fee];
        bytes32[][] memory t1 = _postRoot(T0, 1, c1, uint128(uint96(p1 + fee)));
        bytes32[][] memory t2 = _postRoot(T0 + 900, 2, c2, uint128(uint96(p2 + fee)));
        int96[4] memory applied;
        bool[4] memory atLatest;
        for (uint256 k = 0; k < 4; ++k) {
            uint256 i = (k + order) % 4;
            bool useFirst = (order >> (k + 2)) & 1 == 1;
            if (useFirst) {
                _claim(OPERATOR, i, 1, c1[i], t1);
                applied[i] = c1[i];
            }
            if ((order >> k) & 1 == 1 || !useFirst) {
                _claim(OPERATOR, i, 2, c2[i], t2);
                applied[i] = c2[i];
                atLatest[i] = true;
            }
            int256 unclaimed;
            for (uint256 j = 0; j < 4; ++j) {
                unclaimed += int256(c2[j]) - int256(applied[j]);
            }
            _conservedWithUnclaimed(unclaimed);
        }
        for (uint256 i = 0; i < 4; ++i) {
            if (!atLatest[i]) _claim(OPERATOR, i, 2, c2[i], t2);
        }
        _conservedWithUnclaimed(0);
        vm.assertEq(market.escrowOf(ALICE), uint256(int256(fund) + c2[0]), "alice final");
        vm.assertEq(market.escrowOf(BOB), uint256(int256(fund) + c2[1]), "bob final");
        vm.assertEq(market.escrowOf(CAROL), uint256(int256(c2[2])), "carol final");
    }

    /// Any leaf other than the committed one fails, whatever proof comes with it.
    function testFuzz_forgedClaimRejected(int96 cumulative, bytes32 junk, uint8 who) public {
        _fund(BOB, 1_000);
        int96[4] memory c = [int96(300), -300, 0, 0];
        bytes32[][] memory tree = _postRoot(T0, 1, c, 300);
        uint256 i = who % 4;
        vm.assume(cumulative != c[i]);
        bytes32[] memory proof = NettingTree.proof(tree, i);
        proof[junk[0] == 0 ? 0 : proof.length - 1] ^= junk[1] == 0 ? bytes32(0) : junk;
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Market.InvalidProof.selector, accounts[i], 1));
        market.claim(accounts[i], 1, cumulative, proof);
    }
}
