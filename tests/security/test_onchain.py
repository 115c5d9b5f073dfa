"""The Evidence contract on the in-process chain: k detector keys suspend a meter's owner."""

from __future__ import annotations

import json

import pytest

from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ContractRevert, NotFoundError
from gridledger.ledger import Ledger, Role
from gridledger.ledger.artifacts import Artifact
from gridledger.security.evidence import EVIDENCE_WINDOW_S
from gridledger.security.onchain import EvidenceContract, evidence_artifact
from gridledger.security.quorum import Submission
from gridledger.verifier.panel import DEV_QUORUM, dev_verifier_addresses
from tests.support.services import REPO, in_ci

FORGE_OUT = REPO / "contracts/out/Evidence.sol/Evidence.json"
KEYS = [key_from_seed(f"detector-{i}") for i in range(5)]
METER = address_of(key_from_seed("meter-onchain"))
OWNER = address_of(key_from_seed("owner-onchain"))
WINDOW_S = 19_000 * EVIDENCE_WINDOW_S


def artifact() -> Artifact:
    """The packaged artifact, or forge's build of contracts/src/Evidence.sol until it ships."""
    try:
        return evidence_artifact()
    except NotFoundError:
        if not FORGE_OUT.exists():
            message = "no Evidence artifact: run forge build in contracts/ or compile.js"
            if in_ci():
                pytest.fail(message)
            pytest.skip(message)
    raw = json.loads(FORGE_OUT.read_text())
    return Artifact(
        "Evidence", raw["abi"], raw["bytecode"]["object"], raw["deployedBytecode"]["object"], ""
    )


@pytest.fixture(scope="module")
def deployed() -> tuple[Ledger, EvidenceContract]:
    ledger = Ledger.deploy("memory", verifiers=dev_verifier_addresses(), quorum=DEV_QUORUM)
    ledger.add_participant(OWNER, Role.PROSUMER, 1)
    ledger.register_meter(METER, OWNER)
    detectors = [address_of(k) for k in KEYS]
    return ledger, EvidenceContract.deploy(ledger, 3, detectors, artifact=artifact())


def submission(key: bytes, subject: str, window_start_s: int = WINDOW_S) -> Submission:
    return Submission(address_of(key), subject, window_start_s, b"\x42" * 32)


def test_three_detectors_confirm_and_suspend_the_meter_owner(
    deployed: tuple[Ledger, EvidenceContract],
) -> None:
    ledger, evidence = deployed
    evidence.submit(KEYS[0], submission(KEYS[0], METER))
    evidence.submit(KEYS[1], submission(KEYS[1], METER))
    assert evidence.votes(METER, WINDOW_S) == 2 and ledger.is_active(OWNER)
    evidence.submit(KEYS[2], submission(KEYS[2], METER))
    assert evidence.is_confirmed(METER, WINDOW_S)
    assert not ledger.is_active(OWNER)
    assert evidence.evidence_of(METER, WINDOW_S, address_of(KEYS[0])) == b"\x42" * 32


def test_a_lone_liar_cannot_vote_twice_or_confirm(
    deployed: tuple[Ledger, EvidenceContract],
) -> None:
    ledger, evidence = deployed
    victim = ledger.deployment.grid_operator
    evidence.submit(KEYS[4], submission(KEYS[4], victim, WINDOW_S + EVIDENCE_WINDOW_S))
    with pytest.raises(ContractRevert) as raised:
        evidence.submit(KEYS[4], submission(KEYS[4], victim, WINDOW_S + EVIDENCE_WINDOW_S))
    assert raised.value.error_name == "AlreadySubmitted"
    assert not evidence.is_confirmed(victim, WINDOW_S + EVIDENCE_WINDOW_S)
    assert ledger.is_active(victim)


def test_an_unregistered_key_is_refused(deployed: tuple[Ledger, EvidenceContract]) -> None:
    ledger, evidence = deployed
    stranger = key_from_seed("not-a-detector")
    ledger.fund_eth(address_of(stranger), 10**16)
    with pytest.raises(ContractRevert) as raised:
        evidence.submit(stranger, submission(stranger, METER))
    assert raised.value.error_name == "AccessControlUnauthorizedAccount"
