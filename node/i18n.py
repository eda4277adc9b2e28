"""Localized API error messages: one catalogue of stable error codes in zh-CN and English.

Every error the HTTP API returns has a stable English `code`. This module maps
each code to the HTTP status of its response and to one message per
language. Other components (transaction parsing, contracts, the personal-data
layer) register their own codes with `register_messages`, in the same
`code -> (status, English, Chinese)` form, so the API can localize them too.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

LANGUAGE_CHINESE = "zh-CN"
LANGUAGE_ENGLISH = "en"
SUPPORTED_LANGUAGES = (LANGUAGE_CHINESE, LANGUAGE_ENGLISH)

# Status for a code that no component registered. Such a code comes from a
# contract or admission rule that rejected the request, so it is a client error.
UNKNOWN_CODE_STATUS = 422

# code -> (HTTP status, English message, Chinese message)
_CATALOGUE: dict[str, tuple[int, str, str]] = {
    # Request framing, owned by the HTTP layer.
    "path_not_found": (404, "No resource exists at this path: see /v1/openapi.json for the paths.", "该路径下没有资源：可用路径见 /v1/openapi.json。"),
    "method_not_allowed": (405, "This method is not allowed on this path.", "该路径不支持此请求方法。"),
    "unsupported_media_type": (
        415,
        "The request body must be JSON: send Content-Type: application/json.",
        "请求体必须是 JSON：请发送 Content-Type: application/json。",
    ),
    "body_too_large": (
        413,
        "The request body is larger than this node accepts: split the batch.",
        "请求体超出本节点的大小上限：请拆分批次。",
    ),
    # Canonical JSON codes (node.canonical.CanonicalError): raised for a request body, and
    # through node.tx.TxError for a single transaction, so the transaction layer shares them.
    "invalid_json": (400, "The request body is not valid JSON.", "请求体不是有效的 JSON。"),
    "invalid_utf8": (400, "The request body is not valid UTF-8.", "请求体不是有效的 UTF-8 编码。"),
    "invalid_unicode": (
        400,
        "A string contains a lone surrogate escape (such as \\ud800), which has no UTF-8 form.",
        "字符串含有孤立的代理项转义（如 \\ud800），无法编码为 UTF-8。",
    ),
    "float_not_allowed": (
        400,
        "Numbers must be integers: send money in fen, rates in basis points and times in milliseconds.",
        "数值必须为整数：金额以分、利率以基点、时间以毫秒表示。",
    ),
    "duplicate_key": (400, "The JSON contains a duplicate object key.", "JSON 中存在重复的键。"),
    "integer_out_of_range": (
        400,
        "An integer is outside the signed 64-bit range.",
        "整数超出有符号 64 位整数范围。",
    ),
    "too_deep": (400, "The JSON is nested too deeply.", "JSON 嵌套层级过深。"),
    "invalid_key": (400, "A JSON object key is not a string.", "JSON 对象的键不是字符串。"),
    "invalid_type": (400, "A value has no JSON form.", "某个值无法表示为 JSON。"),
    "invalid_request_body": (
        400,
        "The request body has the wrong shape: send one transaction envelope or {\"transactions\": [...]}.",
        "请求体格式错误：请发送一个交易信封或 {\"transactions\": [...]}。",
    ),
    "batch_empty": (400, "The transaction batch is empty.", "交易批次为空。"),
    "batch_too_large": (
        400,
        "The batch has more transactions than allowed: split it.",
        "交易批次超出条数上限：请拆分。",
    ),
    "invalid_envelope": (
        400,
        "The transaction envelope is invalid: it needs an object with body and signature.",
        "交易信封无效：需要包含 body 和 signature 的对象。",
    ),
    "invalid_path_parameter": (
        400,
        "A path parameter is invalid: see details for the parameter and the expected form.",
        "路径参数无效：请查看 details 中的参数及其格式要求。",
    ),
    "invalid_query_parameter": (
        400,
        "A query parameter is invalid: see details for the parameter and the expected form.",
        "查询参数无效：请查看 details 中的参数及其格式要求。",
    ),
    "transaction_not_found": (
        404,
        "This node knows no transaction with this id.",
        "本节点没有该交易编号对应的交易。",
    ),
    "block_not_found": (404, "No block exists at this height yet.", "该高度的区块尚不存在。"),
    "object_not_found": (404, "No object with this id exists in the current state.", "当前状态中没有该编号的对象。"),
    "state_key_not_found": (404, "The current state has no value at this key.", "当前状态中没有该键的值。"),
    "websocket_required": (
        426,
        "This path serves a websocket: open it with a websocket upgrade request.",
        "该路径提供 WebSocket 服务：请使用 WebSocket 升级请求连接。",
    ),
    "too_many_subscribers": (
        503,
        "The node has reached its limit of event subscribers: try again later.",
        "本节点的事件订阅数已达上限：请稍后重试。",
    ),
    "service_unavailable": (
        503,
        "The node cannot serve this request now: try again later.",
        "本节点暂时无法处理该请求：请稍后重试。",
    ),
    "not_implemented": (
        501,
        "This node does not implement this request yet: ask the node's operator to upgrade it.",
        "本节点尚未实现该请求：请联系节点运维方升级。",
    ),
    "internal_error": (
        500,
        "The node failed while handling the request: this is a bug, please report it with the request.",
        "节点处理请求时出错：这是程序缺陷，请连同请求一起报告。",
    ),
}
# The HTTP layer's own codes, before other components register theirs.
HTTP_CODES = frozenset(_CATALOGUE)
_LOCK = threading.Lock()

# A renderer builds a code's message from the error details: (language, details) -> message,
# or None when the details lack what it needs and the catalogue text should be used.
DetailRenderer = Callable[[str, Mapping[str, Any]], "str | None"]
_DETAIL_RENDERERS: dict[str, DetailRenderer] = {}


class MessageConflictError(ValueError):
    """Two components registered one error code with different status or text."""


def register_messages(messages: Mapping[str, tuple[int, str, str]], replace: bool = False) -> None:
    """Add error codes with their status and messages to the catalogue.

    Every code has one meaning, so registering a code again with a different
    status or text raises MessageConflictError unless `replace` is true. The
    same entry registered twice is accepted.
    """
    with _LOCK:
        for code, entry in sorted(messages.items()):
            status, english, chinese = entry
            if not (isinstance(status, int) and 400 <= status <= 599):
                raise ValueError(f"error code {code!r} has HTTP status {status!r}, expected 400-599")
            existing = _CATALOGUE.get(code)
            if existing is not None and existing != (status, english, chinese) and not replace:
                raise MessageConflictError(
                    f"error code {code!r} is already registered as {existing!r}, not {entry!r}: "
                    "rename one of the codes or use the same text"
                )
            _CATALOGUE[code] = (status, english, chinese)


def register_detail_renderer(code: str, render: DetailRenderer) -> None:
    """Let `message_for` build the message of a registered `code` from its error details.

    The catalogue text stays the message whenever the details are missing or
    `render` returns None, so it must read well without the details.
    """
    with _LOCK:
        if code not in _CATALOGUE:
            raise ValueError(f"error code {code!r} has no catalogue entry: register its messages first")
        _DETAIL_RENDERERS[code] = render


def registered_entry(code: str) -> tuple[int, str, str] | None:
    """Return the (HTTP status, English, Chinese) entry of `code`, or None if no component registered it."""
    with _LOCK:
        return _CATALOGUE.get(code)


def is_known(code: str) -> bool:
    return code in _CATALOGUE


def known_codes() -> list[str]:
    """Return every registered error code, sorted."""
    with _LOCK:
        return sorted(_CATALOGUE)


def status_for(code: str) -> int:
    """Return the HTTP status for `code`; an unregistered code is a rule rejection (422)."""
    entry = _CATALOGUE.get(code)
    return entry[0] if entry is not None else UNKNOWN_CODE_STATUS


def message_for(code: str, language: str, details: Mapping[str, Any] | None = None) -> str:
    """Return the message for `code` in `language` ("zh-CN" or "en").

    A code with a detail renderer gets a message built from `details`. An
    unregistered code gets a generic sentence that names the code, so a
    client always receives a readable message.
    """
    entry = _CATALOGUE.get(code)
    english = language == LANGUAGE_ENGLISH
    render = _DETAIL_RENDERERS.get(code)
    if render is not None and details:
        rendered = render(LANGUAGE_ENGLISH if english else LANGUAGE_CHINESE, details)
        if rendered is not None:
            return rendered
    if entry is None:
        if english:
            return f"The request was rejected with error code {code}."
        return f"请求被拒绝，错误代码：{code}。"
    return entry[1] if english else entry[2]


def error_body(code: str, language: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the API error body `{"error": {"code", "message", "details"}}`."""
    return {"error": {"code": code, "message": message_for(code, language, details), "details": dict(details or {})}}


def negotiate_language(accept_language: str | None, default: str = LANGUAGE_CHINESE) -> str:
    """Pick "zh-CN" or "en" from an Accept-Language header value.

    Language ranges are tried by descending q-value, then in header order.
    Any `zh` range selects Chinese and any `en` range English. A header that
    names neither language, or none at all, gives `default`.
    """
    if default not in SUPPORTED_LANGUAGES:
        raise ValueError(f"default language {default!r} is not one of {SUPPORTED_LANGUAGES}")
    if not accept_language:
        return default

    ranked: list[tuple[int, int, str]] = []
    for position, part in enumerate(accept_language[:1024].split(",")[:32]):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        weight_milli = 1000
        for parameter in pieces[1:]:
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                weight_milli = _parse_q_milli(value.strip())
        if weight_milli > 0:
            ranked.append((-weight_milli, position, tag))

    for _, _, tag in sorted(ranked):
        if tag == "zh" or tag.startswith("zh-"):
            return LANGUAGE_CHINESE
        if tag == "en" or tag.startswith("en-"):
            return LANGUAGE_ENGLISH
    return default


def _parse_q_milli(text: str) -> int:
    """Parse an HTTP q-value ("0.8", "1", "0") as an integer in thousandths; an invalid one gives 0."""
    whole, _, fraction = text.partition(".")
    if whole not in ("0", "1") or len(fraction) > 3 or not (fraction.isdigit() or fraction == ""):
        return 0
    milli = int(whole) * 1000 + (int(fraction.ljust(3, "0")) if fraction else 0)
    return milli if milli <= 1000 else 0
