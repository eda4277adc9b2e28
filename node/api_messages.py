"""Error codes of the transaction layer and of report reads, and registration of every component's codes with `node.i18n`.

Transaction parsing (`node.tx.TxError`) and mempool admission raise codes with
English-only text, so their bilingual messages live here. The canonical JSON
codes that they share with the HTTP layer are in `node.i18n`. The contracts and the
personal-data layer keep their own catalogues, which `register_all` adds.
Every code has one meaning and one text: a code registered twice with
different text raises `i18n.MessageConflictError`.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

from node import i18n

# Mempool codes come from node.mempool.MempoolError.
# Contract rule rejections carry no HTTP status of their own.
CONTRACT_ERROR_STATUS = 422

TX_MESSAGES: dict[str, tuple[int, str, str]] = {
    "invalid_field": (
        400,
        "A transaction field is missing or invalid: see details for the field.",
        "交易字段缺失或无效：请查看 details 中的字段。",
    ),
    "too_large": (
        413,
        "The transaction is larger than the maximum encoded size.",
        "交易编码后的大小超过上限。",
    ),
    "wrong_chain": (
        400,
        "The transaction is for another chain: check body.chain_id.",
        "交易属于其他链：请检查 body.chain_id。",
    ),
    "expired": (
        400,
        "The transaction has expired: sign it again with a later expires_at.",
        "交易已过期：请使用更晚的 expires_at 重新签名。",
    ),
    # The chain's expiry window is a genesis limit, so the message names it from details.window_ms when given.
    "expiry_too_far": (
        400,
        "expires_at is further ahead than the chain's expiry window allows: sign it again with an earlier expires_at.",
        "expires_at 超出本链允许的有效期窗口：请使用更早的 expires_at 重新签名。",
    ),
    "invalid_signature": (
        400,
        "The transaction signature does not verify for the sender key.",
        "交易签名无法用发送方公钥验证。",
    ),
    "duplicate_tx": (
        409,
        "This transaction is already pending.",
        "该交易已在等待打包。",
    ),
    "duplicate_nonce": (
        409,
        "The sender already used this nonce: sign the transaction with a new nonce.",
        "发送方已使用过该 nonce：请使用新的 nonce 重新签名。",
    ),
    "sender_quota": (
        429,
        "The sender has too many pending transactions: wait for some to commit, then retry.",
        "该发送方待打包的交易过多：请等待部分交易上链后重试。",
    ),
    "mempool_full": (
        503,
        "The node's transaction pool is full: retry later.",
        "本节点的交易池已满：请稍后重试。",
    ),
}

# Credit-report reads that no recorded report.query allows (node.report_access).
REPORT_QUERY_STATUS = 403
REPORT_QUERY_MESSAGES: dict[str, tuple[int, str, str]] = {
    "query_not_recorded": (
        REPORT_QUERY_STATUS,
        "No committed report.query transaction backs this report read: submit report.query, wait until it commits with ok, "
        "and pass its tx_id as the query_tx parameter.",
        "此次报告查询没有已上链的 report.query 交易：请先提交 report.query，等待其成功上链，再以 query_tx 参数传入其 tx_id。",
    ),
    "query_mismatch": (
        REPORT_QUERY_STATUS,
        "The report.query transaction named by query_tx does not match this read: it must be sent by the reader "
        "for the same subject and purpose.",
        "query_tx 所指的 report.query 交易与此次读取不符：须由读取方本人发送，且主体和目的相同。",
    ),
    "query_too_old": (
        REPORT_QUERY_STATUS,
        "The report.query transaction named by query_tx is too old: submit a new report.query.",
        "query_tx 所指的 report.query 交易已过期：请提交新的 report.query。",
    ),
}

_registered = False
_lock = threading.Lock()


def format_duration(duration_ms: int, language: str) -> str:
    """Format a duration in the largest whole unit (hours, minutes, seconds, else milliseconds)."""
    units = (
        (3_600_000, "hour", "hours", "小时"),
        (60_000, "minute", "minutes", "分钟"),
        (1_000, "second", "seconds", "秒"),
    )
    for unit_ms, singular, plural, chinese in units:
        if duration_ms >= unit_ms and duration_ms % unit_ms == 0:
            count = duration_ms // unit_ms
            if language == i18n.LANGUAGE_ENGLISH:
                return f"{count} {singular if count == 1 else plural}"
            return f"{count} {chinese}"
    return f"{duration_ms} ms" if language == i18n.LANGUAGE_ENGLISH else f"{duration_ms} 毫秒"


def render_expiry_too_far(language: str, details: Mapping[str, Any]) -> str | None:
    """Name the expiry window of `details["window_ms"]` in the expiry_too_far message."""
    window_ms = details.get("window_ms")
    if type(window_ms) is not int or window_ms <= 0:
        return None
    window = format_duration(window_ms, language)
    if language == i18n.LANGUAGE_ENGLISH:
        return f"expires_at is more than {window} ahead of the chain's time: sign it again with an expires_at at most {window} ahead."
    return f"expires_at 超出本链当前时间 {window} 以上：请使用不超过 {window} 之后的 expires_at 重新签名。"


def register_all() -> None:
    """Register the transaction, report-query, personal-data and contract codes once per process."""
    global _registered
    with _lock:
        if _registered:
            return
        _registered = True
    i18n.register_messages(TX_MESSAGES)
    i18n.register_detail_renderer("expiry_too_far", render_expiry_too_far)
    i18n.register_messages(REPORT_QUERY_MESSAGES)
    _register_privacy()
    _register_contracts()


def _register_privacy() -> None:
    try:
        from node.privacy.errors import MESSAGES
    except ImportError:
        return
    i18n.register_messages(MESSAGES)


def _register_contracts() -> None:
    """Register the contract codes; a code the personal-data layer shares keeps that layer's HTTP status.

    The personal-data layer takes the text of its D3 and D4 codes from the
    contract catalogue and returns them over HTTP. A contract returns them only
    in receipts, so the shared entry carries the personal-data layer's status.
    """
    try:
        from node.contracts.errors import CATALOGUE
    except ImportError:
        return
    messages = {}
    for code, (_, english, chinese) in CATALOGUE.items():
        existing = i18n.registered_entry(code)
        if existing is not None and existing[1:] == (english, chinese):
            continue
        messages[code] = (CONTRACT_ERROR_STATUS, english, chinese)
    i18n.register_messages(messages)
