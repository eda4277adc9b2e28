"""Salted hash commitments to off-chain records.

commitment = sha256(b"xinlian/commit/v1\\x00" + salt + canonical(record)), lowercase hex.

The 32-byte random salt stays off chain with the record, so a commitment on
chain reveals nothing about a guessable record (a phone number, say). The
holder can still prove which record it committed to by showing salt and record.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from node.canonical import canonical_bytes

COMMITMENT_PREFIX = b"xinlian/commit/v1\x00"
SALT_BYTES = 32


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def commit(record: dict[str, Any], salt: bytes) -> str:
    """Return the commitment (64 lowercase hex characters) to `record` under `salt`.

    Raises ValueError for a salt of the wrong size and CanonicalError for a
    record without a canonical JSON form.
    """
    if len(salt) != SALT_BYTES:
        raise ValueError(f"salt must be {SALT_BYTES} bytes, got {len(salt)}")
    return hashlib.sha256(COMMITMENT_PREFIX + salt + canonical_bytes(record)).hexdigest()


def verify_commitment(commitment: str, record: dict[str, Any], salt: bytes) -> bool:
    """Check in constant time that `commitment` is the commitment to `record` under `salt`."""
    return hmac.compare_digest(commitment.lower().encode("ascii"), commit(record, salt).encode("ascii"))
