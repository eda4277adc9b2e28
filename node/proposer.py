"""Cutting blocks from the mempool and checking the blocks other primaries propose.

`ProposerMixin` is part of `node.daemon.Node`, which provides the attributes
annotated below, `_require_chain` and `_perform`. The primary cuts a block
when the mempool holds a full block or its oldest ready transaction has waited
`block_interval_ms`. Every replica checks a proposal with
`node.block.check_proposal` before it votes.

With no transaction ready, the primary proposes an empty block (a payload with
no transactions, timed by its clock) when `empty_block_due` says the contracts'
time step is late: the head is `empty_block_interval_ms` of chain time old, or
the local date has changed since the head. Empty blocks are at least
`empty_block_min_real_interval_ms` of real time apart. Backups run their view
timer for such a block only once they accepted its PRE-PREPARE, so an idle
network still does not change view.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from consensus import quorum_size
from node.block import BlockError, check_proposal, decode_proposal, encode_proposal
from node.canonical import CanonicalError, parse_json
from node.contracts.dates import local_day_number

if TYPE_CHECKING:
    from consensus.replica import Replica
    from node.clock import Clock
    from node.config import NodeConfig
    from node.genesis import Genesis, GenesisMember
    from node.logs import BoundLogger
    from node.mempool import Mempool
    from node.p2p import P2PNetwork
    from node.tx import TxVerifier
    from node.verify_pool import LazyProcessPool


def empty_block_due(head_time_ms: int, now_ms: int, interval_ms: int, utc_offset_minutes: int) -> bool:
    """Check whether an idle chain needs an empty block at chain time `now_ms` to run its time step.

    It does once the head block is `interval_ms` old, and once the local date
    of `now_ms` is later than the head block's, so date-driven rules (DPD,
    case opening, deadlines) run on their date.
    """
    if now_ms - head_time_ms >= interval_ms:
        return True
    return local_day_number(now_ms, utc_offset_minutes) > local_day_number(head_time_ms, utc_offset_minutes)


# Real seconds a due empty block waits for links to every validator before a quorum of links is enough.
EMPTY_BLOCK_LINK_WAIT_S = 10.0


class ProposerMixin:
    config: "NodeConfig"
    genesis: "Genesis"
    member: "GenesisMember"
    clock: "Clock"
    mempool: "Mempool"
    replica: "Replica | None"
    network: "P2PNetwork | None"
    tx_verifier: "TxVerifier"
    verify_pool: "LazyProcessPool"
    block_tx_max: int
    log: "BoundLogger"
    # Monotonic time (s) since the mempool has had a ready transaction, or None when it has none.
    _ready_since_s: float | None
    # Monotonic time (s) of this node's last empty-block proposal, or None before the first.
    _empty_block_proposed_s: float | None = None
    # Monotonic time (s) since a due empty block has waited for links to every validator, or None.
    _empty_block_link_wait_since_s: float | None = None

    def _validate_payload(self, seq: int, payload: bytes) -> str | None:
        chain = self._require_chain()
        # NOTE: a pipelined proposal's parent may not be executed yet. The head's time is then
        # only a lower bound of the parent's, and execution still makes block time increase.
        return check_proposal(
            payload,
            height=seq,
            parent_time_ms=chain.head().timestamp_ms,
            now_ms=self.clock.now_ms(),
            drift_ms=self.genesis.limits.block_time_drift_ms,
            verifier=self.tx_verifier,
            nonce_committed=chain.nonce_committed,
            block_tx_max=self.genesis.limits.block_tx_max,
            block_size_max_bytes=self.genesis.limits.block_size_max_bytes,
            expiry_window_ms=self.genesis.limits.tx_expiry_window_ms,
        )

    async def _verify_proposal_signatures(self, payload: bytes) -> None:
        """Verify the signatures of a proposal's transactions this node has not seen, in the pool when they are many.

        The replica's `validate_payload` (check_proposal) runs synchronously on the
        event loop. Verifying the unseen transactions first puts their results in
        the verifier's cache, and decoding the payload here puts the decoded
        proposal there too, so check_proposal and Chain.commit neither check a
        signature nor parse the payload again. A payload that does not decode is
        left to check_proposal to reject.
        """
        try:
            value = parse_json(payload)
        except CanonicalError:
            return
        envelopes = value.get("txs") if isinstance(value, dict) else None
        limits = self.genesis.limits
        if not isinstance(envelopes, list) or len(envelopes) > limits.block_tx_max:
            return
        unseen = [envelope for envelope in envelopes if not self.tx_verifier.is_known(envelope)]
        if unseen:
            await self.tx_verifier.verify_many_async(unseen, pool=self.verify_pool, parsed_strictly=True)
        try:
            decode_proposal(payload, self.tx_verifier, limits.block_tx_max, limits.block_size_max_bytes, parsed=value)
        except BlockError:
            return

    def _maybe_propose(self) -> None:
        replica = self.replica
        chain = self._require_chain()
        assert replica is not None
        if not replica.can_propose():
            self._ready_since_s = None
            return
        ready = self.mempool.ready_count()
        if ready == 0:
            self._ready_since_s = None

        seq = replica.next_proposal_seq
        # One proposal at a time: the payload names its height and its time must follow the parent's.
        if seq != chain.height + 1 or replica.last_committed_seq != chain.height:
            return
        if ready == 0:
            self._maybe_propose_empty(seq)
            return
        now_s = time.monotonic()
        if self._ready_since_s is None:
            self._ready_since_s = now_s
        if ready < self.block_tx_max and (now_s - self._ready_since_s) * 1000 < self.config.block_interval_ms:
            return

        timestamp_ms = max(self.clock.now_ms(), chain.head().timestamp_ms + 1)
        window_ms = self.genesis.limits.tx_expiry_window_ms
        txs = []
        for vtx in self.mempool.reap(self.block_tx_max, self.genesis.limits.block_size_max_bytes // 2):
            if vtx.expires_at <= timestamp_ms or vtx.expires_at > timestamp_ms + window_ms or chain.nonce_committed(vtx.sender, vtx.nonce):
                self.mempool.remove_committed([(vtx.tx_id, vtx.sender, vtx.nonce)])
                continue
            txs.append(vtx)
        self._ready_since_s = None
        if not txs:
            return

        payload = encode_proposal(seq, timestamp_ms, self.member.member_id, txs)
        self.log.info("proposing block", extra={"fields": {"seq": seq, "txs": len(txs)}})
        self._perform(replica.propose(payload))

    def _maybe_propose_empty(self, seq: int) -> None:
        """Propose an empty block at height `seq` if the time step is due and the real-time floor has passed."""
        replica = self.replica
        assert replica is not None
        now_ms = self.clock.now_ms()
        head_time_ms = self._require_chain().head().timestamp_ms
        if not empty_block_due(head_time_ms, now_ms, self.config.empty_block_interval_ms, self.genesis.utc_offset_minutes):
            return
        now_s = time.monotonic()
        if not self._validators_linked(seq, now_s):
            return
        last_s = self._empty_block_proposed_s
        if last_s is not None and (now_s - last_s) * 1000 < self.config.empty_block_min_real_interval_ms:
            return
        self._empty_block_proposed_s = now_s

        payload = encode_proposal(seq, max(now_ms, head_time_ms + 1), self.member.member_id, [])
        self.log.debug("proposing empty block", extra={"fields": {"seq": seq, "head_time_ms": head_time_ms, "now_ms": now_ms}})
        self._perform(replica.propose(payload))

    def _validators_linked(self, seq: int, now_s: float) -> bool:
        """Check whether this node's peer links reach enough validators of `seq` to send an empty block.

        Every other validator must be linked at first. A backup that misses a
        PRE-PREPARE has no work that starts its view timer, so an empty block sent
        while a link is still down (just after a start) leaves the others to time
        out and change view. Once an empty block has waited EMPTY_BLOCK_LINK_WAIT_S
        for the links, a quorum is enough, so the time step still runs while a
        validator is down.
        """
        replica = self.replica
        assert replica is not None
        validators = replica.validators_at(seq)
        linked = set(self.network.connected_peers()) if self.network is not None else set()
        reachable = sum(1 for key in validators if key == replica.public_key or key in linked)
        if reachable == len(validators):
            self._empty_block_link_wait_since_s = None
            return True
        if self._empty_block_link_wait_since_s is None:
            self._empty_block_link_wait_since_s = now_s
        waited_s = now_s - self._empty_block_link_wait_since_s
        return waited_s >= EMPTY_BLOCK_LINK_WAIT_S and reachable >= quorum_size(len(validators))
