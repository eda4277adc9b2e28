"""Committing a block on this node: the chain, then the mempool, erasures, events and peer links.

`BlockCommitMixin` is part of `node.daemon.Node`, which provides the
attributes annotated below and `_require_chain` and `_member_id`. Each step
after `Chain.commit` runs only once the block's batch is on disk: events reach
subscribers, erasure events are applied to the off-chain store, and the links
of peers the chain no longer allows are closed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consensus import CertifiedBlock
from node.chain import CommitResult
from node.events import events_for_block, split_block_events
from node.privacy.erasure import apply_erasure_event, reconcile_erasures
from node.sync import certificate_wire

if TYPE_CHECKING:
    from node.chain import Chain
    from node.events import EventBus
    from node.logs import BoundLogger
    from node.mempool import Mempool
    from node.p2p import P2PNetwork
    from node.privacy.setup import NodePrivacy


class BlockCommitMixin:
    chain: "Chain | None"
    mempool: "Mempool"
    events: "EventBus"
    privacy: "NodePrivacy | None"
    network: "P2PNetwork | None"
    member_by_client_key: dict[str, str]
    log: "BoundLogger"
    # Results of blocks committed without a synced write, waiting for one (see _commit_to_chain).
    _undurable: list[CommitResult]

    def _commit_to_chain(self, block: CertifiedBlock, durable: bool = True) -> CommitResult:
        """Commit a block, and once it is durable apply what follows from it.

        With `durable` False (catch-up, inside a fetched range) the block's
        write is not synced, and what follows waits in `_undurable` until the
        next durable commit or `_flush_commits`.
        """
        chain = self._require_chain()
        result = chain.commit(block.seq, block.view, block.digest, block.payload, certificate_wire(block), sync=durable)
        self._undurable.append(result)
        if durable:
            self._after_durable()
        return result

    def _flush_commits(self) -> None:
        """Make the blocks committed with durable=False durable, then apply what follows from them."""
        if self._undurable:
            self._require_chain().flush()
            self._after_durable()

    def _after_durable(self) -> None:
        results, self._undurable = self._undurable, []
        for result in results:
            self.mempool.remove_included([(vtx.tx_id, vtx.sender, vtx.nonce) for vtx in result.txs])
            self._apply_erasures(result)
            self._publish_events(result)
        self._enforce_peer_membership()

    def _apply_erasures(self, result: CommitResult) -> None:
        """Apply the block's committed erasure events to this node's off-chain store, after its batch is durable."""
        assert self.privacy is not None
        for block_event in result.events:
            try:
                apply_erasure_event(block_event.event, self.privacy.store)
            except ValueError as exc:
                # Malformed erasure data is a contract bug. reconcile_erasures retries from state at the next start.
                self.log.error(
                    "could not apply an erasure event",
                    extra={"fields": {"height": result.header.height, "tx_id": block_event.tx_id, "type": block_event.event.type, "error": str(exc)}},
                )

    def _reconcile_erasures(self) -> None:
        """Apply the chain's erasure state to the off-chain store, for events a crash cut off. Run it before serving reads."""
        assert self.privacy is not None
        outcomes = reconcile_erasures(self._require_chain().state(), self.privacy.store)
        changed = {subject_id: outcome for subject_id, outcome in outcomes.items() if outcome in ("erased", "frozen")}
        if changed:
            self.log.info("applied erasures missed before the last stop", extra={"fields": {"subjects": changed}})

    def _enforce_peer_membership(self) -> None:
        """Close the links of peers the chain no longer allows (suspended, removed, or out of the validator set)."""
        if self.network is None:
            return
        for peer in self.network.close_disallowed():
            self.log.warning("closed the link of a peer that the chain no longer allows", extra={"fields": {"peer": peer, "member": self._member_id(peer)}})

    def _publish_events(self, result: CommitResult) -> None:
        begin_events, end_events = split_block_events(result.events)
        senders = {vtx.tx_id: self._sender_member_id(vtx.sender) for vtx in result.txs}
        self.events.publish(events_for_block(result.header.height, result.receipts, begin_events, end_events, senders))

    def _sender_member_id(self, client_key: str) -> str:
        """Return the member id of a client key, including members admitted after genesis, or "" for a subject or unknown key."""
        member_id = self.member_by_client_key.get(client_key)
        if member_id is not None:
            return member_id
        owner = self.chain.state().get(f"member_key/{client_key}") if self.chain is not None else None
        return owner["member_id"] if isinstance(owner, dict) and owner.get("kind") == "client" else ""
