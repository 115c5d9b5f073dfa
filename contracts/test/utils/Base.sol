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
    function load(address target, bytes32 slot) external view returns (bytes32 data);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function warp(uint256 newTimestamp) external;
    function chainId(uint256 newChainId) external;
    function expectEmit() external;
    function assertEq(uint256 left, uint256 right, string calldata message) external pure;
    function assertEq(int256 left, int256 right, string calldata message) external pure;
    function assertEq(address left, address right, string calldata message) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata message) external pure;
    function assertEq(bool left, bool right, string calldata message) external pure;
    function assertTrue(bool condition, string calldata message) external pure;
    function assertFalse(bool condition, string calldata message) external pure;
    function assertLe(uint256 left, uint256 right, string calldata message) external pure;
}

/// @dev The dev verifier set of the tests (3 keys, quorum 2) and their interval attestations.
/// Digests are computed here from the Market's storage (vm.load), not by calling the Market, so
/// building attestations never consumes a pending vm.prank or vm.expectRevert.
library Attest {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant QUORUM = 2;
    uint256 internal constant MARKET_INTERVALS_SLOT = 2; // Market._intervals
    bytes32 internal constant ATTESTATION_TYPEHASH = keccak256(
        "IntervalAttestation(uint64 intervalStartS,bytes32 ordersRoot,bytes32 resultRoot,bytes32 readingsRoot,bytes32 settlementHash)"
    );
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// @dev The three verifier keys, ordered by ascending address.
    function keys() internal pure returns (uint256[] memory k) {
        k = new uint256[](3);
        (k[0], k[1], k[2]) = (0x5EC1, 0x5EC2, 0x5EC3);
        for (uint256 i = 1; i < 3; ++i) {
            for (uint256 j = i; j > 0 && vm.addr(k[j - 1]) > vm.addr(k[j]); --j) {
                (k[j - 1], k[j]) = (k[j], k[j - 1]);
            }
        }
    }

    function verifiers() internal pure returns (address[] memory v) {
        uint256[] memory k = keys();
        v = new address[](k.length);
        for (uint256 i = 0; i < k.length; ++i) {
            v[i] = vm.addr(k[i]);
        }
    }

    function digest(Market market, uint64 id, bytes32 settlementHash) internal view returns (bytes32) {
        bytes32 base = keccak256(abi.encode(uint256(id), MARKET_INTERVALS_SLOT));
        bytes32 structHash = keccak256(
            abi.encode(
                ATTESTATION_TYPEHASH,
                id,
                vm.load(address(market), base),
                vm.load(address(market), bytes32(uint256(base) + 1)),
                vm.load(address(market), bytes32(uint256(base) + 2)),
                settlementHash
            )
        );
        bytes32 domain = keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("gridledger"), keccak256("1"), block.chainid, address(market))
        );
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    /// @dev Signatures of the first `count` keys (ascending signers) over `d`.
    function sign(bytes32 d, uint256 count) internal pure returns (bytes[] memory sigs) {
        uint256[] memory k = keys();
        sigs = new bytes[](count);
        for (uint256 i = 0; i < count; ++i) {
            sigs[i] = signWith(k[i], d);
        }
    }

    function signWith(uint256 key, bytes32 d) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, d);
        return abi.encodePacked(r, s, v);
    }

    /// @dev A quorum of attestations for the direct settlement of `entries`.
    function entries(Market market, uint64 id, bytes32[] memory e) internal view returns (bytes[] memory) {
        return sign(digest(market, id, keccak256(abi.encodePacked(e))), QUORUM);
    }

    /// @dev A quorum of attestations for a netting-root settlement.
    function root(Market market, uint64 id, bytes32 r, uint128 credits, uint128 debits, uint32 n)
        internal
        view
        returns (bytes[] memory)
    {
        return sign(digest(market, id, keccak256(abi.encode(r, credits, debits, n))), QUORUM);
    }
}

/// @dev Shared deployment and helpers; deploys exactly as gridledger.ledger.Ledger.deploy does.
abstract contract Base {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @dev forge prints these (DSTest log events) with -vv.
    event log_named_uint(string key, uint256 val);

    address internal constant OPERATOR = address(0x0A11);
    address internal constant GRID = address(0x6E1D);
    uint64 internal constant INTERVAL_S = 900;
    uint64 internal constant EXIT_AFTER_INTERVALS = 96;

    GridToken internal token;
    Registry internal registry;
    Market internal market;

    function _deploy() internal {
        token = new GridToken(OPERATOR);
        registry = new Registry(OPERATOR, Attest.verifiers(), Attest.QUORUM);
        market = new Market(token, registry, GRID, OPERATOR, INTERVAL_S, EXIT_AFTER_INTERVALS);
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
        bytes[] memory att = _att(intervalStartS, entries);
        vm.prank(OPERATOR);
        market.settleInterval(intervalStartS, entries, att);
    }

    function _att(uint64 intervalStartS, bytes32[] memory entries) internal view returns (bytes[] memory) {
        return Attest.entries(market, intervalStartS, entries);
    }

    function _attRoot(uint64 intervalStartS, bytes32 root, uint128 credits, uint128 debits, uint32 n)
        internal
        view
        returns (bytes[] memory)
    {
        return Attest.root(market, intervalStartS, root, credits, debits, n);
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
