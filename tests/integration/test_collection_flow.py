"""A loan's collection on four real node processes with an accelerated clock.

The loan goes overdue, and its case opens by itself in the first block of the
day its DPD reaches the mandate's start_dpd. The collector's non-compliant
contacts are rejected on chain, the debtor's dispute pauses collection, and the
repayment closes the case. All four nodes end with the same head and state root.
Every step is checked through the HTTP API.

Blocks are made only for pending transactions, so the test commits unrelated
heartbeat transactions at chosen chain times (see flow_helpers). Every contact
time `at` is chosen at or before the time of a block already committed and
less than a day before it, as the contract requires.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from node.client import XinlianClient
from node.keys import generate_key
from node.localnet import parse_start_date
from tests.integration.cluster import random_hex, wait_converged, wait_started
from tests.integration.flow_helpers import (
    MS_PER_DAY,
    AcceleratedCluster,
    EventStream,
    heartbeat_at,
    local_date,
    local_minute,
    local_ms,
)

pytestmark = pytest.mark.integration

# 4 chain hours per real second, so a chain day lasts 6 real seconds. Each contact
# then has about 23 chain hours (almost 6 real seconds) to commit.
SPEED = 4 * 3_600
START_DATE = "2024-03-04"
BANK = "bank-1"
COLLECTOR = "collector-3"
REGULATOR = "regulator-4"
LOAN_ID = "loan-flow-1"
MANDATE_ID = "mandate-flow-1"
DISPUTE_ID = "dispute-flow-1"
PRINCIPAL_FEN = 500_000
INTEREST_FEN = 2_500
START_DPD = 1
COMMISSION_RATE_BP = 1_500
NUMBER_HASH = "ab" * 32


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[AcceleratedCluster]:
    network = AcceleratedCluster(tmp_path / "net", speed=SPEED, start_ms=parse_start_date(START_DATE))
    try:
        yield network
    finally:
        await network.close()


def assert_ok(record: dict[str, Any]) -> None:
    assert record["status"] == "committed", record
    assert record["receipt"]["ok"], record["receipt"]


def assert_rejected(record: dict[str, Any], code: str, rule: str) -> None:
    receipt = record["receipt"]
    assert record["status"] == "committed", record
    assert receipt["ok"] is False, receipt
    assert receipt["error_code"] == code, receipt
    assert receipt["error_details"]["rule"] == rule, receipt


async def contact(
    cluster: AcceleratedCluster, collector: XinlianClient, case_id: str, contact_id: str, at_ms: int, channel: str, outcome: str
) -> dict[str, Any]:
    """Record a contact with the debtor, and check that its block came at or after `at` and less than a day later."""
    payload: dict[str, Any] = {
        "case_id": case_id,
        "contact_id": contact_id,
        "at": at_ms,
        "channel": channel,
        "target": "debtor",
        "collectors": ["agent-7"],
        "outcome": outcome,
    }
    if channel == "voice":
        payload["number_hash"] = NUMBER_HASH
    record = await collector.submit_and_wait("case.contact", payload)
    block_time_ms = (await cluster.block_header(COLLECTOR, record["height"]))["timestamp"]
    # Outside this window the contract rejects the contact as invalid_date, whatever else is wrong with it.
    assert at_ms <= block_time_ms < at_ms + MS_PER_DAY, (contact_id, at_ms, block_time_ms)
    return record


async def case_history(cluster: AcceleratedCluster, member_id: str, case_id: str) -> list[dict[str, Any]]:
    """Read the case's recorded actions from state, in order, until the first missing sequence number."""
    actions = []
    for seq in range(1, 100):
        status, body = await cluster.get_json(member_id, f"/v1/state/case_action/{case_id}/{seq:06d}")
        if status == 404:
            break
        assert status == 200, body
        actions.append(body["value"])
    return actions


async def test_overdue_loan_collection_flow(cluster: AcceleratedCluster) -> None:
    cluster.start_all()
    await wait_started(cluster, cluster.members)
    offset = cluster.utc_offset_minutes
    subject_key = generate_key()
    subject_id = random_hex()

    async with (
        cluster.client(BANK, BANK) as bank,
        cluster.client(COLLECTOR, COLLECTOR) as collector,
        cluster.client_for_key(subject_key.seed, REGULATOR) as debtor,
    ):
        # 1. The bank registers the subject (with its own key), the loan, the mandate and an evaluation.
        # The loan's dates follow the first block's date, so a slow start cannot put them in the past.
        registered = await bank.submit_and_wait(
            "subject.register", {"subject_id": subject_id, "commitment": random_hex(), "subject_key": subject_key.public_key}
        )
        assert_ok(registered)
        today = local_date((await cluster.block_header(BANK, registered["height"]))["timestamp"], offset)
        due_date = today + datetime.timedelta(days=1)
        open_date = due_date + datetime.timedelta(days=START_DPD)
        year_later = (today + datetime.timedelta(days=365)).isoformat()

        consent = await debtor.submit_and_wait(
            "consent.grant",
            {"consent_id": "consent-flow-1", "subject_id": subject_id, "grantee": BANK, "purpose": "data_sharing", "expires_on": year_later},
        )
        loan_payload = {
            "loan_id": LOAN_ID,
            "subject_id": subject_id,
            "principal": PRINCIPAL_FEN,
            "currency": "CNY",
            "annual_rate_bp": 600,
            "start_date": today.isoformat(),
            "schedule": [{"number": 1, "due_date": due_date.isoformat(), "principal": PRINCIPAL_FEN, "interest": INTEREST_FEN}],
        }
        loan_registered = await bank.submit_and_wait("loan.register", loan_payload)
        mandate = await bank.submit_and_wait(
            "mandate.grant",
            {
                "mandate_id": MANDATE_ID,
                "agencies": [COLLECTOR],
                "start_dpd": START_DPD,
                "valid_from": today.isoformat(),
                "valid_until": year_later,
                "commission_rate_bp": COMMISSION_RATE_BP,
            },
        )
        evaluation = await bank.submit_and_wait(
            "mandate.evaluate", {"mandate_id": MANDATE_ID, "agency": COLLECTOR, "evaluated_on": today.isoformat(), "rating": 4}
        )
        for record in (consent, loan_registered, mandate, evaluation):
            assert_ok(record)

        loan = await cluster.read_object(COLLECTOR, f"/v1/loans/{LOAN_ID}")
        assert loan["status"] == "open"
        assert loan["creditor"] == BANK
        assert loan["subject_id"] == subject_id
        assert [item["due_date"] for item in loan["instalments"]] == [due_date.isoformat()]
        assert loan["case_id"] is None
        mandate_record = await cluster.read_object(COLLECTOR, f"/v1/mandates/{MANDATE_ID}")
        assert mandate_record["status"] == "active"
        assert mandate_record["agencies"] == [COLLECTOR]
        assert mandate_record["start_dpd"] == START_DPD
        assert [item["agency"] for item in mandate_record["evaluations"]] == [COLLECTOR]

        # 2. The due date passes. On the due date itself DPD is 0, so a block on that day opens nothing.
        # No transaction is needed on open_date: the primary proposes an empty block after local
        # midnight, and the case must open in the first block of that date.
        async with EventStream(cluster.api_url(COLLECTOR), ["case.opened"], member=COLLECTOR) as opened_events:
            on_due_date = await heartbeat_at(cluster, local_ms(due_date, 12, 0, offset))
            assert local_date(on_due_date["block_time_ms"], offset) == due_date
            loan = await cluster.read_object(BANK, f"/v1/loans/{LOAN_ID}")
            assert loan["case_id"] is None
            assert loan["overdue_since"] is None

            opened = await opened_events.next_matching(lambda event: event["data"]["loan_id"] == LOAN_ID, timeout_s=20)

        case_id = opened["data"]["case_id"]
        assert opened["height"] > on_due_date["height"]
        assert opened["tx_id"] is None  # the time step raised it, not a transaction
        assert opened["data"]["agency"] == COLLECTOR
        assert opened["data"]["dpd"] == START_DPD
        assert sorted(opened["members"]) == sorted([BANK, COLLECTOR])
        opening_block = await cluster.block_header(BANK, opened["height"])
        previous_block = await cluster.block_header(BANK, opened["height"] - 1)
        assert local_date(opening_block["timestamp"], offset) == open_date
        assert local_date(previous_block["timestamp"], offset) == due_date

        case = await cluster.read_object(COLLECTOR, f"/v1/cases/{case_id}")
        assert case["status"] == "open"
        assert case["stage"] == "outsourced"
        assert case["agency"] == COLLECTOR
        assert case["accepted"] is False
        assert case["loan_id"] == LOAN_ID
        assert case["mandate_id"] == MANDATE_ID
        assert case["opened_on"] == open_date.isoformat()
        loan = await cluster.read_object(BANK, f"/v1/loans/{LOAN_ID}")
        assert loan["case_id"] == case_id
        assert loan["overdue_since"] == due_date.isoformat()

        # 3. The collector accepts the case. Voice calls at 10:00, 10:05 and 10:10 are accepted, and
        # the 4th effective call of the day, at 10:15, is rejected. Later a contact at 22:30 is
        # rejected for the hour. Each batch of contacts first waits for a block past its latest `at`.
        accepted = await collector.submit_and_wait("case.accept", {"case_id": case_id})
        assert_ok(accepted)

        morning = await heartbeat_at(cluster, local_ms(open_date, 10, 20, offset))
        assert local_date(morning["block_time_ms"], offset) == open_date
        calls = []
        for number in range(4):
            at_ms = local_ms(open_date, 10, 5 * number, offset)
            calls.append(await contact(cluster, collector, case_id, f"call-{number + 1}", at_ms, "voice", "reached"))
        for record in calls[:3]:
            assert_ok(record)
        assert_rejected(calls[3], "voice_limit", "C4")
        assert calls[3]["receipt"]["error_details"]["count"] == 3
        assert calls[3]["receipt"]["error_details"]["maximum"] == 3

        evening = await heartbeat_at(cluster, local_ms(open_date, 22, 40, offset))
        assert local_date(evening["block_time_ms"], offset) == open_date
        late_ms = local_ms(open_date, 22, 30, offset)
        late = await contact(cluster, collector, case_id, "sms-late", late_ms, "sms", "delivered")
        assert_rejected(late, "contact_hours", "C3")
        assert late["receipt"]["error_details"]["local_minute"] == local_minute(late_ms, offset) == 22 * 60 + 30

        # 4. The debtor disputes the loan with its own key, and collection pauses until the bank resolves it.
        disputed = await debtor.submit_and_wait(
            "dispute.open", {"dispute_id": DISPUTE_ID, "loan_id": LOAN_ID, "reason": "amount_wrong", "written": False}
        )
        assert_ok(disputed)
        dispute = await cluster.read_object(COLLECTOR, f"/v1/disputes/{DISPUTE_ID}")
        assert dispute["status"] == "open"
        assert dispute["opened_by"] == "subject"
        assert dispute["subject_id"] == subject_id

        paused = await contact(cluster, collector, case_id, "sms-paused", local_ms(open_date, 21, 0, offset), "sms", "delivered")
        assert_rejected(paused, "dispute_open", "C13")

        resolved = await bank.submit_and_wait("dispute.resolve", {"dispute_id": DISPUTE_ID, "resolution": "confirmed"})
        assert_ok(resolved)
        dispute = await cluster.read_object(COLLECTOR, f"/v1/disputes/{DISPUTE_ID}")
        assert dispute["status"] == "resolved"
        assert dispute["resolution"] == "confirmed"
        assert dispute["resolved_by"] == BANK
        # The same kind of contact, at a valid hour, is accepted again once the dispute is resolved.
        resumed = await contact(cluster, collector, case_id, "sms-resumed", local_ms(open_date, 21, 5, offset), "sms", "delivered")
        assert_ok(resumed)

        # 5. The bank records a repayment of everything due, linked to the case, and the case closes as repaid.
        loan = await cluster.read_object(BANK, f"/v1/loans/{LOAN_ID}")
        due_fen = sum(
            item[part] - item[f"paid_{part}"] for item in loan["instalments"] for part in ("principal", "interest", "costs")
        )
        assert due_fen == PRINCIPAL_FEN + INTEREST_FEN
        paid_on = local_date((await cluster.block_header(BANK, resumed["height"]))["timestamp"], offset)
        repaid = await bank.submit_and_wait(
            "repayment.record",
            {"loan_id": LOAN_ID, "payment_id": "payment-flow-1", "amount": due_fen, "paid_on": paid_on.isoformat(), "case_id": case_id},
        )
        assert_ok(repaid)
        repaid_on = local_date((await cluster.block_header(BANK, repaid["height"]))["timestamp"], offset)

    case = await cluster.read_object(REGULATOR, f"/v1/cases/{case_id}")
    assert case["status"] == "closed"
    assert case["outcome"] == "repaid"
    assert case["recovered"] == due_fen
    assert case["closed_on"] == repaid_on.isoformat()
    loan = await cluster.read_object(REGULATOR, f"/v1/loans/{LOAN_ID}")
    assert loan["status"] == "repaid"
    assert loan["case_id"] is None
    # The peak DPD is the DPD on the repayment's block date, which may already be the day after open_date.
    assert loan["max_dpd"] == (repaid_on - due_date).days
    commission = (await cluster.read_object(REGULATOR, f"/v1/state/commission/{COLLECTOR}/{MANDATE_ID}"))["value"]
    assert commission["recovered"] == due_fen
    assert commission["commission"] == (2 * due_fen * COMMISSION_RATE_BP + 10_000) // 20_000  # recovered x rate / 10000, half-up

    history = await case_history(cluster, REGULATOR, case_id)
    assert case["history"] == history
    assert [action["type"] for action in history[:3]] == ["opened", "stage", "accepted"]
    assert [action["contact_id"] for action in history if action["type"] == "contact"] == ["call-1", "call-2", "call-3", "sms-resumed"]
    assert [action["type"] for action in history[-2:]] == ["recovery_confirmed", "closed"]

    # 6. Every node reaches the repayment's height with the same block hash and state root.
    statuses = await wait_converged(cluster, cluster.members, repaid["height"], timeout_s=20)
    assert len({(status["height"], status["block_hash"], status["state_root"]) for status in statuses.values()}) == 1
    cases = {member_id: await cluster.read_object(member_id, f"/v1/cases/{case_id}") for member_id in cluster.members}
    for member_id, copy in cases.items():
        assert copy == case, member_id
