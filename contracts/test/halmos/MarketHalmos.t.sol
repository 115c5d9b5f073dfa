// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {GridToken} from "../../src/GridToken.sol";
import {Market} from "../../src/Market.sol";
import {Registry} from "../../src/Registry.sol";
import {Base} from "../utils/Base.sol";
import {NettingTree} from "../utils/Merkle.sol";

/// @dev The halmos cheatcodes used here (halmos-cheatcodes is not on npm; declared by hand).
interface SVM {
    function createCalldata(address target) external pure returns (bytes memory data);
}

/// @dev A Registry whose quorum check accepts anything: the escrow and settle-once properties
/// below must hold whatever the verifiers sign (QuorumHalmos checks the quorum itself).
contract QuorumFreeRegistry is Registry {
    constructor(address admin, address[] memory verifiers_) Registry(admin, verifiers_, 1) {}

    function checkQuorum(bytes32, bytes[] calldata) external pure override {}
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
        address[] memory verifiers = new address[](1);
        verifiers[0] = address(0x7E51);
        token = new GridToken(OPERATOR);
        registry = new QuorumFreeRegistry(OPERATOR, verifiers);
        market = new Market(token, registry, GRID, OPERATOR, INTERVAL_S, EXIT_AFTER_INTERVALS);
        vm.startPrank(OPERATOR);
        registry.addParticipant(GRID, Registry.Role.GridOperator, 0);
        token.approve(address(market), type(uint256).max);
        vm.stopPrank();
        _addParticipant(VICTIM);
        _addParticipant(PAYEE);
        _fund(VICTIM, 1_000);
        _fund(PAYEE, 1_000);
        // One interval settled directly, one by root with a pending debit of the victim (so the
        // claim paths are live), and two more committed and open.
        _commit(T0);
        vm.prank(OPERATOR); // no attestations needed: QuorumFreeRegistry
        market.settleInterval(T0, _pair(VICTIM, -100, PAYEE, 100), new bytes[](0));
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = NettingTree.leaf(1, VICTIM, -300);
        leaves[1] = NettingTree.leaf(1, PAYEE, 300);
        bytes32[][] memory layers = NettingTree.layers(leaves);
        _commit(T0 + 900);
        vm.prank(OPERATOR);
        market.settleIntervalRoot(T0 + 900, NettingTree.root(layers), 300, 300, 2, new bytes[](0));
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
        bytes[] memory att = new bytes[](0);
        if (byRoot) return abi.encodeCall(Market.settleIntervalRoot, (id, root, moved, moved, 2, att));
        bytes32[] memory entries = new bytes32[](1);
        entries[0] = entry;
        return abi.encodeCall(Market.settleInterval, (id, entries, att));
    }
}

/// The quorum with the real Registry: 4 verifiers, threshold 3. halmos builds every dynamic
/// array of symbolic calldata with at most 2 elements (--default-array-lengths 0,1,2), so these
/// checks cover every call the operator can make with fewer than k signatures of any content,
/// i.e. without the verifiers: it can never settle, and never change the verifier set.
contract QuorumHalmos is Base {
    SVM internal constant svm = SVM(address(uint160(uint256(keccak256("svm cheat code")))));
    uint64 internal constant T0 = 1_700_000_100;

    function setUp() public {
        address[] memory verifiers = new address[](4);
        (verifiers[0], verifiers[1], verifiers[2], verifiers[3]) =
            (address(0x7E51), address(0x7E52), address(0x7E53), address(0x7E54));
        token = new GridToken(OPERATOR);
        registry = new Registry(OPERATOR, verifiers, 3);
        market = new Market(token, registry, GRID, OPERATOR, INTERVAL_S, EXIT_AFTER_INTERVALS);
        vm.prank(OPERATOR);
        registry.addParticipant(GRID, Registry.Role.GridOperator, 0);
        _commit(T0);
        _commit(T0 + 900);
    }

    /// Any call by the operator (who holds every role) to the market settles nothing.
    function check_operatorAloneCannotSettle() public {
        bytes memory data = svm.createCalldata(address(market));
        vm.prank(OPERATOR);
        (bool ok,) = address(market).call(data);
        ok;
        (,, uint64 settled) = market.progress();
        assert(settled == 0);
    }

    /// Any call by the operator to the registry leaves the verifier set and threshold alone.
    function check_operatorAloneCannotChangeVerifiers() public {
        bytes memory data = svm.createCalldata(address(registry));
        vm.prank(OPERATOR);
        (bool ok,) = address(registry).call(data);
        ok;
        assert(registry.verifierEpoch() == 0);
        assert(registry.verifierThreshold() == 3);
    }
}
