"""Collecting attestations: the remote box waits for a quorum; faulty panels lose nothing."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from gridledger.eip712 import address_of
from gridledger.errors import AttestationPending, AttestationRefused, AuthorizationError
from gridledger.store import Store
from gridledger.verifier.attestation import recover_attestation_signer, sign_attestation
from gridledger.verifier.faults import PanelWithFaults
from gridledger.verifier.panel import dev_verifier_keys
from gridledger.verifier.remote import AttestationBox, RemoteAttestations
from tests.verifier.test_reexecute import DOMAIN, honest

KEYS = dev_verifier_keys(4)
ADDRESSES = [address_of(k) for k in KEYS]


@pytest.fixture
def box(tmp_path: Path) -> AttestationBox:
    return AttestationBox(
        Store.open(f"sqlite:///{tmp_path / 's.sqlite'}"), DOMAIN, lambda: ADDRESSES
    )


def signers(signatures: list[bytes]) -> list[str]:
    att = honest()[0].attestation
    return [recover_attestation_signer(DOMAIN, att, s) for s in signatures]


def test_quorum_of_stored_signatures_in_ascending_signer_order(box: AttestationBox) -> None:
    att = honest()[0].attestation
    for key in KEYS[:3]:
        box.add(att, sign_attestation(key, DOMAIN, att), address_of(key))
    collected = RemoteAttestations(box, lambda: 3, timeout_s=1).collect(att)
    assert signers(collected) == sorted(ADDRESSES[:3], key=lambda a: int(a, 16))


def test_signatures_over_another_attestation_do_not_count(box: AttestationBox) -> None:
    att = honest()[0].attestation
    void = dataclasses.replace(att, settlement_hash=b"\0" * 32)
    box.add(void, sign_attestation(KEYS[0], DOMAIN, void), ADDRESSES[0])
    box.add(att, sign_attestation(KEYS[1], DOMAIN, att), ADDRESSES[1])
    with pytest.raises(AttestationRefused, match="1 of 2 verifiers"):
        RemoteAttestations(box, lambda: 2, timeout_s=0.3).collect(att)
    assert box.signed_by(att.interval_start_s) == {ADDRESSES[0]: void, ADDRESSES[1]: att}


def test_collect_waits_for_a_late_verifier(box: AttestationBox) -> None:
    att = honest()[0].attestation
    box.add(att, sign_attestation(KEYS[0], DOMAIN, att), ADDRESSES[0])

    def late() -> None:
        time.sleep(0.3)
        box.add(att, sign_attestation(KEYS[1], DOMAIN, att), ADDRESSES[1])

    thread = threading.Thread(target=late)
    thread.start()
    assert len(RemoteAttestations(box, lambda: 2, timeout_s=10).collect(att)) == 2
    thread.join()


def test_poll_never_waits_and_is_refused_only_once_the_quorum_is_out_of_reach(
    box: AttestationBox,
) -> None:
    att = honest()[0].attestation
    void = dataclasses.replace(att, settlement_hash=b"\0" * 32)
    remote = RemoteAttestations(box, lambda: 3, timeout_s=1)
    assert remote.ready(att, ADDRESSES)  # never polled: the threshold is not known yet
    with pytest.raises(AttestationPending, match="0 of 3"):
        remote.poll(att)  # nobody yet: pending, not refused
    box.add(void, sign_attestation(KEYS[0], DOMAIN, void), ADDRESSES[0])
    with pytest.raises(AttestationPending, match="0 of 3"):
        remote.poll(att)  # one void of four: three could still agree
    assert not remote.ready(att, ADDRESSES)  # the store alone says so (no chain call)
    box.add(void, sign_attestation(KEYS[1], DOMAIN, void), ADDRESSES[1])
    assert remote.ready(att, ADDRESSES)  # poll now has news: the quorum is out of reach
    with pytest.raises(AttestationRefused, match="2 of 4 verifiers signed another"):
        remote.poll(att)
    with pytest.raises(AttestationPending, match="2 of 3"):
        remote.poll(void)  # the void itself: one more signature settles it
    box.add(void, sign_attestation(KEYS[2], DOMAIN, void), ADDRESSES[2])
    assert len(remote.poll(void)) == 3


def test_a_quorum_missing_past_the_timeout_stays_pending(box: AttestationBox) -> None:
    att = honest()[0].attestation
    now = [0.0]
    remote = RemoteAttestations(box, lambda: 2, timeout_s=5, clock=lambda: now[0])
    box.add(att, sign_attestation(KEYS[0], DOMAIN, att), ADDRESSES[0])
    for now[0] in (0.0, 6.0, 60.0):  # silence is not a dispute: logged, never refused
        with pytest.raises(AttestationPending):
            remote.poll(att)
    box.add(att, sign_attestation(KEYS[1], DOMAIN, att), ADDRESSES[1])
    assert signers(remote.poll(att)) == sorted(ADDRESSES[:2], key=lambda a: int(a, 16))


def test_only_a_registered_verifier_signing_for_itself_is_stored(box: AttestationBox) -> None:
    att = honest()[0].attestation
    with pytest.raises(AuthorizationError, match="not by you"):
        box.add(att, sign_attestation(KEYS[0], DOMAIN, att), ADDRESSES[1])
    outsider = b"\x05" * 32
    with pytest.raises(AuthorizationError, match="verifier set"):
        box.add(att, sign_attestation(outsider, DOMAIN, att), address_of(outsider))


def test_a_down_and_a_lying_verifier_leave_the_honest_quorum() -> None:
    att = honest()[0].attestation
    down = PanelWithFaults(KEYS, None, DOMAIN, down=KEYS[:1]).collect(att)
    lying = PanelWithFaults(KEYS, None, DOMAIN, lying=KEYS[:1]).collect(att)
    for collected in (down, lying):
        assert sorted(signers(collected)) == sorted(ADDRESSES[1:])
        assert signers(collected) == sorted(signers(collected), key=lambda a: int(a, 16))


def test_a_refusing_check_gives_no_signature() -> None:
    att = honest()[0].attestation

    def refuse(_: object) -> None:
        raise AttestationRefused("disputed")

    assert PanelWithFaults(KEYS, refuse, DOMAIN).collect(att) == []
