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
- was committed at most `max_age_ms` of chain time ago (`query_too_old`);
- has not served a report on this node before (`query_already_served`).

One recorded query serves one report read. The node keeps the tx ids of the
queries it served in its own local store (`ServedQueryLog`), not on chain, so
each node enforces this for the reads it serves. The signed read names the
serving node (see `node.privacy.read_auth`), so a read cannot be replayed on
another node either.
"""

from __future__ import annotations

import datetime
import logging
import re
import weakref
from typing import Any

from node import i18n
from node.api_errors import ApiError
from node.chain import Chain
from node.contracts.queries import credit_report
from node.privacy.access import check_access
from node.privacy.errors import PrivacyError
from node.privacy.read_auth import Reader
from node.storage import KeyValueStore, MemoryStore

QUERY_TX_TYPE = "report.query"
DEFAULT_PURPOSE = "credit_query"
QUERY_REJECTED_STATUS = 403

_TX_ID = re.compile(r"[0-9a-f]{64}")

_logger = logging.getLogger("xinlian.api.reports")

QUERY_ALREADY_SERVED_MESSAGES = {
    "query_already_served": (
        QUERY_REJECTED_STATUS,
        "The report.query transaction named by query_tx has already served a report on this node: "
        "each recorded query allows one read, so submit a new report.query.",
        "query_tx 所指的 report.query 交易已在本节点用于读取过一次报告：每次上链的查询只允许读取一次，请提交新的 report.query。",
    ),
}
i18n.register_messages(QUERY_ALREADY_SERVED_MESSAGES)

_SERVED_PREFIX = b"l/report_served/"
_SERVED_BY_TIME_PREFIX = b"l/report_served_by_time/"


class ServedQueryLog:
    """The `report.query` tx ids that already served a report on this node, in the node's local store.

    Keys (never part of the chain state or its root):
    `l/report_served/<tx_id>` -> the query's block time in ms, and
    `l/report_served_by_time/<block time, 20 digits>/<tx_id>` for pruning.
    `prune` deletes entries of queries older than the report age limit,
    because such queries are refused as too old anyway.
    """

    def __init__(self, store: KeyValueStore) -> None:
        self._store = store

    def was_served(self, query_tx_id: str) -> bool:
        return self._store.get(_SERVED_PREFIX + query_tx_id.encode("ascii")) is not None

    def mark_served(self, query_tx_id: str, recorded_at_ms: int) -> None:
        tx_key = query_tx_id.encode("ascii")
        time_key = _SERVED_BY_TIME_PREFIX + b"%020d/" % recorded_at_ms + tx_key
        self._store.write([(_SERVED_PREFIX + tx_key, str(recorded_at_ms).encode("ascii")), (time_key, b"1")])

    def prune(self, recorded_before_ms: int) -> int:
        """Delete the entries of queries recorded before `recorded_before_ms`; return how many."""
        stop = _SERVED_BY_TIME_PREFIX + b"%020d/" % max(recorded_before_ms, 0)
        ops = []
        for time_key, _ in self._store.iterate(_SERVED_BY_TIME_PREFIX, stop=stop):
            tx_key = time_key.rsplit(b"/", 1)[1]
            ops += [(time_key, None), (_SERVED_PREFIX + tx_key, None)]
        if ops:
            self._store.write(ops)
        return len(ops) // 2


# One in-memory log per chain for callers that pass none, so a query still serves one read.
# NOTE: such a log forgets what it served when the process restarts; the node should pass a
# ServedQueryLog over its LevelDB store.
_FALLBACK_LOGS: "weakref.WeakKeyDictionary[Chain, ServedQueryLog]" = weakref.WeakKeyDictionary()


def _served_log_for(chain: Chain) -> ServedQueryLog:
    log = _FALLBACK_LOGS.get(chain)
    if log is None:
        log = ServedQueryLog(MemoryStore())
        _FALLBACK_LOGS[chain] = log
    return log


def query_error(code: str, **details: Any) -> ApiError:
    """Build the 403 for a report read without a matching recorded query; its text is in node.api_messages."""
    return ApiError(code, details, status=QUERY_REJECTED_STATUS)


def block_date(chain: Chain, utc_offset_minutes: int) -> str:
    """Return the date (YYYY-MM-DD) of the head block's time in the consortium's fixed UTC offset."""
    offset = datetime.timezone(datetime.timedelta(minutes=utc_offset_minutes))
    return datetime.datetime.fromtimestamp(chain.head().timestamp_ms / 1000, tz=offset).date().isoformat()


def serve_subject_report(
    chain: Chain,
    reader: Reader,
    subject_id: str,
    purpose: str,
    query_tx_id: str | None,
    utc_offset_minutes: int,
    now_ms: int,
    max_age_ms: int,
    pending: bool = False,
    served: ServedQueryLog | None = None,
) -> dict[str, Any]:
    """Build a subject's credit report for `reader` at the chain head, after every read check.

    The access policy (consent, the subject itself or the regulator) and the
    recorded `report.query` must both allow the read, and the query must not
    have served a report before. `served` is the node's log of served
    queries. Raises PrivacyError or the ApiError of `check_recorded_query`.
    """
    served = served if served is not None else _served_log_for(chain)
    state = chain.state()
    date = block_date(chain, utc_offset_minutes)
    decision = check_access(state, reader, subject_id, purpose, date)
    query = check_recorded_query(chain, reader, subject_id, purpose, query_tx_id, now_ms=now_ms, max_age_ms=max_age_ms, pending=pending)
    if served.was_served(query["query_tx"]):
        raise query_error("query_already_served", query_tx=query["query_tx"])

    report = credit_report(state, subject_id, date)
    if report is None:
        raise PrivacyError("subject_not_found", subject_id=subject_id)
    served.prune(now_ms - max_age_ms)
    served.mark_served(query["query_tx"], query["recorded_at_ms"])

    fields = {"subject_id": subject_id, "reader": reader.member_id or "subject", "purpose": purpose, "basis": decision.basis, "query_tx": query["query_tx"]}
    # Regulator reads carry audit=true, so an audit of the log can select every read the regulator made.
    _logger.info("served a credit report", extra={"fields": {**fields, "audit": decision.audit}})

    return {
        "subject_id": subject_id,
        "purpose": purpose,
        "basis": decision.basis,
        "as_of": date,
        "height": chain.height,
        "query": query,
        "report": report,
    }


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

    `pending` is true when the node's mempool still contains `query_tx_id`. It
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
