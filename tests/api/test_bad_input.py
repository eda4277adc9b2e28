"""Bad input of every class gets its documented 4xx in the one error shape, in both languages, never a 5xx."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import pytest

from node import i18n
from tests.api.ledger import ApiNode

CHINESE = "zh-CN"
ENGLISH = "en"
TX_PATH = "/v1/transactions"
JSON_TYPE = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class BadRequest:
    name: str
    method: str
    path: str
    status: int
    code: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


BAD_REQUESTS = [
    BadRequest("unknown path", "GET", "/v1/nothing-here", 404, "path_not_found"),
    BadRequest("unknown root path", "GET", "/", 404, "path_not_found"),
    BadRequest("wrong method", "DELETE", "/v1/status", 405, "method_not_allowed"),
    BadRequest("get on submit path", "PUT", TX_PATH, 405, "method_not_allowed"),
    BadRequest("wrong content type", "POST", TX_PATH, 415, "unsupported_media_type", b"{}", {"Content-Type": "text/plain"}),
    BadRequest("no content type", "POST", TX_PATH, 415, "unsupported_media_type", b"{}"),
    BadRequest("malformed json", "POST", TX_PATH, 400, "invalid_json", b"{\"body\":", JSON_TYPE),
    BadRequest("empty body", "POST", TX_PATH, 400, "invalid_json", b"", JSON_TYPE),
    BadRequest("not utf-8", "POST", TX_PATH, 400, "invalid_utf8", b"{\"a\":\"\xff\"}", JSON_TYPE),
    BadRequest("float", "POST", TX_PATH, 400, "float_not_allowed", b"{\"a\":1.5}", JSON_TYPE),
    BadRequest("nan", "POST", TX_PATH, 400, "float_not_allowed", b"{\"a\":NaN}", JSON_TYPE),
    BadRequest("duplicate key", "POST", TX_PATH, 400, "duplicate_key", b"{\"a\":1,\"a\":2}", JSON_TYPE),
    BadRequest("huge integer", "POST", TX_PATH, 400, "integer_out_of_range", b"{\"a\":99999999999999999999}", JSON_TYPE),
    BadRequest("too deep", "POST", TX_PATH, 400, "too_deep", b"[" * 100 + b"]" * 100, JSON_TYPE),
    BadRequest("array body", "POST", TX_PATH, 400, "invalid_request_body", b"[1,2]", JSON_TYPE),
    BadRequest("batch not list", "POST", TX_PATH, 400, "invalid_request_body", b"{\"transactions\":{}}", JSON_TYPE),
    BadRequest("batch extra key", "POST", TX_PATH, 400, "invalid_request_body", b"{\"transactions\":[],\"x\":1}", JSON_TYPE),
    BadRequest("envelope missing fields", "POST", TX_PATH, 400, "invalid_field", b"{\"body\":{}}", JSON_TYPE),
    BadRequest("oversize body", "POST", TX_PATH, 413, "body_too_large", b"{\"a\":\"" + b"x" * (17 * 1024 * 1024) + b"\"}", JSON_TYPE),
    BadRequest("tx id not hex", "GET", "/v1/transactions/xyz", 400, "invalid_path_parameter"),
    BadRequest("tx id upper hex", "GET", "/v1/transactions/" + "A" * 64, 400, "invalid_path_parameter"),
    BadRequest("unknown tx", "GET", "/v1/transactions/" + "0" * 64, 404, "transaction_not_found"),
    BadRequest("height not number", "GET", "/v1/blocks/one", 400, "invalid_path_parameter"),
    BadRequest("negative height", "GET", "/v1/blocks/-1", 400, "invalid_path_parameter"),
    BadRequest("height beyond int64", "GET", "/v1/blocks/99999999999999999999", 400, "invalid_path_parameter"),
    BadRequest("height too long", "GET", "/v1/blocks/" + "9" * 30, 400, "invalid_path_parameter"),
    BadRequest("bad loan id", "GET", "/v1/loans/" + "x" * 65, 400, "invalid_path_parameter"),
    BadRequest("loan id bad chars", "GET", "/v1/loans/a%20b", 400, "invalid_path_parameter"),
    BadRequest("bad subject id", "GET", "/v1/subjects/xyz/report", 400, "invalid_path_parameter"),
    BadRequest("bad proof flag", "GET", "/v1/state/params?proof=maybe", 400, "invalid_query_parameter"),
    BadRequest("state key too long", "GET", "/v1/state/" + "k" * 600, 400, "invalid_path_parameter"),
    BadRequest("events bad member", "GET", "/v1/events?member=a%20b", 400, "invalid_query_parameter"),
    BadRequest("events no upgrade", "GET", "/v1/events", 426, "websocket_required"),
    BadRequest("report unsigned", "GET", "/v1/subjects/" + "a" * 64 + "/report", 401, "missing_signature"),
    BadRequest(
        "report bad key header",
        "GET",
        "/v1/subjects/" + "a" * 64 + "/report",
        401,
        "invalid_read_signature",
        headers={"X-Xinlian-Key": "zz", "X-Xinlian-Timestamp": "1", "X-Xinlian-Signature": "00"},
    ),
]


async def _send(node: ApiNode, request: BadRequest, language: str) -> tuple[int, dict, str]:
    headers = {"Accept-Language": language, **request.headers}
    async with node.session.request(
        request.method, node.url(request.path), data=request.body, headers=headers, skip_auto_headers=["Content-Type"]
    ) as response:
        text = await response.text()
        return response.status, json.loads(text), response.headers.get("Content-Type", "")


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


@pytest.mark.parametrize("request_case", BAD_REQUESTS, ids=[case.name for case in BAD_REQUESTS])
async def test_bad_request_both_languages(api_node: ApiNode, request_case: BadRequest) -> None:
    for language in (ENGLISH, CHINESE):
        status, body, content_type = await _send(api_node, request_case, language)
        assert status == request_case.status, (language, body)
        assert content_type.startswith("application/json")
        assert set(body) == {"error"}
        error = body["error"]
        assert set(error) == {"code", "message", "details"}
        assert error["code"] == request_case.code
        assert isinstance(error["details"], dict)
        if language == ENGLISH:
            assert error["message"].isascii(), error["message"]
        else:
            assert _has_chinese(error["message"]), error["message"]


async def test_default_language_is_chinese(api_node: ApiNode) -> None:
    async with api_node.session.get(api_node.url("/v1/nothing")) as response:
        body = await response.json()
    assert body["error"]["message"] == i18n.message_for("path_not_found", CHINESE)


async def test_method_not_allowed_lists_methods(api_node: ApiNode) -> None:
    async with api_node.session.delete(api_node.url("/v1/status")) as response:
        assert response.status == 405
        assert "GET" in response.headers["Allow"]
        body = await response.json()
    assert "GET" in body["error"]["details"]["allowed_methods"]


def _fuzz_cases(seed: int, count: int) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """Build a fixed list of malformed requests from `seed`: random paths, bodies and headers."""
    generator = random.Random(seed)
    path_stems = [
        "/v1/transactions/",
        "/v1/blocks/",
        "/v1/loans/",
        "/v1/cases/",
        "/v1/state/",
        "/v1/subjects/",
        "/v1/members/",
        "/v1/",
        "/metrics/",
        "/v1/events/",
    ]
    alphabet = "abcXYZ019-_.:~%!$&'()*+,;=@ /\\\"<>{}|^`" + "中文"
    fragments = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"1", b"-1", b"1e5", b"1.0", b"null", b"true", b'"body"', b'"transactions"', b'"signature"', b"\xff", b"\x00", b"\\u0000", b"NaN"]
    cases = []
    for _ in range(count):
        path = generator.choice(path_stems) + "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 40)))
        body = b"".join(generator.choice(fragments) for _ in range(generator.randint(0, 60)))
        content_type = generator.choice(["application/json", "application/json; charset=utf-8", "text/plain", "", "application/x-www-form-urlencoded"])
        headers = {"Content-Type": content_type} if content_type else {}
        if generator.random() < 0.3:
            headers["Accept-Language"] = generator.choice(["en", "zh-CN", "xx;q=2", ";;;", "en;q=0.5,zh;q=0.6", "*"])
        method = generator.choice(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        cases.append((method, path, body, headers))
    return cases


def _fuzz_batch_bodies(seed: int, count: int) -> list[bytes]:
    """Build syntactically valid JSON bodies with envelopes of wrong shapes and types."""
    generator = random.Random(seed)
    values: list[object] = [None, True, 0, -1, 2**62, "", "x" * 200, [], {}, [1, "a"], {"body": None}, {"body": {}, "signature": 5}]
    bodies = []
    for _ in range(count):
        envelope = {
            "body": {
                "chain_id": generator.choice(values),
                "type": generator.choice(values + ["loan.register", "x"]),
                "sender": generator.choice(values + ["a" * 64]),
                "nonce": generator.choice(values),
                "expires_at": generator.choice(values),
                "payload": generator.choice(values),
            },
            "signature": generator.choice(values + ["0" * 128]),
        }
        if generator.random() < 0.3:
            del envelope["body"][generator.choice(sorted(envelope["body"]))]
        if generator.random() < 0.3:
            envelope["extra"] = generator.choice(values)
        body = {"transactions": [envelope, generator.choice(values)]} if generator.random() < 0.5 else envelope
        bodies.append(json.dumps(body).encode())
    return bodies


async def test_fuzz_never_500(api_node: ApiNode) -> None:
    checked = 0
    for method, path, body, headers in _fuzz_cases(seed=20261204, count=300):
        async with api_node.session.request(method, api_node.url(path), data=body, headers=headers, skip_auto_headers=["Content-Type"]) as response:
            text = await response.text()
            assert response.status < 500, (method, path, body, response.status, text)
            if response.status >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
                assert set(json.loads(text)["error"]) == {"code", "message", "details"}
            checked += 1
    for body in _fuzz_batch_bodies(seed=7, count=200):
        async with api_node.session.post(api_node.url(TX_PATH), data=body, headers=JSON_TYPE) as response:
            text = await response.text()
            assert response.status < 500, (body, response.status, text)
            checked += 1
    assert checked == 500

    async with api_node.session.get(api_node.url("/metrics")) as response:
        metrics_text = await response.text()
    assert 'status="500"' not in metrics_text
