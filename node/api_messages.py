"""Error codes of the transaction layer, and registration of every component's codes with `node.i18n`.

Transaction parsing (`node.tx.TxError`) and mempool admission raise codes with
English-only text, so their bilingual messages live here. The canonical JSON
codes that they share with the HTTP layer are in `node.i18n`. The contracts and the
personal-data layer keep their own catalogues, which `register_all` adds.
Every code has one meaning and one text: a code registered twice with
different text raises `i18n.MessageConflictError`.
"""

from __future__ import annotations

import threading

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
    "expiry_too_far": (
        400,
        "expires_at is more than one hour ahead: sign it again with an earlier expires_at.",
        "expires_at 超过当前时间一小时以上：请使用更早的 expires_at 重新签名。",
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

_registered = False
_lock = threading.Lock()


def register_all() -> None:
    """Register the transaction, personal-data and contract codes once per process."""
    global _registered
    with _lock:
        if _registered:
            return
        _registered = True
    i18n.register_messages(TX_MESSAGES)
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
