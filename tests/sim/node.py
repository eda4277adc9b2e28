"""A simulated node around one consensus Replica.

It does what the real daemon does for consensus, without I/O. It keeps a
mempool of submitted transactions and proposes batches when its replica is
primary. It executes committed blocks exactly once and in order, reports each
execution back to the replica and keeps a durable store. The cluster, which owns the
network, performs each Output and the catch-up between nodes. A crash drops the
Replica object and the mempool. A restart builds a new Replica from the durable
store only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from tests.sim.store import DurableStore, next_state_digest
from tests.sim.workload import BATCH_SIZE_MAX, decode_batch, encode_batch

PROPOSALS_PER_TICK_MAX = 8  # bounds one tick's loop; can_propose() bounds pipelining


@dataclass(frozen=True)
class CatchUpRequest:
    """The simulated node's own request for certified blocks from `from_seq` to `to_seq`."""

    from_seq: int
    to_seq: int


@dataclass(frozen=True)
class CatchUpResponse:
    blocks: tuple[Any, ...]


class SimNode:
    def __init__(self, index: int, signer: Any, make_replica: Callable[[Any, DurableStore | None], Any]) -> None:
        self.index = index
        self.signer = signer
        self.node_id: str = signer.public_key
        self._make_replica = make_replica
        self.store = DurableStore()
        self.replica: Any | None = make_replica(signer, None)
        self.mempool: dict[str, None] = {}  # insertion-ordered set of known, unexecuted transactions
        self.executed_transactions: set[str] = set()
        self._proposed: set[str] = set()
        self._proposed_view = 0
        self.execution_queue: deque[Any] = deque()  # committed blocks not yet executed
        self.executing = False
        self.restarts = 0
        self.crash_tick: int | None = None

    @property
    def is_up(self) -> bool:
        return self.replica is not None

    @property
    def has_pending_work(self) -> bool:
        return bool(self.mempool)

    def receive_transaction(self, transaction_id: str) -> None:
        if transaction_id not in self.executed_transactions:
            self.mempool[transaction_id] = None

    def crash(self, now: int) -> None:
        self.replica = None
        self.execution_queue.clear()
        self.mempool = {}
        self._proposed = set()
        self.crash_tick = now

    def restart(self) -> None:
        """Build a new replica from durable state only: records, executed blocks and the last state digest."""
        self.replica = self._make_replica(self.signer, self.store)
        self.executed_transactions = set()
        for seq in sorted(self.store.blocks):
            self.executed_transactions.update(decode_batch(self.store.blocks[seq].payload))
        self._proposed = set()
        self._proposed_view = self.replica.view
        self.restarts += 1
        self.crash_tick = None

    def next_payload(self) -> bytes | None:
        """Return a batch of mempool transactions this node has not yet proposed in its current view."""
        replica = self.replica
        if replica is None:
            return None
        if replica.view != self._proposed_view:
            self._proposed = set()
            self._proposed_view = replica.view
        batch = []
        for transaction_id in self.mempool:
            if transaction_id not in self._proposed:
                batch.append(transaction_id)
                if len(batch) == BATCH_SIZE_MAX:
                    break
        if not batch:
            return None
        self._proposed.update(batch)
        return encode_batch(batch)

    def execute(self, block: Any) -> tuple[str, list[str]]:
        """Apply one committed block; return the new state digest and the transactions run for the first time.

        A transaction repeated in a later block is skipped, as the real node
        skips a duplicate (sender, nonce).
        """
        first_runs = []
        for transaction_id in decode_batch(block.payload):
            if transaction_id not in self.executed_transactions:
                first_runs.append(transaction_id)
                self.executed_transactions.add(transaction_id)
            self.mempool.pop(transaction_id, None)
            self._proposed.discard(transaction_id)
        state_digest = next_state_digest(self.store.last_state_digest, block.payload)
        self.store.record_executed(block, state_digest)
        return state_digest, first_runs
