"""The bounded pool of verified transactions waiting for a block.

Bounds: total count, total encoded bytes, and count per sender. A transaction is
unique by tx_id and by (sender, nonce). `reap` takes transactions round-robin
across senders, each sender's in arrival order, so one busy sender cannot
starve the others. Reaped transactions stay in the pool, marked in flight,
until `remove_included` (committed in a block) or `remove_committed` (left
out by the proposer) removes them, or `requeue_in_flight` (after a view
change) offers them again. Every operation is O(1) or O(log n) per transaction.

A transaction that leaves the pool without being committed is recorded in
`dropped` with a reason: it expired, or another committed transaction took
its (sender, nonce). The record keeps at most DROPPED_REMEMBERED_MAX entries
and forgets the oldest first. GET /v1/transactions reports these as rejected.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable

from node.tx import VerifiedTransaction

logger = logging.getLogger("xinlian.mempool")

DROPPED_REMEMBERED_MAX = 10_000


class MempoolError(ValueError):
    """A transaction the pool does not admit; `code` is duplicate_tx, duplicate_nonce, mempool_full or sender_quota."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class MempoolLimits:
    tx_count_max: int = 20_000
    size_max_bytes: int = 64 * 1024 * 1024
    sender_tx_max: int = 1_000


class Mempool:
    def __init__(self, limits: MempoolLimits = MempoolLimits()) -> None:
        self.limits = limits
        self._txs: dict[str, VerifiedTransaction] = {}
        self._by_nonce: dict[tuple[str, str], str] = {}
        # sender -> tx_ids not in flight, in arrival order; only senders with ready txs
        self._ready: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()
        self._in_flight: OrderedDict[str, None] = OrderedDict()
        self._sender_counts: dict[str, int] = {}
        self._expiry_heap: list[tuple[int, str]] = []
        self._size_bytes = 0
        self._arrival: dict[str, int] = {}  # tx_id -> arrival number, for requeue order
        self._arrival_next = 0
        self.dropped: OrderedDict[str, str] = OrderedDict()  # tx_id -> "code: reason"

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._txs

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    @property
    def in_flight_count(self) -> int:
        return len(self._in_flight)

    def ready_count(self) -> int:
        return len(self._txs) - len(self._in_flight)

    def get(self, tx_id: str) -> VerifiedTransaction | None:
        return self._txs.get(tx_id)

    def has_nonce(self, sender: str, nonce: str) -> bool:
        return (sender, nonce) in self._by_nonce

    def add(self, vtx: VerifiedTransaction) -> None:
        """Admit a verified transaction. Raises MempoolError; expiry is the caller's check."""
        if vtx.tx_id in self._txs:
            raise MempoolError("duplicate_tx", f"transaction {vtx.tx_id} is already pending")
        if (vtx.sender, vtx.nonce) in self._by_nonce:
            raise MempoolError("duplicate_nonce", f"sender {vtx.sender} already has a pending transaction with nonce {vtx.nonce!r}")
        if len(self._txs) >= self.limits.tx_count_max or self._size_bytes + vtx.size_bytes > self.limits.size_max_bytes:
            raise MempoolError("mempool_full", f"mempool is full ({len(self._txs)} transactions, {self._size_bytes} bytes); retry later")
        if self._sender_counts.get(vtx.sender, 0) >= self.limits.sender_tx_max:
            raise MempoolError("sender_quota", f"sender {vtx.sender} already has {self.limits.sender_tx_max} pending transactions; retry later")
        self._txs[vtx.tx_id] = vtx
        self._arrival[vtx.tx_id] = self._arrival_next
        self._arrival_next += 1
        self._by_nonce[(vtx.sender, vtx.nonce)] = vtx.tx_id
        self._sender_counts[vtx.sender] = self._sender_counts.get(vtx.sender, 0) + 1
        self._size_bytes += vtx.size_bytes
        self._ready.setdefault(vtx.sender, OrderedDict())[vtx.tx_id] = None
        heapq.heappush(self._expiry_heap, (vtx.expires_at, vtx.tx_id))

    def reap(self, tx_max: int, size_max_bytes: int) -> list[VerifiedTransaction]:
        """Take up to `tx_max` ready transactions totalling at most `size_max_bytes`, round-robin by sender.

        Stops at the first transaction that does not fit in the remaining bytes,
        so a sender's transactions never leave out of arrival order.
        """
        selected: list[VerifiedTransaction] = []
        size_total = 0
        while self._ready and len(selected) < tx_max:
            sender, queue = next(iter(self._ready.items()))
            tx_id = next(iter(queue))
            vtx = self._txs[tx_id]
            if size_total + vtx.size_bytes > size_max_bytes:
                break
            del queue[tx_id]
            self._in_flight[tx_id] = None
            selected.append(vtx)
            size_total += vtx.size_bytes
            if queue:
                self._ready.move_to_end(sender)
            else:
                del self._ready[sender]
        return selected

    def requeue_in_flight(self) -> int:
        """Make every in-flight transaction ready again, in its sender's arrival order; return how many."""
        in_flight = list(self._in_flight)
        self._in_flight.clear()
        senders = sorted({self._txs[tx_id].sender for tx_id in in_flight})
        for tx_id in in_flight:
            self._ready.setdefault(self._txs[tx_id].sender, OrderedDict())[tx_id] = None
        for sender in senders:
            ordered = sorted(self._ready[sender], key=self._arrival.__getitem__)
            self._ready[sender] = OrderedDict.fromkeys(ordered)
        return len(in_flight)

    def remove_included(self, committed: Iterable[tuple[str, str, str]]) -> int:
        """Remove the transactions of a committed block, given as (tx_id, sender, nonce); return how many were pending.

        A pending transaction with the same (sender, nonce) but another id can
        never commit, so it is removed too and recorded in `dropped`.
        """
        return self._remove_by_nonce(committed, drop_reason=None)

    def remove_committed(self, committed: Iterable[tuple[str, str, str]]) -> int:
        """Remove transactions the proposer left out of a block, given as (tx_id, sender, nonce); return how many were pending.

        The proposer calls this for a reaped transaction that expired or whose
        nonce is already committed, so each one is recorded in `dropped`. A
        committed block's transactions go through `remove_included` instead.
        """
        reason = "expired: the transaction expired, or its nonce was already committed, before a block included it"
        return self._remove_by_nonce(committed, drop_reason=reason)

    def _remove_by_nonce(self, committed: Iterable[tuple[str, str, str]], drop_reason: str | None) -> int:
        removed = 0
        for tx_id, sender, nonce in committed:
            pending_id = self._by_nonce.get((sender, nonce))
            if pending_id is not None and pending_id != tx_id:
                self._remove(pending_id)
                self._record_dropped(pending_id, f"duplicate_nonce: transaction {tx_id} with the same sender and nonce was committed")
                removed += 1
            elif tx_id in self._txs:
                self._remove(tx_id)
                if drop_reason is not None:
                    self._record_dropped(tx_id, drop_reason)
                removed += 1
        return removed

    def _record_dropped(self, tx_id: str, reason: str) -> None:
        self.dropped[tx_id] = reason
        self.dropped.move_to_end(tx_id)
        if len(self.dropped) > DROPPED_REMEMBERED_MAX:
            self.dropped.popitem(last=False)

    def drop_expired(self, now_ms: int) -> list[str]:
        """Remove transactions with expires_at <= now_ms; return their ids."""
        dropped = []
        while self._expiry_heap and self._expiry_heap[0][0] <= now_ms:
            _, tx_id = heapq.heappop(self._expiry_heap)
            if tx_id in self._txs:
                self._remove(tx_id)
                self._record_dropped(tx_id, "expired: the transaction expired in the mempool before a block included it")
                dropped.append(tx_id)
        if dropped:
            logger.info("dropped %d expired transactions from the mempool", len(dropped))
        return dropped

    def _remove(self, tx_id: str) -> None:
        vtx = self._txs.pop(tx_id)
        del self._arrival[tx_id]
        del self._by_nonce[(vtx.sender, vtx.nonce)]
        self._size_bytes -= vtx.size_bytes
        count = self._sender_counts[vtx.sender] - 1
        if count:
            self._sender_counts[vtx.sender] = count
        else:
            del self._sender_counts[vtx.sender]
        self._in_flight.pop(tx_id, None)
        queue = self._ready.get(vtx.sender)
        if queue is not None:
            queue.pop(tx_id, None)
            if not queue:
                del self._ready[vtx.sender]
        # Removed entries stay in the expiry heap until popped; rebuild it once they dominate.
        if len(self._expiry_heap) > 2 * len(self._txs) + 1024:
            self._expiry_heap = [(v.expires_at, v.tx_id) for v in self._txs.values()]
            heapq.heapify(self._expiry_heap)
