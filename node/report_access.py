"""Credit reports only after a recorded query: check the `report.query` transaction a report read names.

Every credit-report query must be recorded on chain with the querier, time and
purpose. So a client first submits a `report.query` transaction (the contract
checks the subject's consent and counts the subject's own free reports), waits
for it to commit, and then reads
`GET /v1/subjects/{subject_id}/report?purpose=...&query_tx=<tx_id>` with a
signed read request. `check_recorded_query` accepts the read only when that
transaction:

- is committed with a receipt that is ok (`query_not_recorded` otherwise);
- is a `report.query` sent by the reader's own key, or by another client key
  of the reader's member, for this subject and this purpose (`query_mismatch`);
- was committed at most `max_age_ms` of chain time ago (`query_too_old`).

NOTE: one recorded query allows any number of reads by the same reader until it
is too old, because the chain records the query and not each read.
"""

from __future__ import annotations

import re
from typing import Any

from node.api_errors import ApiError
from node.chain import Chain
from node.privacy.read_auth import Reader

QUERY_TX_TYPE = "report.query"
DEFAULT_PURPOSE = "credit_query"
QUERY_REJECTED_STATUS = 403

_TX_ID = re.compile(r"[0-9a-f]{64}")

# code -> (English, Chinese)
MESSAGES: dict[str, tuple[str, str]] = {
    "query_not_recorded": (
        "No committed report.query transaction backs this report read: submit report.query, wait until it commits with ok, "
        "and pass its tx_id as the query_tx parameter.",
        "此次报告查询没有已上链的 report.query 交易：请先提交 report.query，等待其成功上链，再以 query_tx 参数传入其 tx_id。",
    ),
    "query_mismatch": (
        "The report.query transaction named by query_tx does not match this read: it must be sent by the reader "
        "for the same subject and purpose.",
        "query_tx 所指的 report.query 交易与此次读取不符：须由读取方本人发送，且主体和目的相同。",
    ),
    "query_too_old": (
        "The report.query transaction named by query_tx is too old: submit a new report.query.",
        "query_tx 所指的 report.query 交易已过期：请提交新的 report.query。",
    ),
}


def query_error(code: str, **details: Any) -> ApiError:
    english, chinese = MESSAGES[code]
    return ApiError(code, details, status=QUERY_REJECTED_STATUS, localize=lambda language: english if language == "en" else chinese)


def check_recorded_query(
    chain: Chain,
    reader: Reader,
    subject_id: str,
    purpose: str,
    query_tx_id: str | None,
    now_ms: int,
    max_age_ms: int,
    pending: bool = False,
) -> dict[str, Any]:
    """Check the recorded query behind a report read and return where it is recorded. Raises ApiError.

    `pending` tells whether the node's mempool still contains `query_tx_id`. It
    only changes the reason given in the `query_not_recorded` details.
    """
    if query_tx_id is None:
        raise query_error("query_not_recorded", reason="the query_tx parameter is missing")
    if not _TX_ID.fullmatch(query_tx_id):
        raise query_error("query_not_recorded", query_tx=query_tx_id, reason="query_tx must be a tx_id of 64 lowercase hex characters")
    location = chain.get_tx(query_tx_id)
    if location is None:
        reason = "the transaction is still pending" if pending else "no committed transaction has this id"
        raise query_error("query_not_recorded", query_tx=query_tx_id, reason=reason)
    if not location.receipt.get("ok"):
        raise query_error("query_not_recorded", query_tx=query_tx_id, reason="the transaction was rejected", error_code=location.receipt.get("error_code"))

    body = chain.get_block_txs(location.height)[location.index]["body"]
    _check_match(chain, reader, subject_id, purpose, query_tx_id, body)

    header = chain.get_header(location.height)
    assert header is not None, "a committed transaction's block has a header"
    age_ms = now_ms - header.timestamp_ms
    if age_ms > max_age_ms:
        raise query_error("query_too_old", query_tx=query_tx_id, recorded_at_ms=header.timestamp_ms, age_ms=age_ms, max_age_ms=max_age_ms)
    payload = body["payload"]
    # `paid` marks a subject's own report beyond the free ones, which the contract let through only as paid.
    return {"query_tx": query_tx_id, "query_id": payload["query_id"], "paid": payload.get("paid", False), "height": location.height, "recorded_at_ms": header.timestamp_ms}


def _check_match(chain: Chain, reader: Reader, subject_id: str, purpose: str, query_tx_id: str, body: dict[str, Any]) -> None:
    if body["type"] != QUERY_TX_TYPE:
        raise query_error("query_mismatch", query_tx=query_tx_id, field="type", expected=QUERY_TX_TYPE, actual=body["type"])
    if not _sent_by_reader(chain, reader, body["sender"]):
        raise query_error("query_mismatch", query_tx=query_tx_id, field="sender", reason="the transaction was sent by another key than the reader's")
    payload = body["payload"]
    if payload.get("subject_id") != subject_id:
        raise query_error("query_mismatch", query_tx=query_tx_id, field="subject_id", expected=subject_id, actual=payload.get("subject_id"))
    recorded_purpose = payload.get("purpose", DEFAULT_PURPOSE)
    if recorded_purpose != purpose:
        raise query_error("query_mismatch", query_tx=query_tx_id, field="purpose", expected=purpose, actual=recorded_purpose)


def _sent_by_reader(chain: Chain, reader: Reader, sender: str) -> bool:
    """Check that the reader's own key sent the query, or, for a member, one of its other client keys."""
    if sender == reader.public_key:
        return True
    if reader.member_id is None:
        return False
    owner = chain.state().get(f"member_key/{sender}")
    return isinstance(owner, dict) and owner.get("kind") == "client" and owner.get("member_id") == reader.member_id
