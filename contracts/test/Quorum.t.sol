// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Market} from "../src/Market.sol";
import {Registry} from "../src/Registry.sol";
import {Attest, Base} from "./utils/Base.sol";

/// The verifier quorum: settlement needs k valid attestations, the set changes only by k-of-n.
contract QuorumTest is Base {
    uint64 internal constant T0 = 1_700_000_100;
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    uint256 internal constant STRANGER_KEY = 0xBAD;

    event VerifierSetChanged(uint64 indexed epoch, address[] verifiers, uint256 threshold);

    function setUp() public {
        _deploy();
        _addParticipant(ALICE);
        _addParticipant(BOB);
        _fund(BOB, 1_000);
        _commit(T0);
    }

    function _digest(bytes32[] memory entries) internal view returns (bytes32) {
        return Attest.digest(market, T0, keccak256(abi.encodePacked(entries)));
    }

    function _settleExpecting(bytes32[] memory entries, bytes[] memory att, bytes memory err) internal {
        vm.prank(OPERATOR);
        vm.expectRevert(err);
        market.settleInterval(T0, entries, att);
    }

    function test_deployedSet() public view {
        address[] memory v = registry.verifiers();
        vm.assertEq(v.length, 3, "three verifiers");
        vm.assertEq(registry.verifierThreshold(), 2, "quorum 2");
        vm.assertTrue(registry.isVerifier(v[0]) && !registry.isVerifier(OPERATOR), "membership");
        vm.assertEq(uint256(registry.verifierEpoch()), 0, "epoch");
    }

    function test_attestationDigestMatchesTheContract() public view {
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        vm.assertEq(
            market.attestationDigest(T0, keccak256(abi.encodePacked(entries))), _digest(entries), "same digest"
        );
    }

    function test_settleWithQuorum() public {
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        _settle(T0, entries);
        vm.assertEq(market.escrowOf(ALICE), 10, "settled");
        vm.assertEq(uint256(market.lastSettledAtS()), block.timestamp, "settle time");
    }

    function test_allThreeAttestationsAlsoSettle() public {
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        bytes[] memory att = Attest.sign(_digest(entries), 3);
        vm.prank(OPERATOR);
        market.settleInterval(T0, entries, att);
        vm.assertEq(market.escrowOf(ALICE), 10, "settled");
    }

    function test_revert_tooFewAttestations() public {
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        _settleExpecting(
            entries, new bytes[](0), abi.encodeWithSelector(Registry.TooFewAttestations.selector, 0, 2)
        );
        _settleExpecting(
            entries,
            Attest.sign(_digest(entries), 1),
            abi.encodeWithSelector(Registry.TooFewAttestations.selector, 1, 2)
        );
    }

    function test_revert_duplicateAttestation() public {
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        bytes[] memory att = new bytes[](2);
        att[0] = Attest.signWith(Attest.keys()[0], _digest(entries));
        att[1] = att[0];
        _settleExpecting(entries, att, abi.encodeWithSelector(Registry.AttestationsNotAscending.selector, 1));
    }

    function test_revert_descendingAttestations() public {
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        bytes[] memory att = new bytes[](2);
        att[0] = Attest.signWith(Attest.keys()[1], _digest(entries));
        att[1] = Attest.signWith(Attest.keys()[0], _digest(entries));
        _settleExpecting(entries, att, abi.encodeWithSelector(Registry.AttestationsNotAscending.selector, 1));
    }

    function test_revert_strangerIsNotVerifier() public {
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        bytes[] memory att = Attest.sign(_digest(entries), 2);
        att[1] = Attest.signWith(STRANGER_KEY, _digest(entries));
        _settleExpecting(entries, att, abi.encodeWithSelector(Registry.NotVerifier.selector, vm.addr(STRANGER_KEY)));
    }

    function test_revert_operatorKeyIsNotVerifier() public {
        uint256 operatorKey = 0x0A11;
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        bytes[] memory att = new bytes[](2);
        att[0] = Attest.signWith(operatorKey, _digest(entries));
        att[1] = Attest.signWith(Attest.keys()[0], _digest(entries));
        _settleExpecting(entries, att, abi.encodeWithSelector(Registry.NotVerifier.selector, vm.addr(operatorKey)));
    }

    /// An attestation of other entries, another interval, another Market or another chain
    /// recovers a stranger: NotVerifier, whatever the verifiers meant to sign.
    function test_revert_attestationForSomethingElse() public {
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        bytes32[] memory other = _pair(ALICE, 11, BOB, -11);
        bytes[] memory att = Attest.sign(_digest(other), 2);
        _expectNotVerifier(entries, att);
        _commit(T0 + 900);
        att = Attest.sign(Attest.digest(market, T0 + 900, keccak256(abi.encodePacked(entries))), 2);
        _expectNotVerifier(entries, att);
        Market otherMarket = new Market(token, registry, GRID, OPERATOR, INTERVAL_S, EXIT_AFTER_INTERVALS);
        att = Attest.sign(Attest.digest(otherMarket, T0, keccak256(abi.encodePacked(entries))), 2);
        _expectNotVerifier(entries, att);
        att = Attest.sign(_digest(entries), 2); // right for this chain...
        vm.chainId(1);
        _expectNotVerifier(entries, att); // ...and refused on another
    }

    function _expectNotVerifier(bytes32[] memory entries, bytes[] memory att) internal {
        vm.prank(OPERATOR);
        (bool ok, bytes memory err) =
            address(market).call(abi.encodeCall(Market.settleInterval, (T0, entries, att)));
        vm.assertFalse(ok, "refused");
        vm.assertEq(bytes4(err), Registry.NotVerifier.selector, "NotVerifier");
    }

    function test_revert_malformedSignature() public {
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        bytes[] memory att = Attest.sign(_digest(entries), 2);
        att[0] = hex"1234";
        _settleExpecting(entries, att, abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 2));
    }

    function test_revert_rootPathNeedsQuorum() public {
        bytes32 root = keccak256("root");
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Registry.TooFewAttestations.selector, 0, 2));
        market.settleIntervalRoot(T0, root, 5, 5, 2, new bytes[](0));
        // Attested for another account count: a stranger.
        bytes[] memory att = _attRoot(T0, root, 5, 5, 3);
        vm.prank(OPERATOR);
        (bool ok, bytes memory err) =
            address(market).call(abi.encodeCall(Market.settleIntervalRoot, (T0, root, 5, 5, 2, att)));
        vm.assertFalse(ok, "refused");
        vm.assertEq(bytes4(err), Registry.NotVerifier.selector, "NotVerifier");
        att = _attRoot(T0, root, 5, 5, 2);
        vm.prank(OPERATOR);
        market.settleIntervalRoot(T0, root, 5, 5, 2, att);
        vm.assertEq(uint256(market.rootCount()), 1, "posted");
    }

    function testFuzz_noSettlementBelowQuorum(uint8 count, uint256 seed) public {
        uint256 n = count % 2; // 0 or 1 valid signatures: always fewer than k = 2
        bytes32[] memory entries = _pair(ALICE, int96(int256(seed % 500)), BOB, -int96(int256(seed % 500)));
        bytes[] memory att = Attest.sign(_digest(entries), n);
        vm.prank(OPERATOR);
        (bool ok,) = address(market).call(abi.encodeCall(Market.settleInterval, (T0, entries, att)));
        vm.assertFalse(ok, "settled without quorum");
        (,, uint64 settled) = market.progress();
        vm.assertEq(uint256(settled), 0, "nothing settled");
    }

    /// Any k signatures with at least one by a non-verifier key never settle.
    function testFuzz_oneForeignSignatureBreaksTheQuorum(uint256 foreignKey, bool first) public {
        foreignKey = _bound(foreignKey, 1, 2 ** 128);
        uint256[] memory keys = Attest.keys();
        vm.assume(foreignKey != keys[0] && foreignKey != keys[1] && foreignKey != keys[2]);
        bytes32[] memory entries = _pair(ALICE, 10, BOB, -10);
        bytes[] memory att = Attest.sign(_digest(entries), 2);
        att[first ? 0 : 1] = Attest.signWith(foreignKey, _digest(entries));
        vm.prank(OPERATOR);
        (bool ok,) = address(market).call(abi.encodeCall(Market.settleInterval, (T0, entries, att)));
        vm.assertFalse(ok, "settled with a foreign signature");
    }

    // ------------------------------------------------------------------ set changes

    function _newSet() internal pure returns (address[] memory v) {
        v = new address[](2);
        (v[0], v[1]) = (address(0x7E51), address(0x7E52));
    }

    function _setSigs(address[] memory v, uint256 threshold, uint256 count) internal view returns (bytes[] memory) {
        return Attest.sign(registry.verifierSetDigest(v, threshold), count);
    }

    function test_changeVerifiersWithQuorum() public {
        address[] memory v = _newSet();
        bytes[] memory sigs = _setSigs(v, 1, 2);
        vm.expectEmit(true, false, false, true);
        emit VerifierSetChanged(1, v, 1);
        address anyone = address(0xC0FFEE);
        vm.prank(anyone);
        registry.changeVerifiers(v, 1, sigs);
        vm.assertEq(registry.verifierThreshold(), 1, "threshold");
        vm.assertEq(uint256(registry.verifierEpoch()), 1, "epoch");
        vm.assertTrue(registry.isVerifier(v[0]) && !registry.isVerifier(Attest.verifiers()[0]), "replaced");
        vm.assertEq(registry.verifiers().length, 2, "listed");
    }

    function test_revert_changeVerifiersBelowQuorum() public {
        address[] memory v = _newSet();
        bytes[] memory sigs = _setSigs(v, 1, 1);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Registry.TooFewAttestations.selector, 1, 2));
        registry.changeVerifiers(v, 1, sigs);
    }

    function test_revert_changeVerifiersReplay() public {
        address[] memory v = _newSet();
        bytes[] memory sigs = _setSigs(v, 1, 2);
        registry.changeVerifiers(v, 1, sigs);
        vm.expectRevert(); // the old verifiers are gone and the epoch moved: NotVerifier
        registry.changeVerifiers(v, 1, sigs);
    }

    function test_revert_changeVerifiersBadSet() public {
        address[] memory v = _newSet();
        _expectChangeRevert(v, 3, abi.encodeWithSelector(Registry.InvalidThreshold.selector, 3, 2));
        _expectChangeRevert(v, 0, abi.encodeWithSelector(Registry.InvalidThreshold.selector, 0, 2));
        v[1] = v[0];
        _expectChangeRevert(v, 1, abi.encodeWithSelector(Registry.DuplicateVerifier.selector, v[0]));
        v[1] = OPERATOR;
        _expectChangeRevert(v, 1, abi.encodeWithSelector(Registry.VerifierIsOperator.selector, OPERATOR));
        v[1] = address(0);
        _expectChangeRevert(v, 1, abi.encodeWithSelector(Registry.ZeroAddress.selector));
    }

    /// A change signed by the whole quorum that the Registry still refuses.
    function _expectChangeRevert(address[] memory v, uint256 threshold, bytes memory err) internal {
        bytes[] memory sigs = _setSigs(v, threshold, 2);
        vm.expectRevert(err);
        registry.changeVerifiers(v, threshold, sigs);
    }

    function test_revert_constructorBadSet() public {
        address[] memory v = _newSet();
        vm.expectRevert(abi.encodeWithSelector(Registry.InvalidThreshold.selector, 0, 2));
        new Registry(OPERATOR, v, 0);
        v[0] = OPERATOR;
        vm.expectRevert(abi.encodeWithSelector(Registry.VerifierIsOperator.selector, OPERATOR));
        new Registry(OPERATOR, v, 1);
        vm.expectRevert(Registry.ZeroAddress.selector);
        new Registry(address(0), _newSet(), 1);
    }

    function test_constructorEmitsTheFirstSet() public {
        address[] memory v = _newSet();
        vm.expectEmit(true, false, false, true);
        emit VerifierSetChanged(0, v, 2);
        new Registry(OPERATOR, v, 2);
    }

    // ------------------------------------------------------------------ batches

    function test_addParticipantsAndRegisterMeters() public {
        address[] memory accounts = new address[](3);
        Registry.Role[] memory roles = new Registry.Role[](3);
        uint32[] memory nodes = new uint32[](3);
        address[] memory meters = new address[](3);
        for (uint256 i = 0; i < 3; ++i) {
            accounts[i] = address(uint160(0xD000 + i));
            roles[i] = Registry.Role.Consumer;
            nodes[i] = uint32(i + 7);
            meters[i] = address(uint160(0xE000 + i));
        }
        vm.startPrank(OPERATOR);
        registry.addParticipants(accounts, roles, nodes);
        registry.registerMeters(meters, accounts);
        vm.stopPrank();
        (, uint32 node,) = registry.participant(accounts[2]);
        vm.assertEq(uint256(node), 9, "grid node");
        vm.assertEq(registry.meterOwner(meters[1]), accounts[1], "meter owner");
    }

    function test_revert_batchesLengthMismatchAndRoles() public {
        address[] memory accounts = new address[](2);
        (accounts[0], accounts[1]) = (address(0xD001), address(0xD002));
        vm.startPrank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Registry.LengthMismatch.selector, 2, 1));
        registry.addParticipants(accounts, new Registry.Role[](1), new uint32[](2));
        vm.expectRevert(abi.encodeWithSelector(Registry.LengthMismatch.selector, 2, 3));
        registry.addParticipants(accounts, new Registry.Role[](2), new uint32[](3));
        vm.expectRevert(abi.encodeWithSelector(Registry.LengthMismatch.selector, 2, 0));
        registry.registerMeters(accounts, new address[](0));
        vm.expectRevert(Registry.InvalidRole.selector);
        registry.addParticipants(accounts, new Registry.Role[](2), new uint32[](2));
        vm.stopPrank();
        vm.prank(ALICE);
        vm.expectRevert();
        registry.addParticipants(accounts, new Registry.Role[](2), new uint32[](2));
    }
}
