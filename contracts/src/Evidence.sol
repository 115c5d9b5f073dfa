// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {Registry} from "./Registry.sol";

/// @title Evidence: detector nodes commit anomaly evidence; k of them agreeing suspends the subject.
/// @notice Each detector node (community operator, grid operator, auditor...) holds DETECTOR_ROLE
/// and submits the keccak hash of an off-chain evidence record about a subject (a meter or a
/// participant) in an aligned window. A node counts once per (subject, window); when `quorum`
/// distinct nodes have flagged the same subject in the same window the anomaly is confirmed and
/// the subject's account (the meter's owner, or the participant itself) is suspended in the
/// Registry, which must have granted this contract SUSPENDER_ROLE.
/// @dev With fewer than `quorum` lying nodes no honest subject can be confirmed. A node whose role
/// is revoked keeps the votes it already cast; the admin revokes before the next window.
contract Evidence is AccessControl {
    bytes32 public constant DETECTOR_ROLE = keccak256("DETECTOR_ROLE");

    Registry public immutable registry;
    uint64 public immutable windowLengthS;
    uint32 public quorum;

    mapping(address subject => mapping(uint64 windowStartS => mapping(address detector => bytes32))) private
        _evidence;
    mapping(address subject => mapping(uint64 windowStartS => uint32)) private _votes;
    mapping(address subject => mapping(uint64 windowStartS => bool)) private _confirmed;

    event EvidenceSubmitted(
        address indexed subject, uint64 indexed windowStartS, address indexed detector, bytes32 evidenceHash, uint32 votes
    );
    event AnomalyConfirmed(address indexed subject, uint64 indexed windowStartS, address suspended, uint32 votes);
    event QuorumChanged(uint32 previous, uint32 current);

    error ZeroAddress();
    error ZeroEvidenceHash();
    error InvalidQuorum(uint32 quorum);
    error InvalidWindowLength();
    error MisalignedWindow(uint64 windowStartS, uint64 windowLengthS);
    error AlreadySubmitted(address subject, uint64 windowStartS, address detector);

    /// @param admin receives DEFAULT_ADMIN_ROLE: grants DETECTOR_ROLE and sets the quorum.
    constructor(Registry registry_, address admin, uint32 quorum_, uint64 windowLengthS_) {
        if (address(registry_) == address(0) || admin == address(0)) revert ZeroAddress();
        if (quorum_ == 0) revert InvalidQuorum(quorum_);
        if (windowLengthS_ == 0) revert InvalidWindowLength();
        registry = registry_;
        windowLengthS = windowLengthS_;
        quorum = quorum_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit QuorumChanged(0, quorum_);
    }

    /// @notice Change how many distinct detectors confirm an anomaly (windows already confirmed stay so).
    function setQuorum(uint32 quorum_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (quorum_ == 0) revert InvalidQuorum(quorum_);
        emit QuorumChanged(quorum, quorum_);
        quorum = quorum_;
    }

    /// @notice Commit evidence that `subject` misbehaved in the window starting at `windowStartS`.
    function submitEvidence(address subject, uint64 windowStartS, bytes32 evidenceHash)
        external
        onlyRole(DETECTOR_ROLE)
    {
        if (subject == address(0)) revert ZeroAddress();
        if (evidenceHash == bytes32(0)) revert ZeroEvidenceHash();
        if (windowStartS % windowLengthS != 0) revert MisalignedWindow(windowStartS, windowLengthS);
        if (_evidence[subject][windowStartS][msg.sender] != bytes32(0)) {
            revert AlreadySubmitted(subject, windowStartS, msg.sender);
        }
        _evidence[subject][windowStartS][msg.sender] = evidenceHash;
        uint32 votes = ++_votes[subject][windowStartS];
        emit EvidenceSubmitted(subject, windowStartS, msg.sender, evidenceHash, votes);
        if (votes >= quorum && !_confirmed[subject][windowStartS]) {
            _confirm(subject, windowStartS, votes);
        }
    }

    function evidenceOf(address subject, uint64 windowStartS, address detector) external view returns (bytes32) {
        return _evidence[subject][windowStartS][detector];
    }

    function votes(address subject, uint64 windowStartS) external view returns (uint32) {
        return _votes[subject][windowStartS];
    }

    function isConfirmed(address subject, uint64 windowStartS) external view returns (bool) {
        return _confirmed[subject][windowStartS];
    }

    /// @dev Suspends the meter's owner (or the participant itself) unless it is not active
    /// (unknown or already suspended): a confirmation must never revert the k-th submission.
    function _confirm(address subject, uint64 windowStartS, uint32 votes_) private {
        _confirmed[subject][windowStartS] = true;
        address account = registry.meterOwner(subject);
        if (account == address(0)) account = subject;
        address suspended = address(0);
        if (registry.isActive(account)) {
            registry.suspend(account);
            suspended = account;
        }
        emit AnomalyConfirmed(subject, windowStartS, suspended, votes_);
    }
}
