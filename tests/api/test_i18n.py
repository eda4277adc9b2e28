"""Error catalogue and Accept-Language negotiation."""

from __future__ import annotations

import pytest

from node import api_messages, i18n
from node.contracts.errors import CATALOGUE as CONTRACT_CATALOGUE
from node.privacy.errors import MESSAGES as PRIVACY_MESSAGES

HTTP_CODES = sorted(i18n.HTTP_CODES)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("fr-FR, en;q=0.5", "en"),
        ("en;q=0.2, zh;q=0.8", "zh-CN"),
        ("zh;q=0, en;q=0.1", "en"),
        ("de, fr", "zh-CN"),
        ("*", "zh-CN"),
        ("en;q=abc, zh;q=0.5", "zh-CN"),
        ("en;q=1.5", "zh-CN"),
        (",,,;;;", "zh-CN"),
    ],
)
def test_negotiate_language_cases(header: str | None, expected: str) -> None:
    assert i18n.negotiate_language(header) == expected


def test_negotiate_language_english_default() -> None:
    assert i18n.negotiate_language(None, default="en") == "en"
    assert i18n.negotiate_language("de", default="en") == "en"
    assert i18n.negotiate_language("zh", default="en") == "zh-CN"


def test_negotiate_language_rejects_bad_default() -> None:
    with pytest.raises(ValueError):
        i18n.negotiate_language("en", default="fr")


def test_every_code_has_both_languages() -> None:
    api_messages.register_all()
    codes = i18n.known_codes()
    assert "path_not_found" in codes
    assert "invalid_signature" in codes
    assert "mempool_full" in codes
    for code in codes:
        english = i18n.message_for(code, "en")
        chinese = i18n.message_for(code, "zh-CN")
        assert english and chinese, code
        assert english != chinese, code
        assert english.isascii(), code
        assert any("\u4e00" <= char <= "\u9fff" for char in chinese), code
        assert 400 <= i18n.status_for(code) <= 599, code


def test_contract_and_privacy_codes_registered() -> None:
    api_messages.register_all()
    assert i18n.status_for("contact_hours") == api_messages.CONTRACT_ERROR_STATUS
    assert i18n.status_for("no_consent") == 403
    assert i18n.status_for("invalid_signature") == 400
    assert i18n.status_for("invalid_read_signature") == 401
    # D3 is raised by the personal-data layer over HTTP and by the contracts in receipts.
    assert i18n.status_for("forbidden_field") == 400
    assert i18n.message_for("forbidden_field", "en") == CONTRACT_CATALOGUE["forbidden_field"][1]


def test_report_query_codes_registered() -> None:
    api_messages.register_all()
    for code in ("query_not_recorded", "query_mismatch", "query_too_old"):
        entry = i18n.registered_entry(code)
        assert entry is not None, code
        status, english, chinese = entry
        assert status == 403, code
        assert "query_tx" in english, code
        assert "query_tx" in chinese, code
        assert any("\u4e00" <= char <= "\u9fff" for char in chinese), code


@pytest.mark.parametrize(
    ("window_ms", "english", "chinese"),
    [
        (3_600_000, "1 hour", "1 小时"),
        (7_200_000, "2 hours", "2 小时"),
        (300_000, "5 minutes", "5 分钟"),
        (90_000, "90 seconds", "90 秒"),
        (1_500, "1500 ms", "1500 毫秒"),
    ],
)
def test_expiry_too_far_names_window(window_ms: int, english: str, chinese: str) -> None:
    api_messages.register_all()
    details = {"expires_at": 10 + window_ms + 1, "time_ms": 10, "window_ms": window_ms}

    english_message = i18n.message_for("expiry_too_far", "en", details)
    chinese_message = i18n.message_for("expiry_too_far", "zh-CN", details)

    assert f"more than {english} ahead" in english_message
    assert chinese in chinese_message
    assert "one hour" not in english_message


def test_expiry_too_far_without_window() -> None:
    api_messages.register_all()
    for details in (None, {}, {"window_ms": "3600000"}, {"window_ms": 0}):
        message = i18n.message_for("expiry_too_far", "en", details)
        assert message == i18n.registered_entry("expiry_too_far")[1], details
        assert "hour" not in message, details


def test_unknown_code_gets_generic_message() -> None:
    assert i18n.status_for("no_such_code_xyz") == 422
    assert "no_such_code_xyz" in i18n.message_for("no_such_code_xyz", "en")
    assert "no_such_code_xyz" in i18n.message_for("no_such_code_xyz", "zh-CN")


def test_register_conflict_raises() -> None:
    i18n.register_messages({"test_only_code": (418, "First.", "第一。")})
    i18n.register_messages({"test_only_code": (418, "First.", "第一。")})
    with pytest.raises(i18n.MessageConflictError):
        i18n.register_messages({"test_only_code": (418, "Second.", "第二。")})
    with pytest.raises(i18n.MessageConflictError):
        i18n.register_messages({"test_only_code": (400, "First.", "第一。")})
    assert i18n.message_for("test_only_code", "en") == "First."
    i18n.register_messages({"test_only_code": (400, "Second.", "第二。")}, replace=True)
    assert i18n.status_for("test_only_code") == 400


def test_shared_codes_have_one_text() -> None:
    """A code that two components define must have the same English and Chinese text in both."""
    sources = {
        "http": {code: i18n.registered_entry(code) for code in HTTP_CODES},
        "tx": api_messages.TX_MESSAGES,
        "privacy": PRIVACY_MESSAGES,
        "contracts": {code: (api_messages.CONTRACT_ERROR_STATUS, english, chinese) for code, (_, english, chinese) in CONTRACT_CATALOGUE.items()},
    }
    texts: dict[str, set[tuple[str, str]]] = {}
    for catalogue in sources.values():
        for code, (_, english, chinese) in catalogue.items():
            texts.setdefault(code, set()).add((english, chinese))
    conflicts = {code: sorted(variants) for code, variants in texts.items() if len(variants) > 1}
    assert conflicts == {}


def test_shared_codes_have_one_status() -> None:
    statuses: dict[str, set[int]] = {}
    for catalogue in (api_messages.TX_MESSAGES, PRIVACY_MESSAGES, {code: i18n.registered_entry(code) for code in HTTP_CODES}):
        for code, (status, _, _) in catalogue.items():
            statuses.setdefault(code, set()).add(status)
    assert {code: values for code, values in statuses.items() if len(values) > 1} == {}


def test_register_rejects_bad_status() -> None:
    with pytest.raises(ValueError):
        i18n.register_messages({"test_bad_status": (200, "Fine.", "好。")})


def test_error_body_shape() -> None:
    body = i18n.error_body("path_not_found", "en", {"path": "/x"})
    assert set(body) == {"error"}
    assert body["error"]["code"] == "path_not_found"
    assert body["error"]["details"] == {"path": "/x"}
    assert body["error"]["message"].startswith("No resource")
