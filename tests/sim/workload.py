"""Client workload and the block payload format used inside the simulator.

A block payload is the canonical JSON list of the transaction ids it carries.
The empty payload b"" is the null block a new primary uses to fill a gap.
A transaction id is valid when the client really submitted it. An id that
starts with JOIN_PREFIX is a governance decision that adds the observer node
to the validator set. That check
replaces the client signature check of a real node.
"""

from __future__ import annotations

import json
import random

from node.canonical import CanonicalError, canonical_bytes, parse_json

BATCH_SIZE_MAX = 4
JOIN_PREFIX = "join"
PAYLOAD_BYTES_MAX = 4096


class PayloadError(ValueError):
    """A block payload that is not a list of known transaction ids."""


def encode_batch(transaction_ids: list[str]) -> bytes:
    return canonical_bytes(list(transaction_ids))


def decode_batch(payload: bytes) -> list[str]:
    """Parse a block payload into transaction ids, or raise PayloadError if it is malformed."""
    if payload == b"":
        return []
    if len(payload) > PAYLOAD_BYTES_MAX:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds {PAYLOAD_BYTES_MAX}")
    try:
        value = parse_json(payload)
    except CanonicalError as exc:
        raise PayloadError(f"payload is not canonical JSON: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PayloadError("payload is not a list of transaction ids")
    if len(value) > BATCH_SIZE_MAX:
        raise PayloadError(f"batch of {len(value)} transactions exceeds {BATCH_SIZE_MAX}")
    if len(set(value)) != len(value):
        raise PayloadError("batch repeats a transaction id")
    return value


class Workload:
    """The client: submits unique transactions and remembers each one's submit tick."""

    def __init__(self, rng: random.Random, seed: int, submit_probability: float) -> None:
        self._rng = rng
        self._seed = seed
        self.submit_probability = submit_probability
        self.submitted: dict[str, int] = {}

    def maybe_submit(self, now: int) -> str | None:
        if self._rng.random() >= self.submit_probability:
            return None
        return self.submit(now)

    def submit(self, now: int, prefix: str = "tx") -> str:
        transaction_id = f"{prefix}-{self._seed}-{len(self.submitted)}"
        self.submitted[transaction_id] = now
        return transaction_id

    def validate_payload(self, seq: int, payload: bytes) -> str | None:
        """Return why `payload` is not an acceptable block at `seq`, or None if it is."""
        try:
            transaction_ids = decode_batch(payload)
        except PayloadError as exc:
            return str(exc)
        for transaction_id in transaction_ids:
            if transaction_id not in self.submitted:
                return f"unknown transaction {transaction_id!r} at seq {seq}"
        return None


def payload_summary(payload: bytes) -> str:
    """Short printable form of a payload for failure messages."""
    text = payload[:80].decode("utf-8", errors="replace")
    return json.dumps(text) + ("..." if len(payload) > 80 else "")
