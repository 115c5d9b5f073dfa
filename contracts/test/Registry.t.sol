// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {Registry} from "../src/Registry.sol";
import {Base} from "./utils/Base.sol";

contract RegistryTest is Base {
    address internal constant ALICE = address(0xA11CE);
    address internal constant METER = address(0x3E7E4);
    address internal constant SUSPENDER = address(0x5005);

    event ParticipantAdded(address indexed account, Registry.Role role, uint32 gridNode);
    event ParticipantSuspended(address indexed account, address indexed by);
    event ParticipantReinstated(address indexed account);
    event MeterRegistered(address indexed meter, address indexed owner);

    function setUp() public {
        _deploy();
    }

    function _unauthorized(address caller, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role);
    }

    function test_addParticipant() public {
        vm.expectEmit(true, false, false, true);
        emit ParticipantAdded(ALICE, Registry.Role.Consumer, 42);
        vm.prank(OPERATOR);
        registry.addParticipant(ALICE, Registry.Role.Consumer, 42);
        (Registry.Role role, uint32 node, bool active) = registry.participant(ALICE);
        vm.assertTrue(role == Registry.Role.Consumer, "role");
        vm.assertEq(node, 42, "grid node");
        vm.assertTrue(active && registry.isActive(ALICE) && registry.isRegistered(ALICE), "active");
    }

    function test_gridOperatorRegisteredAtDeploy() public view {
        (Registry.Role role,, bool active) = registry.participant(GRID);
        vm.assertTrue(role == Registry.Role.GridOperator && active, "grid operator");
    }

    function test_revert_addParticipantTwice() public {
        _addParticipant(ALICE);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Registry.AlreadyRegistered.selector, ALICE));
        registry.addParticipant(ALICE, Registry.Role.Auditor, 1);
    }

    function test_revert_addParticipantRoleNone() public {
        vm.prank(OPERATOR);
        vm.expectRevert(Registry.InvalidRole.selector);
        registry.addParticipant(ALICE, Registry.Role.None, 1);
    }

    function test_revert_addParticipantZeroAddress() public {
        vm.prank(OPERATOR);
        vm.expectRevert(Registry.ZeroAddress.selector);
        registry.addParticipant(address(0), Registry.Role.Prosumer, 1);
    }

    function test_revert_addParticipantNotOperator() public {
        vm.expectRevert(_unauthorized(address(this), registry.OPERATOR_ROLE()));
        registry.addParticipant(ALICE, Registry.Role.Prosumer, 1);
    }

    function test_suspendAndReinstate() public {
        _addParticipant(ALICE);
        vm.expectEmit(true, true, false, true);
        emit ParticipantSuspended(ALICE, OPERATOR);
        vm.prank(OPERATOR);
        registry.suspend(ALICE);
        vm.assertFalse(registry.isActive(ALICE), "suspended");
        vm.assertTrue(registry.isRegistered(ALICE), "still registered");
        vm.expectEmit(true, false, false, true);
        emit ParticipantReinstated(ALICE);
        vm.prank(OPERATOR);
        registry.reinstate(ALICE);
        vm.assertTrue(registry.isActive(ALICE), "reinstated");
    }

    function test_suspenderRoleCanSuspendButNotReinstate() public {
        _addParticipant(ALICE);
        bytes32 suspenderRole = registry.SUSPENDER_ROLE();
        vm.prank(OPERATOR);
        registry.grantRole(suspenderRole, SUSPENDER);
        vm.prank(SUSPENDER);
        registry.suspend(ALICE);
        vm.assertFalse(registry.isActive(ALICE), "suspended by quorum");
        bytes32 operatorRole = registry.OPERATOR_ROLE();
        vm.prank(SUSPENDER);
        vm.expectRevert(_unauthorized(SUSPENDER, operatorRole));
        registry.reinstate(ALICE);
    }

    function test_revert_suspendByStranger() public {
        _addParticipant(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Registry.NotOperatorOrSuspender.selector, address(this)));
        registry.suspend(ALICE);
    }

    function test_revert_suspendUnknownOrTwice() public {
        vm.startPrank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Registry.UnknownParticipant.selector, ALICE));
        registry.suspend(ALICE);
        registry.addParticipant(ALICE, Registry.Role.Prosumer, 1);
        registry.suspend(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Registry.AlreadySuspended.selector, ALICE));
        registry.suspend(ALICE);
        vm.stopPrank();
    }

    function test_revert_reinstateActiveOrUnknown() public {
        vm.startPrank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Registry.UnknownParticipant.selector, ALICE));
        registry.reinstate(ALICE);
        registry.addParticipant(ALICE, Registry.Role.Prosumer, 1);
        vm.expectRevert(abi.encodeWithSelector(Registry.NotSuspended.selector, ALICE));
        registry.reinstate(ALICE);
        vm.stopPrank();
    }

    function test_registerMeter() public {
        _addParticipant(ALICE);
        vm.expectEmit(true, true, false, true);
        emit MeterRegistered(METER, ALICE);
        vm.prank(OPERATOR);
        registry.registerMeter(METER, ALICE);
        vm.assertEq(registry.meterOwner(METER), ALICE, "owner");
    }

    function test_revert_registerMeterErrors() public {
        vm.startPrank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Registry.UnknownParticipant.selector, ALICE));
        registry.registerMeter(METER, ALICE);
        registry.addParticipant(ALICE, Registry.Role.Prosumer, 1);
        vm.expectRevert(Registry.ZeroAddress.selector);
        registry.registerMeter(address(0), ALICE);
        registry.registerMeter(METER, ALICE);
        vm.expectRevert(abi.encodeWithSelector(Registry.MeterAlreadyRegistered.selector, METER));
        registry.registerMeter(METER, GRID);
        vm.stopPrank();
        vm.expectRevert(_unauthorized(address(this), registry.OPERATOR_ROLE()));
        registry.registerMeter(address(0xBEEF), ALICE);
    }

    function testFuzz_addParticipant(address account, uint8 rawRole, uint32 gridNode) public {
        vm.assume(account != address(0) && account != GRID);
        Registry.Role role = Registry.Role(_bound(rawRole, 1, 5));
        vm.prank(OPERATOR);
        registry.addParticipant(account, role, gridNode);
        (Registry.Role gotRole, uint32 gotNode, bool active) = registry.participant(account);
        vm.assertTrue(gotRole == role && active, "role and active");
        vm.assertEq(gotNode, gridNode, "node");
    }
}
