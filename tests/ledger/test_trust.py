"""The trust-minimised contracts through the client: verifier quorum, set changes, batched
enrolment, exit without the operator, consent and the access-log commitment."""

from __future__ import annotations

import pytest

from gridledger.eip712 import address_of, key_from_seed, sign_digest
from gridledger.errors import AttestationRefused, ContractRevert, ValidationError
from gridledger.ledger import Ledger, Role
from gridledger.ledger.transport import connect
from gridledger.verifier.attestation import IntervalAttestation, sign_attestation
from gridledger.verifier.panel import (
    DEV_QUORUM,
    InProcessVerifiers,
    dev_verifier_addresses,
    dev_verifier_keys,
)
from tests.ledger.conftest import ETH_WEI, Party, deploy, panel, party

T0 = 1_700_000_100
ROOTS = (b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32)


def commit(ledger: Ledger, start_s: int) -> None:
    ledger.commit_interval(start_s, *ROOTS, 250_000, 1_000)


def advance_time(ledger: Ledger, seconds: int) -> None:
    """Move the chain's clock forward and mine a block (embedded EVM or anvil)."""
    conn = ledger._conn
    if conn.tester is not None:
        latest = conn.w3.eth.get_block("latest")["timestamp"]
        conn.tester.time_travel(int(latest) + seconds)
    else:
        conn.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        conn.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def keys_by_address() -> list[bytes]:
    return sorted(dev_verifier_keys(), key=lambda k: int(address_of(k), 16))


def test_deploy_registers_the_verifier_set(ledger: Ledger) -> None:
    expected = [address_of(k) for k in dev_verifier_keys()]
    assert ledger.verifiers() == expected
    assert ledger.verifier_threshold() == DEV_QUORUM
    assert ledger.verifier_epoch() == 0
    assert all(ledger.is_verifier(v) for v in expected)
    assert not ledger.is_verifier(ledger.operator)


def test_deploy_validates_the_quorum_and_refuses_the_operator_as_verifier(chain_url: str) -> None:
    with pytest.raises(ValidationError, match="quorum"):
        Ledger.deploy(chain_url, verifiers=dev_verifier_addresses(), quorum=4)
    with pytest.raises(ContractRevert) as info:
        Ledger.deploy(chain_url, verifiers=[address_of(default_key(chain_url))], quorum=1)
    assert info.value.error_name == "VerifierIsOperator"


def default_key(chain: str) -> bytes:
    """The operator key Ledger.deploy uses on `chain`."""
    return connect(chain).default_key()


def test_settlement_needs_a_quorum_of_valid_attestations(
    ledger: Ledger, alice: Party, bob: Party
) -> None:
    ledger.deposit_for(bob.address, 1_000)
    commit(ledger, T0)
    deltas = {alice.address: 100, bob.address: -100}
    att = ledger.direct_attestation(T0, deltas)
    keys = keys_by_address()
    sigs = [sign_attestation(k, ledger.domain, att) for k in keys]
    cases = {
        "TooFewAttestations": ([sigs[0]], (1, 2)),
        "AttestationsNotAscending": ([sigs[1], sigs[0]], (1,)),
        "duplicate": ([sigs[0], sigs[0]], (1,)),
    }
    for name, (given, args) in cases.items():
        with pytest.raises(ContractRevert) as info:
            ledger.settle_interval(T0, deltas, given)
        expected = "AttestationsNotAscending" if name == "duplicate" else name
        assert (info.value.error_name, info.value.error_args) == (expected, args)
    # Signed for another interval, or another settlement: recovers a stranger.
    other = IntervalAttestation(T0 + 900, *ROOTS, att.settlement_hash)
    wrong = [sign_attestation(k, ledger.domain, other) for k in keys[:2]]
    with pytest.raises(ContractRevert) as info:
        ledger.settle_interval(T0, deltas, wrong)
    assert info.value.error_name == "NotVerifier"
    with pytest.raises(ContractRevert, match="NotVerifier"):
        ledger.settle_interval(T0, {alice.address: 99, bob.address: -99}, sigs[:2])
    ledger.settle_interval(T0, deltas, sigs[:2])
    assert ledger.escrow_of(alice.address) == 100


def test_a_refusing_panel_cannot_settle(ledger: Ledger) -> None:
    def refuse(att: IntervalAttestation) -> None:
        raise AttestationRefused("mismatch")

    commit(ledger, T0)
    silent = InProcessVerifiers(dev_verifier_keys(), refuse, domain=ledger.domain)
    with pytest.raises(ContractRevert, match="TooFewAttestations"):
        ledger.settle_direct(T0, {}, silent)
    assert not ledger.interval(T0).settled


def test_root_settlement_is_bound_to_the_root(ledger: Ledger, alice: Party, bob: Party) -> None:
    ledger.deposit_for(bob.address, 1_000)
    commit(ledger, T0)
    posted = ledger.prepare_root(T0, {alice.address: 300, bob.address: -300})
    sigs = panel(ledger).collect(ledger.root_attestation(posted))
    with pytest.raises(ContractRevert, match="NotVerifier"):
        ledger.settle_interval_root(T0, posted.root, 300, 300, 99, sigs)  # another count
    ledger.settle_prepared_root(posted, sigs)
    assert ledger.root_count() == 1 and ledger.netting.latest_root_seq == 1


def test_verifier_set_changes_only_with_a_quorum_of_the_current_set(ledger: Ledger) -> None:
    new_keys = [key_from_seed(f"new-verifier:{i}") for i in range(4)]
    new_set = [address_of(k) for k in new_keys]
    digest = ledger.verifier_set_digest(new_set, 3)
    keys = keys_by_address()
    with pytest.raises(ContractRevert, match="TooFewAttestations"):
        ledger.change_verifiers(new_set, 3, [sign_digest(keys[0], digest)])
    operator_sig = sign_digest(default_key(ledger.chain), digest)
    with pytest.raises(ContractRevert, match="NotVerifier"):
        ledger.change_verifiers(new_set, 3, [operator_sig, sign_digest(keys[0], digest)])
    ledger.change_verifiers(new_set, 3, [sign_digest(k, digest) for k in keys[:2]])
    assert (ledger.verifiers(), ledger.verifier_threshold(), ledger.verifier_epoch()) == (
        new_set,
        3,
        1,
    )
    # The old set has no say any more, and the new set's epoch moved on: no replay.
    with pytest.raises(ContractRevert, match="NotVerifier"):
        ledger.change_verifiers(new_set, 3, [sign_digest(k, digest) for k in keys])
    names = [e.name for e in ledger.events() if e.contract == "Registry"]
    assert names.count("VerifierSetChanged") == 2


def test_batched_enrolment_and_deposits(ledger: Ledger) -> None:
    people = [party(f"batch:{i}").address for i in range(30)]
    meters = [party(f"batch-meter:{i}").address for i in range(30)]
    done: list[int] = []
    added = ledger.add_participants(people, [Role.PROSUMER] * 30, list(range(30)), done.append)
    assert done == [30] and len(added) == 1
    ledger.register_meters(meters, people)
    ledger.deposit_for_many(people, [1_000 + i for i in range(30)])
    assert ledger.participant(people[7]).grid_node == 7
    assert ledger.meter_owner(meters[29]) == people[29]
    assert ledger.escrow_of(people[29]) == 1_029
    assert ledger.token_balance_of(ledger.deployment.market) == sum(1_000 + i for i in range(30))
    with pytest.raises(ValidationError, match="roles"):
        ledger.add_participants(people, [Role.PROSUMER], [1])
    with pytest.raises(ContractRevert) as info:
        ledger.add_participants([party("x").address, people[0]], [Role.PROSUMER] * 2, [1, 1])
    assert (info.value.error_name, info.value.error_args) == ("AlreadyRegistered", (people[0],))
    assert not ledger.participant(party("x").address).active  # nothing half-written


def test_batches_are_chunked_by_the_block_gas_limit(ledger: Ledger) -> None:
    size = ledger.batch_size("addParticipants")
    assert 10 < size < 1_000
    people = [party(f"chunk:{i}").address for i in range(size + 3)]
    results = ledger.add_participants(people, [Role.CONSUMER] * len(people), [0] * len(people))
    assert len(results) == 2 and ledger.is_active(people[-1])


def test_exit_opens_only_after_the_stall_window(chain_url: str) -> None:
    ledger = deploy(chain_url, exit_after_intervals=2)
    alice = party("exit:alice")
    ledger.add_participant(alice.address, Role.PROSUMER, 1)
    ledger.fund_eth(alice.address, ETH_WEI)
    ledger.deposit_for(alice.address, 5_000)
    me = ledger.participant_client(alice.key)
    assert ledger.exit_window_s() == 1_800 and not ledger.is_stalled()
    with pytest.raises(ContractRevert) as info:
        me.exit_withdraw()
    assert info.value.error_name == "NotStalled"
    commit(ledger, T0)
    advance_time(ledger, 1_000)
    ledger.settle_direct(T0, {}, panel(ledger))  # a settlement restarts the window
    advance_time(ledger, 1_000)
    assert not ledger.is_stalled()
    advance_time(ledger, 900)
    assert ledger.is_stalled()
    me.exit_withdraw()
    assert ledger.escrow_of(alice.address) == 0
    assert ledger.token_balance_of(alice.address) == 5_000
    assert "ExitWithdrawn" in [e.name for e in ledger.events()]


def test_exit_claims_the_last_root_first(chain_url: str) -> None:
    ledger = deploy(chain_url, exit_after_intervals=1)
    alice, bob = party("exit2:alice"), party("exit2:bob")
    for p in (alice, bob):
        ledger.add_participant(p.address, Role.PROSUMER, 1)
        ledger.fund_eth(p.address, ETH_WEI)
        ledger.deposit_for(p.address, 1_000)
    commit(ledger, T0)
    ledger.settle_by_root(T0, {alice.address: 400, bob.address: -400}, panel(ledger))
    advance_time(ledger, 901)
    ledger.participant_client(bob.key).exit_withdraw()
    ledger.participant_client(alice.key).exit_withdraw()
    assert ledger.token_balance_of(bob.address) == 600
    assert ledger.token_balance_of(alice.address) == 1_400
    assert ledger.token_balance_of(ledger.deployment.market) == 0


def test_consent_grant_check_and_revoke(ledger: Ledger, alice: Party, bob: Party) -> None:
    now = int(ledger._conn.w3.eth.get_block("latest")["timestamp"])
    me = ledger.participant_client(alice.key)
    readings, statements = 1, 2
    scope = readings | statements
    grant_id, _ = me.grant_consent(bob.address, scope, T0, T0 + 86_400, now + 10_000)
    assert grant_id == 1
    grant = ledger.consent_grant(grant_id)
    assert (grant.owner, grant.grantee, grant.scope_bits, grant.revoked_at_s) == (
        alice.address,
        bob.address,
        3,
        0,
    )
    at = now + 100
    assert ledger.is_allowed(alice.address, bob.address, readings, at, T0, T0 + 900)
    assert not ledger.is_allowed(alice.address, bob.address, 4, at, T0, T0 + 900)  # scope
    assert not ledger.is_allowed(alice.address, bob.address, 1, at, T0 - 1, T0 + 900)  # period
    assert not ledger.is_allowed(alice.address, bob.address, 1, now + 10_000, T0, T0 + 900)
    assert not ledger.is_allowed(bob.address, alice.address, 1, at, T0, T0 + 900)
    with pytest.raises(ContractRevert) as info:
        ledger.participant_client(bob.key).revoke_consent(grant_id)
    assert info.value.error_name == "NotGrantOwner"
    advance_time(ledger, 100)
    me.revoke_consent(grant_id)
    revoked_at = ledger.consent_grant(grant_id).revoked_at_s
    assert ledger.is_allowed(alice.address, bob.address, 1, revoked_at - 1, T0, T0 + 900)
    assert not ledger.is_allowed(alice.address, bob.address, 1, revoked_at, T0, T0 + 900)
    with pytest.raises(ContractRevert, match="AlreadyRevoked"):
        me.revoke_consent(grant_id)
    with pytest.raises(ContractRevert, match="InvalidDataPeriod"):
        me.grant_consent(bob.address, 1, T0, T0, now + 10_000)
    assert [e.name for e in ledger.consent_events()] == ["ConsentGranted", "ConsentRevoked"]
    assert ledger.consent_grant_ids(alice.address, bob.address) == [1]


def test_access_log_root_is_committed_once_per_day(ledger: Ledger, alice: Party) -> None:
    day = 1_700_006_400
    assert ledger.access_log(day).committed_at_s == 0
    ledger.commit_access_log(day, b"\x11" * 32, 42)
    log = ledger.access_log(day)
    assert (log.root, log.entry_count) == (b"\x11" * 32, 42) and log.committed_at_s > 0
    with pytest.raises(ContractRevert, match="AccessLogAlreadyCommitted"):
        ledger.commit_access_log(day, b"\x22" * 32, 1)
    with pytest.raises(ContractRevert, match="AccessControlUnauthorizedAccount"):
        Ledger.attach(ledger.chain, ledger.deployment, alice.key).commit_access_log(
            day + 86_400, b"\x11" * 32, 1
        )
    assert ledger.consent_events()[-1].name == "AccessLogCommitted"
