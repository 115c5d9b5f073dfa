// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {Registry} from "./Registry.sol";

/// @title Market: escrow, per-interval commitments and net settlement of the energy market.
/// @notice Prosumers trade energy in 15-minute intervals off chain. For each interval the operator
/// first commits the Merkle roots of the orders, the clearing result and the meter readings
/// (commitInterval), then settles the net payment of every participant (settleInterval), moving
/// escrowed tokens between accounts. Interval ids are interval starts in unix seconds.
///
/// Ordering: commits are strictly increasing in id; every committed interval gets a sequence number
/// (1, 2, ...) and intervals are settled exactly in that sequence, so the settled intervals are
/// always a prefix of the committed ones.
///
/// Withdrawal lock: funds backing an open position must stay in escrow until that position is
/// settled. A participant's positions can only be in (a) committed, unsettled intervals and (b) the
/// interval currently open for orders, which is the next one to be committed: sequence
/// `committedCount + 1` at request time. requestWithdrawal records that sequence as
/// `unlockAfterSeq`; withdraw() is allowed once `settledCount >= unlockAfterSeq`, i.e. after every
/// interval the participant could have traded in at request time has been settled. It pays
/// min(requested, escrow), since settlements in between may have spent part of it. The off-chain
/// order book must not accept new orders backed by a pending withdrawal (it reads
/// withdrawalRequest). A new request replaces the old one and restarts the lock.
contract Market is AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    struct Interval {
        bytes32 ordersRoot;
        bytes32 resultRoot;
        bytes32 readingsRoot;
        uint128 clearingPriceMicroPerKwh;
        uint64 volumeWh;
        uint64 seq; // commit sequence number, 0 = not committed
    }

    /// @dev One slot, read and written once per commit or settle.
    struct Progress {
        uint64 lastCommittedS;
        uint64 committedCount;
        uint64 settledCount;
    }

    struct WithdrawalRequest {
        uint256 amountMicro;
        uint64 unlockAfterSeq;
    }

    IERC20 public immutable token;
    Registry public immutable registry;
    address public immutable gridOperator;

    Progress private _progress;
    mapping(uint64 intervalStartS => Interval) private _intervals;
    mapping(uint64 seq => uint64 intervalStartS) private _intervalBySeq;
    mapping(address account => uint256 amountMicro) private _escrow;
    mapping(address account => WithdrawalRequest) private _withdrawals;

    event Deposited(address indexed account, address indexed payer, uint256 amountMicro);
    event WithdrawalRequested(address indexed account, uint256 amountMicro, uint64 unlockAfterSeq);
    event Withdrawn(address indexed account, uint256 amountMicro);
    event IntervalCommitted(
        uint64 indexed intervalStartS,
        bytes32 ordersRoot,
        bytes32 resultRoot,
        bytes32 readingsRoot,
        uint128 clearingPriceMicroPerKwh,
        uint64 volumeWh,
        uint64 seq
    );
    event IntervalSettled(uint64 indexed intervalStartS, uint256 entryCount, uint256 movedMicro, bytes32 entriesHash);

    error ZeroAddress();
    error ZeroAmount();
    error UnknownParticipant(address account);
    error AlreadyCommitted(uint64 intervalStartS);
    error NotIncreasing(uint64 intervalStartS, uint64 lastCommittedS);
    error NotCommitted(uint64 intervalStartS);
    error AlreadySettled(uint64 intervalStartS);
    error SettleOutOfOrder(uint64 intervalStartS, uint64 expectedIntervalStartS);
    error EntriesNotSorted(uint256 index);
    error NotBalanced(int256 sum);
    error InsufficientEscrow(address account, uint256 have, uint256 need);
    error ParticipantNotActive(address account);
    error NoWithdrawalRequested(address account);
    error WithdrawalLocked(address account, uint64 unlockAfterSeq, uint64 settledCount);

    /// @param admin receives DEFAULT_ADMIN_ROLE and OPERATOR_ROLE.
    constructor(IERC20 token_, Registry registry_, address gridOperator_, address admin) {
        if (address(token_) == address(0) || address(registry_) == address(0)) revert ZeroAddress();
        if (gridOperator_ == address(0) || admin == address(0)) revert ZeroAddress();
        token = token_;
        registry = registry_;
        gridOperator = gridOperator_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }

    // ------------------------------------------------------------------ escrow

    /// @notice Move `amountMicro` tokens from the caller into the caller's escrow (needs approval).
    function deposit(uint256 amountMicro) external nonReentrant {
        _deposit(msg.sender, amountMicro);
    }

    /// @notice Move `amountMicro` tokens from the caller into the escrow of `account`.
    function depositFor(address account, uint256 amountMicro) external nonReentrant {
        _deposit(account, amountMicro);
    }

    /// @notice Ask to withdraw `amountMicro`; see the contract notes for when it unlocks.
    function requestWithdrawal(uint256 amountMicro) external {
        if (amountMicro == 0) revert ZeroAmount();
        uint256 have = _escrow[msg.sender];
        if (have < amountMicro) revert InsufficientEscrow(msg.sender, have, amountMicro);
        uint64 unlockAfterSeq = _progress.committedCount + 1;
        _withdrawals[msg.sender] = WithdrawalRequest(amountMicro, unlockAfterSeq);
        emit WithdrawalRequested(msg.sender, amountMicro, unlockAfterSeq);
    }

    /// @notice Pay out min(requested, escrow) once the interval open at request time is settled.
    function withdraw() external nonReentrant {
        WithdrawalRequest memory request = _withdrawals[msg.sender];
        if (request.unlockAfterSeq == 0) revert NoWithdrawalRequested(msg.sender);
        uint64 settledCount = _progress.settledCount;
        if (settledCount < request.unlockAfterSeq) {
            revert WithdrawalLocked(msg.sender, request.unlockAfterSeq, settledCount);
        }
        uint256 have = _escrow[msg.sender];
        uint256 amountMicro = request.amountMicro < have ? request.amountMicro : have;
        delete _withdrawals[msg.sender];
        _escrow[msg.sender] = have - amountMicro;
        emit Withdrawn(msg.sender, amountMicro);
        token.safeTransfer(msg.sender, amountMicro);
    }

    // ------------------------------------------------------------------ intervals

    /// @notice Record the commitments of one interval; ids must be strictly increasing.
    function commitInterval(
        uint64 intervalStartS,
        bytes32 ordersRoot,
        bytes32 resultRoot,
        bytes32 readingsRoot,
        uint128 clearingPriceMicroPerKwh,
        uint64 volumeWh
    ) external onlyRole(OPERATOR_ROLE) {
        Progress memory state = _progress;
        if (_intervals[intervalStartS].seq != 0) revert AlreadyCommitted(intervalStartS);
        if (intervalStartS <= state.lastCommittedS) {
            revert NotIncreasing(intervalStartS, state.lastCommittedS);
        }
        uint64 seq = state.committedCount + 1;
        _intervals[intervalStartS] =
            Interval(ordersRoot, resultRoot, readingsRoot, clearingPriceMicroPerKwh, volumeWh, seq);
        _intervalBySeq[seq] = intervalStartS;
        _progress = Progress(intervalStartS, seq, state.settledCount);
        emit IntervalCommitted(
            intervalStartS, ordersRoot, resultRoot, readingsRoot, clearingPriceMicroPerKwh, volumeWh, seq
        );
    }

    /// @notice Apply the net payments of a committed interval, in commit order, exactly once.
    /// @param entries one per account, strictly ascending by address, each packed as
    /// `uint256(uint160(account)) << 96 | uint96(int96 deltaMicro)`; the deltas must sum to zero.
    /// @dev Gas: one registry read and one escrow SSTORE per entry, no per-entry event; the
    /// IntervalSettled event carries keccak256 of the entries so they can be audited off chain.
    function settleInterval(uint64 intervalStartS, bytes32[] calldata entries) external onlyRole(OPERATOR_ROLE) {
        Progress memory state = _progress;
        _checkSettleable(intervalStartS, state);
        (int256 sum, uint256 movedMicro) = _applyEntries(entries);
        if (sum != 0) revert NotBalanced(sum);
        _progress.settledCount = state.settledCount + 1;
        emit IntervalSettled(intervalStartS, entries.length, movedMicro, keccak256(abi.encodePacked(entries)));
    }

    function _checkSettleable(uint64 intervalStartS, Progress memory state) private view {
        uint64 seq = _intervals[intervalStartS].seq;
        if (seq == 0) revert NotCommitted(intervalStartS);
        if (seq <= state.settledCount) revert AlreadySettled(intervalStartS);
        if (seq != state.settledCount + 1) {
            revert SettleOutOfOrder(intervalStartS, _intervalBySeq[state.settledCount + 1]);
        }
    }

    function _applyEntries(bytes32[] calldata entries) private returns (int256 sum, uint256 movedMicro) {
        Registry registry_ = registry;
        address previous = address(0);
        for (uint256 i = 0; i < entries.length; ++i) {
            uint256 entry = uint256(entries[i]);
            // The packing is the entry format itself: the top 160 bits are the account, the low
            // 96 bits the two's-complement delta; the bits in between are always zero.
            // forge-lint: disable-next-line(unsafe-typecast)
            address account = address(uint160(entry >> 96));
            // forge-lint: disable-next-line(unsafe-typecast)
            int256 deltaMicro = int96(uint96(entry));
            if (account <= previous) revert EntriesNotSorted(i);
            previous = account;
            if (!registry_.isActive(account)) revert ParticipantNotActive(account);
            // int96 deltas summed in int256 cannot overflow for any calldata length.
            unchecked {
                sum += deltaMicro;
            }
            if (deltaMicro < 0) {
                // -deltaMicro is positive and below 2**95 (an int96 widened to int256).
                // forge-lint: disable-next-line(unsafe-typecast)
                uint256 need = uint256(-deltaMicro);
                uint256 have = _escrow[account];
                if (have < need) revert InsufficientEscrow(account, have, need);
                unchecked {
                    _escrow[account] = have - need;
                }
            } else if (deltaMicro > 0) {
                // forge-lint: disable-next-line(unsafe-typecast)
                uint256 credit = uint256(deltaMicro); // positive here, so the cast is exact
                _escrow[account] += credit;
                unchecked {
                    movedMicro += credit;
                }
            }
        }
    }

    function _deposit(address account, uint256 amountMicro) private {
        if (amountMicro == 0) revert ZeroAmount();
        if (!registry.isRegistered(account)) revert UnknownParticipant(account);
        _escrow[account] += amountMicro;
        emit Deposited(account, msg.sender, amountMicro);
        token.safeTransferFrom(msg.sender, address(this), amountMicro);
    }

    // ------------------------------------------------------------------ views

    function escrowOf(address account) external view returns (uint256) {
        return _escrow[account];
    }

    function withdrawalRequest(address account) external view returns (uint256 amountMicro, uint64 unlockAfterSeq) {
        WithdrawalRequest memory request = _withdrawals[account];
        return (request.amountMicro, request.unlockAfterSeq);
    }

    function interval(uint64 intervalStartS)
        external
        view
        returns (
            bytes32 ordersRoot,
            bytes32 resultRoot,
            bytes32 readingsRoot,
            uint128 clearingPriceMicroPerKwh,
            uint64 volumeWh,
            bool committed,
            bool settled
        )
    {
        Interval storage it = _intervals[intervalStartS];
        committed = it.seq != 0;
        settled = committed && it.seq <= _progress.settledCount;
        return
            (
                it.ordersRoot,
                it.resultRoot,
                it.readingsRoot,
                it.clearingPriceMicroPerKwh,
                it.volumeWh,
                committed,
                settled
            );
    }

    /// @notice The interval committed as number `seq` (1-based), 0 if none.
    function intervalAt(uint64 seq) external view returns (uint64) {
        return _intervalBySeq[seq];
    }

    function progress() external view returns (uint64 lastCommittedS, uint64 committedCount, uint64 settledCount) {
        Progress memory p = _progress;
        return (p.lastCommittedS, p.committedCount, p.settledCount);
    }
}
