// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {Market} from "../src/Market.sol";
import {Registry} from "../src/Registry.sol";
import {Base, Attest} from "./utils/Base.sol";

/// A token that calls back into whoever it is told to on every transfer, before moving funds.
contract HookToken is ERC20 {
    address public hook;

    constructor() ERC20("Hook", "HOOK") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setHook(address hook_) external {
        hook = hook_;
    }

    function transfer(address to, uint256 amount) public override returns (bool) {
        if (hook != address(0)) Attacker(hook).onTokenTransfer();
        return super.transfer(to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) public override returns (bool) {
        if (hook != address(0)) Attacker(hook).onTokenTransfer();
        return super.transferFrom(from, to, amount);
    }
}

/// A participant that tries to withdraw (or deposit) again from inside the token callback.
contract Attacker {
    Market internal immutable market;
    bool public swallow; // true: catch the failed re-entry so the outer call can go on
    bool public reenterDeposit;
    uint256 public reentryFailures;

    constructor(Market market_) {
        market = market_;
    }

    function configure(bool swallow_, bool reenterDeposit_) external {
        swallow = swallow_;
        reenterDeposit = reenterDeposit_;
    }

    function approve(ERC20 token, uint256 amount) external {
        token.approve(address(market), amount);
    }

    function deposit(uint256 amount) external {
        market.deposit(amount);
    }

    function requestWithdrawal(uint256 amount) external {
        market.requestWithdrawal(amount);
    }

    function withdraw() external {
        market.withdraw();
    }

    function onTokenTransfer() external {
        if (!swallow) {
            _reenter();
            return;
        }
        try this.reenterExternally() {}
        catch {
            reentryFailures += 1;
        }
    }

    function reenterExternally() external {
        _reenter();
    }

    function _reenter() internal {
        if (reenterDeposit) market.deposit(1);
        else market.withdraw();
    }
}

contract ReentrancyTest is Base {
    HookToken internal hookToken;
    Market internal hookMarket;
    Attacker internal attacker;
    uint64 internal constant T0 = 1_700_000_100;

    function setUp() public {
        registry = new Registry(OPERATOR, Attest.verifiers(), Attest.QUORUM);
        hookToken = new HookToken();
        hookMarket = new Market(hookToken, registry, GRID, OPERATOR, 900, 96);
        attacker = new Attacker(hookMarket);
        vm.prank(OPERATOR);
        registry.addParticipant(address(attacker), Registry.Role.Prosumer, 1);
        hookToken.mint(address(attacker), 1_000);
        attacker.approve(hookToken, type(uint256).max);
        attacker.deposit(1_000); // no hook yet
        attacker.requestWithdrawal(1_000);
        vm.startPrank(OPERATOR);
        hookMarket.commitInterval(T0, 0, 0, 0, 0, 0);
        hookMarket.settleInterval(T0, new bytes32[](0), Attest.entries(hookMarket, T0, new bytes32[](0)));
        vm.stopPrank();
        hookToken.setHook(address(attacker));
    }

    function test_reentrantWithdrawRevertsTheWholeCall() public {
        attacker.configure(false, false);
        vm.expectRevert(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        attacker.withdraw();
        vm.assertEq(hookMarket.escrowOf(address(attacker)), 1_000, "escrow untouched");
        vm.assertEq(hookToken.balanceOf(address(attacker)), 0, "nothing paid");
    }

    function test_swallowedReentryPaysOnlyOnce() public {
        attacker.configure(true, false);
        attacker.withdraw();
        vm.assertEq(attacker.reentryFailures(), 1, "re-entry was refused");
        vm.assertEq(hookToken.balanceOf(address(attacker)), 1_000, "paid exactly once");
        vm.assertEq(hookMarket.escrowOf(address(attacker)), 0, "escrow debited once");
        vm.assertEq(hookToken.balanceOf(address(hookMarket)), 0, "market empty");
    }

    function test_reentrantDepositReverts() public {
        hookToken.mint(address(attacker), 10);
        attacker.configure(false, true);
        vm.expectRevert(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        attacker.deposit(10);
        vm.assertEq(hookMarket.escrowOf(address(attacker)), 1_000, "no double credit");
    }
}
