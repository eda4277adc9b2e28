"""Driving the PBFT replica: feeding it peer messages and timer ticks, and performing its outputs.

`ConsensusDriverMixin` is part of `node.daemon.Node`, which provides the
attributes annotated below and the methods of the other parts (proposing,
committing, catch-up). `_perform` carries out each `Output` in the documented
order. Consensus records are written durably (one synced LevelDB batch) before
any message that depends on them is queued for sending. Committed blocks are
executed exactly once, in sequence order, before the node calls
`Replica.block_executed`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from consensus import CertifiedBlock, ConsensusDecodeError, Output, PrePrepare, decode_message

if TYPE_CHECKING:
    from consensus.replica import Replica
    from node.admission import Admission
    from node.clock import Clock
    from node.config import NodeConfig
    from node.keys import KeyPair
    from node.logs import BoundLogger
    from node.mempool import Mempool
    from node.p2p import P2PNetwork

TOPIC_CONSENSUS = "consensus"
TOPIC_TXS = "txs"


class ConsensusDriverMixin:
    config: "NodeConfig"
    key: "KeyPair"
    clock: "Clock"
    mempool: "Mempool"
    admission: "Admission | None"
    network: "P2PNetwork | None"
    replica: "Replica | None"
    log: "BoundLogger"
    syncing: bool
    consensus_dropped: int
    _stopping: asyncio.Event
    # True while a call of _do_requested_work is scheduled on the event loop.
    _work_requested: bool = False

    async def _on_consensus_message(self, peer: str, body: Any) -> None:
        if self.syncing or self.replica is None:
            self.consensus_dropped += 1
            return
        try:
            message = decode_message(body)
        except ConsensusDecodeError as exc:
            self._count_drop(peer, f"undecodable consensus message: {exc}")
            return
        if getattr(message, "sender", None) != peer:
            self._count_drop(peer, "consensus message sender is not the peer that sent it")
            return
        if isinstance(message, PrePrepare) and message.payload:
            await self._verify_proposal_signatures(message.payload)
            if self.syncing or self.replica is None:
                self.consensus_dropped += 1
                return
        self._perform(self.replica.step(message))

    def _count_drop(self, peer: str, reason: str) -> None:
        self.consensus_dropped += 1
        if self.consensus_dropped == 1 or self.consensus_dropped % 100 == 0:
            self.log.warning("dropped consensus message", extra={"fields": {"peer": peer, "reason": reason, "dropped": self.consensus_dropped}})

    async def _tick_loop(self) -> None:
        interval_s = self.config.tick_ms / 1000
        while not self._stopping.is_set():
            await asyncio.sleep(interval_s)
            try:
                self._on_tick()
            except Exception:
                # A broken invariant in the replica or the chain: stop rather than run on in an unknown state.
                self.log.exception("tick failed; stopping the node")
                self._stopping.set()
                raise

    def _on_tick(self) -> None:
        self._flush_gossip()
        if self.syncing or self.replica is None:
            return
        self.mempool.drop_expired(self.clock.now_ms())
        self._perform(self.replica.tick(self.has_pending_work()))
        self._maybe_propose()

    def _request_work(self) -> None:
        """Flush gossip and let the primary propose in the next turn of the event loop, not at the next tick.

        Admission calls it when a batch added transactions, and `_perform` when
        blocks were committed. Many calls within one turn schedule one run.
        """
        if self._work_requested or self._stopping.is_set():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # restored work before start has no loop yet, and the first tick does the work
        self._work_requested = True
        loop.call_soon(self._do_requested_work)

    def _do_requested_work(self) -> None:
        self._work_requested = False
        if self._stopping.is_set():
            return
        try:
            self._flush_gossip()
            if not self.syncing and self.replica is not None:
                self._maybe_propose()
        except Exception:
            # This is the broken invariant a tick would meet, so stop rather than run on in an unknown state.
            self.log.exception("proposing failed, so the node stops")
            self._stopping.set()

    def _flush_gossip(self) -> None:
        if self.admission is None or self.network is None:
            return
        for batch in self.admission.take_gossip():
            self.network.broadcast(TOPIC_TXS, {"transactions": batch})

    def _perform(self, first: Output) -> None:
        """Carry out an Output and every Output it leads to, each in the documented order."""
        chain = self._require_chain()
        replica = self.replica
        assert replica is not None
        queue: deque[Output] = deque([first])
        committed = False
        while queue:
            out = queue.popleft()
            if out.persist:
                chain.save_consensus(out.persist)
            for recipient, message in out.messages:
                self._send_consensus(recipient, message)
            for block in out.committed:
                queue.append(self._execute_committed(block))
                committed = True
            if out.view_changed is not None:
                requeued = self.mempool.requeue_in_flight()
                self.log.info("entered view", extra={"fields": {"new_view": out.view_changed, "primary": self._member_id(replica.primary), "requeued_txs": requeued}})
            if out.stable_checkpoint is not None:
                self.log.debug("stable checkpoint", extra={"fields": {"seq": out.stable_checkpoint}})
            if out.fetch is not None:
                self._start_fetch(out.fetch.from_seq, out.fetch.to_seq, out.fetch.hint_peers)
        if committed:
            self._request_work()  # the next block can be proposed now

    def _send_consensus(self, recipient: str | None, message: Any) -> None:
        network = self.network
        if network is None:
            return  # restored work performed before the network starts has nothing to send yet
        wire = message.to_wire()
        if recipient is not None:
            network.send(recipient, TOPIC_CONSENSUS, wire)
            return
        replica = self.replica
        assert replica is not None
        seq = replica.last_executed_seq + 1
        recipients = set(replica.validators_at(seq)) | set(replica.validators_at(seq + replica.config.reconfig_delay_blocks))
        recipients.discard(self.key.public_key)
        network.send_many(sorted(recipients), TOPIC_CONSENSUS, wire)

    def _execute_committed(self, block: CertifiedBlock) -> Output:
        replica = self.replica
        chain = self._require_chain()
        assert replica is not None
        if block.seq <= chain.height:
            # Already in the chain (committed before a crash, or by catch-up): report it again,
            # with the validator change it decided if the replica may have missed it.
            header = chain.get_header(block.seq)
            assert header is not None
            pending = chain.state().get("validators_pending")
            decided = None
            if isinstance(pending, dict) and pending.get("decided_height") == block.seq:
                decided = (pending["effective_height"], tuple(pending["node_keys"]))
            return replica.block_executed(block.seq, header.state_root, decided)
        result = self._commit_to_chain(block)
        update = result.validator_update
        validator_update = (update.effective_height, update.validators) if update is not None else None
        return replica.block_executed(block.seq, result.header.state_root, validator_update)
