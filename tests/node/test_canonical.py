"""Canonical JSON: the strict parser and encoder every signed byte passes through."""

import pytest

from node.canonical import CanonicalError, canonical_bytes, parse_json


@pytest.mark.parametrize(
    "raw, code",
    [
        (b'{"a":1,"a":2}', "duplicate_key"),
        (b'{"a":1.5}', "float_not_allowed"),
        (b"NaN", "float_not_allowed"),
        (b"9223372036854775808", "integer_out_of_range"),
        (b"-9223372036854775809", "integer_out_of_range"),
        (b"1" + b"0" * 5000, "integer_out_of_range"),
        (b'"\\ud800"', "invalid_unicode"),
        (b'{"name":"x\\udfffy"}', "invalid_unicode"),
        (b"[" * 70 + b"]" * 70, "too_deep"),
        (b"\xff\xfe", "invalid_utf8"),
        (b"{", "invalid_json"),
    ],
)
def test_parse_rejects_with_code(raw, code):
    with pytest.raises(CanonicalError) as info:
        parse_json(raw)
    assert info.value.code == code


def test_parse_accepts_int64_bounds():
    assert parse_json(b"[9223372036854775807,-9223372036854775808]") == [2**63 - 1, -(2**63)]


def test_surrogate_pair_escape_is_one_character():
    assert parse_json(b'"\\ud83d\\ude00"') == "\U0001F600"


def test_encode_sorts_keys_without_whitespace():
    assert canonical_bytes({"b": 1, "a": [True, None, "中"]}) == '{"a":[true,null,"中"],"b":1}'.encode()


def test_encode_rejects_lone_surrogate():
    with pytest.raises(CanonicalError) as info:
        canonical_bytes({"note": "\ud800"})
    assert info.value.code == "invalid_unicode"
