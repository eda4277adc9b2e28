"""Block proposals (the consensus payload) and block headers.

A proposal payload is `canonical_bytes({"height", "timestamp_ms", "proposer", "txs"})`
where `txs` lists transaction envelopes and `proposer` is a member id. The empty
payload `b""` is a null block, which a view change may commit: it executes with
no transactions at the parent's time + 1 ms.

After execution the node builds a header
`{height, prev_hash, timestamp_ms, proposer, view, payload_digest, tx_root, state_root}`;
`block_hash` is the SHA-256 hex of its canonical encoding. The header's
`timestamp_ms` is the effective block time, `max(proposal timestamp, parent time + 1)`,
so block time strictly increases even if a certified proposal's timestamp does not.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence, cast

from node.canonical import CanonicalError, canonical_bytes, canonical_bytes_of_checked, parse_json, sha256_hex
from node.contracts.personal_data import find_in_transaction
from node.tx import TX_EXPIRY_WINDOW_MS, TxError, TxVerifier, VerifiedTransaction, check_expiry

NULL_PAYLOAD = b""
BLOCK_TX_MAX = 2_000
BLOCK_SIZE_MAX_BYTES = 8 * 1024 * 1024
ZERO_HASH = "0" * 64
_PROPOSAL_FIELDS = {"height", "timestamp_ms", "proposer", "txs"}


class BlockError(ValueError):
    """A payload that is not a valid proposal; `code` is the stable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def reason(self) -> str:
        return f"{self.code}: {self}"


@dataclass(frozen=True)
class Proposal:
    height: int
    timestamp_ms: int
    proposer: str  # member id of the primary that proposed it
    txs: tuple[VerifiedTransaction, ...]


def payload_digest(payload: bytes) -> str:
    return sha256_hex(payload)


def effective_block_time(timestamp_ms: int, parent_time_ms: int) -> int:
    return max(timestamp_ms, parent_time_ms + 1)


def encode_proposal(height: int, timestamp_ms: int, proposer: str, txs: Sequence[VerifiedTransaction]) -> bytes:
    return canonical_bytes(
        {"height": height, "timestamp_ms": timestamp_ms, "proposer": proposer, "txs": [vtx.envelope for vtx in txs]}
    )


def decode_proposal(
    payload: bytes,
    verifier: TxVerifier,
    block_tx_max: int = BLOCK_TX_MAX,
    block_size_max_bytes: int = BLOCK_SIZE_MAX_BYTES,
    parsed: Any = None,
    certified: bool = False,
) -> Proposal:
    """Decode a non-null payload and verify every transaction's encoding and signature. Raises BlockError.

    `parsed` is `parse_json(payload)` when the caller has it. A payload that
    decoded before on this node comes from the verifier's cache, so the
    proposal check and the block's execution decode it once. `certified` is
    for a payload with a valid commit certificate, whose signatures a quorum
    checked: they are not checked again (TxVerifier.verify_checked).
    """
    if len(payload) > block_size_max_bytes:
        raise BlockError("block_too_large", f"payload is {len(payload)} bytes, the maximum is {block_size_max_bytes}")
    digest = payload_digest(payload)
    # A decode that checked signatures serves a certified payload too, but not the other way round.
    cache_key = (digest, block_tx_max, block_size_max_bytes, certified)
    cached = verifier.cached_proposal((digest, block_tx_max, block_size_max_bytes, False))
    if cached is None and certified:
        cached = verifier.cached_proposal(cache_key)
    if cached is not None:
        return cast(Proposal, cached)
    try:
        value = parse_json(payload) if parsed is None else parsed
    except CanonicalError as exc:
        raise BlockError("invalid_payload", f"payload is not strict JSON: {exc}") from None
    if not isinstance(value, dict) or set(value) != _PROPOSAL_FIELDS:
        raise BlockError("invalid_payload", f"payload must be an object with exactly the fields {sorted(_PROPOSAL_FIELDS)}")
    if canonical_bytes_of_checked(value) != payload:
        raise BlockError("invalid_payload", "payload is not in canonical encoding")
    height, timestamp_ms, proposer, envelopes = value["height"], value["timestamp_ms"], value["proposer"], value["txs"]
    if type(height) is not int or height < 1:
        raise BlockError("invalid_payload", f"height must be a positive integer, got {height!r}")
    if type(timestamp_ms) is not int or timestamp_ms < 0:
        raise BlockError("invalid_payload", f"timestamp_ms must be a non-negative integer, got {timestamp_ms!r}")
    if not isinstance(proposer, str) or not proposer:
        raise BlockError("invalid_payload", "proposer must be a member id")
    if not isinstance(envelopes, list):
        raise BlockError("invalid_payload", "txs must be a list of transaction envelopes")
    if len(envelopes) > block_tx_max:
        raise BlockError("too_many_txs", f"block has {len(envelopes)} transactions, the maximum is {block_tx_max}")
    txs = []
    for index, envelope in enumerate(envelopes):
        try:
            txs.append(verifier.verify_checked(envelope, certified=certified))
        except TxError as exc:
            raise BlockError("invalid_tx", f"transaction {index} is invalid: {exc.code}: {exc}") from None
    proposal = Proposal(height=height, timestamp_ms=timestamp_ms, proposer=proposer, txs=tuple(txs))
    verifier.remember_proposal(cache_key, proposal)
    return proposal


def check_proposal(
    payload: bytes,
    *,
    height: int,
    parent_time_ms: int,
    now_ms: int,
    drift_ms: int,
    verifier: TxVerifier,
    expected_proposer: str | None = None,
    nonce_committed: Callable[[str, str], bool] = lambda sender, nonce: False,
    block_tx_max: int = BLOCK_TX_MAX,
    block_size_max_bytes: int = BLOCK_SIZE_MAX_BYTES,
    expiry_window_ms: int = TX_EXPIRY_WINDOW_MS,
) -> str | None:
    """Check a proposed payload for sequence `height`; return a rejection reason or None.

    Pure apart from the signature cache, so the daemon can use it as the
    consensus `validate_payload`. `nonce_committed(sender, nonce)` reports
    whether the chain already committed that pair. The null payload is accepted.

    NOTE: with pipelined proposals the parent may not be executed yet. The caller
    then passes the parent proposal's timestamp as `parent_time_ms` and makes
    `nonce_committed` also cover the nonces of proposals still in flight.
    """
    if payload == NULL_PAYLOAD:
        return None
    try:
        proposal = decode_proposal(payload, verifier, block_tx_max, block_size_max_bytes)
    except BlockError as exc:
        return exc.reason()
    if proposal.height != height:
        return f"wrong_height: proposal is for height {proposal.height}, expected {height}"
    if expected_proposer is not None and proposal.proposer != expected_proposer:
        return f"wrong_proposer: proposal names {proposal.proposer!r}, the primary is {expected_proposer!r}"
    if proposal.timestamp_ms <= parent_time_ms:
        return f"timestamp_not_after_parent: {proposal.timestamp_ms} ms is not after the parent's {parent_time_ms} ms"
    if abs(proposal.timestamp_ms - now_ms) > drift_ms:
        return f"timestamp_drift: {proposal.timestamp_ms} ms is more than {drift_ms} ms from the local clock {now_ms} ms"
    seen: set[tuple[str, str]] = set()
    for index, vtx in enumerate(proposal.txs):
        # Admission already rejects these; a primary that bypasses admission must not get their bytes into a
        # block, where they would stay on every node. The reason names the field, never the value.
        finding = find_in_transaction(vtx.nonce, vtx.tx.payload)
        if finding is not None:
            return f"personal_data_in_payload: transaction {index} carries a {finding.kind} in {finding.field}"
        pair = (vtx.sender, vtx.nonce)
        if pair in seen:
            return f"duplicate_nonce: transaction {index} repeats nonce {vtx.nonce!r} of sender {vtx.sender}"
        seen.add(pair)
        if nonce_committed(vtx.sender, vtx.nonce):
            return f"duplicate_nonce: transaction {index} nonce {vtx.nonce!r} of sender {vtx.sender} is already committed"
        expiry_error = check_expiry(vtx.expires_at, proposal.timestamp_ms, expiry_window_ms)
        if expiry_error is not None:
            return f"{expiry_error.code}: transaction {index}: {expiry_error}"
    return None


def tx_root(tx_ids: Sequence[str]) -> str:
    """Merkle root of a block's tx ids in block order.

    Leaf = SHA-256(0x00 || tx_id bytes); node = SHA-256(0x01 || left || right);
    a level with an odd count carries its last node up unchanged; an empty block
    has the root SHA-256 of the empty string.
    """
    if not tx_ids:
        return hashlib.sha256(b"").hexdigest()
    level = [hashlib.sha256(b"\x00" + bytes.fromhex(tx_id)).digest() for tx_id in tx_ids]
    while len(level) > 1:
        next_level = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            next_level.append(level[-1])
        level = next_level
    return level[0].hex()


@dataclass(frozen=True)
class BlockHeader:
    height: int
    prev_hash: str
    timestamp_ms: int  # effective block time
    proposer: str  # member id; "" for genesis and null blocks
    view: int
    payload_digest: str
    tx_root: str
    state_root: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BlockHeader":
        return cls(**data)

    def block_hash(self) -> str:
        return sha256_hex(canonical_bytes(self.to_dict()))
