"""Settlement by netting root through the Python client, on the in-process EVM and on anvil."""

from __future__ import annotations

import pytest

from gridledger.errors import ConflictError, ContractRevert, NotFoundError, ValidationError
from gridledger.ledger import Ledger, NettingBook, NettingClaim
from gridledger.ledger.netting import netting_leaf
from gridledger.merkle import verify_proof
from tests.ledger.conftest import Party, panel, party

T0 = 1_700_000_100
ROOT = b"\x11" * 32


def commit(ledger: Ledger, start_s: int) -> None:
    ledger.commit_interval(start_s, ROOT, ROOT, ROOT, 250_000, 1_000)


def test_root_settles_in_o1_and_claims_move_escrow(
    ledger: Ledger, alice: Party, bob: Party
) -> None:
    grid = ledger.deployment.grid_operator
    ledger.deposit_for(bob.address, 1_000_000)
    commit(ledger, T0)
    result = ledger.settle_by_root(
        T0, {alice.address: 250_000, bob.address: -270_000, grid: 20_000}, panel(ledger)
    )
    assert result.gas_used < 150_000  # O(1): the root, its totals and three attestations
    assert ledger.root_count() == 1 and ledger.interval(T0).settled
    assert ledger.settlement_root(1) == ledger.netting.root().root
    assert ledger.netting_capacity() == (270_000, 270_000)
    # Nothing moved yet; the effective escrow already counts the root.
    assert ledger.escrow_of(bob.address) == 1_000_000
    assert ledger.effective_escrow_of(bob.address) == 730_000
    assert ledger.unclaimed_micro(alice.address) == 250_000
    [claimed] = ledger.claim_many()
    assert ledger.escrow_of(alice.address) == 250_000
    assert ledger.escrow_of(bob.address) == 730_000
    assert ledger.escrow_of(grid) == 20_000
    assert ledger.netting_capacity() == (0, 0)
    assert ledger.account_state(bob.address).claimed_root_seq == 1
    assert ledger.claim_many() == []  # everyone is up to date
    names = [e.name for e in ledger.events() if e.contract == "Market"]
    assert names.count("IntervalSettledByRoot") == 1 and names.count("Claimed") == 3
    assert claimed.gas_used < 3 * 40_000


def test_one_claim_catches_up_and_debit_comes_before_withdrawal(
    ledger: Ledger, alice: Party, bob: Party
) -> None:
    ledger.deposit_for(bob.address, 1_000_000)
    bob_client = ledger.participant_client(bob.key)
    bob_client.request_withdrawal(1_000_000)
    commit(ledger, T0)
    ledger.settle_by_root(T0, {alice.address: 100_000, bob.address: -100_000}, panel(ledger))
    commit(ledger, T0 + 900)
    ledger.settle_by_root(T0 + 900, {alice.address: 50_000, bob.address: -50_000}, panel(ledger))
    with pytest.raises(ContractRevert) as info:
        bob_client.withdraw()
    assert (info.value.error_name, info.value.error_args) == (
        "UnclaimedSettlement",
        (bob.address, 0, 2),
    )
    bob_client.claim_and_withdraw()  # applies both roots' debits, then pays the rest
    assert ledger.token_balance_of(bob.address) == 850_000
    assert ledger.escrow_of(bob.address) == 0
    alice_client = ledger.participant_client(alice.key)
    alice_client.claim()
    assert ledger.escrow_of(alice.address) == 150_000
    assert ledger.token_balance_of(ledger.deployment.market) == 150_000
    # Already at the newest root: claim_and_withdraw just withdraws.
    alice_client.request_withdrawal(150_000)
    commit(ledger, T0 + 1_800)
    ledger.settle_direct(T0 + 1_800, {}, panel(ledger))
    alice_client.claim_and_withdraw()
    assert ledger.token_balance_of(alice.address) == 150_000


def test_forged_double_and_foreign_claims_revert(ledger: Ledger, alice: Party, bob: Party) -> None:
    ledger.deposit_for(bob.address, 1_000)
    commit(ledger, T0)
    ledger.settle_by_root(T0, {alice.address: 300, bob.address: -300}, panel(ledger))
    genuine = ledger.netting.claim(alice.address)
    forged = NettingClaim(alice.address, 1, 301, genuine.proof)
    with pytest.raises(ContractRevert) as info:
        ledger.send_claims([forged])
    assert (info.value.error_name, info.value.error_args) == ("InvalidProof", (alice.address, 1))
    ledger.send_claims([genuine])
    with pytest.raises(ContractRevert, match="AlreadyClaimed"):
        ledger.send_claims([genuine])
    # Alice may not apply Bob's debit (only Bob or the operator may).
    bob_claim = ledger.netting.claim(bob.address)
    alice_client = ledger.participant_client(alice.key)
    with pytest.raises(ContractRevert, match="NotAccountOrOperator"):
        alice_client._send(
            ledger._c.market,
            "claim",
            [bob.address, 1, bob_claim.cumulative_micro, list(bob_claim.proof)],
        )
    ledger.claim_for(bob.address)
    assert ledger.escrow_of(bob.address) == 700


def test_book_checks_and_round_trips(ledger: Ledger, alice: Party, bob: Party) -> None:
    grid = ledger.deployment.grid_operator
    ledger.deposit_for(bob.address, 1_000)
    commit(ledger, T0)
    with pytest.raises(ValidationError, match="sum to 1"):
        ledger.settle_by_root(T0, {alice.address: 1}, panel(ledger))
    ledger.settle_by_root(T0, {alice.address: 290, bob.address: -300, grid: 10}, panel(ledger))
    copy = NettingBook.from_json(ledger.netting.to_json())
    assert copy.to_json() == ledger.netting.to_json()
    assert copy.root().root == ledger.settlement_root(1)
    claim = copy.claim(bob.address)
    leaf = netting_leaf(1, bob.address, -300)
    assert verify_proof(leaf, list(claim.proof), ledger.settlement_root(1))
    with pytest.raises(NotFoundError):
        copy.claim(party("stranger").address)
    # A client whose book lags the chain refuses to post (its cumulative nets would be wrong).
    other = Ledger.attach(ledger.chain, ledger.deployment)
    commit(ledger, T0 + 900)
    with pytest.raises(ConflictError, match="book is at root 0"):
        other.settle_by_root(T0 + 900, {}, panel(other))
    attached = Ledger.attach(ledger.chain, ledger.deployment, netting=copy)
    attached.settle_by_root(T0 + 900, {}, panel(attached))
    assert attached.netting.latest_root_seq == 2 and ledger.root_count() == 2


def test_direct_settlement_still_works_alongside(ledger: Ledger, alice: Party, bob: Party) -> None:
    ledger.deposit_for(bob.address, 1_000)
    commit(ledger, T0)
    ledger.settle_direct(T0, {alice.address: 100, bob.address: -100}, panel(ledger))
    commit(ledger, T0 + 900)
    ledger.settle_by_root(T0 + 900, {alice.address: 100, bob.address: -100}, panel(ledger))
    ledger.claim_many()
    assert (ledger.escrow_of(alice.address), ledger.escrow_of(bob.address)) == (200, 800)
    assert ledger.progress() == (T0 + 900, 2, 2)
