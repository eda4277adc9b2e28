"""Deterministic detection of personal data in transaction strings.

No name, ID-card number, phone number, address or bank account may be written
on chain. Payload models take reason codes rather than free text, which keeps
names and addresses out by construction. This module catches the numbers that
can still hide in ids, nonces and other strings. It looks at every string of a
payload, dictionary keys included, and at the nonce. It splits each string into
maximal runs of decimal digits (full-width and other Unicode digits count as
digits) and flags a run that is:

- an 18-character resident ID-card number: 17 digits followed by a digit or
  `X`, with a valid birth date and a valid ISO 7064 MOD 11-2 check character;
- a 15-digit first-generation ID-card number with a valid birth date (19YYMMDD);
- a mainland mobile number: 11 digits `1[3-9]...`, or 13 digits with the
  country code `86` in front;
- a bank card number: 16 to 19 digits that pass the Luhn check.

A string of at least 16 lowercase hex characters with at least one letter is
an opaque token: a key, a hash, a signature or a random nonce. It is not
scanned, because its digit runs are random and would give false positives.

NOTE: numbers split by spaces or dashes ("138 0013 8000") and encoded text
are not detected. The check catches mistakes, not a member set on hiding data.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterator

ID_NUMBER = "id_number"
MOBILE_NUMBER = "mobile_number"
BANK_CARD_NUMBER = "bank_card_number"

_CHECK_WEIGHTS = tuple(pow(2, 17 - position, 11) for position in range(17))
_CHECK_CHARACTERS = "10X98765432"
_OPAQUE_TOKEN = re.compile(r"(?=[0-9a-f]*[a-f])[0-9a-f]{16,}")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# The shortest personal number is 11 digits. `\d` matches the same Unicode digits as str.isdecimal,
# so a string without such a run contains none, and most strings are passed over at C speed.
_LONG_DIGIT_RUN = re.compile(r"\d{11}")
_LONG_DIGIT_RUNS = re.compile(r"\d{11,}")


@dataclass(frozen=True)
class PersonalDataFinding:
    """Location and kind of a personal number: the field path (`nonce` or `payload.<path>`) and what it looks like."""

    field: str
    kind: str
    in_key: bool = False


def id_check_character(first_17_digits: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character of an 18-character ID number (GB 11643-1999)."""
    total = sum(int(digit) * weight for digit, weight in zip(first_17_digits, _CHECK_WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def luhn_valid(digits: str) -> bool:
    """Return True when `digits` passes the Luhn check that bank card numbers carry."""
    total = 0
    for position, character in enumerate(reversed(digits)):
        value = int(character)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _valid_date(text: str) -> bool:
    try:
        dt.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def _digit_runs(text: str) -> Iterator[tuple[str, str]]:
    """Yield each maximal run of at least 11 decimal digits as ASCII, with the character after it ("" at the end).

    Shorter runs are never a personal number, so they are not yielded.
    """
    for match in _LONG_DIGIT_RUNS.finditer(text):
        digits = match.group()
        if not digits.isascii():
            digits = "".join(str(unicodedata.decimal(character)) for character in digits)
        yield digits, text[match.end() : match.end() + 1]


def classify_digit_run(digits: str, following: str = "") -> str | None:
    """Return the kind of personal number a maximal digit run is, or None.

    `following` is the character after the run, so that 17 digits followed by
    `X` are checked as an ID number.
    """
    length = len(digits)
    if length == 17 and unicodedata.normalize("NFKC", following).upper() == "X":
        if _valid_date(digits[6:14]) and id_check_character(digits) == "X":
            return ID_NUMBER
    if length == 18 and _valid_date(digits[6:14]) and id_check_character(digits[:17]) == digits[17]:
        return ID_NUMBER
    if length == 15 and _valid_date("19" + digits[6:12]):
        return ID_NUMBER
    if length == 11 and _MOBILE.fullmatch(digits):
        return MOBILE_NUMBER
    if length == 13 and digits.startswith("86") and _MOBILE.fullmatch(digits[2:]):
        return MOBILE_NUMBER
    if 16 <= length <= 19 and luhn_valid(digits):
        return BANK_CARD_NUMBER
    return None


def classify_text(text: str) -> str | None:
    """Return the kind of the first personal number in `text`, or None."""
    if _LONG_DIGIT_RUN.search(text) is None or _OPAQUE_TOKEN.fullmatch(text):
        return None
    for digits, following in _digit_runs(text):
        kind = classify_digit_run(digits, following)
        if kind is not None:
            return kind
    return None


def find_personal_data(value: Any, path: str) -> PersonalDataFinding | None:
    """Return the first personal number in a JSON value, walking dictionaries in sorted key order.

    A finding in a dictionary key names the dictionary, never the key itself,
    so the error never repeats the number.
    """
    if isinstance(value, str):
        kind = classify_text(value)
        return PersonalDataFinding(path, kind) if kind is not None else None
    if isinstance(value, list):
        for index, item in enumerate(value):
            finding = find_personal_data(item, f"{path}.{index}")
            if finding is not None:
                return finding
        return None
    if isinstance(value, dict):
        for key in sorted(value):
            if isinstance(key, str):
                kind = classify_text(key)
                if kind is not None:
                    return PersonalDataFinding(path, kind, in_key=True)
            finding = find_personal_data(value[key], f"{path}.{key}")
            if finding is not None:
                return finding
    return None


def find_in_transaction(nonce: str, payload: Any) -> PersonalDataFinding | None:
    """Return the first personal number in a transaction's nonce or payload, or None."""
    kind = classify_text(nonce)
    if kind is not None:
        return PersonalDataFinding("nonce", kind)
    if not _holds_personal_number(payload):
        return None
    return find_personal_data(payload, "payload")


def _holds_personal_number(value: Any) -> bool:
    """Return whether any string in a JSON value, dictionary keys included, is flagged by classify_text.

    It applies the test of find_personal_data but builds no field path for each
    item. Only a payload that fails it is walked again for the path.
    """
    if isinstance(value, str):
        return classify_text(value) is not None
    if isinstance(value, list):
        return any(_holds_personal_number(item) for item in value)
    if isinstance(value, dict):
        return any((isinstance(key, str) and classify_text(key) is not None) or _holds_personal_number(item) for key, item in value.items())
    return False
