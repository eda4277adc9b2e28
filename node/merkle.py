"""The state Merkle tree: a fixed two-level construction whose updates cost O(changed keys).

Construction (all hashes SHA-256, 32 bytes; "||" is concatenation):

1. A state entry is a string key and a JSON value. Its leaf is
   `(key_utf8, value_hash)` with `value_hash = SHA-256(canonical_bytes(value))`.
2. Leaves are grouped into 65,536 buckets. The bucket of a key is the first two
   bytes of `SHA-256(key_utf8)`, read as a big-endian integer.
3. A bucket's hash is
   `SHA-256(0x01 || for each leaf in ascending key_utf8 order: len(key_utf8) as 4-byte big-endian || key_utf8 || value_hash)`.
   An empty bucket hashes to `SHA-256(0x01)`.
4. The bucket hashes are the leaves of a complete binary tree of depth 16:
   bucket i is the node at level 16, index i, and the node at level d, index i is
   `SHA-256(0x02 || node(d+1, 2i) || node(d+1, 2i+1))`. The state root is the
   node at level 0, index 0, in lowercase hex. The empty state has the root of
   a tree of empty buckets.

A proof for a key is its bucket index, every leaf of that bucket, and the 16
sibling hashes from level 16 up to level 1. It proves a value (the key is among
the leaves with that value hash) or an absence (the key is not among them).
With ~15 keys per bucket at 1M keys, an update re-hashes the changed buckets
and 16 nodes above each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

from node.canonical import CanonicalError, canonical_bytes

TREE_DEPTH = 16
BUCKET_COUNT = 1 << TREE_DEPTH
_BUCKET_TAG = b"\x01"
_NODE_TAG = b"\x02"


_sha256 = hashlib.sha256


def bucket_of(key: str) -> int:
    return int.from_bytes(_sha256(key.encode("utf-8")).digest()[:2], "big")


def value_hash(value_bytes: bytes) -> bytes:
    """Hash a value given as its canonical JSON bytes."""
    return _sha256(value_bytes).digest()


def bucket_hash(leaves: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Hash a bucket from (key_utf8, value_hash) leaves already sorted by key_utf8."""
    digest = hashlib.sha256(_BUCKET_TAG)
    for key_bytes, leaf_value_hash in leaves:
        digest.update(len(key_bytes).to_bytes(4, "big"))
        digest.update(key_bytes)
        digest.update(leaf_value_hash)
    return digest.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE_TAG + left + right).digest()


def _empty_hashes() -> list[bytes]:
    hashes = [b""] * (TREE_DEPTH + 1)
    hashes[TREE_DEPTH] = bucket_hash([])
    for level in range(TREE_DEPTH - 1, -1, -1):
        hashes[level] = node_hash(hashes[level + 1], hashes[level + 1])
    return hashes


# EMPTY_HASHES[d] is the hash of any node at level d whose buckets are all empty.
EMPTY_HASHES = _empty_hashes()
EMPTY_ROOT = EMPTY_HASHES[0].hex()


@dataclass(frozen=True)
class MerkleProof:
    bucket: int
    leaves: tuple[tuple[str, str], ...]  # (key, value hash hex), ascending by key
    siblings: tuple[str, ...]  # hex, from level 16 up to level 1

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "leaves": [list(leaf) for leaf in self.leaves], "siblings": list(self.siblings)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MerkleProof":
        """Decode a proof from its JSON form. Raises ValueError on a malformed proof."""
        try:
            leaves = tuple((str(key), str(hash_hex)) for key, hash_hex in data["leaves"])
            return cls(bucket=int(data["bucket"]), leaves=leaves, siblings=tuple(str(s) for s in data["siblings"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed Merkle proof: {exc}") from None


def root_from_proof(proof: MerkleProof) -> str | None:
    """Fold a proof up to a root hex, or return None if the proof is malformed."""
    if not 0 <= proof.bucket < BUCKET_COUNT or len(proof.siblings) != TREE_DEPTH:
        return None
    try:
        leaves = [(key.encode("utf-8"), bytes.fromhex(hash_hex)) for key, hash_hex in proof.leaves]
        siblings = [bytes.fromhex(sibling) for sibling in proof.siblings]
    except ValueError:
        return None
    if any(len(h) != 32 for _, h in leaves) or any(len(s) != 32 for s in siblings):
        return None
    keys = [key for key, _ in leaves]
    if keys != sorted(set(keys)) or any(bucket_of(key.decode("utf-8")) != proof.bucket for key in keys):
        return None
    current = bucket_hash(leaves)
    index = proof.bucket
    for sibling in siblings:
        current = node_hash(current, sibling) if index % 2 == 0 else node_hash(sibling, current)
        index //= 2
    return current.hex()


def verify_proof(root: str, key: str, value: Any | None, proof: MerkleProof) -> bool:
    """Check that state with `root` maps `key` to `value`, or has no `key` when `value` is None."""
    if bucket_of(key) != proof.bucket:
        return False
    if root_from_proof(proof) != root:
        return False
    found = dict(proof.leaves).get(key)
    if value is None:
        return found is None
    try:
        expected = value_hash(canonical_bytes(value)).hex()
    except CanonicalError:
        return False
    return found == expected
