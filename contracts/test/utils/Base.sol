// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {GridToken} from "../../src/GridToken.sol";
import {Market} from "../../src/Market.sol";
import {Registry} from "../../src/Registry.sol";

/// @dev The few forge cheatcodes these tests use (forge-std is not on the npm registry in a
/// current version, and the tests must build offline from package.json alone).
interface Vm {
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 revertData) external;
    function expectRevert() external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    function assume(bool condition) external pure;
    function addr(uint256 privateKey) external pure returns (address);
    function store(address target, bytes32 slot, bytes32 value) external;
    function assertEq(uint256 left, uint256 right, string calldata message) external pure;
    function assertEq(int256 left, int256 right, string calldata message) external pure;
    function assertEq(address left, address right, string calldata message) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata message) external pure;
    function assertEq(bool left, bool right, string calldata message) external pure;
    function assertTrue(bool condition, string calldata message) external pure;
    function assertFalse(bool condition, string calldata message) external pure;
    function assertLe(uint256 left, uint256 right, string calldata message) external pure;
}

/// @dev Shared deployment and helpers; deploys exactly as gridledger.ledger.Ledger.deploy does.
abstract contract Base {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @dev forge prints these (DSTest log events) with -vv.
    event log_named_uint(string key, uint256 val);

    address internal constant OPERATOR = address(0x0A11);
    address internal constant GRID = address(0x6E1D);

    GridToken internal token;
    Registry internal registry;
    Market internal market;

    function _deploy() internal {
        token = new GridToken(OPERATOR);
        registry = new Registry(OPERATOR);
        market = new Market(token, registry, GRID, OPERATOR);
        vm.startPrank(OPERATOR);
        registry.addParticipant(GRID, Registry.Role.GridOperator, 0);
        token.approve(address(market), type(uint256).max);
        vm.stopPrank();
    }

    function _addParticipant(address account) internal {
        vm.prank(OPERATOR);
        registry.addParticipant(account, Registry.Role.Prosumer, 1);
    }

    /// @dev Operator mints and escrows `amount` for `account` (the Python deposit_for path).
    function _fund(address account, uint256 amount) internal {
        vm.startPrank(OPERATOR);
        token.mint(OPERATOR, amount);
        market.depositFor(account, amount);
        vm.stopPrank();
    }

    function _commit(uint64 intervalStartS) internal {
        vm.prank(OPERATOR);
        market.commitInterval(
            intervalStartS, bytes32(uint256(1)), bytes32(uint256(2)), bytes32(uint256(3)), 250_000, 1_000
        );
    }

    function _settle(uint64 intervalStartS, bytes32[] memory entries) internal {
        vm.prank(OPERATOR);
        market.settleInterval(intervalStartS, entries);
    }

    function _entry(address account, int96 deltaMicro) internal pure returns (bytes32) {
        return bytes32((uint256(uint160(account)) << 96) | uint256(uint96(deltaMicro)));
    }

    function _pair(address a, int96 da, address b, int96 db) internal pure returns (bytes32[] memory entries) {
        entries = new bytes32[](2);
        (entries[0], entries[1]) = a < b ? (_entry(a, da), _entry(b, db)) : (_entry(b, db), _entry(a, da));
    }

    /// @dev Entries sort by address because the address occupies the top bits of the word.
    function _sorted(bytes32[] memory entries) internal pure returns (bytes32[] memory) {
        for (uint256 i = 1; i < entries.length; ++i) {
            bytes32 key = entries[i];
            uint256 j = i;
            while (j > 0 && entries[j - 1] > key) {
                entries[j] = entries[j - 1];
                --j;
            }
            entries[j] = key;
        }
        return entries;
    }

    function _empty() internal pure returns (bytes32[] memory) {
        return new bytes32[](0);
    }

    function _bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + (x % (hi - lo + 1));
    }
}
