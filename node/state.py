"""Contract state: the committed store with its Merkle tree, and write overlays for execution.

Committed state lives in a KeyValueStore under one prefix (default `st/`):

- `st/v/<key utf8>` -> canonical JSON of the value
- `st/l/<bucket, 2 bytes><key utf8>` -> 32-byte value hash (the Merkle leaves, see node.merkle)
- `st/n/<level, 1 byte><index, 2 bytes>` -> 32-byte tree node, absent when it equals the empty hash

`StateStore` never writes by itself: `compute_updates` turns a set of changes
into write operations and the new root, and the chain adds those operations to
the block's single atomic write. During execution, contracts see a
`WorkingState` overlay that records changes; a `child()` is a savepoint that
either merges into its parent or is dropped.

Keys are non-empty strings and sort by code point, which equals UTF-8 byte
order, so the store's order is the State's order. Values are
canonical-JSON-compatible and never None: delete a key instead of storing null.
"""

from __future__ import annotations

import bisect
import heapq
import sys
from typing import Any, Iterator, Mapping

from node.canonical import canonical_bytes, parse_trusted
from node.merkle import EMPTY_HASHES, TREE_DEPTH, MerkleProof, bucket_hash, bucket_of, node_hash, value_hash
from node.storage import KeyValueStore, WriteOp

STATE_PREFIX = b"st/"
KEY_LENGTH_MAX = 1024  # UTF-8 bytes of one state key


class StateError(ValueError):
    """A state key or value that cannot be stored, or a write to a read-only state."""


def _check_key(key: Any) -> bytes:
    if not isinstance(key, str) or not key:
        raise StateError(f"state key must be a non-empty string, got {key!r}")
    encoded = key.encode("utf-8")
    if len(encoded) > KEY_LENGTH_MAX:
        raise StateError(f"state key is {len(encoded)} bytes, the maximum is {KEY_LENGTH_MAX}")
    return encoded


def _encode_value(key: str, value: Any) -> bytes:
    if value is None:
        raise StateError(f"cannot store null at {key!r}; delete the key instead")
    return canonical_bytes(value)


class StateStore:
    """The committed state in a KeyValueStore, with its Merkle tree."""

    def __init__(self, store: KeyValueStore, prefix: bytes = STATE_PREFIX) -> None:
        self._store = store
        self._values = prefix + b"v/"
        self._leaves = prefix + b"l/"
        self._nodes = prefix + b"n/"
        self._level_prefixes = [self._nodes + bytes([level]) for level in range(TREE_DEPTH + 1)]

    def get_bytes(self, key: str) -> bytes | None:
        return self._store.get(self._values + _check_key(key))

    def scan_bytes(self, prefix: str, start: str | None = None, end: str | None = None) -> Iterator[tuple[str, bytes]]:
        """Yield (key, canonical value bytes) with `prefix`, ascending, within [start, end)."""
        store_prefix = self._values + prefix.encode("utf-8")
        store_start = self._values + start.encode("utf-8") if start is not None else None
        store_stop = self._values + end.encode("utf-8") if end is not None else None
        offset = len(self._values)
        for store_key, value in self._store.iterate(store_prefix, store_start, store_stop):
            yield store_key[offset:].decode("utf-8"), value

    def root(self) -> str:
        return self._node(0, 0).hex()

    def _node(self, level: int, index: int) -> bytes:
        stored = self._store.get(self._node_key(level, index))
        return stored if stored is not None else EMPTY_HASHES[level]

    def _node_key(self, level: int, index: int) -> bytes:
        return self._level_prefixes[level] + index.to_bytes(2, "big")

    def _bucket_leaves(self, bucket: int) -> dict[bytes, bytes]:
        prefix = self._leaves + bucket.to_bytes(2, "big")
        offset = len(prefix)
        return {key[offset:]: leaf_hash for key, leaf_hash in self._store.iterate(prefix)}

    def prove(self, key: str) -> tuple[Any | None, MerkleProof]:
        """Return the key's current value (None if absent) and a proof against `root()`."""
        _check_key(key)
        bucket = bucket_of(key)
        leaves = self._bucket_leaves(bucket)
        siblings = []
        index = bucket
        for level in range(TREE_DEPTH, 0, -1):
            siblings.append(self._node(level, index ^ 1).hex())
            index //= 2
        proof = MerkleProof(
            bucket=bucket,
            leaves=tuple((k.decode("utf-8"), h.hex()) for k, h in sorted(leaves.items())),
            siblings=tuple(siblings),
        )
        raw = self.get_bytes(key)
        return (parse_trusted(raw) if raw is not None else None), proof

    def compute_updates(self, changes: Mapping[str, bytes | None]) -> tuple[list[WriteOp], str]:
        """Turn changes (key -> canonical value bytes, or None to delete) into write ops and the new root.

        Reads only the changed buckets and the 16 tree nodes above each, so the
        cost grows with the number of changed keys, not the size of the state.
        """
        ops: list[WriteOp] = []
        by_bucket: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for key in sorted(changes):
            key_bytes = _check_key(key)
            value = changes[key]
            bucket = bucket_of(key)
            by_bucket.setdefault(bucket, []).append((key_bytes, value))
            bucket_prefix = self._leaves + bucket.to_bytes(2, "big")
            if value is None:
                ops.append((self._values + key_bytes, None))
                ops.append((bucket_prefix + key_bytes, None))
            else:
                ops.append((self._values + key_bytes, value))
                ops.append((bucket_prefix + key_bytes, value_hash(value)))

        level_hashes: dict[int, bytes] = {}
        for bucket in sorted(by_bucket):
            leaves = self._bucket_leaves(bucket)
            for key_bytes, value in by_bucket[bucket]:
                if value is None:
                    leaves.pop(key_bytes, None)
                else:
                    leaves[key_bytes] = value_hash(value)
            level_hashes[bucket] = bucket_hash(sorted(leaves.items()))

        for level in range(TREE_DEPTH, 0, -1):
            parents: dict[int, bytes] = {}
            for index in sorted(level_hashes):
                ops.append(self._node_op(level, index, level_hashes[index]))
                parent = index // 2
                if parent in parents:
                    continue
                sibling = index ^ 1
                sibling_hash = level_hashes[sibling] if sibling in level_hashes else self._node(level, sibling)
                left, right = (level_hashes[index], sibling_hash) if index % 2 == 0 else (sibling_hash, level_hashes[index])
                parents[parent] = node_hash(left, right)
            level_hashes = parents
        root = level_hashes.get(0, self._node(0, 0))
        if level_hashes:
            ops.append(self._node_op(0, 0, root))
        return ops, root.hex()

    def _node_op(self, level: int, index: int, node: bytes) -> WriteOp:
        key = self._node_key(level, index)
        return (key, None) if node == EMPTY_HASHES[level] else (key, node)


class _ReadableState:
    """Shared read methods over an object with get_bytes and scan_bytes."""

    def get_bytes(self, key: str) -> bytes | None:
        raise NotImplementedError

    def scan_bytes(self, prefix: str, start: str | None = None, end: str | None = None) -> Iterator[tuple[str, bytes]]:
        raise NotImplementedError

    def get(self, key: str) -> Any | None:
        """Return a fresh copy of the value at `key`, or None; changing it does not change state."""
        raw = self.get_bytes(key)
        return parse_trusted(raw) if raw is not None else None

    def scan(self, prefix: str, start: str | None = None, end: str | None = None) -> Iterator[tuple[str, Any]]:
        """Yield (key, value) for keys with `prefix`, ascending, within [start, end); start and end are whole keys."""
        for key, raw in self.scan_bytes(prefix, start, end):
            yield key, parse_trusted(raw)

    def child(self) -> "WorkingState":
        return WorkingState(self)


class ReadOnlyState(_ReadableState):
    """The committed state at the chain head, for queries and mempool checks.

    `child()` gives a scratch overlay whose writes are never stored.
    """

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def get_bytes(self, key: str) -> bytes | None:
        return self._store.get_bytes(key)

    def scan_bytes(self, prefix: str, start: str | None = None, end: str | None = None) -> Iterator[tuple[str, bytes]]:
        return self._store.scan_bytes(prefix, start, end)

    def put(self, key: str, value: Any) -> None:
        raise StateError(f"state at the chain head is read-only; cannot put {key!r}")

    def delete(self, key: str) -> None:
        raise StateError(f"state at the chain head is read-only; cannot delete {key!r}")


class WorkingState(_ReadableState):
    """A write overlay on a base state; `changes()` lists what it would change in the base.

    The written keys are also kept in a sorted list, so a scan finds its range
    by bisection instead of sorting every pending write.
    """

    def __init__(self, base: _ReadableState | StateStore) -> None:
        self._base = base
        self._writes: dict[str, bytes | None] = {}
        self._sorted_keys: list[str] = []

    def get_bytes(self, key: str) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._base.get_bytes(key)

    def put(self, key: str, value: Any) -> None:
        _check_key(key)
        self._write(key, _encode_value(key, value))

    def delete(self, key: str) -> None:
        _check_key(key)
        self._write(key, None)

    def _write(self, key: str, value: bytes | None) -> None:
        if key not in self._writes:
            bisect.insort(self._sorted_keys, key)
        self._writes[key] = value

    def scan_bytes(self, prefix: str, start: str | None = None, end: str | None = None) -> Iterator[tuple[str, bytes]]:
        overlay = self._keys_in_range(prefix, start, end)
        base = self._base.scan_bytes(prefix, start, end)
        yield from _merge_sorted(base, overlay, self._writes)

    def _keys_in_range(self, prefix: str, start: str | None, end: str | None) -> list[str]:
        """Return a copy of the written keys with `prefix` within [start, end), ascending."""
        low = prefix if start is None else max(prefix, start)
        high = _prefix_end(prefix)
        if end is not None and (high is None or end < high):
            high = end
        first = bisect.bisect_left(self._sorted_keys, low)
        last = len(self._sorted_keys) if high is None else bisect.bisect_left(self._sorted_keys, high, first)
        return self._sorted_keys[first:last]

    def merge(self) -> None:
        """Apply this savepoint's writes to its base overlay."""
        if not isinstance(self._base, WorkingState):
            raise StateError("only a child of a working state can merge; commit a top-level state through the chain")
        parent = self._base
        new_keys = [key for key in self._sorted_keys if key not in parent._writes]
        parent._writes.update(self._writes)
        if len(new_keys) <= _INSORT_KEYS_MAX:
            for key in new_keys:
                bisect.insort(parent._sorted_keys, key)
        else:
            parent._sorted_keys = list(heapq.merge(parent._sorted_keys, new_keys))
        self._writes = {}
        self._sorted_keys = []

    def changes(self) -> dict[str, bytes | None]:
        """Return key -> canonical value bytes (None = deleted), sorted by key."""
        return {key: self._writes[key] for key in self._sorted_keys}


# Above this many new keys, a merge rebuilds the parent's sorted key list in one pass instead of inserting each key.
_INSORT_KEYS_MAX = 64


def _prefix_end(prefix: str) -> str | None:
    """Return the least string above every string that starts with `prefix`, or None if there is none."""
    stripped = prefix.rstrip(chr(sys.maxunicode))
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


def _merge_sorted(
    base: Iterator[tuple[str, bytes]], overlay_keys: list[str], writes: Mapping[str, bytes | None]
) -> Iterator[tuple[str, bytes]]:
    position = 0
    for key, value in base:
        while position < len(overlay_keys) and overlay_keys[position] < key:
            overlay_value = writes[overlay_keys[position]]
            if overlay_value is not None:
                yield overlay_keys[position], overlay_value
            position += 1
        if position < len(overlay_keys) and overlay_keys[position] == key:
            overlay_value = writes[key]
            position += 1
            if overlay_value is not None:
                yield key, overlay_value
            continue
        yield key, value
    for key in overlay_keys[position:]:
        overlay_value = writes[key]
        if overlay_value is not None:
            yield key, overlay_value
