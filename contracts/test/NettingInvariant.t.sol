// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {GridToken} from "../src/GridToken.sol";
import {Market} from "../src/Market.sol";
import {Registry} from "../src/Registry.sol";
import {Base, Vm, Attest} from "./utils/Base.sol";
import {NettingTree} from "./utils/Merkle.sol";

/// Drives the netting-root path (with direct settlements, deposits and withdrawals mixed in) as an
/// honest operator would, plus the attacks a participant could try; the ghost model keeps every
/// account's cumulative root-path net, and flags record anything that should have been impossible.
///
/// Honest operator: every debit (root or direct) stays within the account's effective balance,
/// escrow + unclaimed net, the rule the off-chain order book enforces.
contract NettingHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint64 internal constant T0 = 1_700_000_100;
    uint256 internal constant N = 6; // five participants and the grid operator

    GridToken internal immutable token;
    Market internal immutable market;
    address internal immutable operator;
    address[N] internal accounts;

    int256[N] internal latestCumulative; // as of the newest root
    mapping(uint32 rootSeq => int256[N]) internal cumulativeAt;

    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint256 public ghostRoots;
    uint256 public ghostClaims;
    bool public doubleClaimed;
    bool public forgedClaimed;
    bool public strangerClaimed;
    bool public debitDodged;
    bool public claimMisapplied;

    constructor(GridToken token_, Market market_, address operator_, address grid) {
        (token, market, operator) = (token_, market_, operator_);
        for (uint256 i = 0; i + 1 < N; ++i) {
            accounts[i] = address(uint160(0xB000 + i));
        }
        accounts[N - 1] = grid;
    }

    function allAccounts() external view returns (address[] memory out) {
        out = new address[](N);
        for (uint256 i = 0; i < N; ++i) {
            out[i] = accounts[i];
        }
    }

    /// Sum over accounts of (newest cumulative - applied): what claims still have to move.
    function unclaimedNet() public view returns (int256 total) {
        for (uint256 i = 0; i < N; ++i) {
            total += _unclaimed(i);
        }
    }

    function sumLatestCumulative() external view returns (int256 total) {
        for (uint256 i = 0; i < N; ++i) {
            total += latestCumulative[i];
        }
    }

    function _unclaimed(uint256 i) internal view returns (int256) {
        (, int256 applied,) = market.accountState(accounts[i]);
        return latestCumulative[i] - applied;
    }

    function _effective(uint256 i) internal view returns (int256) {
        return int256(market.escrowOf(accounts[i])) + _unclaimed(i);
    }

    function _tree(uint32 rootSeq) internal view returns (bytes32[][] memory) {
        bytes32[] memory leaves = new bytes32[](N);
        for (uint256 i = 0; i < N; ++i) {
            leaves[i] = NettingTree.leaf(rootSeq, accounts[i], int96(cumulativeAt[rootSeq][i]));
        }
        return NettingTree.layers(leaves);
    }

    // ------------------------------------------------------------------ legitimate actions

    function deposit(uint256 seed, uint256 amount) external {
        amount = 1 + amount % 1e12;
        vm.startPrank(operator);
        token.mint(operator, amount);
        market.depositFor(accounts[seed % N], amount);
        vm.stopPrank();
        ghostDeposited += amount;
    }

    function requestWithdrawal(uint256 seed, uint256 amount) external {
        address account = accounts[seed % N];
        uint256 have = market.escrowOf(account);
        if (have == 0) return;
        vm.prank(account);
        market.requestWithdrawal(1 + amount % have);
    }

    function withdraw(uint256 seed, bool claimFirst) external {
        uint256 i = seed % N;
        address account = accounts[i];
        uint32 latest = market.rootCount();
        bool hadUnclaimedDebit = _unclaimed(i) < 0;
        uint256 before = token.balanceOf(account);
        vm.startPrank(account);
        if (claimFirst && latest > 0) {
            bytes32[] memory proof = NettingTree.proof(_tree(latest), i);
            try market.claimAndWithdraw(latest, int96(latestCumulative[i]), proof) {
                hadUnclaimedDebit = false; // the claim applied it first
                ghostClaims += 1;
            } catch {}
        } else {
            try market.withdraw() {
                if (hadUnclaimedDebit) debitDodged = true;
            } catch {}
        }
        vm.stopPrank();
        ghostWithdrawn += token.balanceOf(account) - before;
    }

    /// Commit the next interval and settle it by root with random honest trades.
    function settleByRoot(uint256 seed) external {
        uint64 id = _commitNext();
        int256[N] memory deltas;
        uint256 moved = _randomTrades(seed, deltas, false);
        uint32 rootSeq = market.rootCount() + 1;
        for (uint256 i = 0; i < N; ++i) {
            latestCumulative[i] += deltas[i];
            cumulativeAt[rootSeq][i] = latestCumulative[i];
        }
        bytes32 root = NettingTree.root(_tree(rootSeq));
        vm.prank(operator);
        market.settleIntervalRoot(id, root, uint128(moved), uint128(moved), uint32(N), Attest.root(market, id, root, uint128(moved), uint128(moved), uint32(N)));
        ghostRoots += 1;
    }

    /// Commit the next interval and settle it directly (the two paths share one sequence).
    function settleDirect(uint256 seed) external {
        uint64 id = _commitNext();
        int256[N] memory deltas;
        _randomTrades(seed, deltas, true);
        uint256 count;
        for (uint256 i = 0; i < N; ++i) {
            if (deltas[i] != 0) ++count;
        }
        bytes32[] memory entries = new bytes32[](count);
        uint256 j;
        for (uint256 i = 0; i < N; ++i) {
            if (deltas[i] == 0) continue;
            entries[j++] = bytes32((uint256(uint160(accounts[i])) << 96) | uint256(uint96(int96(deltas[i]))));
        }
        _sortInPlace(entries);
        vm.prank(operator);
        market.settleInterval(id, entries, Attest.entries(market, id, entries));
    }

    /// The account (or the operator) claims a random root at or after its last claim.
    function claim(uint256 seed, uint256 rootPick, bool byOperator) external {
        uint32 latest = market.rootCount();
        if (latest == 0) return;
        uint256 i = seed % N;
        address account = accounts[i];
        uint32 rootSeq = uint32(1 + rootPick % latest);
        (uint256 escrowBefore, int256 appliedBefore, uint32 claimedBefore) = market.accountState(account);
        bytes32[] memory proof = NettingTree.proof(_tree(rootSeq), i);
        int96 cumulative = int96(cumulativeAt[rootSeq][i]);
        vm.prank(byOperator ? operator : account);
        try market.claim(account, rootSeq, cumulative, proof) {
            ghostClaims += 1;
            if (rootSeq <= claimedBefore) doubleClaimed = true;
            int256 expected = int256(escrowBefore) + cumulative - appliedBefore;
            if (int256(market.escrowOf(account)) != expected) claimMisapplied = true;
        } catch {}
    }

    /// The operator claims the newest root for every account, in one batch.
    function claimAll() external {
        uint32 latest = market.rootCount();
        if (latest == 0) return;
        bytes32[][] memory tree = _tree(latest);
        uint256 count;
        Market.Claim[] memory claims = new Market.Claim[](N);
        for (uint256 i = 0; i < N; ++i) {
            (,, uint32 claimed) = market.accountState(accounts[i]);
            if (claimed >= latest) continue;
            claims[count++] = Market.Claim(accounts[i], int96(cumulativeAt[latest][i]), NettingTree.proof(tree, i));
        }
        Market.Claim[] memory batch = new Market.Claim[](count);
        for (uint256 k = 0; k < count; ++k) {
            batch[k] = claims[k];
        }
        vm.prank(operator);
        try market.claimMany(latest, batch) {
            ghostClaims += count;
        } catch {}
    }

    // ------------------------------------------------------------------ attacks

    /// A claim whose leaf or proof differs from the committed one.
    function claimForged(uint256 seed, int96 skew, bytes32 junk, uint8 mode) external {
        uint32 latest = market.rootCount();
        if (latest == 0) return;
        uint256 i = seed % N;
        address account = accounts[i];
        int96 cumulative = int96(cumulativeAt[latest][i]);
        bytes32[] memory proof = NettingTree.proof(_tree(latest), i);
        uint256 which = mode % 3;
        if (which == 0) {
            if (skew == 0) skew = 1;
            // The wrapped sum still differs from the committed value.
            unchecked {
                cumulative += skew;
            }
        } else if (which == 1) {
            proof = NettingTree.proof(_tree(latest), (i + 1 + uint256(uint8(mode >> 2)) % (N - 1)) % N);
        } else {
            if (proof.length == 0 || junk == 0) return;
            proof[uint256(uint8(junk[0])) % proof.length] ^= junk;
        }
        vm.prank(account);
        try market.claim(account, latest, cumulative, proof) {
            forgedClaimed = true;
        } catch {}
    }

    /// Claim the root already claimed again, with its genuine leaf.
    function claimAgain(uint256 seed) external {
        uint256 i = seed % N;
        (,, uint32 claimed) = market.accountState(accounts[i]);
        if (claimed == 0) return;
        bytes32[] memory proof = NettingTree.proof(_tree(claimed), i);
        vm.prank(accounts[i]);
        try market.claim(accounts[i], claimed, int96(cumulativeAt[claimed][i]), proof) {
            doubleClaimed = true;
        } catch {}
    }

    /// A participant claims another participant's genuine leaf (e.g. to time its debit).
    function claimForAnother(uint256 seed, uint256 otherSeed) external {
        uint32 latest = market.rootCount();
        if (latest == 0) return;
        uint256 victim = seed % N;
        uint256 caller = (victim + 1 + otherSeed % (N - 2)) % N; // not the victim, not the grid...
        if (caller == N - 1) caller = (caller + 1) % N; // ...whose key the operator does not hold
        if (caller == victim) return;
        bytes32[] memory proof = NettingTree.proof(_tree(latest), victim);
        vm.prank(accounts[caller]);
        try market.claim(accounts[victim], latest, int96(cumulativeAt[latest][victim]), proof) {
            strangerClaimed = true;
        } catch {}
    }

    // ------------------------------------------------------------------ helpers

    function _commitNext() internal returns (uint64 id) {
        (uint64 last,,) = market.progress();
        id = (last == 0 ? T0 : last) + 900;
        vm.prank(operator);
        market.commitInterval(id, keccak256(abi.encode(id)), bytes32(0), bytes32(0), 250_000, 1_000);
    }

    /// Up to three payer -> payee transfers plus a 2% grid fee, each within the payer's
    /// effective balance (and, for a direct settlement, within its claimed escrow too).
    function _randomTrades(uint256 seed, int256[N] memory deltas, bool direct) internal view returns (uint256 moved) {
        uint256 transfers = 1 + seed % 3;
        for (uint256 k = 0; k < transfers; ++k) {
            seed = uint256(keccak256(abi.encode(seed, k)));
            uint256 payer = seed % (N - 1);
            uint256 payee = (seed >> 8) % (N - 1);
            int256 room = _effective(payer) + deltas[payer];
            if (direct) {
                int256 claimed = int256(market.escrowOf(accounts[payer])) + deltas[payer];
                if (claimed < room) room = claimed;
            }
            if (room <= 0 || payer == payee) continue;
            int256 amount = int256(1 + (seed >> 16) % uint256(room));
            int256 fee = amount / 50;
            deltas[payer] -= amount;
            deltas[payee] += amount - fee;
            deltas[N - 1] += fee;
            moved += uint256(amount);
        }
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

contract NettingInvariantTest is Base {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    NettingHandler internal handler;

    function setUp() public {
        _deploy();
        handler = new NettingHandler(token, market, OPERATOR, GRID);
        address[] memory accounts = handler.allAccounts();
        for (uint256 i = 0; i + 1 < accounts.length; ++i) {
            _addParticipant(accounts[i]);
        }
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](11);
        selectors[0] = NettingHandler.deposit.selector;
        selectors[1] = NettingHandler.requestWithdrawal.selector;
        selectors[2] = NettingHandler.withdraw.selector;
        selectors[3] = NettingHandler.settleByRoot.selector;
        selectors[4] = NettingHandler.settleDirect.selector;
        selectors[5] = NettingHandler.claim.selector;
        selectors[6] = NettingHandler.claimAll.selector;
        selectors[7] = NettingHandler.claimForged.selector;
        selectors[8] = NettingHandler.claimAgain.selector;
        selectors[9] = NettingHandler.claimForAnother.selector;
        selectors[10] = NettingHandler.settleByRoot.selector; // roots twice as often
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), selectors);
    }

    /// One invariant function, so the 256 x 400 calls run once, with every property checked
    /// after each call.
    function invariant_nettingIsSound() public view {
        address[] memory accounts = handler.allAccounts();
        uint256 escrow;
        for (uint256 i = 0; i < accounts.length; ++i) {
            escrow += market.escrowOf(accounts[i]);
        }
        uint256 balance = token.balanceOf(address(market));
        int256 unclaimed = handler.unclaimedNet();
        // Conservation including what is not yet claimed.
        vm.assertEq(int256(escrow) + unclaimed, int256(balance), "escrow + unclaimed == balance");
        vm.assertEq(balance, handler.ghostDeposited() - handler.ghostWithdrawn(), "deposits - withdrawals");
        vm.assertEq(handler.sumLatestCumulative(), int256(0), "every root balanced");
        // The posted-minus-claimed capacities differ by exactly the unclaimed net.
        (uint256 credits, uint256 debits) = market.nettingCapacity();
        vm.assertEq(int256(credits) - int256(debits), unclaimed, "capacity tracks unclaimed");
        vm.assertEq(market.rootCount(), handler.ghostRoots(), "root count");
        vm.assertFalse(handler.doubleClaimed(), "a root was claimed twice (or an older one after it)");
        vm.assertFalse(handler.forgedClaimed(), "a forged claim went through");
        vm.assertFalse(handler.strangerClaimed(), "someone claimed for another participant");
        vm.assertFalse(handler.debitDodged(), "a withdrawal left an unclaimed debit behind");
        vm.assertFalse(handler.claimMisapplied(), "a claim moved the wrong amount");
    }
}
