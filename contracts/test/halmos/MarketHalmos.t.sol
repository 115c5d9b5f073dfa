// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Market} from "../../src/Market.sol";
import {Base} from "../utils/Base.sol";
import {NettingTree} from "../utils/Merkle.sol";

/// @dev The halmos cheatcodes used here (halmos-cheatcodes is not on npm; declared by hand).
interface SVM {
    function createCalldata(address target) external pure returns (bytes memory data);
}

/// Symbolic checks (halmos, `make -C contracts halmos`): every `check_` function must hold for
/// ALL values of its parameters and of the symbolic calldata, not just sampled ones.
/// forge ignores these functions (they are not test_/invariant_).
contract MarketHalmos is Base {
    SVM internal constant svm = SVM(address(uint160(uint256(keccak256("svm cheat code")))));
    bytes32 internal constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    address internal constant VICTIM = address(0xB0B);
    address internal constant PAYEE = address(0xA11CE);
    uint64 internal constant T0 = 1_700_000_100;

    bytes32[][] internal tree;

    function setUp() public {
        _deploy();
        _addParticipant(VICTIM);
        _addParticipant(PAYEE);
        _fund(VICTIM, 1_000);
        _fund(PAYEE, 1_000);
        // One interval settled directly, one by root with a pending debit of the victim (so the
        // claim paths are live), and two more committed and open.
        _commit(T0);
        _settle(T0, _pair(VICTIM, -100, PAYEE, 100));
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = NettingTree.leaf(1, VICTIM, -300);
        leaves[1] = NettingTree.leaf(1, PAYEE, 300);
        bytes32[][] memory layers = NettingTree.layers(leaves);
        _commit(T0 + 900);
        vm.prank(OPERATOR);
        market.settleIntervalRoot(T0 + 900, NettingTree.root(layers), 300, 300, 2);
        _commit(T0 + 1_800);
        _commit(T0 + 2_700);
    }

    /// Any single call to the market, by anyone who is neither the victim nor an operator, with
    /// any calldata for any of its functions, leaves the victim's escrow as it was or higher.
    function check_noCallerReducesAnotherEscrow(address caller) public {
        vm.assume(caller != VICTIM && caller != OPERATOR && !market.hasRole(OPERATOR_ROLE, caller));
        vm.assume(caller != address(market) && caller != address(token));
        uint256 before = market.escrowOf(VICTIM);
        bytes memory data = svm.createCalldata(address(market));
        vm.prank(caller);
        (bool ok,) = address(market).call(data);
        ok; // a revert changes nothing, a success must not hurt the victim either
        assert(market.escrowOf(VICTIM) >= before);
    }

    /// Settle-once: after any successful settlement of an interval (either path, any
    /// arguments), no second settlement of the same interval succeeds (either path, any args).
    function check_settleOnce(
        uint64 intervalStartS,
        bool firstByRoot,
        bool secondByRoot,
        bytes32 root1,
        bytes32 root2,
        uint128 moved1,
        uint128 moved2,
        bytes32 entry
    ) public {
        vm.prank(OPERATOR);
        (bool first,) = address(market).call(_settleCall(intervalStartS, firstByRoot, root1, moved1, entry));
        vm.assume(first);
        (,, uint64 settledBefore) = market.progress();
        vm.prank(OPERATOR);
        (bool second,) = address(market).call(_settleCall(intervalStartS, secondByRoot, root2, moved2, entry));
        assert(!second);
        (,, uint64 settledAfter) = market.progress();
        assert(settledAfter == settledBefore);
    }

    /// The intervals settled in setUp can never be settled again, whatever the arguments.
    function check_settledIntervalsStaySettled(bool second, bool byRoot, bytes32 root, uint128 moved, bytes32 entry)
        public
    {
        uint64 id = second ? T0 + 900 : T0;
        vm.prank(OPERATOR);
        (bool ok,) = address(market).call(_settleCall(id, byRoot, root, moved, entry));
        assert(!ok);
    }

    function _settleCall(uint64 id, bool byRoot, bytes32 root, uint128 moved, bytes32 entry)
        internal
        pure
        returns (bytes memory)
    {
        if (byRoot) return abi.encodeCall(Market.settleIntervalRoot, (id, root, moved, moved, 2));
        bytes32[] memory entries = new bytes32[](1);
        entries[0] = entry;
        return abi.encodeCall(Market.settleInterval, (id, entries));
    }
}
