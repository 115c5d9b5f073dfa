// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title Registry: who may trade on the gridledger market, and which meter belongs to whom.
/// @notice The operator admits participants and meters. Suspension (by the operator or a
/// SUSPENDER_ROLE holder, e.g. a later anomaly-quorum contract) stops an account from being
/// settled; only the operator can reinstate it.
///
/// Verifiers: n independent accounts (the grid operator, the community association, a
/// regulator...) with a threshold k >= 1, chosen at deploy. The Market settles an interval only
/// with EIP-712 attestations of k distinct verifiers (checkQuorum). The set is changed only by
/// k-of-n signatures of the current set over (new set, new threshold, epoch), under this
/// Registry's own EIP-712 domain; the operator and the admin have no say, and may not be
/// verifiers themselves. Anyone may submit a signed change (the signatures are the authority).
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

    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant VERIFIER_SET_TYPEHASH =
        keccak256("VerifierSetChange(address[] verifiers,uint256 threshold,uint64 epoch)");

    address[] private _verifiers;
    mapping(address account => bool) private _isVerifier;
    uint256 private _threshold;
    uint64 private _verifierEpoch; // number of set changes so far; signed into every change

    event ParticipantAdded(address indexed account, Role role, uint32 gridNode);
    event ParticipantSuspended(address indexed account, address indexed by);
    event ParticipantReinstated(address indexed account);
    event MeterRegistered(address indexed meter, address indexed owner);
    /// @notice The verifier set in force from now on (epoch 0 at deploy, +1 per change).
    event VerifierSetChanged(uint64 indexed epoch, address[] verifiers, uint256 threshold);

    error ZeroAddress();
    error InvalidRole();
    error AlreadyRegistered(address account);
    error UnknownParticipant(address account);
    error AlreadySuspended(address account);
    error NotSuspended(address account);
    error MeterAlreadyRegistered(address meter);
    error NotOperatorOrSuspender(address caller);
    error LengthMismatch(uint256 expected, uint256 actual);
    error InvalidThreshold(uint256 threshold, uint256 verifierCount);
    error DuplicateVerifier(address verifier);
    error VerifierIsOperator(address verifier);
    error TooFewAttestations(uint256 have, uint256 need);
    error NotVerifier(address signer);
    error AttestationsNotAscending(uint256 index);

    /// @param admin receives DEFAULT_ADMIN_ROLE and OPERATOR_ROLE.
    /// @param verifiers_ the initial verifier set (none of them the admin).
    /// @param threshold_ signatures needed, 1 <= threshold_ <= verifiers_.length.
    constructor(address admin, address[] memory verifiers_, uint256 threshold_) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
        _setVerifiers(verifiers_, threshold_);
    }

    // ------------------------------------------------------------------ verifiers

    /// @notice Replace the verifier set, authorised by `signatures` of at least verifierThreshold()
    /// current verifiers over verifierSetDigest(newVerifiers, newThreshold), in strictly
    /// ascending signer order. Callable by anyone who holds those signatures.
    function changeVerifiers(address[] calldata newVerifiers, uint256 newThreshold, bytes[] calldata signatures)
        external
    {
        _checkQuorum(verifierSetDigest(newVerifiers, newThreshold), signatures);
        address[] memory old = _verifiers;
        for (uint256 i = 0; i < old.length; ++i) {
            _isVerifier[old[i]] = false;
        }
        delete _verifiers;
        ++_verifierEpoch;
        _setVerifiers(newVerifiers, newThreshold);
    }

    /// @notice Revert unless `signatures` are by >= verifierThreshold() distinct verifiers over
    /// `digest`, ordered by strictly ascending signer address (the Market's settlement check).
    function checkQuorum(bytes32 digest, bytes[] calldata signatures) external view virtual {
        _checkQuorum(digest, signatures);
    }

    /// @notice The EIP-712 digest the current verifiers sign to install a new set (binds the
    /// current epoch, so a used or stale change cannot be replayed).
    function verifierSetDigest(address[] calldata newVerifiers, uint256 newThreshold) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(VERIFIER_SET_TYPEHASH, keccak256(abi.encodePacked(newVerifiers)), newThreshold, _verifierEpoch)
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @notice EIP-712 domain ("gridledger", "1", this chain, this Registry).
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(_DOMAIN_TYPEHASH, keccak256("gridledger"), keccak256("1"), block.chainid, address(this))
        );
    }

    function isVerifier(address account) external view returns (bool) {
        return _isVerifier[account];
    }

    function verifierThreshold() external view returns (uint256) {
        return _threshold;
    }

    function verifiers() external view returns (address[] memory) {
        return _verifiers;
    }

    function verifierEpoch() external view returns (uint64) {
        return _verifierEpoch;
    }

    function _setVerifiers(address[] memory verifiers_, uint256 threshold_) private {
        if (threshold_ == 0 || threshold_ > verifiers_.length) revert InvalidThreshold(threshold_, verifiers_.length);
        for (uint256 i = 0; i < verifiers_.length; ++i) {
            address v = verifiers_[i];
            if (v == address(0)) revert ZeroAddress();
            if (hasRole(OPERATOR_ROLE, v) || hasRole(DEFAULT_ADMIN_ROLE, v)) revert VerifierIsOperator(v);
            if (_isVerifier[v]) revert DuplicateVerifier(v);
            _isVerifier[v] = true;
            _verifiers.push(v);
        }
        _threshold = threshold_;
        emit VerifierSetChanged(_verifierEpoch, verifiers_, threshold_);
    }

    function _checkQuorum(bytes32 digest, bytes[] calldata signatures) private view {
        uint256 need = _threshold;
        if (signatures.length < need) revert TooFewAttestations(signatures.length, need);
        address previous = address(0);
        for (uint256 i = 0; i < signatures.length; ++i) {
            address signer = ECDSA.recover(digest, signatures[i]);
            // Checked before the order: a signature over another digest recovers a stranger.
            if (!_isVerifier[signer]) revert NotVerifier(signer);
            if (signer <= previous) revert AttestationsNotAscending(i);
            previous = signer;
        }
    }

    // ------------------------------------------------------------------ participants

    /// @notice Admit `account` with `role` at grid node `gridNode`; it starts active.
    function addParticipant(address account, Role role, uint32 gridNode) external onlyRole(OPERATOR_ROLE) {
        _addParticipant(account, role, gridNode);
    }

    function _addParticipant(address account, Role role, uint32 gridNode) private {
        if (account == address(0)) revert ZeroAddress();
        if (role == Role.None) revert InvalidRole();
        if (_participants[account].role != Role.None) revert AlreadyRegistered(account);
        _participants[account] = Participant(role, gridNode, true);
        emit ParticipantAdded(account, role, gridNode);
    }

    /// @notice Admit many participants in one transaction (same rules as addParticipant).
    function addParticipants(address[] calldata accounts, Role[] calldata roles, uint32[] calldata gridNodes)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (roles.length != accounts.length) revert LengthMismatch(accounts.length, roles.length);
        if (gridNodes.length != accounts.length) revert LengthMismatch(accounts.length, gridNodes.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            _addParticipant(accounts[i], roles[i], gridNodes[i]);
        }
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
        _registerMeter(meter, owner);
    }

    /// @notice Bind many meters in one transaction (same rules as registerMeter).
    function registerMeters(address[] calldata meters, address[] calldata owners) external onlyRole(OPERATOR_ROLE) {
        if (owners.length != meters.length) revert LengthMismatch(meters.length, owners.length);
        for (uint256 i = 0; i < meters.length; ++i) {
            _registerMeter(meters[i], owners[i]);
        }
    }

    function _registerMeter(address meter, address owner) private {
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
