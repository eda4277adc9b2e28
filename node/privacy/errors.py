"""Errors of the personal-data layer, with stable codes and bilingual messages.

Each error carries a stable English `code` that clients match on, the HTTP
status the API should respond with, and `details` with the values involved.
Messages are looked up by code, in Chinese (zh-CN) or English, at the API edge.
"""

from __future__ import annotations

from typing import Any

from node.contracts.errors import CATALOGUE as CONTRACT_CATALOGUE


def _contract_text(code: str) -> tuple[str, str]:
    """Return the (English, Chinese) text of a contract error code that this layer raises with the same meaning."""
    _, english, chinese = CONTRACT_CATALOGUE[code]
    return english, chinese


# code -> (HTTP status, English message, Chinese message)
MESSAGES: dict[str, tuple[int, str, str]] = {
    # Signed read requests
    "missing_signature": (
        401,
        "The request is not signed: send the X-Xinlian-Key, X-Xinlian-Timestamp, X-Xinlian-Node and X-Xinlian-Signature headers (details list the missing ones).",
        "请求未签名：请发送 X-Xinlian-Key、X-Xinlian-Timestamp、X-Xinlian-Node 和 X-Xinlian-Signature 请求头（details 中列出缺少的请求头）。",
    ),
    "wrong_node": (
        401,
        "The read request was signed for another node: put this node's member id (node_id in GET /v1/status) in X-Xinlian-Node and sign the request again.",
        "该读取请求是为其他节点签名的：请在 X-Xinlian-Node 中填写本节点的成员编号（GET /v1/status 中的 node_id）并重新签名。",
    ),
    # A transaction's bad signature is `invalid_signature` (node.tx); this code is for signed reads only.
    "invalid_read_signature": (
        401,
        "The read request signature is invalid or does not verify with the key it names: sign the request again (an HTTP read signs method, path with query, body hash and timestamp).",
        "读取请求的签名无效或无法用其所附公钥验证：请重新签名（HTTP 读取请求须对方法、含查询串的路径、请求体哈希和时间戳签名）。",
    ),
    "stale_request": (
        401,
        "The request timestamp is outside the allowed window: check the client clock and sign the request again.",
        "请求时间戳超出允许范围：请检查客户端时钟并重新签名。",
    ),
    "replayed_request": (
        401,
        "This signed request was already used: sign a new request with a fresh timestamp.",
        "该签名请求已被使用：请使用新的时间戳重新签名。",
    ),
    "unknown_reader": (
        403,
        "The signing key belongs to no member client and no registered data subject.",
        "签名公钥不属于任何成员客户端或已登记的信息主体。",
    ),
    # Subject identifiers and records
    "invalid_id_number": (
        400,
        "The resident ID-card number is invalid: it needs 18 characters with a valid check digit, or 15 digits.",
        "居民身份证号码无效：应为 18 位且校验码正确，或为 15 位数字。",
    ),
    "invalid_record": (
        400,
        "The personal-data record is invalid: see details for the field.",
        "个人信息记录无效：请查看 details 中的字段。",
    ),
    # D3 and D4 codes are shared with the contracts, so their text comes from the contract catalogue.
    "forbidden_field": (400, *_contract_text("forbidden_field")),
    "written_consent_required": (400, *_contract_text("written_consent_required")),
    "subject_not_found": (
        404,
        "No personal data of this subject is stored on this node.",
        "本节点未存储该信息主体的个人信息。",
    ),
    "erased": (
        410,
        "The subject's personal data was erased and can no longer be read.",
        "该信息主体的个人信息已删除，无法读取。",
    ),
    "frozen": (
        423,
        "The subject's personal data is frozen after an erasure request: it is retained by law but not processed.",
        "该信息主体的个人信息已因删除请求被冻结：依法保存，但不再处理。",
    ),
    # Access policy
    "no_consent": (
        403,
        "No consent of the subject names this member for this purpose.",
        "信息主体未授权同意该成员用于此用途。",
    ),
    "consent_expired": (
        403,
        "The subject's consent for this member and purpose has expired.",
        "信息主体对该成员及此用途的授权同意已过期。",
    ),
    "consent_revoked": (
        403,
        "The subject revoked the consent for this member and purpose.",
        "信息主体已撤回对该成员及此用途的授权同意。",
    ),
    "mandate_ended": (
        403,
        "The collector has no active mandate and open case for this subject.",
        "催收机构对该信息主体没有有效的委托和未结案件。",
    ),
    "member_suspended": (
        403,
        "The member is suspended and may not read personal data.",
        "该成员已被暂停，不得读取个人信息。",
    ),
    "invalid_purpose": (
        400,
        "The purpose is invalid: use credit_query, assessment, collection or data_sharing.",
        "用途无效：请使用 credit_query、assessment、collection 或 data_sharing。",
    ),
    "not_subject": (
        403,
        "A data subject may read only its own data.",
        "信息主体只能查询本人的信息。",
    ),
    # Peer sharing
    "invalid_request": (
        400,
        "The peer request is invalid: see details for the field.",
        "节点间请求无效：请查看 details 中的字段。",
    ),
    "peer_unavailable": (
        503,
        "The node holding the data did not answer: try again later.",
        "持有数据的节点未响应：请稍后重试。",
    ),
}


class PrivacyError(Exception):
    """A personal-data operation failed with a stable `code`."""

    def __init__(self, code: str, **details: Any) -> None:
        if code not in MESSAGES:
            raise ValueError(f"unknown privacy error code {code!r}")
        super().__init__(code)
        self.code = code
        self.details = details

    @property
    def http_status(self) -> int:
        return MESSAGES[self.code][0]

    def message(self, language: str = "zh-CN") -> str:
        """Return the message in `language` ("zh-CN" or "en"); Chinese unless English is requested."""
        return message_for(self.code, language)

    def to_json(self, language: str = "zh-CN") -> dict[str, Any]:
        """Return the API error body `{"error": {"code", "message", "details"}}`."""
        return {"error": {"code": self.code, "message": self.message(language), "details": dict(self.details)}}


def message_for(code: str, language: str = "zh-CN") -> str:
    """Return the message for `code` in Chinese, or in English when `language` starts with "en"."""
    _, english, chinese = MESSAGES[code]
    return english if language.lower().startswith("en") else chinese
