// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {Consent} from "../src/Consent.sol";
import {Base} from "./utils/Base.sol";

contract ConsentTest is Base {
    address internal constant OWNER = address(0xA11CE);
    address internal constant GRANTEE = address(0x6A47);
    uint64 internal constant NOW_S = 1_700_000_000;
    uint64 internal constant FROM_S = 1_690_000_000;
    uint64 internal constant TO_S = 1_700_000_000;
    uint64 internal constant EXPIRES_S = NOW_S + 30 days;
    uint256 internal constant READINGS = 1;
    uint256 internal constant STATEMENTS = 2;

    Consent internal consent;

    event ConsentGranted(
        uint256 indexed id,
        address indexed owner,
        address indexed grantee,
        uint256 scopeBits,
        uint64 dataFromS,
        uint64 dataToS,
        uint64 expiresAtS
    );
    event ConsentRevoked(uint256 indexed id, address indexed owner, address indexed grantee);
    event AccessLogCommitted(uint64 indexed dayStartS, bytes32 root, uint32 entryCount);

    function setUp() public {
        vm.warp(NOW_S);
        consent = new Consent(OPERATOR);
    }

    function _grant() internal returns (uint256 id) {
        vm.prank(OWNER);
        id = consent.grant(GRANTEE, READINGS | STATEMENTS, FROM_S, TO_S, EXPIRES_S);
    }

    function test_grantAndCheck() public {
        vm.expectEmit(true, true, true, true);
        emit ConsentGranted(1, OWNER, GRANTEE, 3, FROM_S, TO_S, EXPIRES_S);
        uint256 id = _grant();
        vm.assertEq(id, 1, "first id");
        vm.assertEq(consent.grantCount(), 1, "count");
        vm.assertTrue(consent.isAllowed(OWNER, GRANTEE, READINGS, NOW_S, FROM_S, TO_S), "whole period");
        vm.assertTrue(consent.isAllowed(OWNER, GRANTEE, 3, NOW_S + 1, FROM_S + 900, FROM_S + 1800), "both scopes");
        vm.assertFalse(consent.isAllowed(OWNER, GRANTEE, 4, NOW_S, FROM_S, TO_S), "other scope");
        vm.assertFalse(consent.isAllowed(OWNER, GRANTEE, READINGS, NOW_S, FROM_S - 1, TO_S), "before the data");
        vm.assertFalse(consent.isAllowed(OWNER, GRANTEE, READINGS, NOW_S, FROM_S, TO_S + 1), "after the data");
        vm.assertFalse(consent.isAllowed(OWNER, GRANTEE, READINGS, NOW_S - 1, FROM_S, TO_S), "before the grant");
        vm.assertFalse(consent.isAllowed(OWNER, GRANTEE, READINGS, EXPIRES_S, FROM_S, TO_S), "expired");
        vm.assertFalse(consent.isAllowed(GRANTEE, OWNER, READINGS, NOW_S, FROM_S, TO_S), "other direction");
        vm.assertFalse(consent.isAllowed(OWNER, GRANTEE, 0, NOW_S, FROM_S, TO_S), "empty scope");
        Consent.Grant memory g = consent.grantOf(id);
        vm.assertEq(g.owner, OWNER, "owner");
        vm.assertEq(uint256(g.grantedAtS), NOW_S, "granted at");
        vm.assertEq(consent.grantIds(OWNER, GRANTEE).length, 1, "listed");
    }

    function test_revokeEndsTheConsentFromThenOn() public {
        uint256 id = _grant();
        vm.warp(NOW_S + 100);
        vm.expectEmit(true, true, true, true);
        emit ConsentRevoked(id, OWNER, GRANTEE);
        vm.prank(OWNER);
        consent.revoke(id);
        vm.assertTrue(consent.isAllowed(OWNER, GRANTEE, READINGS, NOW_S + 99, FROM_S, TO_S), "before revoke");
        vm.assertFalse(consent.isAllowed(OWNER, GRANTEE, READINGS, NOW_S + 100, FROM_S, TO_S), "after revoke");
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(Consent.AlreadyRevoked.selector, id));
        consent.revoke(id);
    }

    function test_revert_revokeByOthersOrUnknown() public {
        uint256 id = _grant();
        vm.prank(GRANTEE);
        vm.expectRevert(abi.encodeWithSelector(Consent.NotGrantOwner.selector, id, GRANTEE));
        consent.revoke(id);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Consent.NotGrantOwner.selector, id, OPERATOR));
        consent.revoke(id);
        vm.expectRevert(abi.encodeWithSelector(Consent.UnknownGrant.selector, 2));
        consent.revoke(2);
        vm.expectRevert(abi.encodeWithSelector(Consent.UnknownGrant.selector, 0));
        consent.grantOf(0);
    }

    function test_revert_badGrants() public {
        vm.startPrank(OWNER);
        vm.expectRevert(Consent.ZeroAddress.selector);
        consent.grant(address(0), 1, FROM_S, TO_S, EXPIRES_S);
        vm.expectRevert(Consent.ZeroScope.selector);
        consent.grant(GRANTEE, 0, FROM_S, TO_S, EXPIRES_S);
        vm.expectRevert(abi.encodeWithSelector(Consent.InvalidDataPeriod.selector, TO_S, TO_S));
        consent.grant(GRANTEE, 1, TO_S, TO_S, EXPIRES_S);
        vm.expectRevert(abi.encodeWithSelector(Consent.ExpiryNotInFuture.selector, NOW_S, NOW_S));
        consent.grant(GRANTEE, 1, FROM_S, TO_S, NOW_S);
        vm.stopPrank();
    }

    function testFuzz_allowedOnlyInsideTheGrant(uint64 atS, uint64 fromS, uint64 toS, uint8 scope) public {
        _grant();
        bool inside = scope != 0 && (uint256(scope) & 3) == scope && atS >= NOW_S && atS < EXPIRES_S
            && fromS >= FROM_S && toS <= TO_S && fromS < toS;
        vm.assertEq(consent.isAllowed(OWNER, GRANTEE, scope, atS, fromS, toS), inside, "allowed iff covered");
    }

    function test_accessLog() public {
        uint64 day = 1_699_920_000;
        vm.expectEmit(true, false, false, true);
        emit AccessLogCommitted(day, bytes32(uint256(7)), 42);
        vm.prank(OPERATOR);
        consent.commitAccessLog(day, bytes32(uint256(7)), 42);
        (bytes32 root, uint32 count, uint64 at) = consent.accessLog(day);
        vm.assertEq(root, bytes32(uint256(7)), "root");
        vm.assertEq(uint256(count), 42, "entries");
        vm.assertEq(uint256(at), NOW_S, "committed at");
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(Consent.AccessLogAlreadyCommitted.selector, day));
        consent.commitAccessLog(day, bytes32(uint256(8)), 1);
        vm.prank(OPERATOR);
        vm.expectRevert(Consent.ZeroRoot.selector);
        consent.commitAccessLog(day + 1 days, bytes32(0), 0);
        bytes32 role = consent.OPERATOR_ROLE();
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, OWNER, role));
        consent.commitAccessLog(day + 1 days, bytes32(uint256(1)), 1);
    }

    function test_revert_constructorZeroAdmin() public {
        vm.expectRevert(Consent.ZeroAddress.selector);
        new Consent(address(0));
    }
}
