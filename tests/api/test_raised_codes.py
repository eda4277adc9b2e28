"""Every error code raised with a literal code anywhere in node/ has an English and a Chinese message."""

from __future__ import annotations

import pathlib
import re

from node import api_messages, i18n

NODE_DIR = pathlib.Path(__file__).resolve().parents[2] / "node"
# An error constructor, or the contracts' `fail` helper, called with a literal code first.
RAISE_PATTERN = re.compile(r"\b(TxError|ContractError|PrivacyError|ApiError|MempoolError|CanonicalError|fail)\(\s*\"([a-z0-9_]+)\"")


def raised_codes() -> dict[str, list[str]]:
    """Map each literal error code in node/ to the files that raise it."""
    codes: dict[str, list[str]] = {}
    for path in sorted(NODE_DIR.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in RAISE_PATTERN.finditer(text):
            codes.setdefault(match.group(2), []).append(str(path.relative_to(NODE_DIR.parent)))
    return codes


def test_scan_finds_codes_of_every_layer() -> None:
    codes = raised_codes()
    for code in ("invalid_signature", "mempool_full", "float_not_allowed", "contact_hours", "invalid_read_signature", "transaction_not_found"):
        assert code in codes, code


def test_raised_codes_have_both_messages() -> None:
    api_messages.register_all()
    missing = {code: files for code, files in raised_codes().items() if i18n.registered_entry(code) is None}
    assert missing == {}


def test_raised_codes_messages_are_bilingual() -> None:
    api_messages.register_all()
    for code in sorted(raised_codes()):
        entry = i18n.registered_entry(code)
        assert entry is not None, code
        _, english, chinese = entry
        assert english.strip(), code
        assert english.isascii(), code
        assert any("\u4e00" <= char <= "\u9fff" for char in chinese), code
