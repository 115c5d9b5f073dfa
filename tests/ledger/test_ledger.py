"""The Python chain client against the real contracts, on the in-process EVM and on anvil."""

from __future__ import annotations

import pytest

from gridledger.eip712 import Domain
from gridledger.errors import ChainUnavailable, ContractRevert, ValidationError
from gridledger.ledger import Deployment, Ledger, Role
from tests.ledger.conftest import Party, deploy, panel, party

T0 = 1_700_000_100  # interval starts used below: T0, T0 + 900, ...
ROOT_A, ROOT_B, ROOT_C = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32


def commit(ledger: Ledger, start_s: int, price: int = 250_000, volume_wh: int = 1_000) -> None:
    ledger.commit_interval(start_s, ROOT_A, ROOT_B, ROOT_C, price, volume_wh)


def test_deploy_registers_the_grid_operator_and_shares_the_domain(ledger: Ledger) -> None:
    dep = ledger.deployment
    assert dep.chain_id == ledger.chain_id
    assert len({dep.token, dep.registry, dep.market, dep.grid_operator}) == 4
    assert ledger.domain == Domain("gridledger", "1", ledger.chain_id, dep.market)
    info = ledger.participant(dep.grid_operator)
    assert (info.role, info.grid_node, info.active) == (Role.GRID_OPERATOR, 0, True)
    assert Deployment.from_json(dep.to_json()) == dep
    assert ledger.block_number >= 6  # 3 deployments, registration, ETH transfer, approval


def test_attach_sees_the_same_contracts(ledger: Ledger, alice: Party) -> None:
    other = Ledger.attach(ledger.chain, Deployment.from_json(ledger.deployment.to_json()))
    assert other.participant(alice.address).role is Role.PROSUMER
    ledger.deposit_for(alice.address, 700)
    assert other.escrow_of(alice.address) == 700
    other.deposit_for(alice.address, 300)  # same key, own nonce tracking: both must work
    assert ledger.escrow_of(alice.address) == 1_000


def test_register_participant_and_meter(ledger: Ledger, alice: Party) -> None:
    meter = party("alice-meter").address
    assert ledger.is_active(alice.address)
    assert ledger.participant(alice.address).grid_node == 11
    assert ledger.meter_owner(meter) is None
    ledger.register_meter(meter, alice.address)
    assert ledger.meter_owner(meter) == alice.address
    with pytest.raises(ContractRevert) as info:
        ledger.add_participant(alice.address, Role.CONSUMER, 1)
    assert (info.value.error_name, info.value.error_args) == ("AlreadyRegistered", (alice.address,))
    assert info.value.tx_hash is not None and info.value.tx_hash.startswith("0x")
    stranger = party("stranger").address
    with pytest.raises(ContractRevert) as info:
        ledger.register_meter(party("m2").address, stranger)
    assert (info.value.error_name, info.value.error_args) == ("UnknownParticipant", (stranger,))
    with pytest.raises(ContractRevert, match="MeterAlreadyRegistered"):
        ledger.register_meter(meter, alice.address)


def test_deposit_for_moves_minted_tokens_into_escrow(ledger: Ledger, alice: Party) -> None:
    ledger.deposit_for(alice.address, 5_000_000)
    assert ledger.escrow_of(alice.address) == 5_000_000
    assert ledger.token_balance_of(ledger.deployment.market) == 5_000_000
    assert ledger.token_balance_of(ledger.operator) == 0
    with pytest.raises(ContractRevert, match="UnknownParticipant"):
        ledger.deposit_for(party("stranger").address, 1)


def test_commit_records_every_field(ledger: Ledger) -> None:
    assert not ledger.interval(T0).committed
    result = ledger.commit_interval(T0, ROOT_A, ROOT_B, ROOT_C, 123_456, 7_890)
    assert result.gas_used > 21_000 and result.block_number == ledger.block_number
    it = ledger.interval(T0)
    assert (it.orders_root, it.result_root, it.readings_root) == (ROOT_A, ROOT_B, ROOT_C)
    assert (it.price_micro_per_kwh, it.volume_wh, it.committed, it.settled) == (
        123_456,
        7_890,
        True,
        False,
    )
    assert ledger.progress() == (T0, 1, 0)


def test_commit_twice_or_backwards_reverts(ledger: Ledger) -> None:
    commit(ledger, T0)
    with pytest.raises(ContractRevert) as info:
        commit(ledger, T0)
    assert (info.value.error_name, info.value.error_args) == ("AlreadyCommitted", (T0,))
    with pytest.raises(ContractRevert) as info:
        commit(ledger, T0 - 900)
    assert (info.value.error_name, info.value.error_args) == ("NotIncreasing", (T0 - 900, T0))


def test_settle_moves_escrow_exactly(ledger: Ledger, alice: Party, bob: Party) -> None:
    grid = ledger.deployment.grid_operator
    ledger.deposit_for(bob.address, 1_000_000)
    commit(ledger, T0)
    deltas = {alice.address: 250_000, bob.address: -270_000, grid: 20_000}
    ledger.settle_direct(T0, deltas, panel(ledger))
    assert ledger.escrow_of(alice.address) == 250_000
    assert ledger.escrow_of(bob.address) == 730_000
    assert ledger.escrow_of(grid) == 20_000
    assert ledger.interval(T0).settled
    [settled] = [e for e in ledger.events() if e.name == "IntervalSettled"]
    assert settled.args["intervalStartS"] == T0
    assert (settled.args["entryCount"], settled.args["movedMicro"]) == (3, 270_000)


def test_settle_twice_uncommitted_or_out_of_order_reverts(
    ledger: Ledger, alice: Party, bob: Party
) -> None:
    with pytest.raises(ContractRevert, match=r"NotCommitted\(1700000100\)"):
        ledger.settle_direct(T0, {}, panel(ledger))
    commit(ledger, T0)
    commit(ledger, T0 + 900)
    with pytest.raises(ContractRevert) as info:
        ledger.settle_direct(T0 + 900, {}, panel(ledger))
    assert (info.value.error_name, info.value.error_args) == ("SettleOutOfOrder", (T0 + 900, T0))
    ledger.settle_direct(T0, {}, panel(ledger))
    with pytest.raises(ContractRevert) as info:
        ledger.settle_direct(T0, {}, panel(ledger))
    assert (info.value.error_name, info.value.error_args) == ("AlreadySettled", (T0,))
    ledger.settle_direct(T0 + 900, {}, panel(ledger))
    assert ledger.progress() == (T0 + 900, 2, 2)


def test_unbalanced_or_unfunded_settlement_reverts(
    ledger: Ledger, alice: Party, bob: Party
) -> None:
    ledger.deposit_for(bob.address, 100)
    commit(ledger, T0)
    with pytest.raises(ContractRevert) as info:
        ledger.settle_direct(T0, {alice.address: 100, bob.address: -99}, panel(ledger))
    assert (info.value.error_name, info.value.error_args) == ("NotBalanced", (1,))
    with pytest.raises(ContractRevert) as info:
        ledger.settle_direct(T0, {alice.address: 101, bob.address: -101}, panel(ledger))
    assert info.value.error_name == "InsufficientEscrow"
    assert info.value.error_args == (bob.address, 100, 101)
    assert not ledger.interval(T0).settled
    assert ledger.escrow_of(bob.address) == 100  # the failed attempts changed nothing


def test_suspended_participant_cannot_be_settled(ledger: Ledger, alice: Party, bob: Party) -> None:
    ledger.deposit_for(bob.address, 100)
    commit(ledger, T0)
    ledger.suspend(alice.address)
    assert not ledger.is_active(alice.address)
    with pytest.raises(ContractRevert) as info:
        ledger.settle_direct(T0, {alice.address: 50, bob.address: -50}, panel(ledger))
    assert (info.value.error_name, info.value.error_args) == (
        "ParticipantNotActive",
        (alice.address,),
    )
    with pytest.raises(ContractRevert, match="AlreadySuspended"):
        ledger.suspend(alice.address)
    ledger.reinstate(alice.address)
    ledger.settle_direct(T0, {alice.address: 50, bob.address: -50}, panel(ledger))
    assert ledger.escrow_of(alice.address) == 50


def test_unregistered_account_cannot_be_settled(ledger: Ledger, bob: Party) -> None:
    ledger.deposit_for(bob.address, 10)
    commit(ledger, T0)
    stranger = party("stranger").address
    with pytest.raises(ContractRevert, match="ParticipantNotActive"):
        ledger.settle_direct(T0, {stranger: 10, bob.address: -10}, panel(ledger))


def test_only_the_operator_commits(ledger: Ledger, alice: Party) -> None:
    as_alice = Ledger.attach(ledger.chain, ledger.deployment, alice.key)
    with pytest.raises(ContractRevert) as info:
        commit(as_alice, T0)
    assert info.value.error_name == "AccessControlUnauthorizedAccount"
    assert info.value.error_args[0] == alice.address
    assert not ledger.interval(T0).committed


def test_withdrawal_waits_for_the_open_interval(ledger: Ledger, alice: Party, bob: Party) -> None:
    ledger.mint(alice.address, 1_000_000)
    client = ledger.participant_client(alice.key)
    client.deposit(600_000)
    assert (ledger.escrow_of(alice.address), ledger.token_balance_of(alice.address)) == (
        600_000,
        400_000,
    )
    commit(ledger, T0)  # alice may hold a position in T0 (committed) and in T0+900 (open)
    client.request_withdrawal(500_000)
    assert ledger.withdrawal_request(alice.address).unlock_after_seq == 2
    with pytest.raises(ContractRevert) as info:
        client.withdraw()
    assert (info.value.error_name, info.value.error_args) == (
        "WithdrawalLocked",
        (alice.address, 2, 0),
    )
    ledger.settle_direct(T0, {alice.address: -200_000, bob.address: 200_000}, panel(ledger))
    commit(ledger, T0 + 900)
    with pytest.raises(ContractRevert, match="WithdrawalLocked"):
        client.withdraw()  # T0+900 was open at request time and is not settled yet
    ledger.settle_direct(T0 + 900, {}, panel(ledger))
    client.withdraw()
    # Settlement spent 200,000 of the 600,000, so only min(500,000, 400,000) leaves.
    assert ledger.escrow_of(alice.address) == 0
    assert ledger.token_balance_of(alice.address) == 800_000
    with pytest.raises(ContractRevert, match="NoWithdrawalRequested"):
        client.withdraw()


def test_escrow_is_conserved_over_intervals(ledger: Ledger, alice: Party, bob: Party) -> None:
    carol = party("carol")
    ledger.add_participant(carol.address, Role.PROSUMER, 13)
    grid = ledger.deployment.grid_operator
    for account in (alice.address, bob.address, carol.address):
        ledger.deposit_for(account, 1_000_000)
    accounts = [alice.address, bob.address, carol.address, grid]
    for i in range(5):
        commit(ledger, T0 + 900 * i)
        buyer, seller = accounts[i % 3], accounts[(i + 1) % 3]
        paid = 10_000 * (i + 1)
        ledger.settle_direct(
            T0 + 900 * i, {buyer: -paid - 100, seller: paid, grid: 100}, panel(ledger)
        )
    escrows = [ledger.escrow_of(a) for a in accounts]
    assert sum(escrows) == ledger.token_balance_of(ledger.deployment.market) == 3_000_000
    assert escrows[3] == 500
    assert ledger.progress() == (T0 + 3600, 5, 5)


def test_events_are_decoded_for_the_explorer(ledger: Ledger, alice: Party) -> None:
    start = ledger.block_number + 1
    ledger.deposit_for(alice.address, 42)
    commit(ledger, T0, price=99, volume_wh=7)
    events = ledger.events(start)
    names = [(e.contract, e.name) for e in events]
    assert names == [
        ("GridToken", "Transfer"),
        ("Market", "Deposited"),
        ("GridToken", "Transfer"),
        ("Market", "IntervalCommitted"),
    ]
    committed = events[-1].args
    assert committed["ordersRoot"] == "0x" + ROOT_A.hex()
    assert (committed["clearingPriceMicroPerKwh"], committed["volumeWh"], committed["seq"]) == (
        99,
        7,
        1,
    )
    assert events[1].args == {"account": alice.address, "payer": ledger.operator, "amountMicro": 42}


def test_stats_count_what_the_client_sent(ledger: Ledger) -> None:
    before = (ledger.stats.tx_count, ledger.stats.gas_used)
    commit(ledger, T0)
    with pytest.raises(ContractRevert):
        commit(ledger, T0)
    assert ledger.stats.tx_count == before[0] + 2  # a reverted transaction still costs gas
    count, gas = ledger.stats.by_function["commitInterval"]
    assert count == 2 and ledger.stats.gas_used - before[1] == gas


def test_out_of_range_delta_is_rejected_before_sending(ledger: Ledger, alice: Party) -> None:
    commit(ledger, T0)
    sent = ledger.stats.tx_count
    with pytest.raises(ValidationError):
        ledger.settle_direct(T0, {alice.address: 1 << 95}, panel(ledger))
    assert ledger.stats.tx_count == sent


def test_unreachable_node_is_chain_unavailable() -> None:
    with pytest.raises(ChainUnavailable, match=r"127\.0\.0\.1:9"):
        deploy("http://127.0.0.1:9")
