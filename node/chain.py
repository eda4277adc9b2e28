"""The chain store: executes committed blocks and keeps blocks, receipts, indexes and state in one KeyValueStore.

Each committed block becomes ONE synced write batch holding the block and its
certificate, the state changes with their Merkle updates, an undo record of
the state it replaced, the header, receipts, events, the tx index and the new
head. Store layout (heights are 16-digit zero-padded decimal):

- `c/head` header of the head block; `c/state_height` height the state belongs to;
  `c/genesis` the genesis and its hash
- `b/p/<h>` payload bytes; `b/m/<h>` {seq, view, digest, certificate}; `b/h/<h>` header;
  `b/r/<h>` receipts; `b/e/<h>` events; `b/u/<h>` undo record (kept for the head block only)
- `t/<tx_id>` {height, index} of the first inclusion; `k/<key>` consensus records; `st/...` state

On open, `Chain` checks that head, state and block records agree. If a write
was cut between those groups, it rolls the state back with the undo record
when needed and re-executes the stored block. LevelDB applies a batch
atomically, so only the test hook `crash_after` can cut a write.

Replay protection lives in state, so it is covered by the state root:
`sys/replay/<sender>/<nonce>` -> expires_at, and
`sys/replay_expiry/<expires_at, 20 digits>/<sender>/<nonce>` -> 1 for pruning
at block time. Contracts must not write under `sys/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from node.block import (
    NULL_PAYLOAD,
    ZERO_HASH,
    BlockError,
    BlockHeader,
    decode_proposal,
    effective_block_time,
    payload_digest,
    tx_root,
)
from node.canonical import CanonicalError, canonical_bytes, parse_json, parse_trusted
from node.execution import BlockContext, BlockResult, ContractError, Event, Executor, Receipt, ValidatorUpdate
from node.genesis import Genesis, genesis_hash
from node.merkle import MerkleProof
from node.state import ReadOnlyState, StateStore, WorkingState
from node.storage import KeyValueStore, WriteOp
from node.tx import TxVerifier, VerifiedTransaction, check_expiry

logger = logging.getLogger("xinlian.chain")

CRASH_POINTS = ("block", "state", "head")
REPLAY_PREFIX = "sys/replay/"
REPLAY_EXPIRY_PREFIX = "sys/replay_expiry/"

_HEAD = b"c/head"
_STATE_HEIGHT = b"c/state_height"
_GENESIS = b"c/genesis"
_TX_INDEX = b"t/"
_CONSENSUS = b"k/"


class ChainError(RuntimeError):
    """A misuse of the chain (out-of-order commit) or a store that cannot be repaired."""


class SimulatedCrash(Exception):
    """Raised by the `crash_after` test hook after a partial write."""


def _height_key(kind: bytes, height: int) -> bytes:
    return b"b/" + kind + b"/" + f"{height:016d}".encode()


def _encode(value: Any) -> bytes:
    return canonical_bytes(value)


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    """Return details unchanged if they have a canonical form, else with values turned into strings."""
    try:
        canonical_bytes(details)
        return details
    except CanonicalError:
        return {str(key): str(value) for key, value in sorted(details.items(), key=lambda item: str(item[0]))}


@dataclass(frozen=True)
class BlockEvent:
    height: int
    tx_id: str | None  # None for events of the block's time step (begin_block / end_block)
    event: Event

    def to_dict(self) -> dict[str, Any]:
        return {"tx_id": self.tx_id, "type": self.event.type, "data": self.event.data, "members": list(self.event.members)}


@dataclass
class CommitResult:
    header: BlockHeader
    receipts: list[Receipt]
    events: list[BlockEvent]  # in execution order: begin_block, each transaction, end_block
    validator_update: ValidatorUpdate | None = None
    txs: list[VerifiedTransaction] = field(default_factory=list)


@dataclass(frozen=True)
class StoredBlock:
    """A committed block as consensus certified it, for peers' catch-up."""

    seq: int
    view: int
    digest: str
    payload: bytes
    certificate: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        """Return the wire form of consensus.CertifiedBlock (payload as hex), for CertifiedBlock.from_wire."""
        return {"seq": self.seq, "view": self.view, "digest": self.digest, "payload": self.payload.hex(), "certificate": self.certificate}


@dataclass(frozen=True)
class TxLocation:
    height: int
    index: int
    receipt: dict[str, Any]


def receipt_to_dict(receipt: Receipt) -> dict[str, Any]:
    return {
        "tx_id": receipt.tx_id,
        "ok": receipt.ok,
        "error_code": receipt.error_code,
        "error_details": receipt.error_details,
        "events": [{"type": e.type, "data": e.data, "members": list(e.members)} for e in receipt.events],
    }


@dataclass
class _ExecutedBlock:
    header: BlockHeader
    receipts: list[Receipt]
    events: list[BlockEvent]
    txs: list[VerifiedTransaction]
    changes: dict[str, bytes | None]
    state_ops: list[WriteOp]
    validator_update: ValidatorUpdate | None


class Chain:
    """Blocks, receipts, indexes and state of one node.

    `executor` is a node.execution.Executor (the real one is
    node.contracts.XinlianExecutor). `crash_after` is a test hook: one of
    CRASH_POINTS makes every commit write only the groups up to that point and
    then raise SimulatedCrash.
    """

    def __init__(
        self,
        store: KeyValueStore,
        genesis: Genesis,
        executor: Executor,
        verifier: TxVerifier | None = None,
        crash_after: str | None = None,
    ) -> None:
        if crash_after is not None and crash_after not in CRASH_POINTS:
            raise ValueError(f"crash_after must be one of {CRASH_POINTS}, got {crash_after!r}")
        self._store = store
        self.genesis = genesis
        self._executor = executor
        self._verifier = verifier or TxVerifier(genesis.chain_id, genesis.limits.tx_size_max_bytes, expiry_window_ms=genesis.limits.tx_expiry_window_ms)
        self._state_store = StateStore(store)
        self._crash_after: str | None = None
        self._head = self._open()
        self._crash_after = crash_after

    # ----- opening and recovery -----

    def _open(self) -> BlockHeader:
        stored_genesis = self._store.get(_GENESIS)
        expected_hash = genesis_hash(self.genesis)
        if stored_genesis is None:
            return self._init_genesis(expected_hash)
        stored_hash = parse_json(stored_genesis)["hash"]
        if stored_hash != expected_hash:
            raise ChainError(
                f"the data directory contains a chain with genesis hash {stored_hash}, but the genesis file has hash {expected_hash}; "
                "use the genesis this node was created with, or a new data directory"
            )
        head = self._recover()
        stored_header = self._store.get(_height_key(b"h", head.height))
        if stored_header is None or BlockHeader.from_dict(parse_json(stored_header)) != head:
            raise ChainError(f"the head record does not match the stored header of block {head.height}; the data directory is damaged")
        if self._state_store.root() != head.state_root:
            raise ChainError(
                f"state root {self._state_store.root()} does not match the head block {head.height} state root {head.state_root}; "
                "the data directory is damaged"
            )
        return head

    def _init_genesis(self, expected_hash: str) -> BlockHeader:
        working = WorkingState(self._state_store)
        try:
            self._executor.init_genesis(working, self.genesis.to_dict())
        except ContractError as exc:
            raise ChainError(f"the contracts rejected the genesis: {exc.code} {exc.details}; fix the genesis file") from None
        state_ops, state_root = self._state_store.compute_updates(working.changes())
        header = BlockHeader(
            height=0,
            prev_hash=ZERO_HASH,
            timestamp_ms=self.genesis.genesis_time_ms,
            proposer="",
            view=0,
            payload_digest=expected_hash,
            tx_root=tx_root([]),
            state_root=state_root,
        )
        ops: list[WriteOp] = list(state_ops)
        ops += [
            (_GENESIS, _encode({"hash": expected_hash, "genesis": self.genesis.to_dict()})),
            (_height_key(b"h", 0), _encode(header.to_dict())),
            (_height_key(b"r", 0), _encode([])),
            (_height_key(b"e", 0), _encode([])),
            (_STATE_HEIGHT, _encode(0)),
            (_HEAD, _encode(header.to_dict())),
        ]
        self._store.write(ops, sync=True)
        logger.info("initialized chain %s at genesis, state root %s", self.genesis.chain_id, state_root)
        return header

    def _recover(self) -> BlockHeader:
        head = BlockHeader.from_dict(parse_json(self._require(_HEAD)))
        state_height = parse_json(self._require(_STATE_HEIGHT))
        if state_height == head.height + 1:
            logger.warning("block %d: state was written without its head; rolling back and re-executing", state_height)
            head = self._roll_back(state_height, head)
            return self._replay_stored(head.height + 1)
        if state_height != head.height:
            raise ChainError(f"state is at height {state_height} but the head is at {head.height}; the data directory is damaged")
        if head.height >= 1 and self._store.get(_height_key(b"r", head.height)) is None:
            logger.warning("block %d: head was written without receipts and indexes; rolling back and re-executing", head.height)
            parent = BlockHeader.from_dict(parse_json(self._require(_height_key(b"h", head.height - 1))))
            head = self._roll_back(head.height, parent)
            return self._replay_stored(head.height + 1)
        if self._store.get(_height_key(b"p", head.height + 1)) is not None:
            logger.warning("block %d: block was stored but not executed; executing it", head.height + 1)
            self._head = head
            return self._replay_stored(head.height + 1)
        return head

    def _require(self, key: bytes) -> bytes:
        value = self._store.get(key)
        if value is None:
            raise ChainError(f"record {key.decode()} is missing; the data directory is damaged")
        return value

    def _roll_back(self, height: int, parent: BlockHeader) -> BlockHeader:
        """Undo the state of block `height` and make `parent` the head, in one synced write."""
        undo = parse_json(self._require(_height_key(b"u", height)))
        changes = {key: (value.encode("utf-8") if value is not None else None) for key, value in undo.items()}
        ops, root = self._state_store.compute_updates(changes)
        if root != parent.state_root:
            raise ChainError(f"rolling back block {height} gives state root {root}, expected {parent.state_root}")
        ops = list(ops) + [
            (_STATE_HEIGHT, _encode(parent.height)),
            (_HEAD, _encode(parent.to_dict())),
            (_height_key(b"h", height), None),
            (_height_key(b"u", height), None),
        ]
        self._store.write(ops, sync=True)
        return parent

    def _replay_stored(self, height: int) -> BlockHeader:
        meta = parse_json(self._require(_height_key(b"m", height)))
        payload = self._require(_height_key(b"p", height))
        self._head = BlockHeader.from_dict(parse_json(self._require(_HEAD)))
        self.commit(meta["seq"], meta["view"], meta["digest"], payload, meta["certificate"])
        return self._head

    # ----- commit -----

    def commit(self, seq: int, view: int, digest: str, payload: bytes, certificate: dict[str, Any], sync: bool = True) -> CommitResult:
        """Execute certified block `seq` and store everything about it in one write, synced unless `sync` is False.

        An unsynced block is on disk once a later synced write (or `flush`)
        returns. A crash before that loses it and the blocks after it, never a
        block in between, because LevelDB recovers a prefix of its log.

        Raises ChainError if `seq` is not head + 1 or `digest` is not the
        payload's digest. Either one is a bug of the caller, not of the block.
        """
        if seq != self._head.height + 1:
            raise ChainError(f"cannot commit block {seq}: the head is at {self._head.height}")
        if payload_digest(payload) != digest:
            raise ChainError(f"block {seq}: digest {digest} is not the payload's digest {payload_digest(payload)}")
        executed = self._execute(seq, view, payload)
        groups = self._write_groups(seq, view, digest, payload, certificate, executed)
        self._write(groups, sync)
        self._head = executed.header
        logger.info(
            "committed block %d: %d txs, view %d, state root %s",
            seq,
            len(executed.txs),
            view,
            executed.header.state_root,
        )
        return CommitResult(
            header=executed.header,
            receipts=executed.receipts,
            events=executed.events,
            validator_update=executed.validator_update,
            txs=executed.txs,
        )

    def commit_certified(self, block: Any) -> CommitResult:
        """Commit a consensus.CertifiedBlock (anything with seq, view, digest, payload and certificate.to_wire())."""
        return self.commit(block.seq, block.view, block.digest, block.payload, block.certificate.to_wire())

    def flush(self) -> None:
        """Make every block committed with sync=False durable, with one synced write of the state height."""
        self._store.write([(_STATE_HEIGHT, _encode(self._head.height))], sync=True)

    def _write(self, groups: list[tuple[str, list[WriteOp]]], sync: bool = True) -> None:
        if self._crash_after is None:
            self._store.write([op for _, ops in groups for op in ops], sync=sync)
            return
        for name, ops in groups:
            self._store.write(ops, sync=True)
            if name == self._crash_after:
                raise SimulatedCrash(f"simulated crash after writing the {name} group")

    def _write_groups(
        self, seq: int, view: int, digest: str, payload: bytes, certificate: dict[str, Any], executed: _ExecutedBlock
    ) -> list[tuple[str, list[WriteOp]]]:
        undo = {}
        for key in executed.changes:
            previous = self._state_store.get_bytes(key)
            undo[key] = previous.decode("utf-8") if previous is not None else None
        block_ops: list[WriteOp] = [
            (_height_key(b"p", seq), payload),
            (_height_key(b"m", seq), _encode({"seq": seq, "view": view, "digest": digest, "certificate": certificate})),
        ]
        state_group: list[WriteOp] = list(executed.state_ops) + [
            (_height_key(b"u", seq), _encode(undo)),
            (_height_key(b"u", seq - 1), None),
            (_STATE_HEIGHT, _encode(seq)),
        ]
        head_ops: list[WriteOp] = [
            (_height_key(b"h", seq), _encode(executed.header.to_dict())),
            (_HEAD, _encode(executed.header.to_dict())),
        ]
        index_ops: list[WriteOp] = [
            (_height_key(b"r", seq), _encode([receipt_to_dict(r) for r in executed.receipts])),
            (_height_key(b"e", seq), _encode([e.to_dict() for e in executed.events])),
        ]
        indexed: set[str] = set()
        for index, vtx in enumerate(executed.txs):
            if vtx.tx_id in indexed or self._store.get(_TX_INDEX + vtx.tx_id.encode()) is not None:
                continue
            indexed.add(vtx.tx_id)
            index_ops.append((_TX_INDEX + vtx.tx_id.encode(), _encode({"height": seq, "index": index})))
        return [("block", block_ops), ("state", state_group), ("head", head_ops), ("index", index_ops)]

    # ----- execution -----

    def _execute(self, height: int, view: int, payload: bytes) -> _ExecutedBlock:
        parent = self._head
        proposer = ""
        txs: list[VerifiedTransaction] = []
        time_ms = parent.timestamp_ms + 1
        if payload != NULL_PAYLOAD:
            try:
                # Every block committed here has a commit certificate, so a quorum checked its signatures.
                proposal = decode_proposal(
                    payload, self._verifier, self.genesis.limits.block_tx_max, self.genesis.limits.block_size_max_bytes, certified=True
                )
            except BlockError as exc:
                # A certified payload that does not decode means the validators disagree with this
                # node's rules. Every node with these rules executes it as a null block.
                logger.error("block %d: certified payload is invalid (%s); executing it as a null block", height, exc.reason())
                proposal = None
            if proposal is not None and proposal.height != height:
                logger.error("block %d: certified payload names height %d; executing it as a null block", height, proposal.height)
                proposal = None
            if proposal is not None:
                proposer = proposal.proposer
                txs = list(proposal.txs)
                time_ms = effective_block_time(proposal.timestamp_ms, parent.timestamp_ms)

        ctx = BlockContext(
            chain_id=self.genesis.chain_id,
            height=height,
            time_ms=time_ms,
            proposer=proposer,
            utc_offset_minutes=self.genesis.utc_offset_minutes,
        )
        working = WorkingState(self._state_store)
        _prune_replay(working, time_ms)
        events = [BlockEvent(height, None, e) for e in self._guarded_begin_block(working, ctx)]
        receipts = []
        for vtx in txs:
            receipt = self._deliver(working, ctx, vtx)
            receipts.append(receipt)
            events.extend(BlockEvent(height, vtx.tx_id, e) for e in receipt.events)
        block_result = self._guarded_end_block(working, ctx)
        events.extend(BlockEvent(height, None, e) for e in block_result.events)

        changes = working.changes()
        state_ops, state_root = self._state_store.compute_updates(changes)
        header = BlockHeader(
            height=height,
            prev_hash=parent.block_hash(),
            timestamp_ms=time_ms,
            proposer=proposer,
            view=view,
            payload_digest=payload_digest(payload),
            tx_root=tx_root([vtx.tx_id for vtx in txs]),
            state_root=state_root,
        )
        return _ExecutedBlock(header, receipts, events, txs, changes, state_ops, block_result.validator_update)

    def _deliver(self, working: WorkingState, ctx: BlockContext, vtx: VerifiedTransaction) -> Receipt:
        expiry_error = check_expiry(vtx.expires_at, ctx.time_ms, self._verifier.expiry_window_ms)
        if expiry_error is not None:
            return Receipt(tx_id=vtx.tx_id, ok=False, error_code=expiry_error.code, error_details=expiry_error.details)
        replay_key = _replay_key(vtx.sender, vtx.nonce)
        if working.get(replay_key) is not None:
            return Receipt(tx_id=vtx.tx_id, ok=False, error_code="duplicate_nonce", error_details={"nonce": vtx.nonce})
        # The pair is used up even if the contract rejects the transaction: the rejection is committed.
        working.put(replay_key, vtx.expires_at)
        working.put(f"{REPLAY_EXPIRY_PREFIX}{vtx.expires_at:020d}/{vtx.sender}/{vtx.nonce}", 1)

        savepoint = working.child()
        try:
            receipt = self._executor.deliver_tx(savepoint, ctx, vtx.tx)
        except ContractError as exc:
            details = dict(exc.details)
            if exc.rule:
                details["rule"] = exc.rule
            return Receipt(tx_id=vtx.tx_id, ok=False, error_code=exc.code, error_details=_json_safe(details))
        except Exception:
            logger.exception("block %d: contract raised on tx %s (type %s); recording internal_contract_error", ctx.height, vtx.tx_id, vtx.tx.type)
            return Receipt(tx_id=vtx.tx_id, ok=False, error_code="internal_contract_error")
        if not receipt.ok:
            return Receipt(
                tx_id=vtx.tx_id, ok=False, error_code=receipt.error_code or "rejected", error_details=_json_safe(receipt.error_details)
            )
        try:
            canonical_bytes([[event.type, event.data, list(event.members)] for event in receipt.events])
        except CanonicalError as exc:
            logger.error("block %d: tx %s produced an event without a canonical form (%s); recording internal_contract_error", ctx.height, vtx.tx_id, exc)
            return Receipt(tx_id=vtx.tx_id, ok=False, error_code="internal_contract_error")
        savepoint.merge()
        receipt.tx_id = vtx.tx_id
        receipt.error_details = _json_safe(receipt.error_details)
        return receipt

    def _guarded_begin_block(self, working: WorkingState, ctx: BlockContext) -> list[Event]:
        savepoint = working.child()
        try:
            events = self._executor.begin_block(savepoint, ctx)
        except Exception:
            logger.exception("block %d: begin_block raised; its state changes are discarded", ctx.height)
            return []
        savepoint.merge()
        return list(events)

    def _guarded_end_block(self, working: WorkingState, ctx: BlockContext) -> BlockResult:
        savepoint = working.child()
        try:
            result = self._executor.end_block(savepoint, ctx)
        except Exception:
            logger.exception("block %d: end_block raised; its state changes are discarded", ctx.height)
            return BlockResult()
        savepoint.merge()
        return result

    # ----- reads -----

    def head(self) -> BlockHeader:
        return self._head

    @property
    def height(self) -> int:
        return self._head.height

    def state(self) -> ReadOnlyState:
        """Return a read-only State at the head; `child()` of it gives a scratch overlay (for check_tx)."""
        return ReadOnlyState(self._state_store)

    def state_root(self) -> str:
        return self._state_store.root()

    def prove(self, key: str) -> tuple[Any | None, MerkleProof, str]:
        """Return (value or None, proof, state root at the head); check with node.merkle.verify_proof."""
        value, proof = self._state_store.prove(key)
        return value, proof, self._state_store.root()

    def nonce_committed(self, sender: str, nonce: str) -> bool:
        """Report whether (sender, nonce) is committed and not yet pruned (pruned pairs have expired)."""
        return self._state_store.get_bytes(_replay_key(sender, nonce)) is not None

    def get_header(self, height: int) -> BlockHeader | None:
        raw = self._store.get(_height_key(b"h", height))
        return BlockHeader.from_dict(parse_trusted(raw)) if raw is not None and height <= self._head.height else None

    def get_block(self, height: int) -> StoredBlock | None:
        """Return block `height` as certified, or None for genesis, a future height or a missing block."""
        if not 1 <= height <= self._head.height:
            return None
        meta_raw = self._store.get(_height_key(b"m", height))
        payload = self._store.get(_height_key(b"p", height))
        if meta_raw is None or payload is None:
            return None
        meta = parse_trusted(meta_raw)
        return StoredBlock(seq=meta["seq"], view=meta["view"], digest=meta["digest"], payload=payload, certificate=meta["certificate"])

    def get_certificate(self, height: int) -> dict[str, Any] | None:
        block = self.get_block(height)
        return block.certificate if block is not None else None

    def get_block_txs(self, height: int) -> list[dict[str, Any]]:
        """Return the transaction envelopes of block `height` in block order ([] for null blocks)."""
        block = self.get_block(height)
        if block is None or block.payload == NULL_PAYLOAD:
            return []
        value = parse_trusted(block.payload)
        return list(value.get("txs", [])) if isinstance(value, dict) else []

    def get_receipts(self, height: int) -> list[dict[str, Any]]:
        raw = self._store.get(_height_key(b"r", height))
        return parse_trusted(raw) if raw is not None and height <= self._head.height else []

    def get_events(self, height: int) -> list[dict[str, Any]]:
        """Return the stored events of block `height`: dicts with tx_id, type, data and members."""
        raw = self._store.get(_height_key(b"e", height))
        return parse_trusted(raw) if raw is not None and height <= self._head.height else []

    def get_tx(self, tx_id: str) -> TxLocation | None:
        raw = self._store.get(_TX_INDEX + tx_id.encode("utf-8"))
        if raw is None:
            return None
        location = parse_trusted(raw)
        receipts = self.get_receipts(location["height"])
        return TxLocation(height=location["height"], index=location["index"], receipt=receipts[location["index"]])

    def blocks_range(self, first: int, last: int, count_max: int = 64) -> list[StoredBlock]:
        """Return committed blocks first..last inclusive, at most `count_max`, for a peer's catch-up."""
        blocks = []
        for height in range(max(first, 1), min(last, self._head.height) + 1):
            if len(blocks) >= count_max:
                break
            block = self.get_block(height)
            if block is None:
                break
            blocks.append(block)
        return blocks

    # ----- consensus persistence -----

    def save_consensus(self, records: Sequence[tuple[str, dict[str, Any] | None]]) -> None:
        """Store consensus records (None deletes) durably, before the messages that depend on them are sent."""
        ops: list[WriteOp] = [
            (_CONSENSUS + key.encode("utf-8"), _encode(value) if value is not None else None) for key, value in records
        ]
        if ops:
            self._store.write(ops, sync=True)

    def load_consensus(self) -> dict[str, dict[str, Any]]:
        offset = len(_CONSENSUS)
        return {key[offset:].decode("utf-8"): parse_json(value) for key, value in self._store.iterate(_CONSENSUS)}


def _replay_key(sender: str, nonce: str) -> str:
    return f"{REPLAY_PREFIX}{sender}/{nonce}"


def _prune_replay(working: WorkingState, time_ms: int) -> None:
    """Forget (sender, nonce) pairs whose expires_at <= time_ms: a transaction with them is expired anyway."""
    end = f"{REPLAY_EXPIRY_PREFIX}{time_ms + 1:020d}"
    expired = [key for key, _ in working.scan(REPLAY_EXPIRY_PREFIX, end=end)]
    for key in expired:
        sender_and_nonce = key[len(REPLAY_EXPIRY_PREFIX) + 21 :]
        working.delete(key)
        working.delete(REPLAY_PREFIX + sender_and_nonce)
