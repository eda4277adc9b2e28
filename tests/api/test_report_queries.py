"""Credit-report reads over HTTP need a committed report.query, named by the signed query_tx parameter."""

from __future__ import annotations

from urllib.parse import quote

from node.i18n import message_for
from tests.api.ledger import AGENCY_SEED, BANK_SEED, REGULATOR_SEED, ApiNode, make_subject_id, sign_envelope

HOUR_MS = 3_600_000


async def _register_subject(node: ApiNode, name: str) -> str:
    subject_id = make_subject_id(name)
    receipt = await node.backend.submit_and_commit(BANK_SEED, "subject.register", {"subject_id": subject_id, "commitment": "c" * 64})
    assert receipt["ok"], receipt
    return subject_id


async def _signed_get(node: ApiNode, seed: bytes, path: str, language: str = "en") -> tuple[int, dict]:
    headers = {**node.backend.read_headers(seed, "GET", path), "Accept-Language": language}
    async with node.session.get(node.url(path), headers=headers) as response:
        return response.status, await response.json()


def _report_path(subject_id: str, purpose: str = "credit_query", query_tx: str | None = None) -> str:
    path = f"/v1/subjects/{subject_id}/report?purpose={purpose}"
    return path if query_tx is None else f"{path}&query_tx={quote(query_tx)}"


async def test_report_without_query_rejected(api_node: ApiNode) -> None:
    subject_id = await _register_subject(api_node, "no-query")

    status, body = await _signed_get(api_node, REGULATOR_SEED, _report_path(subject_id))
    assert status == 403
    assert body["error"]["code"] == "query_not_recorded"
    assert "query_tx" in body["error"]["message"]
    assert body["error"]["details"]["reason"] == "the query_tx parameter is missing"

    status, body = await _signed_get(api_node, REGULATOR_SEED, _report_path(subject_id, query_tx="xyz"), language="zh-CN")
    assert status == 403
    assert body["error"]["code"] == "query_not_recorded"
    assert body["error"]["message"] == message_for("query_not_recorded", "zh-CN")
    assert "report.query" in body["error"]["message"]


async def test_report_with_recorded_query(api_node: ApiNode) -> None:
    subject_id = await _register_subject(api_node, "recorded")
    query_tx = await api_node.backend.record_report_query(REGULATOR_SEED, subject_id)

    status, body = await _signed_get(api_node, REGULATOR_SEED, _report_path(subject_id, query_tx=query_tx))
    assert status == 200, body
    assert body["query"]["query_tx"] == query_tx
    assert body["query"]["height"] == api_node.backend.chain.height
    assert body["basis"] == "regulator"
    assert body["report"]["subject_id"] == subject_id


async def test_pending_query_not_recorded(api_node: ApiNode) -> None:
    backend = api_node.backend
    subject_id = await _register_subject(api_node, "pending")
    envelope = sign_envelope(backend, REGULATOR_SEED, "report.query", {"query_id": "q-pending", "subject_id": subject_id})
    [result] = await backend.submit_transactions([envelope])
    assert result.admitted

    status, body = await _signed_get(api_node, REGULATOR_SEED, _report_path(subject_id, query_tx=str(result.tx_id)))
    assert status == 403
    assert body["error"]["code"] == "query_not_recorded"
    assert body["error"]["details"]["reason"] == "the transaction is still pending"


async def test_query_of_other_reader_mismatch(api_node: ApiNode) -> None:
    backend = api_node.backend
    subject_id = await _register_subject(api_node, "other-reader")
    await backend.grant_consent(subject_id, "agency-x", "credit_query")
    agency_query = await backend.record_report_query(AGENCY_SEED, subject_id)

    status, body = await _signed_get(api_node, REGULATOR_SEED, _report_path(subject_id, query_tx=agency_query))
    assert status == 403
    assert body["error"]["code"] == "query_mismatch"
    assert body["error"]["details"]["field"] == "sender"

    status, body = await _signed_get(api_node, AGENCY_SEED, _report_path(subject_id, query_tx=agency_query))
    assert status == 200, body
    assert body["basis"] == "consent"


async def test_query_of_other_purpose_mismatch(api_node: ApiNode) -> None:
    subject_id = await _register_subject(api_node, "other-purpose")
    query_tx = await api_node.backend.record_report_query(REGULATOR_SEED, subject_id, purpose="assessment")

    status, body = await _signed_get(api_node, REGULATOR_SEED, _report_path(subject_id, query_tx=query_tx), language="zh-CN")
    assert status == 403
    assert body["error"]["code"] == "query_mismatch"
    assert body["error"]["details"]["field"] == "purpose"
    assert body["error"]["message"] == message_for("query_mismatch", "zh-CN")


async def test_old_query_too_old(api_node: ApiNode) -> None:
    backend = api_node.backend
    subject_id = await _register_subject(api_node, "old-query")
    query_tx = await backend.record_report_query(REGULATOR_SEED, subject_id)
    backend.now_ms += backend.genesis.limits.tx_expiry_window_ms + 1

    status, body = await _signed_get(api_node, REGULATOR_SEED, _report_path(subject_id, query_tx=query_tx))
    assert status == 403
    assert body["error"]["code"] == "query_too_old"
    assert body["error"]["details"]["max_age_ms"] == HOUR_MS


async def test_query_tx_covered_by_signature(api_node: ApiNode) -> None:
    backend = api_node.backend
    subject_id = await _register_subject(api_node, "signed-query")
    query_tx = await backend.record_report_query(REGULATOR_SEED, subject_id)
    signed_path = _report_path(subject_id, query_tx="0" * 64)
    headers = backend.read_headers(REGULATOR_SEED, "GET", signed_path)

    async with api_node.session.get(api_node.url(_report_path(subject_id, query_tx=query_tx)), headers=headers) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "invalid_read_signature"


async def test_repeated_query_tx_rejected(api_node: ApiNode) -> None:
    subject_id = await _register_subject(api_node, "repeated")
    query_tx = await api_node.backend.record_report_query(REGULATOR_SEED, subject_id)
    path = _report_path(subject_id, query_tx=query_tx) + f"&query_tx={'0' * 64}"

    status, body = await _signed_get(api_node, REGULATOR_SEED, path)
    assert status == 400
    assert body["error"]["code"] == "invalid_query_parameter"
    assert body["error"]["details"]["parameter"] == "query_tx"


async def test_second_read_of_query_refused(api_node: ApiNode) -> None:
    subject_id = await _register_subject(api_node, "served-once")
    query_tx = await api_node.backend.record_report_query(REGULATOR_SEED, subject_id)
    path = _report_path(subject_id, query_tx=query_tx)

    status, body = await _signed_get(api_node, REGULATOR_SEED, path)
    assert status == 200, body

    api_node.backend.now_ms += 1
    status, body = await _signed_get(api_node, REGULATOR_SEED, path)
    assert status == 403
    assert body["error"]["code"] == "query_already_served"
    assert body["error"]["details"] == {"query_tx": query_tx}
    assert "new report.query" in body["error"]["message"]

    api_node.backend.now_ms += 1
    status, body = await _signed_get(api_node, REGULATOR_SEED, path, language="zh-CN")
    assert status == 403
    assert body["error"]["message"] == message_for("query_already_served", "zh-CN")
