"""Credit report reads on a running node need a committed report.query by the same reader."""

from __future__ import annotations

import os
from pathlib import Path

import nacl.signing
import pytest

from node.api_errors import ApiError
from node.client import QueryRejected, XinlianApiError, XinlianClient
from node.config import NodeConfig
from node.daemon import Node
from node.keys import load_key_file
from node.privacy.read_auth import Reader
from node.report_access import ServedQueryLog, check_recorded_query
from node.storage import LevelDBStore


def member_client(network: tuple[Path, NodeConfig], node: Node, member_id: str) -> XinlianClient:
    seed = load_key_file(network[0] / "clients" / f"{member_id}.json").seed
    return XinlianClient(f"http://127.0.0.1:{node.config.api_port}", seed, chain_id="xinlian-local", language="en", timeout_seconds=10)


def seed_client(node: Node, seed: bytes) -> XinlianClient:
    return XinlianClient(f"http://127.0.0.1:{node.config.api_port}", seed, chain_id="xinlian-local", language="en", timeout_seconds=10)


async def registered_subject(bank: XinlianClient, subject_seed: bytes, consent: bool) -> str:
    """Register a subject with its own key. With `consent`, the bank also records the subject's consent for credit_query."""
    subject_id = os.urandom(32).hex()
    subject_key = nacl.signing.SigningKey(subject_seed).verify_key.encode().hex()
    record = await bank.submit_and_wait("subject.register", {"subject_id": subject_id, "commitment": os.urandom(32).hex(), "subject_key": subject_key})
    assert record["receipt"]["ok"], record
    if consent:
        grant = {
            "consent_id": f"c-{subject_id[:8]}",
            "subject_id": subject_id,
            "grantee": "bank-1",
            "purpose": "credit_query",
            "expires_on": "2099-12-31",
            "evidence": os.urandom(32).hex(),
        }
        record = await bank.submit_and_wait("consent.grant", grant)
        assert record["receipt"]["ok"], record
    return subject_id


async def test_member_report_after_recorded_query(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with member_client(network, node, "bank-1") as bank:
        subject_id = await registered_subject(bank, os.urandom(32), consent=True)
        with pytest.raises(XinlianApiError) as unrecorded:
            await bank.subject_report(subject_id)
        answer = await bank.query_report(subject_id, query_id="q-bank-1")

    assert unrecorded.value.status == 403
    assert unrecorded.value.code == "query_not_recorded"
    assert answer["basis"] == "consent"
    assert answer["query"]["query_id"] == "q-bank-1"
    assert answer["report"]["subject_id"] == subject_id
    queries = answer["report"]["queries"]
    assert [(entry["query_id"], entry["querier"], entry["purpose"]) for entry in queries] == [("q-bank-1", "bank-1", "credit_query")]


async def test_query_without_consent_rejected(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with member_client(network, node, "bank-1") as bank:
        subject_id = await registered_subject(bank, os.urandom(32), consent=False)
        with pytest.raises(QueryRejected) as rejected:
            await bank.query_report(subject_id)
        with pytest.raises(XinlianApiError) as refused:
            await bank.subject_report(subject_id, query_tx=rejected.value.tx_id)

    assert rejected.value.code == "consent_required"
    # The access policy refuses the read before the query transaction is looked at.
    assert refused.value.code == "no_consent"


async def test_query_of_other_reader_mismatch(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with member_client(network, node, "bank-1") as bank, member_client(network, node, "regulator-2") as regulator:
        subject_id = await registered_subject(bank, os.urandom(32), consent=True)
        bank_query = await bank.submit_and_wait("report.query", {"query_id": "q-bank", "subject_id": subject_id})
        regulator_query = await regulator.submit_and_wait("report.query", {"query_id": "q-reg", "subject_id": subject_id})
        with pytest.raises(XinlianApiError) as other_sender:
            await regulator.subject_report(subject_id, query_tx=bank_query["tx_id"])
        with pytest.raises(XinlianApiError) as other_purpose:
            await regulator.subject_report(subject_id, purpose="assessment", query_tx=regulator_query["tx_id"])
        with pytest.raises(XinlianApiError) as not_a_query:
            register = await bank.submit_and_wait("subject.register", {"subject_id": os.urandom(32).hex(), "commitment": os.urandom(32).hex()})
            await bank.subject_report(subject_id, query_tx=register["tx_id"])
        with pytest.raises(XinlianApiError) as unknown:
            await regulator.subject_report(subject_id, query_tx="ab" * 32)
        regulator_read = await regulator.subject_report(subject_id, query_tx=regulator_query["tx_id"])

    assert other_sender.value.code == "query_mismatch"
    assert other_sender.value.details["field"] == "sender"
    assert other_purpose.value.code == "query_mismatch"
    assert other_purpose.value.details["field"] == "purpose"
    assert not_a_query.value.code == "query_mismatch"
    assert not_a_query.value.details["field"] == "type"
    assert unknown.value.code == "query_not_recorded"
    assert regulator_read["basis"] == "regulator"
    assert [entry["querier"] for entry in regulator_read["report"]["queries"]] == ["bank-1", "regulator-2"]


async def test_subject_own_reports_counted(network: tuple[Path, NodeConfig], node: Node) -> None:
    subject_seed = os.urandom(32)
    async with member_client(network, node, "bank-1") as bank:
        subject_id = await registered_subject(bank, subject_seed, consent=False)
    async with seed_client(node, subject_seed) as subject:
        first = await subject.query_report(subject_id)
        second = await subject.query_report(subject_id)
        with pytest.raises(QueryRejected) as third:
            await subject.query_report(subject_id, query_id="q-third")
        with pytest.raises(XinlianApiError) as read_with_rejected:
            await subject.subject_report(subject_id, query_tx=third.value.tx_id)
        paid = await subject.query_report(subject_id, paid=True)

    assert first["basis"] == "subject_self"
    assert first["query"]["paid"] is False
    assert second["query"]["paid"] is False
    assert third.value.code == "free_reports_used"
    assert read_with_rejected.value.code == "query_not_recorded"
    assert read_with_rejected.value.details["error_code"] == "free_reports_used"
    assert paid["query"]["paid"] is True
    assert len(paid["report"]["queries"]) == 3


async def test_old_query_refused(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with member_client(network, node, "bank-1") as bank:
        subject_id = await registered_subject(bank, os.urandom(32), consent=True)
        record = await bank.submit_and_wait("report.query", {"query_id": "q-old", "subject_id": subject_id})
    assert node.chain is not None
    reader = Reader(public_key=bank.public_key, member_id="bank-1", role="bank")
    committed_ms = node.chain.get_header(record["height"]).timestamp_ms
    window_ms = node.genesis.limits.tx_expiry_window_ms

    fresh = check_recorded_query(node.chain, reader, subject_id, "credit_query", record["tx_id"], committed_ms + window_ms, window_ms)
    with pytest.raises(ApiError) as stale:
        check_recorded_query(node.chain, reader, subject_id, "credit_query", record["tx_id"], committed_ms + window_ms + 1, window_ms)

    assert fresh["query_id"] == "q-old"
    assert stale.value.code == "query_too_old"
    assert stale.value.status == 403
    assert stale.value.body("zh-CN")["error"]["message"] != stale.value.body("en")["error"]["message"]


async def test_one_query_serves_one_read(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with member_client(network, node, "bank-1") as bank:
        subject_id = await registered_subject(bank, os.urandom(32), consent=True)
        answer = await bank.query_report(subject_id, query_id="q-once")
        with pytest.raises(XinlianApiError) as second:
            await bank.subject_report(subject_id, query_tx=answer["query"]["query_tx"])
        again = await bank.query_report(subject_id, query_id="q-twice")

    assert second.value.status == 403
    assert second.value.code == "query_already_served"
    assert second.value.details == {"query_tx": answer["query"]["query_tx"]}
    assert "new report.query" in second.value.message
    assert again["query"]["query_id"] == "q-twice"


async def test_client_binds_reads_to_node(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with member_client(network, node, "bank-1") as bank:
        assert await bank.serving_node_id() == "bank-1"


def test_served_query_log_persists_and_prunes(tmp_path: Path) -> None:
    first_tx, second_tx = "aa" * 32, "bb" * 32
    store = LevelDBStore(tmp_path / "local")
    log = ServedQueryLog(store)
    log.mark_served(first_tx, 1_000)
    log.mark_served(second_tx, 5_000)
    store.close()

    store = LevelDBStore(tmp_path / "local")
    log = ServedQueryLog(store)
    assert log.was_served(first_tx)
    assert log.prune(5_000) == 1
    assert not log.was_served(first_tx)
    assert log.was_served(second_tx)
    assert log.prune(5_000) == 0
    store.close()
