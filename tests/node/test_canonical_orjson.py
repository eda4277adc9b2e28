"""canonical_bytes writes with orjson, and its bytes must equal the json.dumps form the spec describes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.canonical import INT64_MAX, INT64_MIN, CanonicalError, canonical_bytes, parse_json, parse_trusted


def reference_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


# Every code point but the surrogates, which have no UTF-8 form. Control characters and U+2028 are included.
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | st.integers(min_value=INT64_MIN, max_value=INT64_MAX) | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(values)
def test_orjson_bytes_equal_json_dumps(value: Any) -> None:
    encoded = canonical_bytes(value)
    assert encoded == reference_bytes(value)
    assert parse_json(encoded) == value
    assert parse_trusted(encoded) == value


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"amount": 1.5}, "float_not_allowed"),
        ([1, [2, [INT64_MAX + 1]]], "integer_out_of_range"),
        ({"a": INT64_MIN - 1}, "integer_out_of_range"),
        ({"note": "\ud800"}, "invalid_unicode"),
        ({"\udfff": 1}, "invalid_unicode"),
        ({1: "x"}, "invalid_key"),
        ({"when": object()}, "invalid_type"),
        ({"s": {1, 2}}, "invalid_type"),
    ],
)
def test_invalid_values_raise_their_code(value: Any, code: str) -> None:
    with pytest.raises(CanonicalError) as caught:
        canonical_bytes(value)
    assert caught.value.code == code


def test_nesting_over_64_rejected() -> None:
    value: Any = 0
    for _ in range(65):
        value = [value]
    with pytest.raises(CanonicalError) as caught:
        canonical_bytes(value)
    assert caught.value.code == "too_deep"
    assert canonical_bytes(value[0]) == reference_bytes(value[0])


def test_subclasses_encode_as_base_types() -> None:
    class Text(str):
        pass

    class Mapping(dict):  # type: ignore[type-arg]
        pass

    value = Mapping({Text("b"): [Text("中"), True], "a": None})
    assert canonical_bytes(value) == reference_bytes(dict(value)) == '{"a":null,"b":["中",true]}'.encode()
