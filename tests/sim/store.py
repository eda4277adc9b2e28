"""Simulated durable storage of one node: what survives a crash.

The store keeps exactly the consensus records an Output asked to persist, and
each executed block with the state digest after it, as the real node's LevelDB
write batch does. Values are copied through JSON on write, so a replica that
mutates a dict after returning it cannot change what was "written", and a
record that has no JSON form fails loudly.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_STATE_DIGEST = hashlib.sha256(b"xinlian/sim/genesis").hexdigest()


def next_state_digest(previous_digest: str, payload: bytes) -> str:
    """Running hash over executed payloads: the simulated state root."""
    return hashlib.sha256(previous_digest.encode("ascii") + b"\x00" + payload).hexdigest()


def _copy_json(value: dict[str, Any]) -> dict[str, Any]:
    # NOTE: the C JSON encoder accepts floats, so unlike the node's canonical JSON this
    # copy does not reject them. The pure-Python canonical check was too large a share of run time.
    return json.loads(json.dumps(value, allow_nan=False, sort_keys=True))


class DurableStore:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.blocks: dict[int, Any] = {}  # seq -> CertifiedBlock, executed
        self.state_digests: dict[int, str] = {}
        self.last_executed_seq = 0
        self.last_state_digest = GENESIS_STATE_DIGEST
        self.writes = 0

    def apply(self, persist: list[tuple[str, dict[str, Any] | None]]) -> None:
        """Write records durably; a value of None deletes the key."""
        for key, value in persist:
            self.writes += 1
            if value is None:
                self.records.pop(key, None)
            else:
                self.records[key] = _copy_json(value)

    def record_executed(self, block: Any, state_digest: str) -> None:
        self.blocks[block.seq] = block
        self.state_digests[block.seq] = state_digest
        self.last_executed_seq = block.seq
        self.last_state_digest = state_digest

    def copy_records(self) -> dict[str, dict[str, Any]]:
        return {key: _copy_json(value) for key, value in sorted(self.records.items())}

    def blocks_from(self, from_seq: int, to_seq: int, count_max: int) -> list[Any]:
        """Executed blocks from `from_seq` to `to_seq` inclusive, stopping at a gap or after count_max."""
        blocks = []
        seq = max(from_seq, 1)
        while seq <= to_seq and len(blocks) < count_max and seq in self.blocks:
            blocks.append(self.blocks[seq])
            seq += 1
        return blocks
