"""Field rules for personal-data records.

Forbidden fields (religion, genes, fingerprints, blood type, disease, medical
history) are rejected outright, because credit reporting law in China forbids
collecting them. Income, deposit and property fields are accepted only with a
reference to the subject's written consent.

Field names are matched in English, pinyin and Chinese. A name is split into
words at non-alphanumeric characters and at camelCase boundaries, and checked
word by word (so "general" does not match "gene"), and its compacted form is
checked for multi-word and Chinese terms ("bloodType", "血型").
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from node.privacy.errors import PrivacyError

FORBIDDEN_WORDS = frozenset(
    {
        # English
        "religion", "religious", "faith", "gene", "genes", "genetic", "genetics", "genome", "genomic", "dna",
        "fingerprint", "fingerprints", "disease", "diseases", "illness", "medical", "diagnosis", "bloodtype",
        # Pinyin
        "zongjiao", "xinyang", "jiyin", "zhiwen", "xuexing", "jibing", "bingshi", "bingli", "yiliao",
    }
)
FORBIDDEN_FRAGMENTS = (
    "bloodtype", "bloodgroup", "medicalhistory", "healthrecord",
    "宗教", "信仰", "基因", "指纹", "血型", "疾病", "病史", "病历", "医疗", "诊断",
)

WRITTEN_CONSENT_WORDS = frozenset(
    {
        # English
        "income", "salary", "salaries", "wage", "wages", "earnings", "deposit", "deposits", "savings",
        "property", "properties", "realestate", "asset", "assets",
        # Pinyin
        "shouru", "gongzi", "xinshui", "cunkuan", "chuxu", "caichan", "fangchan", "zichan",
    }
)
WRITTEN_CONSENT_FRAGMENTS = ("realestate", "收入", "工资", "薪", "存款", "储蓄", "财产", "房产", "资产")

_WORD_SPLIT = re.compile(r"[^0-9a-zA-Z\u00c0-\uffff]+|(?<=[a-z0-9])(?=[A-Z])")
_DEPTH_MAX = 8


def _words(name: str) -> tuple[set[str], str]:
    words = {word.lower() for word in _WORD_SPLIT.split(name) if word}
    compact = "".join(character for character in name.lower() if character.isalnum())
    return words, compact


def is_forbidden(name: str) -> bool:
    words, compact = _words(name)
    return bool(words & FORBIDDEN_WORDS) or any(fragment in compact for fragment in FORBIDDEN_FRAGMENTS)


def needs_written_consent(name: str) -> bool:
    words, compact = _words(name)
    return bool(words & WRITTEN_CONSENT_WORDS) or any(fragment in compact for fragment in WRITTEN_CONSENT_FRAGMENTS)


def field_paths(value: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """Yield (path, field name) for every object key in `value`, nested objects and lists included."""
    if depth > _DEPTH_MAX:
        raise PrivacyError("invalid_record", field=path, reason=f"record nests deeper than {_DEPTH_MAX} levels")
    if isinstance(value, dict):
        for key in sorted(value):
            child_path = f"{path}.{key}" if path else key
            yield child_path, key
            yield from field_paths(value[key], child_path, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from field_paths(item, f"{path}[{index}]", depth + 1)


def check_fields(record: dict[str, Any], written_consent_ref: str | None) -> None:
    """Reject forbidden fields (forbidden_field) and consent-bound fields without a reference (written_consent_required)."""
    consent_fields = []
    for path, name in field_paths(record):
        if is_forbidden(name):
            raise PrivacyError("forbidden_field", field=path)
        if needs_written_consent(name):
            consent_fields.append(path)
    if consent_fields and not written_consent_ref:
        raise PrivacyError("written_consent_required", fields=consent_fields)
