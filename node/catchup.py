"""Catch-up: bringing this node's chain level with its peers.

`CatchUpMixin` is part of `node.daemon.Node`, which provides the attributes
annotated below and `_require_chain`, `_build_replica`, `_perform` and
`_commit_to_chain`. Peer requests and responses are in `node.sync`.

Catch-up has two paths. When the replica reports a `FetchRequest`, the node
fetches the range and hands it back through `deliver_fetched`, and the replica
checks every certificate. The node also catches up by itself when a peer is
ahead and its own height stalled (at start, or after an outage). It then pauses
consensus and fetches blocks in ranges. It checks each certificate with
`verify_certified_block`, commits the blocks, and then rebuilds the replica from its persisted records, exactly as a restart
would. This path syncs the disk once per fetched range, not once per block.
Both paths commit one block at a time and yield to the event loop after each,
so the API and the peer links keep being served during a long catch-up.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from consensus import CertifiedBlock, quorum_size
from consensus.certificates import verify_certified_block
from node.block import payload_digest
from node.sync import fetch_blocks, fetch_height

if TYPE_CHECKING:
    from consensus import Ed25519Verifier
    from consensus.replica import Replica
    from node.config import NodeConfig
    from node.logs import BoundLogger
    from node.p2p import P2PNetwork

SYNC_PROBE_INTERVAL_S = 1.0
SYNC_REQUEST_TIMEOUT_S = 5.0
STARTUP_PEER_WAIT_S = 3.0


class CatchUpMixin:
    config: "NodeConfig"
    chain_id: str
    consensus_verifier: "Ed25519Verifier"
    network: "P2PNetwork | None"
    replica: "Replica | None"
    log: "BoundLogger"
    syncing: bool
    peer_heights: dict[str, int]
    _stopping: asyncio.Event
    _sync_lock: asyncio.Lock
    _fetch_task: "asyncio.Task[None] | None"
    _height_at_last_probe: int

    def _start_fetch(self, first: int, last: int, hint_peers: tuple[str, ...]) -> None:
        if self._fetch_task is not None and not self._fetch_task.done():
            return
        self._fetch_task = asyncio.create_task(self._fetch_for_replica(first, last, hint_peers), name="fetch")

    async def _fetch_for_replica(self, first: int, last: int, hint_peers: tuple[str, ...]) -> None:
        """Fetch first..last for the replica, which checks each certificate itself."""
        assert self.network is not None
        peers = [peer for peer in hint_peers if self.network.is_connected(peer)] or self.network.connected_peers()
        next_seq = first
        for peer in peers:
            while next_seq <= last and not self._stopping.is_set():
                _, blocks = await fetch_blocks(self.network, peer, next_seq, last, SYNC_REQUEST_TIMEOUT_S)
                if not blocks or self.replica is None or self.syncing:
                    break
                for block in blocks:
                    if self.replica is None or self.syncing or self._stopping.is_set():
                        break
                    self._perform(self.replica.deliver_fetched([block]))
                    await asyncio.sleep(0)
                if self.replica is None:
                    break
                next_seq = max(next_seq, self.replica.last_committed_seq + 1, blocks[-1].seq + 1)
            if next_seq > last:
                break

    async def _sync_probe_loop(self) -> None:
        await self._wait_for_peers(STARTUP_PEER_WAIT_S)
        await self.catch_up()
        while not self._stopping.is_set():
            await asyncio.sleep(SYNC_PROBE_INTERVAL_S)
            await self._probe_peers()
            height = self._require_chain().height
            stalled = height == self._height_at_last_probe
            self._height_at_last_probe = height
            if stalled and max(self.peer_heights.values(), default=0) > height:
                await self.catch_up()

    async def _wait_for_peers(self, timeout_s: float) -> None:
        assert self.network is not None
        deadline = time.monotonic() + timeout_s
        expected_peers = len(self.network.peer_urls)
        while len(self.network.connected_peers()) < expected_peers and time.monotonic() < deadline and not self._stopping.is_set():
            await asyncio.sleep(0.05)

    async def _probe_peers(self) -> None:
        assert self.network is not None
        peers = self.network.connected_peers()
        heights = await asyncio.gather(*(fetch_height(self.network, peer, SYNC_REQUEST_TIMEOUT_S) for peer in peers))
        self.peer_heights = {peer: height for peer, height in zip(peers, heights) if height is not None}

    async def catch_up(self) -> int:
        """Fetch, verify and commit blocks from peers that are ahead; return how many were committed."""
        async with self._sync_lock:
            await self._probe_peers()
            chain = self._require_chain()
            if max(self.peer_heights.values(), default=0) <= chain.height:
                return 0
            self.syncing = True
            committed = 0
            try:
                committed = await self._catch_up_from_peers()
            finally:
                if committed:
                    # The chain moved under the replica: rebuild it from its records, as a restart does.
                    self.replica = self._build_replica()
                self.syncing = False
            self.log.info("catch-up finished", extra={"fields": {"committed": committed}})
            return committed

    async def _catch_up_from_peers(self) -> int:
        assert self.network is not None
        chain = self._require_chain()
        committed = 0
        batch = self.config.limits.sync_blocks_per_request_max
        while not self._stopping.is_set():
            ahead = sorted((peer for peer, height in self.peer_heights.items() if height > chain.height), key=lambda p: -self.peer_heights[p])
            progressed = False
            for peer in ahead:
                first = chain.height + 1
                peer_height, blocks = await fetch_blocks(self.network, peer, first, first + batch - 1, SYNC_REQUEST_TIMEOUT_S)
                if peer_height is not None:
                    self.peer_heights[peer] = peer_height
                count = await self._commit_verified(peer, blocks)
                committed += count
                if count:
                    progressed = True
                    break
            if not progressed:
                break
        return committed

    async def _commit_verified(self, peer: str, blocks: list[CertifiedBlock]) -> int:
        """Verify and commit a fetched range, with one synced write for the range instead of one per block.

        A crash inside the range loses its unsynced tail, which the next
        catch-up fetches again. Events and erasures of a block wait until it is durable.
        """
        chain = self._require_chain()
        count = 0
        try:
            for index, block in enumerate(blocks):
                if self._stopping.is_set() or block.seq != chain.height + 1:
                    break
                validators = self._catch_up_validators(block.seq)
                reason = verify_certified_block(block, validators, quorum_size(len(validators)), self.consensus_verifier, self.chain_id, payload_digest)
                if reason is not None:
                    self.log.warning("peer sent a block with an invalid certificate", extra={"fields": {"peer": peer, "seq": block.seq, "reason": reason}})
                    break
                self._commit_to_chain(block, durable=index == len(blocks) - 1)
                count += 1
                # Yield after each block, so an API request waits for at most one block's commit, not a whole range.
                await asyncio.sleep(0)
        finally:
            self._flush_commits()
        return count

    def _catch_up_validators(self, seq: int) -> tuple[str, ...]:
        """Return the validators in force at `seq` for a block fetched by catch-up.

        The paused replica has not seen the validator changes of blocks committed
        during this catch-up, so the chain state, which has, takes precedence.
        """
        replica = self.replica
        assert replica is not None
        state = self._require_chain().state()
        pending = state.get("validators_pending")
        if isinstance(pending, dict) and seq >= pending["effective_height"]:
            return tuple(pending["node_keys"])
        current = state.get("validators")
        if isinstance(current, dict):
            return tuple(current["node_keys"])
        return replica.validators_at(seq)
