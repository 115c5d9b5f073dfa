// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title Consent: who may read whose data, and a daily commitment of who did.
/// @notice A data owner (a participant, with its own key) grants a grantee a set of scopes
/// (bit flags, e.g. readings / statements / aggregates, defined off chain) over a period of data
/// [dataFromS, dataToS), valid from the grant until expiresAtS or its revocation. isAllowed
/// answers for any moment, so a past read can be checked against the consent in force then.
/// The operator commits each day's access log (every read of personal data, Merkle-hashed off
/// chain) as one root per day; a participant verifies its own entries against it.
contract Consent is AccessControl {
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    struct Grant {
        address owner;
        address grantee;
        uint256 scopeBits;
        uint64 dataFromS;
        uint64 dataToS;
        uint64 grantedAtS;
        uint64 expiresAtS;
        uint64 revokedAtS; // 0 = not revoked
    }

    struct AccessLog {
        bytes32 root;
        uint32 entryCount;
        uint64 committedAtS;
    }

    Grant[] private _grants; // id = index + 1
    mapping(address owner => mapping(address grantee => uint256[] ids)) private _grantIds;
    mapping(uint64 dayStartS => AccessLog) private _accessLogs;

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

    error ZeroAddress();
    error ZeroScope();
    error InvalidDataPeriod(uint64 dataFromS, uint64 dataToS);
    error ExpiryNotInFuture(uint64 expiresAtS, uint256 nowS);
    error UnknownGrant(uint256 id);
    error NotGrantOwner(uint256 id, address caller);
    error AlreadyRevoked(uint256 id);
    error ZeroRoot();
    error AccessLogAlreadyCommitted(uint64 dayStartS);

    /// @param admin receives DEFAULT_ADMIN_ROLE and OPERATOR_ROLE.
    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }

    /// @notice The caller lets `grantee` read its data of `scopeBits` from [dataFromS, dataToS)
    /// until `expiresAtS`; returns the grant id (1, 2, ...).
    function grant(address grantee, uint256 scopeBits, uint64 dataFromS, uint64 dataToS, uint64 expiresAtS)
        external
        returns (uint256 id)
    {
        if (grantee == address(0)) revert ZeroAddress();
        if (scopeBits == 0) revert ZeroScope();
        if (dataFromS >= dataToS) revert InvalidDataPeriod(dataFromS, dataToS);
        // Seconds of validator drift are irrelevant for an expiry days or months away.
        // forge-lint: disable-next-line(block-timestamp)
        if (expiresAtS <= block.timestamp) revert ExpiryNotInFuture(expiresAtS, block.timestamp);
        _grants.push(
            Grant(msg.sender, grantee, scopeBits, dataFromS, dataToS, uint64(block.timestamp), expiresAtS, 0)
        );
        id = _grants.length;
        _grantIds[msg.sender][grantee].push(id);
        emit ConsentGranted(id, msg.sender, grantee, scopeBits, dataFromS, dataToS, expiresAtS);
    }

    /// @notice The owner withdraws grant `id` from now on.
    function revoke(uint256 id) external {
        Grant storage g = _grant(id);
        if (g.owner != msg.sender) revert NotGrantOwner(id, msg.sender);
        if (g.revokedAtS != 0) revert AlreadyRevoked(id);
        g.revokedAtS = uint64(block.timestamp);
        emit ConsentRevoked(id, msg.sender, g.grantee);
    }

    /// @notice True when, at time `atS`, a grant of `owner` to `grantee` covers every bit of
    /// `scope` and the whole data period [dataFromS, dataToS).
    function isAllowed(address owner, address grantee, uint256 scope, uint64 atS, uint64 dataFromS, uint64 dataToS)
        external
        view
        returns (bool)
    {
        if (scope == 0 || dataFromS >= dataToS) return false;
        uint256[] storage ids = _grantIds[owner][grantee];
        for (uint256 i = 0; i < ids.length; ++i) {
            Grant storage g = _grants[ids[i] - 1];
            if (g.scopeBits & scope != scope) continue;
            if (atS < g.grantedAtS || atS >= g.expiresAtS) continue;
            if (g.revokedAtS != 0 && atS >= g.revokedAtS) continue;
            if (dataFromS < g.dataFromS || dataToS > g.dataToS) continue;
            return true;
        }
        return false;
    }

    function grantOf(uint256 id) external view returns (Grant memory) {
        return _grant(id);
    }

    function grantCount() external view returns (uint256) {
        return _grants.length;
    }

    function grantIds(address owner, address grantee) external view returns (uint256[] memory) {
        return _grantIds[owner][grantee];
    }

    /// @notice The operator commits the Merkle root of one day's access log, once per day.
    function commitAccessLog(uint64 dayStartS, bytes32 root, uint32 entryCount) external onlyRole(OPERATOR_ROLE) {
        if (root == bytes32(0)) revert ZeroRoot();
        if (_accessLogs[dayStartS].committedAtS != 0) revert AccessLogAlreadyCommitted(dayStartS);
        _accessLogs[dayStartS] = AccessLog(root, entryCount, uint64(block.timestamp));
        emit AccessLogCommitted(dayStartS, root, entryCount);
    }

    /// @notice The committed access-log root of a day (zero root if none).
    function accessLog(uint64 dayStartS) external view returns (bytes32 root, uint32 entryCount, uint64 committedAtS) {
        AccessLog memory log_ = _accessLogs[dayStartS];
        return (log_.root, log_.entryCount, log_.committedAtS);
    }

    function _grant(uint256 id) private view returns (Grant storage) {
        if (id == 0 || id > _grants.length) revert UnknownGrant(id);
        return _grants[id - 1];
    }
}
