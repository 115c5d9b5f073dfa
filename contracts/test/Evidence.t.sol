// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {Evidence} from "../src/Evidence.sol";
import {Registry} from "../src/Registry.sol";
import {Base} from "./utils/Base.sol";

contract EvidenceTest is Base {
    uint64 internal constant DAY = 86_400;
    uint64 internal constant W = 20_000 * DAY; // an aligned window start
    uint32 internal constant K = 3;
    address internal constant MALLORY = address(0xBAD);
    address internal constant ALICE = address(0xA11CE);
    address internal constant METER = address(0x3E7E4);

    Evidence internal evidence;
    address[5] internal detectors = [address(0xD1), address(0xD2), address(0xD3), address(0xD4), address(0xD5)];

    event EvidenceSubmitted(
        address indexed subject, uint64 indexed windowStartS, address indexed detector, bytes32 evidenceHash, uint32 votes
    );
    event AnomalyConfirmed(address indexed subject, uint64 indexed windowStartS, address suspended, uint32 votes);
    event QuorumChanged(uint32 previous, uint32 current);

    function setUp() public {
        _deploy();
        evidence = new Evidence(registry, OPERATOR, K, DAY);
        vm.startPrank(OPERATOR);
        registry.grantRole(registry.SUSPENDER_ROLE(), address(evidence));
        for (uint256 i = 0; i < detectors.length; ++i) {
            evidence.grantRole(evidence.DETECTOR_ROLE(), detectors[i]);
        }
        registry.addParticipant(MALLORY, Registry.Role.Prosumer, 1);
        registry.addParticipant(ALICE, Registry.Role.Prosumer, 2);
        registry.registerMeter(METER, MALLORY);
        vm.stopPrank();
    }

    function _submit(uint256 node, address subject, uint64 windowStartS) internal {
        vm.prank(detectors[node]);
        evidence.submitEvidence(subject, windowStartS, keccak256(abi.encode(node, subject, windowStartS)));
    }

    function test_kDistinctDetectorsConfirmAndSuspendTheMeterOwner() public {
        _submit(0, METER, W);
        _submit(1, METER, W);
        vm.assertFalse(evidence.isConfirmed(METER, W), "two of three");
        vm.assertTrue(registry.isActive(MALLORY), "still active");
        vm.expectEmit(true, true, false, true);
        emit AnomalyConfirmed(METER, W, MALLORY, 3);
        _submit(2, METER, W);
        vm.assertTrue(evidence.isConfirmed(METER, W), "confirmed");
        vm.assertFalse(registry.isActive(MALLORY), "owner suspended");
        vm.assertEq(uint256(evidence.votes(METER, W)), 3, "votes");
    }

    function test_participantSubjectIsSuspendedItself() public {
        for (uint256 i = 0; i < K; ++i) {
            _submit(i, ALICE, W);
        }
        vm.assertFalse(registry.isActive(ALICE), "participant suspended");
    }

    function test_votesAfterConfirmationAreRecordedWithoutSecondSuspension() public {
        for (uint256 i = 0; i < K; ++i) {
            _submit(i, METER, W);
        }
        _submit(3, METER, W); // registry would revert AlreadySuspended if suspended again
        vm.assertEq(uint256(evidence.votes(METER, W)), 4, "fourth vote kept");
    }

    function test_confirmationOfUnknownOrSuspendedAccountSuspendsNothing() public {
        address stranger = address(0x5742);
        _submit(0, stranger, W);
        _submit(1, stranger, W);
        vm.expectEmit(true, true, false, true);
        emit AnomalyConfirmed(stranger, W, address(0), 3);
        _submit(2, stranger, W);
        vm.assertTrue(evidence.isConfirmed(stranger, W), "confirmed without a registry account");
        vm.prank(OPERATOR);
        registry.suspend(ALICE);
        for (uint256 i = 0; i < K; ++i) {
            _submit(i, ALICE, W); // already suspended: confirming must not revert
        }
        vm.assertTrue(evidence.isConfirmed(ALICE, W), "confirmed while already suspended");
    }

    function test_submitEmitsAndStoresTheHash() public {
        bytes32 h = keccak256("record");
        vm.expectEmit(true, true, true, true);
        emit EvidenceSubmitted(METER, W, detectors[0], h, 1);
        vm.prank(detectors[0]);
        evidence.submitEvidence(METER, W, h);
        vm.assertEq(evidence.evidenceOf(METER, W, detectors[0]), h, "hash stored");
    }

    function test_sameSubjectOtherWindowsCountSeparately() public {
        _submit(0, METER, W);
        _submit(1, METER, W + DAY);
        _submit(2, METER, W + 2 * DAY);
        vm.assertFalse(evidence.isConfirmed(METER, W), "no window has three votes");
        vm.assertTrue(registry.isActive(MALLORY), "active");
    }

    function test_revert_sameNodeTwice() public {
        _submit(0, METER, W);
        vm.prank(detectors[0]);
        vm.expectRevert(abi.encodeWithSelector(Evidence.AlreadySubmitted.selector, METER, W, detectors[0]));
        evidence.submitEvidence(METER, W, keccak256("another record"));
    }

    function test_revert_notDetector() public {
        bytes32 role = evidence.DETECTOR_ROLE();
        vm.prank(MALLORY);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, MALLORY, role));
        evidence.submitEvidence(ALICE, W, keccak256("x"));
    }

    function test_revert_misalignedWindow() public {
        vm.prank(detectors[0]);
        vm.expectRevert(abi.encodeWithSelector(Evidence.MisalignedWindow.selector, W + 1, DAY));
        evidence.submitEvidence(METER, W + 1, keccak256("x"));
    }

    function test_revert_zeroHashAndZeroSubject() public {
        vm.prank(detectors[0]);
        vm.expectRevert(Evidence.ZeroEvidenceHash.selector);
        evidence.submitEvidence(METER, W, bytes32(0));
        vm.prank(detectors[0]);
        vm.expectRevert(Evidence.ZeroAddress.selector);
        evidence.submitEvidence(address(0), W, keccak256("x"));
    }

    function test_setQuorum() public {
        vm.expectEmit(false, false, false, true);
        emit QuorumChanged(K, 2);
        vm.prank(OPERATOR);
        evidence.setQuorum(2);
        _submit(0, ALICE, W);
        _submit(1, ALICE, W);
        vm.assertTrue(evidence.isConfirmed(ALICE, W), "two now suffice");
    }

    function test_revert_setQuorumZeroOrNotAdmin() public {
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Evidence.InvalidQuorum.selector, 0));
        evidence.setQuorum(0);
        vm.prank(detectors[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, detectors[0], bytes32(0)
            )
        );
        evidence.setQuorum(1);
    }

    function test_revert_constructorArguments() public {
        vm.expectRevert(abi.encodeWithSelector(Evidence.InvalidQuorum.selector, 0));
        new Evidence(registry, OPERATOR, 0, DAY);
        vm.expectRevert(Evidence.InvalidWindowLength.selector);
        new Evidence(registry, OPERATOR, K, 0);
        vm.expectRevert(Evidence.ZeroAddress.selector);
        new Evidence(Registry(address(0)), OPERATOR, K, DAY);
    }

    /// @dev One lying node of five (k = 3) submits whatever it likes, as often as it likes, while
    /// the four honest nodes flag only the real culprit: no victim is ever confirmed or suspended.
    function testFuzz_oneLiarOfFiveNeverConfirms(uint256 seed, uint8 liarIndex, uint64 window) public {
        uint256 liar = liarIndex % detectors.length;
        uint64 windowStartS = ((window % (1 << 40)) / DAY) * DAY;
        vm.assume(address(uint160(seed | 1)) != METER);
        for (uint256 i = 0; i < detectors.length; ++i) {
            if (i != liar) _submit(i, METER, W); // the honest finding about MALLORY's meter
        }
        address[3] memory victims = [ALICE, address(uint160(seed | 1)), OPERATOR];
        for (uint256 round = 0; round < 12; ++round) {
            uint256 r = uint256(keccak256(abi.encode(seed, round)));
            address victim = victims[r % 3];
            uint64 start = windowStartS + uint64((r >> 8) % 3) * DAY;
            vm.prank(detectors[liar]);
            try evidence.submitEvidence(victim, start, bytes32(r | 1)) {} catch {}
            vm.assertLe(uint256(evidence.votes(victim, start)), 1, "a liar counts once");
            vm.assertFalse(evidence.isConfirmed(victim, start), "victim never confirmed");
        }
        vm.assertTrue(registry.isActive(ALICE), "victim participant active");
        vm.assertTrue(evidence.isConfirmed(METER, W), "the real culprit is confirmed");
    }
}
