// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title Registry: who may trade on the gridledger market, and which meter belongs to whom.
/// @notice The operator admits participants and meters. Suspension (by the operator or a
/// SUSPENDER_ROLE holder, e.g. a later anomaly-quorum contract) stops an account from being
/// settled; only the operator can reinstate it.
contract Registry is AccessControl {
    enum Role {
        None,
        Prosumer,
        Consumer,
        Operator,
        GridOperator,
        Auditor
    }

    struct Participant {
        Role role;
        uint32 gridNode;
        bool active;
    }

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant SUSPENDER_ROLE = keccak256("SUSPENDER_ROLE");

    mapping(address account => Participant) private _participants;
    mapping(address meter => address owner) private _meterOwners;

    event ParticipantAdded(address indexed account, Role role, uint32 gridNode);
    event ParticipantSuspended(address indexed account, address indexed by);
    event ParticipantReinstated(address indexed account);
    event MeterRegistered(address indexed meter, address indexed owner);

    error ZeroAddress();
    error InvalidRole();
    error AlreadyRegistered(address account);
    error UnknownParticipant(address account);
    error AlreadySuspended(address account);
    error NotSuspended(address account);
    error MeterAlreadyRegistered(address meter);
    error NotOperatorOrSuspender(address caller);

    /// @param admin receives DEFAULT_ADMIN_ROLE and OPERATOR_ROLE.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }

    /// @notice Admit `account` with `role` at grid node `gridNode`; it starts active.
    function addParticipant(address account, Role role, uint32 gridNode) external onlyRole(OPERATOR_ROLE) {
        if (account == address(0)) revert ZeroAddress();
        if (role == Role.None) revert InvalidRole();
        if (_participants[account].role != Role.None) revert AlreadyRegistered(account);
        _participants[account] = Participant(role, gridNode, true);
        emit ParticipantAdded(account, role, gridNode);
    }

    /// @notice Stop `account` from being settled until the operator reinstates it.
    function suspend(address account) external {
        if (!hasRole(OPERATOR_ROLE, msg.sender) && !hasRole(SUSPENDER_ROLE, msg.sender)) {
            revert NotOperatorOrSuspender(msg.sender);
        }
        Participant storage p = _known(account);
        if (!p.active) revert AlreadySuspended(account);
        p.active = false;
        emit ParticipantSuspended(account, msg.sender);
    }

    /// @notice Let a suspended `account` trade again.
    function reinstate(address account) external onlyRole(OPERATOR_ROLE) {
        Participant storage p = _known(account);
        if (p.active) revert NotSuspended(account);
        p.active = true;
        emit ParticipantReinstated(account);
    }

    /// @notice Bind the signing key `meter` to the participant `owner`, once and for good.
    function registerMeter(address meter, address owner) external onlyRole(OPERATOR_ROLE) {
        if (meter == address(0)) revert ZeroAddress();
        _known(owner);
        if (_meterOwners[meter] != address(0)) revert MeterAlreadyRegistered(meter);
        _meterOwners[meter] = owner;
        emit MeterRegistered(meter, owner);
    }

    function participant(address account) external view returns (Role role, uint32 gridNode, bool active) {
        Participant storage p = _participants[account];
        return (p.role, p.gridNode, p.active);
    }

    /// @notice True for a registered, not suspended account (the check settlement makes per entry).
    function isActive(address account) external view returns (bool) {
        return _participants[account].active;
    }

    function isRegistered(address account) external view returns (bool) {
        return _participants[account].role != Role.None;
    }

    function meterOwner(address meter) external view returns (address) {
        return _meterOwners[meter];
    }

    function _known(address account) private view returns (Participant storage p) {
        p = _participants[account];
        if (p.role == Role.None) revert UnknownParticipant(account);
    }
}
