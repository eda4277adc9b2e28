"""The client library against a real API server: submit, wait for the receipt, read, signed read, events."""

from __future__ import annotations

import asyncio

import pytest

from node.client import ReceiptTimeout, SyncXinlianClient, TransactionRejected, XinlianApiError, XinlianClient
from tests.api.ledger import BANK_SEED, CHAIN_ID, REGULATOR_SEED, ApiNode, make_subject_id


def _client(node: ApiNode, seed: bytes, language: str = "en") -> XinlianClient:
    backend = node.backend
    return XinlianClient(
        node.base_url, seed, CHAIN_ID, language=language, timeout_seconds=10, clock_ms=lambda: backend.now_ms, read_clock_ms=lambda: backend.now_ms
    )


async def _commit_when_pending(node: ApiNode, blocks: int) -> None:
    """Commit `blocks` blocks, each as soon as the mempool holds a transaction."""
    backend = node.backend
    for _ in range(blocks):
        await backend.wait_for_pending()
        await backend.commit_block()


async def test_submit_and_wait_round_trip(api_node: ApiNode) -> None:
    subject_id = make_subject_id("client-subject")
    committer = asyncio.create_task(_commit_when_pending(api_node, 1))
    async with _client(api_node, BANK_SEED) as client:
        record = await client.submit_and_wait("subject.register", {"subject_id": subject_id, "commitment": "c" * 64})
        await committer
        assert record["status"] == "committed"
        assert record["receipt"]["ok"] is True
        assert (await client.status())["height"] == 1
        block = await client.block()
        assert block["tx_ids"] == [record["tx_id"]]
        assert (await client.block(1)) == block
        state = await client.state(f"subject/{subject_id}", proof=True)
        assert state["value"]["subject_id"] == subject_id
        assert "proof" in state
        member = await client.get_object("members", "bank-a")
        assert member["role"] == "bank"
        assert [m["member_id"] for m in await client.members()] == ["agency-x", "bank-a", "collector-1", "regulator"]


async def test_client_errors_carry_code(api_node: ApiNode) -> None:
    async with _client(api_node, BANK_SEED, language="zh-CN") as client:
        envelope = client.build_transaction("subject.register", {"subject_id": "a" * 64, "commitment": "c" * 64})
        envelope["signature"] = "0" * 128
        with pytest.raises(XinlianApiError) as raised:
            await client.submit(envelope)
        assert raised.value.status == 400
        assert raised.value.code == "invalid_signature"
        assert "签名" in raised.value.message

        with pytest.raises(XinlianApiError) as raised:
            await client.get_transaction("0" * 64)
        assert raised.value.code == "transaction_not_found"

        with pytest.raises(ValueError):
            client.build_transaction("subject.register", {}, expires_in_ms=2 * 3_600_000)


async def test_wait_for_receipt_deadline(api_node: ApiNode) -> None:
    async with _client(api_node, BANK_SEED) as client:
        tx_id = await client.submit(client.build_transaction("subject.register", {"subject_id": "b" * 64, "commitment": "c" * 64}))
        with pytest.raises(ReceiptTimeout):
            await client.wait_for_receipt(tx_id, timeout_seconds=0.3)


async def test_batch_and_event_stream(api_node: ApiNode) -> None:
    async with _client(api_node, BANK_SEED) as client:
        envelopes = [client.build_transaction("subject.register", {"subject_id": make_subject_id(f"batch-{n}"), "commitment": "c" * 64}) for n in range(3)]
        envelopes.append(dict(envelopes[0], signature="1" * 128))
        results = await client.submit_batch(envelopes)
        assert [item["status"] for item in results] == ["pending", "pending", "pending", "rejected"]

        stream = client.events(types=["tx.committed"], member="bank-a")
        first = asyncio.create_task(stream.__anext__())
        await api_node.backend.wait_for_subscribers(1)
        await api_node.backend.commit_block()
        event = await asyncio.wait_for(first, 5)
        assert event["type"] == "tx.committed"
        assert event["tx_id"] == results[0]["tx_id"]
        await stream.aclose()


async def test_signed_report_read(api_node: ApiNode) -> None:
    subject_id = make_subject_id("client-report")
    await api_node.backend.submit_and_commit(BANK_SEED, "subject.register", {"subject_id": subject_id, "commitment": "c" * 64})
    committer = asyncio.create_task(_commit_when_pending(api_node, 1))
    async with _client(api_node, REGULATOR_SEED) as regulator:
        with pytest.raises(XinlianApiError) as unrecorded:
            await regulator.subject_report(subject_id)
        report = await regulator.query_report(subject_id, timeout_seconds=10)
        await committer
        assert unrecorded.value.code == "query_not_recorded"
        assert report["subject_id"] == subject_id
        assert report["basis"] == "regulator"
        assert report["query"]["height"] == 2
    async with _client(api_node, BANK_SEED) as bank:
        with pytest.raises(XinlianApiError) as raised:
            await bank.subject_report(subject_id, purpose="credit_query")
        assert raised.value.status == 403
        assert raised.value.code == "no_consent"


async def test_sync_client_round_trip(api_node: ApiNode) -> None:
    backend = api_node.backend
    committer = asyncio.create_task(_commit_when_pending(api_node, 1))

    def script() -> dict:
        with SyncXinlianClient(api_node.base_url, BANK_SEED, CHAIN_ID, language="en", clock_ms=lambda: backend.now_ms) as client:
            record = client.submit_and_wait("subject.register", {"subject_id": make_subject_id("sync"), "commitment": "c" * 64}, timeout_seconds=10)
            assert client.status()["height"] == 1
            return record

    record = await asyncio.to_thread(script)
    await committer
    assert record["status"] == "committed"
    assert record["receipt"]["ok"] is True


async def test_wait_reports_dropped_transaction(api_node: ApiNode) -> None:
    backend = api_node.backend
    async with _client(api_node, BANK_SEED) as client:
        envelope = client.build_transaction("subject.register", {"subject_id": "c" * 64, "commitment": "c" * 64}, expires_in_ms=500)
        tx_id = await client.submit(envelope)
        # The next block is one second later, so the transaction expires in the mempool.
        await backend.commit_block()
        with pytest.raises(TransactionRejected) as raised:
            await client.wait_for_receipt(tx_id, timeout_seconds=5)
        assert raised.value.tx_id == tx_id
        assert raised.value.reason.startswith("expired")
