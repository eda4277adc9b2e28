"""Cutting blocks from the mempool and checking the blocks other primaries propose.

`ProposerMixin` is part of `node.daemon.Node`, which provides the attributes
annotated below, `_require_chain` and `_perform`. The primary cuts a block
when the mempool holds a full block or its oldest ready transaction has waited
`block_interval_ms`. Every replica checks a proposal with
`node.block.check_proposal` before it votes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from node.block import check_proposal, encode_proposal
from node.canonical import CanonicalError, parse_json

if TYPE_CHECKING:
    from consensus.replica import Replica
    from node.clock import Clock
    from node.config import NodeConfig
    from node.genesis import Genesis, GenesisMember
    from node.logs import BoundLogger
    from node.mempool import Mempool
    from node.tx import TxVerifier
    from node.verify_pool import LazyProcessPool


class ProposerMixin:
    config: "NodeConfig"
    genesis: "Genesis"
    member: "GenesisMember"
    clock: "Clock"
    mempool: "Mempool"
    replica: "Replica | None"
    tx_verifier: "TxVerifier"
    verify_pool: "LazyProcessPool"
    block_tx_max: int
    log: "BoundLogger"
    # Monotonic time (s) since the mempool has had a ready transaction, or None when it has none.
    _ready_since_s: float | None

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
        event loop. Verifying first puts every result in the verifier's cache, so
        check_proposal and Chain.commit check no signature themselves. A payload
        that does not decode is left to check_proposal to reject.
        """
        try:
            value = parse_json(payload)
        except CanonicalError:
            return
        envelopes = value.get("txs") if isinstance(value, dict) else None
        if isinstance(envelopes, list) and len(envelopes) <= self.genesis.limits.block_tx_max:
            await self.tx_verifier.verify_many_async(envelopes, pool=self.verify_pool)

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
            return

        seq = replica.next_proposal_seq
        # One proposal at a time: the payload names its height and its time must follow the parent's.
        if seq != chain.height + 1 or replica.last_committed_seq != chain.height:
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
