// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Market} from "../src/Market.sol";
import {Registry} from "../src/Registry.sol";
import {Attest, Base, Vm} from "./utils/Base.sol";

/// Signs settlements and verifier-set changes with random subsets (in random order) of a pool of
/// keys, some verifiers and some not, and records whenever the contracts' verdict differs from
/// the rule: success iff >= k signatures, all by current verifiers, strictly ascending signers.
contract QuorumHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant POOL = 6;

    Registry internal immutable registry;
    Market internal immutable market;
    address internal immutable operator;
    uint64 public nextId = 1_700_000_100;
    uint64 public pending; // committed, not yet settled interval (0 = none)

    bool public settledWithoutQuorum;
    bool public quorumRefused;
    bool public setChangedWithoutQuorum;
    bool public setChangeRefused;
    uint256 public settles;
    uint256 public setChanges;

    constructor(Registry registry_, Market market_, address operator_) {
        (registry, market, operator) = (registry_, market_, operator_);
    }

    function _key(uint256 i) internal pure returns (uint256) {
        return 0x5EC1 + i; // 0x5EC1..0x5EC3 are the deployed verifiers; the rest strangers
    }

    /// @dev Signatures of a random selection of pool keys, optionally sorted by signer; and
    /// whether the rule accepts them.
    function _sign(bytes32 digest, uint256 mask, bool sorted) internal view returns (bytes[] memory sigs, bool valid) {
        uint256[] memory picked = new uint256[](POOL);
        uint256 n = 0;
        for (uint256 i = 0; i < POOL; ++i) {
            // Unsorted: by descending pool index, an order unrelated to the addresses.
            uint256 index = sorted ? i : POOL - 1 - i;
            if ((mask >> index) & 1 == 1) picked[n++] = _key(index);
        }
        if (sorted) {
            for (uint256 i = 1; i < n; ++i) {
                for (uint256 j = i; j > 0 && vm.addr(picked[j - 1]) > vm.addr(picked[j]); --j) {
                    (picked[j - 1], picked[j]) = (picked[j], picked[j - 1]);
                }
            }
        }
        sigs = new bytes[](n);
        valid = n >= registry.verifierThreshold();
        address previous = address(0);
        for (uint256 i = 0; i < n; ++i) {
            sigs[i] = Attest.signWith(picked[i], digest);
            address signer = vm.addr(picked[i]);
            if (!registry.isVerifier(signer) || signer <= previous) valid = false;
            previous = signer;
        }
    }

    function commit() external {
        if (pending != 0) return;
        vm.prank(operator);
        market.commitInterval(nextId, keccak256(abi.encode(nextId)), 0, 0, 1, 1);
        pending = nextId;
        nextId += 900;
    }

    function settle(uint256 mask, bool sorted, bool byRoot) external {
        if (pending == 0) return;
        bytes32 root = keccak256(abi.encode("root", pending));
        bytes32 settlementHash =
            byRoot ? keccak256(abi.encode(root, uint128(0), uint128(0), uint32(1))) : keccak256(abi.encodePacked(new bytes32[](0)));
        (bytes[] memory sigs, bool valid) = _sign(Attest.digest(market, pending, settlementHash), mask % 64, sorted);
        bytes memory call = byRoot
            ? abi.encodeCall(Market.settleIntervalRoot, (pending, root, 0, 0, 1, sigs))
            : abi.encodeCall(Market.settleInterval, (pending, new bytes32[](0), sigs));
        vm.prank(operator);
        (bool ok,) = address(market).call(call);
        if (ok && !valid) settledWithoutQuorum = true;
        if (!ok && valid) quorumRefused = true;
        if (ok) {
            pending = 0;
            ++settles;
        }
    }

    function changeSet(uint256 signMask, bool sorted, uint256 newMask, uint256 thresholdSeed) external {
        address[] memory next = new address[](POOL);
        uint256 n = 0;
        for (uint256 i = 0; i < POOL; ++i) {
            if ((newMask >> i) & 1 == 1) next[n++] = vm.addr(_key(i));
        }
        if (n == 0) return;
        assembly {
            mstore(next, n)
        }
        uint256 threshold = 1 + thresholdSeed % n;
        uint64 epoch = registry.verifierEpoch();
        (bytes[] memory sigs, bool valid) = _sign(registry.verifierSetDigest(next, threshold), signMask % 64, sorted);
        (bool ok,) = address(registry).call(abi.encodeCall(Registry.changeVerifiers, (next, threshold, sigs)));
        bool changed = registry.verifierEpoch() != epoch;
        if ((ok || changed) && !valid) setChangedWithoutQuorum = true;
        if (!ok && valid) setChangeRefused = true;
        if (ok) ++setChanges;
    }
}

contract QuorumInvariantTest is Base {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    QuorumHandler internal handler;

    function setUp() public {
        _deploy();
        handler = new QuorumHandler(registry, market, OPERATOR);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](3);
        selectors[0] = QuorumHandler.commit.selector;
        selectors[1] = QuorumHandler.settle.selector;
        selectors[2] = QuorumHandler.changeSet.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), selectors);
    }

    /// The handler reaches both verdicts (so the invariant below is not vacuous).
    function test_handlerReachesBothVerdicts() public {
        handler.commit();
        handler.settle(0x01, true, false); // one signature: refused
        vm.assertEq(handler.settles(), 0, "refused");
        handler.settle(0x07, true, false); // the three verifiers, ascending
        handler.commit();
        handler.settle(0x03, false, true); // unsorted? two keys in pool order reversed
        handler.changeSet(0x07, true, 0x38, 1); // the three verifiers install keys 3..5, k = 2
        vm.assertEq(handler.setChanges(), 1, "set changed");
        vm.assertFalse(handler.settledWithoutQuorum() || handler.quorumRefused(), "rule held");
        vm.assertFalse(handler.setChangedWithoutQuorum() || handler.setChangeRefused(), "rule held");
        vm.assertTrue(handler.settles() >= 1, "settled");
    }

    /// forge-config: default.invariant.runs = 64
    /// forge-config: default.invariant.depth = 100
    function invariant_quorumRule() public view {
        vm.assertFalse(handler.settledWithoutQuorum(), "settled without k valid attestations");
        vm.assertFalse(handler.quorumRefused(), "a valid quorum was refused");
        vm.assertFalse(handler.setChangedWithoutQuorum(), "verifier set changed without k-of-n");
        vm.assertFalse(handler.setChangeRefused(), "a valid set change was refused");
    }
}
