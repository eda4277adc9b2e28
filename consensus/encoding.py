"""Canonical bytes for consensus signatures and the default payload digest.

The encoding matches the node's canonical JSON (UTF-8, sorted keys, no
whitespace, integers only) but lives here because `consensus` imports nothing
from `node`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SIGNATURE_DOMAIN = b"xinlian/consensus/v1\x00"


def canonical_bytes(value: Any) -> bytes:
    """Encode a JSON-compatible value with sorted keys and no whitespace."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def signing_bytes(chain_id: str, fields: dict[str, Any]) -> bytes:
    """Build the bytes a consensus signature covers.

    The domain prefix keeps these signatures apart from transaction
    (`xinlian/tx/v1\\x00`) and peer-handshake signatures, and the chain id keeps
    a vote on one chain from being replayed on another.
    """
    return SIGNATURE_DOMAIN + chain_id.encode("utf-8") + b"\x00" + canonical_bytes(fields)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
