// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
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
///
/// Two ways to settle an interval (both take the next place in the settle sequence):
/// - settleInterval (direct): every net payment is applied now, one escrow write per account
///   (~9,100 gas each): for small communities, under ~3,000 accounts per 30M-gas block.
/// - settleIntervalRoot (netting root, O(1) gas): the operator posts the Merkle root of every
///   account's CUMULATIVE root-path net payment, `leaf = keccak256(keccak256(abi.encode(uint32
///   rootSeq, address account, int96 cumulativeMicro)))` (OpenZeppelin sorted-pair tree), and the
///   interval's gross credits == gross debits. Nothing moves until a claim: claim(account, rootSeq,
///   cumulative, proof) applies `cumulative - applied` to the escrow. Because leaves are
///   cumulative, one claim catches up on every root since the account's last claim (daily claims
///   cost one proof per account per day, not per interval), a double claim is impossible (rootSeq
///   must grow) and an old root cannot be replayed against a newer one.
///
/// Netting-root rules: (1) debit before withdrawal: withdraw() needs the account to have claimed
/// the latest root (claimAndWithdraw does both in one transaction), so no unclaimed debit can be
/// left behind; (2) a first deposit into an empty escrow moves the account's claim cursor to the
/// latest root, so an account the operator never put into a tree can still withdraw; this is sound
/// because the operator keeps every account's effective balance (escrow + unclaimed net) >= 0,
/// so an empty escrow has no unclaimed net debit, and the skipped cumulative is applied by the
/// next claim; (3) claims are capped by the posted totals (credits claimed <= credits posted, same
/// for debits), which bounds the damage of a malformed tree; (4) only the account itself or the
/// operator may claim, so nobody else can time a debit to another account's escrow. Conservation:
/// sum(escrow) + sum(unclaimed net) == token balance. Trust is the same as for settleInterval, where
/// the operator chooses the deltas: the root's content and the effective-balance check (the
/// off-chain order book reads escrow + unclaimed) are the operator's. Mixing both paths works, but
/// direct debits only see claimed escrow.
///
/// Verifier quorum: both settle functions also need `attestations`, EIP-712 signatures of at
/// least Registry.verifierThreshold() distinct registered verifiers (strictly ascending signer
/// address) over IntervalAttestation(intervalStartS, ordersRoot, resultRoot, readingsRoot,
/// settlementHash) under this Market's domain ("gridledger", "1", chain id, this address); the
/// roots are the committed ones, settlementHash is keccak256(abi.encodePacked(entries)) for the
/// direct path and keccak256(abi.encode(root, creditsMicro, debitsMicro, accountCount)) for the
/// root path. The operator key alone can therefore commit, but never settle.
///
/// Exit without the operator: once no interval has been settled for exitWindowS() seconds
/// (exitAfterIntervals interval lengths, measured by block.timestamp since the last settlement
/// or the deploy), any participant may take out its whole escrow with exitWithdraw (or
/// exitClaimAndWithdraw, which first claims its leaf in the latest settlement root), without a
/// withdrawal request, lock or operator signature. A stalled operator CAN still commit
/// intervals (commits do not restart the window), claim roots already posted for accounts
/// (moving only what the attested roots say), and refuse new orders; it CANNOT settle without
/// the verifier quorum (so it cannot restart the window alone), move anyone's escrow, change the
/// verifier set, or stop an exit once the window has passed. Trades of intervals that were
/// never settled are void. Debit before withdrawal still holds: an account behind the latest
/// root must claim it first (its leaf is in the book the operator publishes); an account that
/// never appears in a root after its first deposit cannot prove its position and stays locked.
/// If the operator resumes with attested settlements, the window closes again.
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
        uint32 rootCount; // settlements made by root; root numbers (rootSeq) are 1..rootCount
        uint32 lastSettledAtS; // block.timestamp of the last settlement (or the deploy)
    }

    /// @dev One slot per account, so a direct settlement and a claim each write one slot.
    struct Account {
        uint128 escrowMicro;
        int96 appliedMicro; // cumulative root-path net already applied to escrowMicro
        uint32 claimedRootSeq; // last root claimed (or skipped by a first deposit), 0 = none
    }

    /// @dev Unclaimed capacity of the posted roots: credits (debits) posted minus claimed.
    struct NettingCapacity {
        uint128 creditsMicro;
        uint128 debitsMicro;
    }

    /// @dev One netting-root claim in claimMany.
    struct Claim {
        address account;
        int96 cumulativeMicro;
        bytes32[] proof;
    }

    struct WithdrawalRequest {
        uint256 amountMicro;
        uint64 unlockAfterSeq;
    }

    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "IntervalAttestation(uint64 intervalStartS,bytes32 ordersRoot,bytes32 resultRoot,bytes32 readingsRoot,bytes32 settlementHash)"
    );

    IERC20 public immutable token;
    Registry public immutable registry;
    address public immutable gridOperator;
    /// @notice Seconds without a settlement after which participants may exit alone.
    uint256 public immutable exitWindowS;

    Progress private _progress;
    mapping(uint64 intervalStartS => Interval) private _intervals;
    mapping(uint64 seq => uint64 intervalStartS) private _intervalBySeq;
    mapping(address account => Account) private _accounts; // slot 4: see test/SettleGas.t.sol
    mapping(address account => WithdrawalRequest) private _withdrawals;
    mapping(uint32 rootSeq => bytes32 root) private _settlementRoots;
    NettingCapacity private _capacity;

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
    event IntervalSettledByRoot(
        uint64 indexed intervalStartS, uint32 indexed rootSeq, bytes32 root, uint256 movedMicro, uint32 accountCount
    );
    event Claimed(address indexed account, uint32 indexed rootSeq, int256 deltaMicro);
    event ExitWithdrawn(address indexed account, uint256 amountMicro);

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
    error ZeroRoot();
    error UnknownRoot(uint32 rootSeq);
    error AlreadyClaimed(address account, uint32 rootSeq, uint32 claimedRootSeq);
    error InvalidProof(address account, uint32 rootSeq);
    error ClaimExceedsPosted(address account, int256 deltaMicro);
    error NotAccountOrOperator(address caller, address account);
    error UnclaimedSettlement(address account, uint32 claimedRootSeq, uint32 rootCount);
    error LengthMismatch(uint256 expected, uint256 actual);
    error InvalidExitWindow(uint64 intervalLengthS, uint64 exitAfterIntervals);
    error NotStalled(uint256 exitOpensAtS, uint256 nowS);

    /// @param admin receives DEFAULT_ADMIN_ROLE and OPERATOR_ROLE.
    /// @param intervalLengthS market interval length (900 s in gridledger).
    /// @param exitAfterIntervals intervals without a settlement before participants may exit.
    constructor(
        IERC20 token_,
        Registry registry_,
        address gridOperator_,
        address admin,
        uint64 intervalLengthS,
        uint64 exitAfterIntervals
    ) {
        if (address(token_) == address(0) || address(registry_) == address(0)) revert ZeroAddress();
        if (gridOperator_ == address(0) || admin == address(0)) revert ZeroAddress();
        if (intervalLengthS == 0 || exitAfterIntervals == 0) {
            revert InvalidExitWindow(intervalLengthS, exitAfterIntervals);
        }
        token = token_;
        registry = registry_;
        gridOperator = gridOperator_;
        exitWindowS = uint256(intervalLengthS) * exitAfterIntervals;
        _progress.lastSettledAtS = SafeCast.toUint32(block.timestamp);
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

    /// @notice Escrow `amountsMicro[i]` for `accounts[i]`, paid by the caller with a single
    /// token transfer of the total.
    function depositForMany(address[] calldata accounts, uint256[] calldata amountsMicro) external nonReentrant {
        if (amountsMicro.length != accounts.length) revert LengthMismatch(accounts.length, amountsMicro.length);
        uint256 total = 0;
        for (uint256 i = 0; i < accounts.length; ++i) {
            _credit(accounts[i], amountsMicro[i]);
            total += amountsMicro[i];
        }
        if (total != 0) token.safeTransferFrom(msg.sender, address(this), total);
    }

    /// @notice Ask to withdraw `amountMicro`; see the contract notes for when it unlocks.
    function requestWithdrawal(uint256 amountMicro) external {
        if (amountMicro == 0) revert ZeroAmount();
        uint256 have = _accounts[msg.sender].escrowMicro;
        if (have < amountMicro) revert InsufficientEscrow(msg.sender, have, amountMicro);
        uint64 unlockAfterSeq = _progress.committedCount + 1;
        _withdrawals[msg.sender] = WithdrawalRequest(amountMicro, unlockAfterSeq);
        emit WithdrawalRequested(msg.sender, amountMicro, unlockAfterSeq);
    }

    /// @notice Pay out min(requested, escrow) once the interval open at request time is settled
    /// and the latest settlement root is claimed (debit before withdrawal).
    function withdraw() external nonReentrant {
        _withdraw(msg.sender);
    }

    /// @notice Claim the latest settlement root for the caller, then withdraw, in one transaction
    /// (a new root posted between two separate transactions would lock the withdrawal again).
    /// A root already claimed (or skipped by a first deposit) is not claimed again; withdraw's own
    /// check still requires the newest root.
    function claimAndWithdraw(uint32 rootSeq, int96 cumulativeMicro, bytes32[] calldata proof)
        external
        nonReentrant
    {
        if (_accounts[msg.sender].claimedRootSeq < rootSeq) _claim(msg.sender, rootSeq, cumulativeMicro, proof);
        _withdraw(msg.sender);
    }

    /// @notice Exit without the operator: once the market is stalled (see the contract notes),
    /// pay out the caller's whole escrow, with no request, lock or operator signature. The caller
    /// must have claimed the latest settlement root (exitClaimAndWithdraw does both).
    function exitWithdraw() external nonReentrant {
        _requireStalled();
        _exit(msg.sender);
    }

    /// @notice Claim the caller's leaf in the latest settlement root, then exit (stalled only).
    function exitClaimAndWithdraw(uint32 rootSeq, int96 cumulativeMicro, bytes32[] calldata proof)
        external
        nonReentrant
    {
        _requireStalled();
        if (_accounts[msg.sender].claimedRootSeq < rootSeq) _claim(msg.sender, rootSeq, cumulativeMicro, proof);
        _exit(msg.sender);
    }

    /// @notice True once no interval has been settled for exitWindowS() seconds.
    function isStalled() public view returns (bool) {
        // The window is a day by default: seconds of validator drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        return block.timestamp >= exitOpensAtS();
    }

    /// @notice When exits open if nothing is settled before then (unix seconds).
    function exitOpensAtS() public view returns (uint256) {
        return uint256(_progress.lastSettledAtS) + exitWindowS;
    }

    function _requireStalled() private view {
        uint256 opensAtS = exitOpensAtS();
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < opensAtS) revert NotStalled(opensAtS, block.timestamp);
    }

    function _exit(address account) private {
        Account memory acct = _accounts[account];
        uint32 latestRoot = _progress.rootCount;
        if (acct.claimedRootSeq != latestRoot) revert UnclaimedSettlement(account, acct.claimedRootSeq, latestRoot);
        if (acct.escrowMicro == 0) revert ZeroAmount();
        delete _withdrawals[account];
        _accounts[account].escrowMicro = 0;
        emit ExitWithdrawn(account, acct.escrowMicro);
        token.safeTransfer(account, acct.escrowMicro);
    }

    function _withdraw(address account) private {
        WithdrawalRequest memory request = _withdrawals[account];
        if (request.unlockAfterSeq == 0) revert NoWithdrawalRequested(account);
        Progress memory state = _progress;
        if (state.settledCount < request.unlockAfterSeq) {
            revert WithdrawalLocked(account, request.unlockAfterSeq, state.settledCount);
        }
        Account memory acct = _accounts[account];
        uint32 latestRoot = state.rootCount;
        if (acct.claimedRootSeq != latestRoot) revert UnclaimedSettlement(account, acct.claimedRootSeq, latestRoot);
        uint256 amountMicro = request.amountMicro < acct.escrowMicro ? request.amountMicro : acct.escrowMicro;
        delete _withdrawals[account];
        // amountMicro <= escrowMicro, so it fits and the subtraction cannot underflow.
        // forge-lint: disable-next-line(unsafe-typecast)
        _accounts[account].escrowMicro = acct.escrowMicro - uint128(amountMicro);
        emit Withdrawn(account, amountMicro);
        token.safeTransfer(account, amountMicro);
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
        _progress = Progress(intervalStartS, seq, state.settledCount, state.rootCount, state.lastSettledAtS);
        emit IntervalCommitted(
            intervalStartS, ordersRoot, resultRoot, readingsRoot, clearingPriceMicroPerKwh, volumeWh, seq
        );
    }

    /// @notice Apply the net payments of a committed interval, in commit order, exactly once.
    /// @param entries one per account, strictly ascending by address, each packed as
    /// `uint256(uint160(account)) << 96 | uint96(int96 deltaMicro)`; the deltas must sum to zero.
    /// @dev Gas: one registry read and one escrow SSTORE per entry, no per-entry event; the
    /// IntervalSettled event carries keccak256 of the entries so they can be audited off chain.
    /// @param attestations verifier signatures over attestationDigest(intervalStartS,
    /// keccak256(abi.encodePacked(entries))), strictly ascending by signer (see the notes).
    function settleInterval(uint64 intervalStartS, bytes32[] calldata entries, bytes[] calldata attestations)
        external
        onlyRole(OPERATOR_ROLE)
    {
        Progress memory state = _progress;
        _checkSettleable(intervalStartS, state);
        bytes32 entriesHash = keccak256(abi.encodePacked(entries));
        registry.checkQuorum(attestationDigest(intervalStartS, entriesHash), attestations);
        (int256 sum, uint256 movedMicro) = _applyEntries(entries);
        if (sum != 0) revert NotBalanced(sum);
        // One SSTORE: the count and the time share the Progress slot.
        _progress = Progress(
            state.lastCommittedS,
            state.committedCount,
            state.settledCount + 1,
            state.rootCount,
            SafeCast.toUint32(block.timestamp)
        );
        emit IntervalSettled(intervalStartS, entries.length, movedMicro, entriesHash);
    }

    /// @notice Settle a committed interval by a netting root, in O(1) gas: nothing moves until
    /// each account claims (see the contract notes).
    /// @param root Merkle root over every account of the netting book (all accounts with any
    /// root-path history), leaf `keccak256(keccak256(abi.encode(uint32 rootSeq, address account,
    /// int96 cumulativeMicro)))`, rootSeq being this root's number (rootCount() + 1).
    /// @param creditsMicro sum of this interval's positive deltas; must equal debitsMicro.
    /// @param debitsMicro sum of this interval's negative deltas, as a positive number.
    /// @param accountCount number of leaves, for claimers and auditors (not checked).
    /// @param attestations verifier signatures over attestationDigest(intervalStartS,
    /// keccak256(abi.encode(root, creditsMicro, debitsMicro, accountCount))), ascending signers.
    function settleIntervalRoot(
        uint64 intervalStartS,
        bytes32 root,
        uint128 creditsMicro,
        uint128 debitsMicro,
        uint32 accountCount,
        bytes[] calldata attestations
    ) external onlyRole(OPERATOR_ROLE) {
        Progress memory state = _progress;
        _checkSettleable(intervalStartS, state);
        if (root == bytes32(0)) revert ZeroRoot();
        if (creditsMicro != debitsMicro) revert NotBalanced(int256(uint256(creditsMicro)) - int256(uint256(debitsMicro)));
        bytes32 settlementHash = keccak256(abi.encode(root, creditsMicro, debitsMicro, accountCount));
        registry.checkQuorum(attestationDigest(intervalStartS, settlementHash), attestations);
        uint32 rootSeq = state.rootCount + 1; // checked: reverts past 2**32 - 1 roots
        _settlementRoots[rootSeq] = root;
        NettingCapacity memory capacity = _capacity;
        _capacity = NettingCapacity(capacity.creditsMicro + creditsMicro, capacity.debitsMicro + debitsMicro);
        _progress = Progress(
            state.lastCommittedS, state.committedCount, state.settledCount + 1, rootSeq, SafeCast.toUint32(block.timestamp)
        );
        emit IntervalSettledByRoot(intervalStartS, rootSeq, root, creditsMicro, accountCount);
    }

    /// @notice Apply `account`'s cumulative net payment as of root `rootSeq` (its latest leaf).
    /// @dev Callable by the account or the operator. Reverts for a root not newer than the last
    /// one claimed, a proof that does not lead to the root, a debit beyond the escrow, or a
    /// credit or debit beyond what the posted roots still hold.
    function claim(address account, uint32 rootSeq, int96 cumulativeMicro, bytes32[] calldata proof) external {
        if (msg.sender != account && !hasRole(OPERATOR_ROLE, msg.sender)) {
            revert NotAccountOrOperator(msg.sender, account);
        }
        _claim(account, rootSeq, cumulativeMicro, proof);
    }

    /// @notice The operator's batch of claims against one root (gas: ~15k per claim with a
    /// 14-level proof, most of it the proof's calldata and the account's slot).
    function claimMany(uint32 rootSeq, Claim[] calldata claims) external onlyRole(OPERATOR_ROLE) {
        for (uint256 i = 0; i < claims.length; ++i) {
            _claim(claims[i].account, rootSeq, claims[i].cumulativeMicro, claims[i].proof);
        }
    }

    function _claim(address account, uint32 rootSeq, int96 cumulativeMicro, bytes32[] calldata proof) private {
        if (rootSeq == 0 || rootSeq > _progress.rootCount) revert UnknownRoot(rootSeq);
        Account memory acct = _accounts[account];
        if (rootSeq <= acct.claimedRootSeq) revert AlreadyClaimed(account, rootSeq, acct.claimedRootSeq);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(rootSeq, account, cumulativeMicro))));
        if (!MerkleProof.verifyCalldata(proof, _settlementRoots[rootSeq], leaf)) {
            revert InvalidProof(account, rootSeq);
        }
        // Two int96 values: the difference fits easily in int256.
        int256 deltaMicro = int256(cumulativeMicro) - int256(acct.appliedMicro);
        NettingCapacity memory capacity = _capacity;
        if (deltaMicro > 0) {
            // 0 < deltaMicro < 2**97, so the casts are exact.
            // forge-lint: disable-next-line(unsafe-typecast)
            uint128 credit = uint128(uint256(deltaMicro));
            if (credit > capacity.creditsMicro) revert ClaimExceedsPosted(account, deltaMicro);
            _capacity.creditsMicro = capacity.creditsMicro - credit;
            acct.escrowMicro += credit;
        } else if (deltaMicro < 0) {
            // forge-lint: disable-next-line(unsafe-typecast)
            uint128 debit = uint128(uint256(-deltaMicro));
            if (debit > capacity.debitsMicro) revert ClaimExceedsPosted(account, deltaMicro);
            if (debit > acct.escrowMicro) revert InsufficientEscrow(account, acct.escrowMicro, debit);
            _capacity.debitsMicro = capacity.debitsMicro - debit;
            acct.escrowMicro -= debit;
        }
        acct.appliedMicro = cumulativeMicro;
        acct.claimedRootSeq = rootSeq;
        _accounts[account] = acct;
        emit Claimed(account, rootSeq, deltaMicro);
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
                uint256 have = _accounts[account].escrowMicro;
                if (have < need) revert InsufficientEscrow(account, have, need);
                unchecked {
                    // need <= have < 2**128.
                    // forge-lint: disable-next-line(unsafe-typecast)
                    _accounts[account].escrowMicro = uint128(have - need);
                }
            } else if (deltaMicro > 0) {
                // forge-lint: disable-next-line(unsafe-typecast)
                uint256 credit = uint256(deltaMicro); // positive here, so the cast is exact
                // credit < 2**95; the checked uint128 addition reverts on overflow.
                // forge-lint: disable-next-line(unsafe-typecast)
                _accounts[account].escrowMicro += uint128(credit);
                unchecked {
                    movedMicro += credit;
                }
            }
        }
    }

    function _deposit(address account, uint256 amountMicro) private {
        _credit(account, amountMicro);
        token.safeTransferFrom(msg.sender, address(this), amountMicro);
    }

    /// @dev The escrow side of a deposit; the caller moves the tokens.
    function _credit(address account, uint256 amountMicro) private {
        if (amountMicro == 0) revert ZeroAmount();
        if (!registry.isRegistered(account)) revert UnknownParticipant(account);
        Account storage acct = _accounts[account];
        uint128 escrowMicro = acct.escrowMicro;
        if (escrowMicro == 0) {
            // Netting-root rule (2): an empty escrow has no unclaimed net debit, so the account
            // need not prove anything about roots it may never have been part of.
            uint32 latestRoot = _progress.rootCount;
            if (acct.claimedRootSeq < latestRoot) acct.claimedRootSeq = latestRoot;
        }
        acct.escrowMicro = escrowMicro + SafeCast.toUint128(amountMicro);
        emit Deposited(account, msg.sender, amountMicro);
    }

    // ------------------------------------------------------------------ views

    /// @notice The digest verifiers sign for `intervalStartS` (committed roots) and a settlement.
    function attestationDigest(uint64 intervalStartS, bytes32 settlementHash) public view returns (bytes32) {
        Interval storage it = _intervals[intervalStartS];
        bytes32 structHash = keccak256(
            abi.encode(
                ATTESTATION_TYPEHASH, intervalStartS, it.ordersRoot, it.resultRoot, it.readingsRoot, settlementHash
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @notice EIP-712 domain of orders and attestations ("gridledger", "1", chain, this Market).
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(_DOMAIN_TYPEHASH, keccak256("gridledger"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// @notice block.timestamp of the last settlement (or of the deploy, before the first).
    function lastSettledAtS() external view returns (uint32) {
        return _progress.lastSettledAtS;
    }

    /// @notice Claimed escrow; unclaimed netting-root payments are not included.
    function escrowOf(address account) external view returns (uint256) {
        return _accounts[account].escrowMicro;
    }

    /// @notice Escrow, cumulative root-path net applied so far, and the last root claimed.
    function accountState(address account)
        external
        view
        returns (uint256 escrowMicro, int256 appliedMicro, uint32 claimedRootSeq)
    {
        Account memory acct = _accounts[account];
        return (acct.escrowMicro, acct.appliedMicro, acct.claimedRootSeq);
    }

    /// @notice The netting root number `rootSeq` (1-based), zero if none.
    function settlementRoot(uint32 rootSeq) external view returns (bytes32) {
        return _settlementRoots[rootSeq];
    }

    function rootCount() external view returns (uint32) {
        return _progress.rootCount;
    }

    /// @notice Posted minus claimed credits and debits over all roots (upper bounds on what
    /// claims may still move).
    function nettingCapacity() external view returns (uint256 creditsMicro, uint256 debitsMicro) {
        NettingCapacity memory capacity = _capacity;
        return (capacity.creditsMicro, capacity.debitsMicro);
    }

    /// @notice What an order check needs about many accounts, in one call: registry role and
    /// status, escrow and the pending withdrawal. Saves the operator three calls per account.
    function accountsView(address[] calldata accounts)
        external
        view
        returns (
            uint8[] memory roles,
            bool[] memory active,
            uint256[] memory escrowMicro,
            uint256[] memory pendingWithdrawalMicro
        )
    {
        uint256 n = accounts.length;
        roles = new uint8[](n);
        active = new bool[](n);
        escrowMicro = new uint256[](n);
        pendingWithdrawalMicro = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            (Registry.Role role,, bool isActive_) = registry.participant(accounts[i]);
            roles[i] = uint8(role);
            active[i] = isActive_;
            escrowMicro[i] = _accounts[accounts[i]].escrowMicro;
            pendingWithdrawalMicro[i] = _withdrawals[accounts[i]].amountMicro;
        }
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
