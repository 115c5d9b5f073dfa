// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {GridToken} from "../src/GridToken.sol";
import {Market} from "../src/Market.sol";
import {Registry} from "../src/Registry.sol";
import {Base, Vm, Attest} from "./utils/Base.sol";

/// Drives the market the way the operator and participants can, and records in ghost flags
/// anything that should have been impossible (the invariants then assert the flags stay false).
contract MarketHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint64 internal constant T0 = 1_700_000_100;

    GridToken internal immutable token;
    Registry internal immutable registry;
    Market internal immutable market;
    address internal immutable operator;
    address internal immutable grid;
    address[] internal actors;

    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint64 public ghostCommits;
    uint64 public ghostSettles;
    bool public doubleCommitted;
    bool public doubleSettled;
    bool public unauthorizedSucceeded;
    bool public suspendedTraded;
    bool public lockedWithdrawalPaid;
    bool public unbalancedSettled;

    constructor(GridToken token_, Registry registry_, Market market_, address operator_, address grid_) {
        (token, registry, market, operator, grid) = (token_, registry_, market_, operator_, grid_);
        for (uint256 i = 1; i <= 5; ++i) {
            actors.push(address(uint160(0xA000 + i)));
        }
    }

    function allAccounts() external view returns (address[] memory accounts) {
        accounts = new address[](actors.length + 1);
        for (uint256 i = 0; i < actors.length; ++i) {
            accounts[i] = actors[i];
        }
        accounts[actors.length] = grid;
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    // ------------------------------------------------------------------ legitimate actions

    function deposit(uint256 actorSeed, uint256 amount) external {
        address actor = _actor(actorSeed);
        amount = 1 + amount % 1e12;
        vm.startPrank(operator);
        token.mint(operator, amount);
        market.depositFor(actor, amount);
        vm.stopPrank();
        ghostDeposited += amount;
    }

    function requestWithdrawal(uint256 actorSeed, uint256 amount) external {
        address actor = _actor(actorSeed);
        uint256 have = market.escrowOf(actor);
        if (have == 0) return;
        vm.prank(actor);
        market.requestWithdrawal(1 + amount % have);
    }

    function withdraw(uint256 actorSeed) external {
        address actor = _actor(actorSeed);
        (, uint64 unlockAfterSeq) = market.withdrawalRequest(actor);
        (,, uint64 settledCount) = market.progress();
        uint256 before = token.balanceOf(actor);
        vm.prank(actor);
        try market.withdraw() {
            if (unlockAfterSeq == 0 || settledCount < unlockAfterSeq) lockedWithdrawalPaid = true;
            ghostWithdrawn += token.balanceOf(actor) - before;
        } catch {}
    }

    function commit(uint8 gapIntervals) external {
        (uint64 last,,) = market.progress();
        uint64 next = (last == 0 ? T0 : last) + 900 * (1 + uint64(gapIntervals % 4));
        vm.prank(operator);
        market.commitInterval(next, keccak256(abi.encode(next)), bytes32(0), bytes32(0), 250_000, 1_000);
        ghostCommits += 1;
    }

    /// Settle the next interval with a random balanced set of transfers plus a grid fee.
    function settle(uint256 seed) external {
        (, uint64 committed, uint64 settled) = market.progress();
        if (settled == committed) return;
        uint64 id = market.intervalAt(settled + 1);
        (bytes32[] memory entries, bool anySuspended) = _randomEntries(seed);
        vm.prank(operator);
        try market.settleInterval(id, entries, Attest.entries(market, id, entries)) {
            ghostSettles += 1;
            if (anySuspended) suspendedTraded = true;
        } catch {}
    }

    function suspend(uint256 actorSeed) external {
        address actor = _actor(actorSeed);
        if (!registry.isActive(actor)) return;
        vm.prank(operator);
        registry.suspend(actor);
    }

    function reinstate(uint256 actorSeed) external {
        address actor = _actor(actorSeed);
        if (registry.isActive(actor)) return;
        vm.prank(operator);
        registry.reinstate(actor);
    }

    // ------------------------------------------------------------------ attacks

    function commitAgain(uint256 seed) external {
        (, uint64 committed,) = market.progress();
        if (committed == 0) return;
        uint64 id = market.intervalAt(1 + uint64(seed % committed));
        vm.prank(operator);
        try market.commitInterval(id, bytes32(seed), 0, 0, 1, 1) {
            doubleCommitted = true;
        } catch {}
    }

    function settleAgain(uint256 seed) external {
        (,, uint64 settled) = market.progress();
        if (settled == 0) return;
        uint64 id = market.intervalAt(1 + uint64(seed % settled));
        vm.prank(operator);
        try market.settleInterval(id, new bytes32[](0), Attest.entries(market, id, new bytes32[](0))) {
            doubleSettled = true;
        } catch {}
    }

    function settleUnbalanced(uint256 seed, int64 skew) external {
        (, uint64 committed, uint64 settled) = market.progress();
        if (settled == committed || skew == 0) return;
        uint64 id = market.intervalAt(settled + 1);
        bytes32[] memory entries = new bytes32[](1);
        entries[0] = bytes32((uint256(uint160(_actor(seed))) << 96) | uint256(uint96(int96(skew))));
        vm.prank(operator);
        try market.settleInterval(id, entries, Attest.entries(market, id, entries)) {
            unbalancedSettled = true;
        } catch {}
    }

    function strangerCalls(uint256 actorSeed, uint8 which) external {
        address actor = _actor(actorSeed);
        vm.startPrank(actor);
        bool ok;
        uint256 choice = which % 5;
        if (choice == 0) {
            try market.commitInterval(type(uint64).max, 0, 0, 0, 0, 0) {
                ok = true;
            } catch {}
        } else if (choice == 1) {
            (, uint64 committed, uint64 settled) = market.progress();
            uint64 id = market.intervalAt(settled + 1);
            if (settled < committed) {
                try market.settleInterval(id, new bytes32[](0), Attest.entries(market, id, new bytes32[](0))) {
                    ok = true;
                } catch {}
            }
        } else if (choice == 2) {
            try registry.addParticipant(address(0xBAD), Registry.Role.Prosumer, 1) {
                ok = true;
            } catch {}
        } else if (choice == 3) {
            try token.mint(actor, 1) {
                ok = true;
            } catch {}
        } else {
            try registry.suspend(_actor(actorSeed + 1)) {
                ok = true;
            } catch {}
        }
        vm.stopPrank();
        if (ok) unauthorizedSucceeded = true;
    }

    function _randomEntries(uint256 seed) internal view returns (bytes32[] memory entries, bool anySuspended) {
        uint256 n = actors.length;
        int256[] memory deltas = new int256[](n + 1); // last slot: the grid operator
        uint256 transfers = 1 + seed % 3;
        for (uint256 k = 0; k < transfers; ++k) {
            seed = uint256(keccak256(abi.encode(seed, k)));
            uint256 payer = seed % n;
            uint256 payee = (seed >> 8) % n;
            uint256 have = uint256(int256(market.escrowOf(actors[payer])) + deltas[payer]);
            if (have == 0 || payer == payee) continue;
            int256 amount = int256(1 + (seed >> 16) % have);
            int256 fee = amount / 50;
            deltas[payer] -= amount;
            deltas[payee] += amount - fee;
            deltas[n] += fee;
        }
        uint256 count;
        for (uint256 i = 0; i <= n; ++i) {
            if (deltas[i] != 0) ++count;
        }
        entries = new bytes32[](count);
        uint256 j;
        for (uint256 i = 0; i <= n; ++i) {
            if (deltas[i] == 0) continue;
            address account = i == n ? grid : actors[i];
            if (!registry.isActive(account)) anySuspended = true;
            entries[j++] = bytes32((uint256(uint160(account)) << 96) | uint256(uint96(int96(deltas[i]))));
        }
        _sortInPlace(entries);
    }

    function _sortInPlace(bytes32[] memory entries) internal pure {
        for (uint256 i = 1; i < entries.length; ++i) {
            bytes32 key = entries[i];
            uint256 j = i;
            while (j > 0 && entries[j - 1] > key) {
                entries[j] = entries[j - 1];
                --j;
            }
            entries[j] = key;
        }
    }
}

contract MarketInvariantTest is Base {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    MarketHandler internal handler;

    function setUp() public {
        _deploy();
        handler = new MarketHandler(token, registry, market, OPERATOR, GRID);
        address[] memory accounts = handler.allAccounts();
        for (uint256 i = 0; i + 1 < accounts.length; ++i) {
            _addParticipant(accounts[i]);
        }
    }

    /// @dev Read by forge (the forge-std StdInvariant interface): fuzz only the handler.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](11);
        selectors[0] = MarketHandler.deposit.selector;
        selectors[1] = MarketHandler.requestWithdrawal.selector;
        selectors[2] = MarketHandler.withdraw.selector;
        selectors[3] = MarketHandler.commit.selector;
        selectors[4] = MarketHandler.settle.selector;
        selectors[5] = MarketHandler.suspend.selector;
        selectors[6] = MarketHandler.reinstate.selector;
        selectors[7] = MarketHandler.commitAgain.selector;
        selectors[8] = MarketHandler.settleAgain.selector;
        selectors[9] = MarketHandler.settleUnbalanced.selector;
        selectors[10] = MarketHandler.strangerCalls.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), selectors);
    }

    /// One invariant function, so the 256 x 400 handler calls run once (not once per property)
    /// with every property checked after each call: this keeps `forge test` within budget.
    function invariant_marketIsSound() public view {
        _escrowConservedAndAccountedFor();
        _intervalsOnceEachAndInOrder();
        _rolesAndSuspensionHold();
    }

    function _escrowConservedAndAccountedFor() internal view {
        address[] memory accounts = handler.allAccounts();
        uint256 total;
        for (uint256 i = 0; i < accounts.length; ++i) {
            total += market.escrowOf(accounts[i]);
        }
        vm.assertEq(total, token.balanceOf(address(market)), "sum of escrow == market balance");
        vm.assertEq(total, handler.ghostDeposited() - handler.ghostWithdrawn(), "deposits - withdrawals");
    }

    function _intervalsOnceEachAndInOrder() internal view {
        (, uint64 committed, uint64 settled) = market.progress();
        vm.assertFalse(handler.doubleCommitted(), "an interval was committed twice");
        vm.assertFalse(handler.doubleSettled(), "an interval was settled twice");
        vm.assertFalse(handler.unbalancedSettled(), "an unbalanced settlement went through");
        vm.assertEq(committed, handler.ghostCommits(), "commit count");
        vm.assertEq(settled, handler.ghostSettles(), "settle count");
        vm.assertLe(settled, committed, "settled <= committed");
    }

    function _rolesAndSuspensionHold() internal view {
        vm.assertFalse(handler.unauthorizedSucceeded(), "a restricted function ran for a stranger");
        vm.assertFalse(handler.suspendedTraded(), "a suspended participant was settled");
        vm.assertFalse(handler.lockedWithdrawalPaid(), "a locked withdrawal was paid");
    }
}
