// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title PerTradeSettlement: the benchmark baseline, one on-chain transfer per trade.
/// @notice Not part of the market. gridledger.ledger.bench deploys it next to Market to measure
/// what settling every trade as its own transaction would cost. It is deliberately lean (an
/// immutable operator, no registry, no replay guard, one event per trade) so the comparison
/// flatters the baseline rather than our netting.
contract PerTradeSettlement {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    address public immutable operator;
    mapping(address account => uint256 amountMicro) public escrowOf;

    event TradeSettled(address indexed buyer, address indexed seller, uint256 amountMicro);

    error NotOperator(address caller);
    error InsufficientEscrow(address account, uint256 have, uint256 need);

    constructor(IERC20 token_, address operator_) {
        token = token_;
        operator = operator_;
    }

    /// @notice Move `amountMicro` tokens from the caller into the escrow of `account`.
    function depositFor(address account, uint256 amountMicro) external {
        escrowOf[account] += amountMicro;
        token.safeTransferFrom(msg.sender, address(this), amountMicro);
    }

    /// @notice Pay one trade: `buyer`'s escrow to `seller`'s.
    function settleTrade(address buyer, address seller, uint256 amountMicro) external {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        uint256 have = escrowOf[buyer];
        if (have < amountMicro) revert InsufficientEscrow(buyer, have, amountMicro);
        unchecked {
            escrowOf[buyer] = have - amountMicro;
        }
        escrowOf[seller] += amountMicro;
        emit TradeSettled(buyer, seller, amountMicro);
    }
}
