"""The HTTP API against a real ledger backend: every endpoint, over a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import inspect
import json

import aiohttp
import pytest

from node.merkle import MerkleProof, verify_proof
from node.tx import compute_tx_id, sign_transaction
from tests.api.ledger import (
    BANK_SEED,
    REGULATOR_SEED,
    ApiNode,
    make_subject_id,
    sign_envelope,
)


async def _get(node: ApiNode, path: str, language: str = "en") -> tuple[int, dict]:
    async with node.session.get(node.url(path), headers={"Accept-Language": language}) as response:
        return response.status, await response.json()


async def _post_json(node: ApiNode, body: object, language: str = "en") -> tuple[int, dict]:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept-Language": language}
    async with node.session.post(node.url("/v1/transactions"), data=data, headers=headers) as response:
        return response.status, await response.json()


async def test_status_members_params(api_node: ApiNode) -> None:
    status, body = await _get(api_node, "/v1/status")
    assert status == 200
    assert body["chain_id"] == api_node.backend.chain_id
    assert body["height"] == 0

    status, body = await _get(api_node, "/v1/members")
    assert status == 200
    member_ids = [member["member_id"] for member in body["members"]]
    assert member_ids == sorted(member_ids)
    assert "bank-a" in member_ids

    status, body = await _get(api_node, "/v1/members/bank-a")
    assert status == 200
    assert body["role"] == "bank"

    status, body = await _get(api_node, "/v1/members/nobody")
    assert status == 404
    assert body["error"]["code"] == "object_not_found"

    status, body = await _get(api_node, "/v1/params")
    assert status == 200
    assert body["params"]["voice_per_debtor_per_day_max"] == 3


async def test_submit_commit_and_read(api_node: ApiNode) -> None:
    subject_id = make_subject_id("subject-1")
    envelope = sign_envelope(api_node.backend, BANK_SEED, "subject.register", {"subject_id": subject_id, "commitment": "c" * 64})
    status, body = await _post_json(api_node, envelope)
    assert status == 202, body
    assert body["status"] == "pending"
    tx_id = body["tx_id"]

    status, record = await _get(api_node, f"/v1/transactions/{tx_id}")
    assert status == 200
    assert record["status"] == "pending"

    height = await api_node.backend.commit_block()
    assert height == 1

    status, record = await _get(api_node, f"/v1/transactions/{tx_id}")
    assert status == 200
    assert record["status"] == "committed"
    assert record["height"] == 1
    assert record["index"] == 0
    assert record["receipt"]["ok"] is True
    assert record["receipt"]["events"][0]["type"] == "subject.registered"

    status, latest = await _get(api_node, "/v1/blocks/latest")
    assert status == 200
    assert latest["header"]["height"] == 1
    assert latest["tx_ids"] == [tx_id]
    assert latest["certificate"] is not None
    status, by_height = await _get(api_node, "/v1/blocks/1")
    assert status == 200
    assert by_height == latest
    status, body = await _get(api_node, "/v1/blocks/99")
    assert status == 404
    assert body["error"]["code"] == "block_not_found"

    key = f"subject/{subject_id}"
    status, body = await _get(api_node, f"/v1/state/{key}?proof=1")
    assert status == 200
    assert body["value"]["subject_id"] == subject_id
    proof = MerkleProof.from_dict(body["proof"])
    assert body["state_root"] == latest["header"]["state_root"]
    assert verify_proof(latest["header"]["state_root"], key, body["value"], proof)
    assert not verify_proof(latest["header"]["state_root"], key, {"forged": True}, proof)

    status, body = await _get(api_node, f"/v1/state/{key}")
    assert status == 200
    assert "proof" not in body
    status, body = await _get(api_node, "/v1/state/subject/none?proof=1")
    assert status == 404
    assert body["error"]["code"] == "state_key_not_found"
    assert "proof" in body["error"]["details"]


async def test_rejected_single_envelope(api_node: ApiNode) -> None:
    envelope = sign_envelope(api_node.backend, BANK_SEED, "subject.register", {"subject_id": "a" * 64, "commitment": "c" * 64})
    envelope["signature"] = "0" * 128
    status, body = await _post_json(api_node, envelope)
    assert status == 400
    assert body["error"]["code"] == "invalid_signature"
    assert body["error"]["message"].startswith("The transaction signature")

    wrong_chain = sign_envelope(api_node.backend, BANK_SEED, "subject.register", {"subject_id": "a" * 64, "commitment": "c" * 64}, chain_id="other")
    status, body = await _post_json(api_node, wrong_chain, language="zh-CN")
    assert status == 400
    assert body["error"]["code"] == "wrong_chain"
    assert "链" in body["error"]["message"]

    regulator_tx = sign_envelope(api_node.backend, REGULATOR_SEED, "subject.register", {"subject_id": "a" * 64})
    status, body = await _post_json(api_node, regulator_tx)
    assert status == 422
    assert body["error"]["code"] == "invalid_payload"

    first = sign_envelope(api_node.backend, BANK_SEED, "subject.register", {"subject_id": "b" * 64, "commitment": "c" * 64}, nonce="n-1")
    status, _ = await _post_json(api_node, first)
    assert status == 202
    status, again = await _post_json(api_node, first)
    assert status == 202
    assert again["tx_id"] == compute_tx_id(first)

    reused_nonce = sign_envelope(api_node.backend, BANK_SEED, "subject.register", {"subject_id": "9" * 64, "commitment": "c" * 64}, nonce="n-1")
    status, body = await _post_json(api_node, reused_nonce)
    assert status == 409
    assert body["error"]["code"] == "duplicate_nonce"


async def test_expiry_too_far_names_window(api_node: ApiNode) -> None:
    backend = api_node.backend
    window_ms = backend.genesis.limits.tx_expiry_window_ms
    body = {
        "chain_id": backend.chain_id,
        "type": "subject.register",
        "nonce": "far-future",
        "expires_at": backend.now_ms + window_ms + 60_000,
        "payload": {"subject_id": "e" * 64, "commitment": "c" * 64},
    }
    envelope = sign_transaction(BANK_SEED, body)

    status, english = await _post_json(api_node, envelope)
    assert status == 400
    assert english["error"]["code"] == "expiry_too_far"
    assert english["error"]["details"]["window_ms"] == window_ms
    assert "more than 1 hour ahead" in english["error"]["message"]
    status, chinese = await _post_json(api_node, envelope, language="zh-CN")
    assert status == 400
    assert "1 小时" in chinese["error"]["message"]


async def test_batch_per_item_results(api_node: ApiNode) -> None:
    good = sign_envelope(api_node.backend, BANK_SEED, "subject.register", {"subject_id": "d" * 64, "commitment": "c" * 64})
    bad = dict(good, signature="1" * 128)
    status, body = await _post_json(api_node, {"transactions": [good, bad, "not an envelope"]}, language="zh-CN")
    assert status == 202
    assert body["admitted"] == 1
    assert body["rejected"] == 2
    results = body["results"]
    assert [item["index"] for item in results] == [0, 1, 2]
    assert results[0]["status"] == "pending"
    assert results[1]["status"] == "rejected"
    assert results[1]["error"]["code"] == "invalid_signature"
    assert "签名" in results[1]["error"]["message"]
    assert results[2]["error"]["code"] == "invalid_field"
    assert results[2]["tx_id"] is None


async def test_batch_limits(api_node: ApiNode) -> None:
    status, body = await _post_json(api_node, {"transactions": []})
    assert status == 400
    assert body["error"]["code"] == "batch_empty"
    status, body = await _post_json(api_node, {"transactions": [{}] * 1001})
    assert status == 400
    assert body["error"]["code"] == "batch_too_large"
    assert body["error"]["details"]["count_max"] == 1000


async def test_object_endpoints(api_node: ApiNode) -> None:
    backend = api_node.backend
    subject_id = make_subject_id("subject-loan")
    await backend.submit_and_commit(BANK_SEED, "subject.register", {"subject_id": subject_id, "commitment": "c" * 64})
    loan = {
        "loan_id": "L-1",
        "subject_id": subject_id,
        "principal": 120_000,
        "currency": "CNY",
        "annual_rate_bp": 1200,
        "start_date": "2026-01-01",
        "schedule": [
            {"number": 1, "due_date": "2026-02-01", "principal": 60_000, "interest": 1_200},
            {"number": 2, "due_date": "2026-03-01", "principal": 60_000, "interest": 600},
        ],
    }
    await backend.grant_consent(subject_id, "bank-a", "data_sharing")
    receipt = await backend.submit_and_commit(BANK_SEED, "loan.register", loan)
    assert receipt["ok"], receipt

    status, body = await _get(api_node, "/v1/loans/L-1")
    assert status == 200
    assert body["loan_id"] == "L-1"
    status, body = await _get(api_node, "/v1/loans/L-1/schedule")
    assert status == 200
    assert [item["number"] for item in body["schedule"]] == [1, 2]

    for path in ("/v1/loans/none", "/v1/cases/none", "/v1/mandates/none", "/v1/disputes/none", "/v1/complaints/none"):
        status, body = await _get(api_node, path)
        assert status == 404, path
        assert body["error"]["code"] == "object_not_found", path


async def test_subject_report_requires_signature(api_node: ApiNode) -> None:
    subject_id = make_subject_id("subject-report")
    await api_node.backend.submit_and_commit(BANK_SEED, "subject.register", {"subject_id": subject_id, "commitment": "c" * 64})
    query_tx = await api_node.backend.record_report_query(REGULATOR_SEED, subject_id)
    path = f"/v1/subjects/{subject_id}/report?purpose=credit_query&query_tx={query_tx}"

    status, body = await _get(api_node, path)
    assert status == 401
    assert body["error"]["code"] == "missing_signature"
    status, body = await _get(api_node, path, language="zh-CN")
    assert status == 401
    assert "签名" in body["error"]["message"]

    headers = api_node.backend.read_headers(REGULATOR_SEED, "GET", path)
    async with api_node.session.get(api_node.url(path), headers=headers) as response:
        assert response.status == 200, await response.text()
        report = await response.json()
    assert report["subject_id"] == subject_id
    assert report["query"]["query_tx"] == query_tx

    async with api_node.session.get(api_node.url(path), headers=headers) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "replayed_request"

    tampered = dict(api_node.backend.read_headers(REGULATOR_SEED, "GET", path))
    tampered["X-Xinlian-Signature"] = "0" * 128
    async with api_node.session.get(api_node.url(path), headers=tampered) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "invalid_read_signature"

    bank_headers = api_node.backend.read_headers(BANK_SEED, "GET", path)
    async with api_node.session.get(api_node.url(path), headers=bank_headers) as response:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "no_consent"

    status, body = await _get(api_node, f"/v1/subjects/{subject_id}/report?purpose=gossip")
    assert status == 400
    assert body["error"]["details"]["parameter"] == "purpose"


async def test_events_websocket_receives_commit(api_node: ApiNode) -> None:
    url = api_node.url("/v1/events?types=tx.committed,subject.registered&member=bank-a")
    async with api_node.session.ws_connect(url) as websocket:
        await api_node.backend.wait_for_subscribers(1)
        subject_id = make_subject_id("subject-events")
        envelope = sign_envelope(api_node.backend, BANK_SEED, "subject.register", {"subject_id": subject_id, "commitment": "c" * 64})
        status, body = await _post_json(api_node, envelope)
        assert status == 202
        await api_node.backend.commit_block()
        first = await asyncio.wait_for(websocket.receive_json(), 5)
        second = await asyncio.wait_for(websocket.receive_json(), 5)
    assert first["type"] == "tx.committed"
    assert first["tx_id"] == body["tx_id"]
    assert first["data"]["ok"] is True
    assert first["height"] == 1
    assert second["type"] == "subject.registered"
    assert second["data"]["subject_id"] == subject_id


async def test_events_filter_excludes_other_types(api_node: ApiNode) -> None:
    url = api_node.url("/v1/events?types=loan.overdue")
    async with api_node.session.ws_connect(url) as websocket:
        await api_node.backend.wait_for_subscribers(1)
        await api_node.backend.submit_and_commit(BANK_SEED, "subject.register", {"subject_id": "e" * 64, "commitment": "c" * 64})
        await api_node.backend.publish_marker("loan.overdue")
        event = await asyncio.wait_for(websocket.receive_json(), 5)
    assert event["type"] == "loan.overdue"


async def test_slow_event_subscriber_closed(slow_api_node: ApiNode) -> None:
    async with slow_api_node.session.ws_connect(slow_api_node.url("/v1/events")) as websocket:
        await slow_api_node.backend.wait_for_subscribers(1)
        # Publishing more events than the queue holds, in one synchronous call, overflows it.
        await slow_api_node.backend.publish_marker("test.flood", count=slow_api_node.backend.bus.queue_size_max + 1)
        message = await asyncio.wait_for(websocket.receive(), 5)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert websocket.close_code == 4008
    assert slow_api_node.backend.bus.dropped_total == 1


async def test_events_requires_websocket(api_node: ApiNode) -> None:
    status, body = await _get(api_node, "/v1/events")
    assert status == 426
    assert body["error"]["code"] == "websocket_required"
    status, body = await _get(api_node, "/v1/events?types=Bad-Type")
    assert status == 400
    assert body["error"]["details"]["parameter"] == "types"


async def test_metrics_prometheus_text(api_node: ApiNode) -> None:
    from tests.api.test_metrics_text import parse_prometheus

    await _get(api_node, "/v1/status")
    await _get(api_node, "/v1/nowhere")
    envelope = sign_envelope(api_node.backend, BANK_SEED, "subject.register", {"subject_id": "f" * 64, "commitment": "c" * 64})
    await _post_json(api_node, dict(envelope, signature="2" * 128))
    await _post_json(api_node, envelope)
    await api_node.backend.commit_block()

    async with api_node.session.get(api_node.url("/metrics")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        samples = parse_prometheus(await response.text())
    assert samples["xinlian_block_height"] == {"": 1}
    assert samples["xinlian_mempool_size"] == {"": 0}
    assert samples["xinlian_tx_admitted_total"] == {"": 1}
    assert samples["xinlian_tx_rejected_total"] == {'{code="invalid_signature"}': 1}
    requests = samples["xinlian_http_requests_total"]
    assert requests['{method="GET",status="200"}'] >= 1
    assert requests['{method="GET",status="404"}'] == 1
    assert requests['{method="POST",status="202"}'] == 1
    assert requests['{method="POST",status="400"}'] == 1


async def test_unexpected_error_is_500_without_trace(api_node: ApiNode, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_status() -> dict:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(api_node.backend, "status", broken_status)
    async with api_node.session.get(api_node.url("/v1/status"), headers={"Accept-Language": "en"}) as response:
        text = await response.text()
        assert response.status == 500
    body = json.loads(text)
    assert body["error"]["code"] == "internal_error"
    assert "secret internal detail" not in text
    assert "Traceback" not in text


async def test_failed_receipt_localized(api_node: ApiNode) -> None:
    subject_id = make_subject_id("no-consent")
    await api_node.backend.submit_and_commit(BANK_SEED, "subject.register", {"subject_id": subject_id, "commitment": "c" * 64})
    loan = {
        "loan_id": "L-no-consent",
        "subject_id": subject_id,
        "principal": 1_000,
        "currency": "CNY",
        "annual_rate_bp": 0,
        "start_date": "2026-01-01",
        "schedule": [{"number": 1, "due_date": "2026-02-01", "principal": 1_000, "interest": 0}],
    }
    receipt = await api_node.backend.submit_and_commit(BANK_SEED, "loan.register", loan)
    assert receipt["ok"] is False
    assert receipt["error_code"] == "consent_required"

    envelope = api_node.backend.chain.get_block_txs(api_node.backend.chain.height)[0]
    path = f"/v1/transactions/{compute_tx_id(envelope)}"
    status, english = await _get(api_node, path, language="en")
    assert status == 200
    assert english["receipt"]["error_message"].startswith("No active consent")
    status, chinese = await _get(api_node, path, language="zh-CN")
    assert "授权" in chinese["receipt"]["error_message"]


def test_node_backend_implements_protocol() -> None:
    """The daemon's backend has every method and property of ApiBackend."""
    from node.api import ApiBackend
    from node.backend import NodeBackend

    required = {name for name in dir(ApiBackend) if not name.startswith("_")}
    assert {"submit_transactions", "get_transaction", "subscribe_events", "metrics_snapshot", "default_language"} <= required
    missing = sorted(name for name in required if not hasattr(NodeBackend, name))
    assert missing == []
    expected = list(inspect.signature(ApiBackend.subject_report).parameters)
    assert expected == ["self", "subject_id", "reader", "purpose", "query_tx"]
    assert list(inspect.signature(NodeBackend.subject_report).parameters) == expected
