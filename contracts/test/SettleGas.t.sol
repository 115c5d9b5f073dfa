// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Base, Attest} from "./utils/Base.sol";

/// Gas of settleInterval for N entries, as a whole transaction would pay on a cancun chain:
/// execution (measured) + 21,000 intrinsic + calldata (4 per zero byte, 16 per other byte).
/// Accounts are written straight into storage in setUp (a separate transaction for forge, so the
/// slots are cold in the test, as on a real chain); every account already holds escrow, the
/// steady state, so each credit is a nonzero-to-nonzero SSTORE. Every settlement carries three
/// verifier attestations. Print with `forge test -vv`.
abstract contract SettleGasBench is Base {
    uint64 internal constant T0 = 1_700_000_100;
    uint256 internal constant BLOCK_GAS_LIMIT = 30_000_000;
    uint256 internal constant REGISTRY_PARTICIPANTS_SLOT = 1; // after AccessControl._roles
    // Market._accounts (escrow in the low 128 bits); see `forge inspect Market storageLayout`.
    uint256 internal constant MARKET_ESCROW_SLOT = 4;

    bytes32[] internal entries;

    function _entries() internal pure virtual returns (uint256);

    function setUp() public {
        _deploy();
        uint256 n = _entries();
        bytes32 activeProsumer = bytes32(uint256(1) | (uint256(1) << 40)); // role, node 0, active
        for (uint256 i = 0; i < n; ++i) {
            address account = address(uint160(0x100000 + i)); // ascending, so already sorted
            vm.store(address(registry), keccak256(abi.encode(account, REGISTRY_PARTICIPANTS_SLOT)), activeProsumer);
            vm.store(address(market), keccak256(abi.encode(account, MARKET_ESCROW_SLOT)), bytes32(uint256(1e9)));
            // Alternate payers and payees: half the entries debit, half credit.
            int96 delta = i % 2 == 0 ? -int96(int256(1_000 + i)) : int96(int256(1_000 + i - 1));
            if (i % 2 == 0 && i == n - 1) delta = 0; // odd n: the last one is a zero entry
            entries.push(_entry(account, delta));
        }
        _commit(T0);
    }

    function test_settleGas() public {
        bytes32[] memory batch = entries;
        // Three verifier attestations (the quorum is 2; a third costs what it costs).
        bytes[] memory att = Attest.sign(Attest.digest(market, T0, keccak256(abi.encodePacked(batch))), 3);
        bytes memory data = abi.encodeCall(market.settleInterval, (T0, batch, att));
        uint256 calldataGas;
        for (uint256 i = 0; i < data.length; ++i) {
            calldataGas += data[i] == 0 ? 4 : 16;
        }
        vm.prank(OPERATOR);
        uint256 before = gasleft();
        market.settleInterval(T0, batch, att);
        uint256 execution = before - gasleft();
        uint256 total = 21_000 + calldataGas + execution;
        emit log_named_uint("entries", batch.length);
        emit log_named_uint("execution gas", execution);
        emit log_named_uint("calldata gas", calldataGas);
        emit log_named_uint("transaction gas", total);
        emit log_named_uint("gas per entry", total / batch.length);
        emit log_named_uint("fits 30M gas (1 = yes)", total <= BLOCK_GAS_LIMIT ? 1 : 0);
        _check(total, batch.length);
    }

    function _check(uint256 total, uint256 n) internal pure virtual {
        // Regression guard: about 10k per entry measured when this was written (cold slots).
        vm.assertLe(total / n, 12_500, "gas per entry");
    }
}

contract SettleGas10 is SettleGasBench {
    function _entries() internal pure override returns (uint256) {
        return 10;
    }

    function _check(uint256 total, uint256) internal pure override {
        vm.assertLe(total, 200_000, "10 entries");
    }
}

contract SettleGas100 is SettleGasBench {
    function _entries() internal pure override returns (uint256) {
        return 100;
    }
}

contract SettleGas1000 is SettleGasBench {
    function _entries() internal pure override returns (uint256) {
        return 1000;
    }
}

contract SettleGas10000 is SettleGasBench {
    function _entries() internal pure override returns (uint256) {
        return 10_000;
    }

    function _check(uint256 total, uint256 n) internal pure override {
        super._check(total, n);
        // Known limit of the direct path: 10,000 entries do not fit one 30M block; large
        // communities settle by netting root instead (test/NettingGas.t.sol).
        vm.assertTrue(total > BLOCK_GAS_LIMIT, "10,000 entries now fit 30M: update the docs");
    }
}
