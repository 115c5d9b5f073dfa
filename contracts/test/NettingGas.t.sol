// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Market} from "../src/Market.sol";
import {Base, Attest} from "./utils/Base.sol";
import {NettingTree} from "./utils/Merkle.sol";

/// Gas of the netting-root path for an interval of 10,000 participants, as whole transactions
/// (execution + 21,000 + calldata at 4/16 gas per zero/other byte), like test/SettleGas.t.sol:
/// settleIntervalRoot once, then claims against the 14-level tree, one by one and in a batch.
/// Accounts' slots are written in setUp (a separate transaction, so they are cold in the test)
/// with escrow already funded: the steady state. Print with `forge test --match-contract
/// NettingGas -vv`.
contract NettingGas is Base {
    uint64 internal constant T0 = 1_700_000_100;
    uint256 internal constant PARTICIPANTS = 10_000;
    uint256 internal constant BATCH = 1_000;
    uint256 internal constant BLOCK_GAS_LIMIT = 30_000_000;
    uint256 internal constant MARKET_ACCOUNTS_SLOT = 4; // see `forge inspect Market storageLayout`

    uint128 internal posted;

    function _account(uint256 i) internal pure returns (address) {
        return address(uint160(0x100000 + i));
    }

    /// Half the participants pay, half are paid, as in SettleGas.
    function _cumulative(uint256 i) internal pure returns (int96) {
        return i % 2 == 0 ? -int96(int256(1_000 + i)) : int96(int256(1_000 + i - 1));
    }

    function _tree() internal pure returns (bytes32[][] memory) {
        bytes32[] memory leaves = new bytes32[](PARTICIPANTS);
        for (uint256 i = 0; i < PARTICIPANTS; ++i) {
            leaves[i] = NettingTree.leaf(1, _account(i), _cumulative(i));
        }
        return NettingTree.layers(leaves);
    }

    function setUp() public {
        _deploy();
        for (uint256 i = 0; i < PARTICIPANTS; ++i) {
            // Account slot: escrow 1e9 in the low 128 bits, nothing applied, no root claimed.
            vm.store(address(market), keccak256(abi.encode(_account(i), MARKET_ACCOUNTS_SLOT)), bytes32(uint256(1e9)));
            if (i % 2 == 1) posted += uint128(uint96(_cumulative(i)));
        }
        _commit(T0);
        if (_isSettleTest()) return;
        vm.prank(OPERATOR);
        market.settleIntervalRoot(T0, NettingTree.root(_tree()), posted, posted, uint32(PARTICIPANTS), Attest.root(market, T0, NettingTree.root(_tree()), posted, posted, uint32(PARTICIPANTS)));
    }

    function _isSettleTest() internal pure virtual returns (bool) {
        return false;
    }

    function _txGas(bytes memory data, uint256 execution) internal pure returns (uint256 total) {
        total = 21_000 + execution;
        for (uint256 i = 0; i < data.length; ++i) {
            total += data[i] == 0 ? 4 : 16;
        }
    }

    /// Call with calldata encoded beforehand: a high-level call here would also charge this test's
    /// own (large) memory expansion for copying the arguments, which no real transaction pays.
    /// The ~2,600 gas of a cold call to the market stays in (a transaction's 21,000 covers it):
    /// the figures err on the high side.
    function _measure(address from, bytes memory data) internal returns (uint256) {
        address target = address(market);
        vm.prank(from);
        uint256 execution;
        bool ok;
        // Straight from `data`'s memory: Solidity's `.call(data)` would copy it first.
        assembly ("memory-safe") {
            let before := gas()
            ok := call(gas(), target, 0, add(data, 32), mload(data), 0, 0)
            execution := sub(before, gas())
        }
        vm.assertTrue(ok, "call failed");
        return _txGas(data, execution);
    }

    function test_claimGas() public virtual {
        bytes32[][] memory tree = _tree();
        // One participant claiming for itself, in its own transaction.
        bytes32[] memory proof = NettingTree.proof(tree, 7);
        vm.assertEq(proof.length, 14, "10,000 leaves: 14 levels");
        bytes memory data = abi.encodeCall(market.claim, (_account(7), 1, _cumulative(7), proof));
        uint256 single = _measure(_account(7), data);
        emit log_named_uint("claim, own transaction: gas", single);

        // The operator's batch of BATCH claims (participants 100 .. 100 + BATCH - 1).
        Market.Claim[] memory claims = new Market.Claim[](BATCH);
        for (uint256 k = 0; k < BATCH; ++k) {
            uint256 i = 100 + k;
            claims[k] = Market.Claim(_account(i), _cumulative(i), NettingTree.proof(tree, i));
        }
        data = abi.encodeCall(market.claimMany, (1, claims));
        uint256 batch = _measure(OPERATOR, data);
        emit log_named_uint("claimMany of 1,000: gas", batch);
        emit log_named_uint("claimMany: gas per claim", batch / BATCH);
        emit log_named_uint("claims per 30M block", BLOCK_GAS_LIMIT * BATCH / batch);
        vm.assertEq(market.escrowOf(_account(100)), uint256(int256(1e9) + _cumulative(100)), "claimed");
        // Regression guards (measured ~54k and ~22k when this was written).
        vm.assertLe(single, 60_000, "single claim");
        vm.assertLe(batch / BATCH, 25_000, "batched claim");
    }
}

/// settleIntervalRoot itself: constant gas whatever the number of participants.
contract NettingGasSettle is NettingGas {
    function _isSettleTest() internal pure override returns (bool) {
        return true;
    }

    function test_claimGas() public pure override {}

    function test_settleRootGas() public {
        bytes32 root = NettingTree.root(_tree());
        bytes32 settlementHash = keccak256(abi.encode(root, posted, posted, uint32(PARTICIPANTS)));
        bytes[] memory att = Attest.sign(Attest.digest(market, T0, settlementHash), 3); // 3 verifiers
        bytes memory data =
            abi.encodeCall(market.settleIntervalRoot, (T0, root, posted, posted, uint32(PARTICIPANTS), att));
        uint256 total = _measure(OPERATOR, data);
        emit log_named_uint("participants", PARTICIPANTS);
        emit log_named_uint("settleIntervalRoot transaction gas", total);
        emit log_named_uint("share of a 30M block (ppm)", total * 1e6 / BLOCK_GAS_LIMIT);
        vm.assertLe(total, 130_000, "O(1) settlement"); // ~64k + three attestations
    }
}
