"""Canonical JSON: the one byte form of everything Xinlian hashes or signs.

UTF-8, object keys sorted by code point, no whitespace, integers only. Floats,
NaN, duplicate keys and integers outside the signed 64-bit range are invalid,
both when encoding and when parsing bytes received from a client or a peer.

The bytes are those of `json.dumps(value, ensure_ascii=False, sort_keys=True,
separators=(",", ":"))`; orjson writes the same bytes several times faster,
and tests/node/test_canonical_orjson.py compares the two on generated values.
Values are checked by a walk that builds no field path. Only a value that fails
is walked again by the slower check that names the offending field.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

import orjson

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class CanonicalError(ValueError):
    """A value or a byte string that has no canonical JSON form."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _check(value: Any, path: str, depth: int) -> None:
    if depth > 64:
        raise CanonicalError("too_deep", f"nesting deeper than 64 levels at {path}")
    if value is None or value is True or value is False:
        return
    if isinstance(value, str):
        _check_string(value, path)
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise CanonicalError("integer_out_of_range", f"integer outside the signed 64-bit range at {path}")
        return
    if isinstance(value, float):
        raise CanonicalError("float_not_allowed", f"float at {path}: use integers (fen, basis points, ms)")
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError("invalid_key", f"object key {key!r} at {path} is not a string")
            _check_string(key, f"{path} (a key)")
            _check(item, f"{path}.{key}", depth + 1)
        return
    raise CanonicalError("invalid_type", f"value of type {type(value).__name__} at {path} has no JSON form")


def _check_string(text: str, path: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate such as "\ud800" is valid in a JSON escape but has no UTF-8 form.
        raise CanonicalError("invalid_unicode", f"string at {path} contains a lone surrogate") from None


def _valid_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _valid_items(items: Iterable[Any], depth: int) -> bool:
    # Strings and integers are checked inline, because this walk runs on every value
    # the node encodes and a function call per leaf costs more than the leaf's check.
    for item in items:
        kind = type(item)
        if kind is str:
            if not (item.isascii() or _valid_text(item)):
                return False
        elif kind is int:
            if not INT64_MIN <= item <= INT64_MAX:
                return False
        elif not _valid(item, depth):
            return False
    return True


def _valid(value: Any, depth: int) -> bool:
    """Return whether `value` has a canonical form, judged by exact types. A False result sends it to `_check`."""
    kind = type(value)
    if kind is dict:
        if depth >= 64:
            return False
        for key in value:
            if type(key) is not str or not (key.isascii() or _valid_text(key)):
                return False
        return _valid_items(value.values(), depth + 1)
    if kind is list or kind is tuple:
        return depth < 64 and _valid_items(value, depth + 1)
    return _valid_items((value,), depth) if kind is str or kind is int else value is None or value is True or value is False


def check_value(value: Any) -> None:
    """Raise CanonicalError, naming the field, if `value` has no canonical JSON form."""
    if not _valid(value, 0):
        # Subclasses of str, int, dict and list land here too, and pass the full check.
        _check(value, "$", 0)


def canonical_bytes(value: Any) -> bytes:
    """Encode a JSON-compatible value in canonical form."""
    check_value(value)
    try:
        # OPT_SORT_KEYS orders keys by their UTF-8 bytes, which is code point order.
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # orjson takes only exact str keys, so a key of a str subclass gets the reference encoder.
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def canonical_bytes_of_checked(value: Any) -> bytes:
    """Encode a value that `parse_json` returned, or a part of one: it was checked when it was parsed."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return canonical_bytes(value)


def parse_trusted(data: bytes) -> Any:
    """Parse canonical JSON this node wrote itself (its own LevelDB records), without the checks of `parse_json`."""
    return orjson.loads(data)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise CanonicalError("duplicate_key", f"duplicate object key {key!r}")
        result[key] = item
    return result


def _reject_float(text: str) -> Any:
    raise CanonicalError("float_not_allowed", f"number {text} is not an integer")


def _reject_constant(text: str) -> Any:
    raise CanonicalError("float_not_allowed", f"{text} is not valid JSON")


def parse_json(data: bytes | str) -> Any:
    """Parse untrusted JSON strictly: no floats, NaN, duplicate keys or out-of-range integers."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CanonicalError("invalid_utf8", f"body is not UTF-8: {exc.reason}") from None
    else:
        text = data
    try:
        value = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
        )
    except CanonicalError:
        raise
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CanonicalError("invalid_json", f"invalid JSON: {exc}") from None
    except ValueError:
        # Python refuses to convert integers longer than sys.get_int_max_str_digits().
        raise CanonicalError("integer_out_of_range", "integer with too many digits") from None
    check_value(value)
    return value


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
