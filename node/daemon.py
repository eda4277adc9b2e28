"""The node daemon: the I/O shell around the PBFT replica.

`Node` owns the loop. It feeds the replica its inputs (peer messages, timer
ticks, proposals, executed blocks, fetched blocks) and performs each `Output`
in the documented order. Consensus records are written durably (one synced
LevelDB batch) before any message that depends on them is queued for sending.
Committed blocks are executed through `Chain.commit` exactly once, in sequence
order, before the node calls `Replica.block_executed`. Events go to
subscribers only after the block's batch is on disk. After each block the node
also applies its erasure events to the off-chain store and closes the peer
links of members the chain no longer allows (see `peer_allowed`).

Transaction signatures are verified once per node: at admission (API batches
and gossip, in a process pool when large) or when a PRE-PREPARE brings
transactions this node has not seen. Proposal checks and execution then find
every result in the shared verifier's cache.

Catch-up has two paths. When the replica reports a `FetchRequest`, the node
fetches the range and hands it back through `deliver_fetched`, and the replica
checks every certificate. When the node finds a peer ahead and its own height
stalled (at start, or after an outage), it pauses consensus, fetches blocks in
ranges, checks each certificate with `verify_certified_block`, commits them,
and then rebuilds the replica from its persisted records, exactly as a restart
would.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import deque
from typing import Any

from aiohttp import web

from consensus import (
    CertifiedBlock,
    ConsensusDecodeError,
    Ed25519Signer,
    Ed25519Verifier,
    Output,
    PrePrepare,
    ReplicaConfig,
    RestoredState,
    decode_message,
    quorum_size,
)
from consensus.certificates import verify_certified_block
from consensus.membership import ValidatorSchedule
from consensus.records import VALIDATORS_KEY
from consensus.replica import Replica
from node.admission import Admission
from node.api import create_app
from node.backend import NodeBackend, block_date
from node.block import check_proposal, encode_proposal, payload_digest
from node.canonical import CanonicalError, parse_json
from node.chain import Chain, ChainError, CommitResult
from node.clock import make_clock, system_now_ms
from node.config import NodeConfig
from node.contracts import XinlianExecutor
from node.events import EventBus, events_for_block
from node.execution import Event
from node.genesis import Genesis, load_genesis, validator_node_keys
from node.keys import load_key_file
from node.logs import bind
from node.mempool import Mempool, MempoolLimits
from node.p2p import P2PLimits, P2PNetwork, PeerError
from node.privacy.erasure import apply_erasure_event, reconcile_erasures
from node.privacy.read_auth import ReplayCache
from node.privacy.setup import NodePrivacy, open_node_privacy
from node.privacy.sharing import KIND as PRIVACY_KIND
from node.privacy.sharing import handle_details_request
from node.storage import KeyValueStore, LevelDBStore
from node.sync import BlockServer, certificate_wire, fetch_blocks, fetch_height
from node.tx import TxVerifier
from node.verify_pool import LazyProcessPool

VERSION = "0.1.0"
TOPIC_CONSENSUS = "consensus"
TOPIC_TXS = "txs"
SYNC_PROBE_INTERVAL_S = 1.0
SYNC_REQUEST_TIMEOUT_S = 5.0
STARTUP_PEER_WAIT_S = 3.0
GOSSIP_ENVELOPES_PER_MESSAGE_MAX = 1000
PRIVACY_REPLAY_CACHE_MAX = 10_000
CHAIN_DIRECTORY = "chain"  # LevelDB of the chain under data_dir; node.privacy keeps its store beside it

_logger = logging.getLogger("xinlian.node")


class NodeStartError(RuntimeError):
    """The node cannot start: its config, key, genesis or data directory does not fit together."""


class Node:
    def __init__(self, config: NodeConfig, store: KeyValueStore | None = None) -> None:
        self.config = config
        try:
            self.genesis: Genesis = load_genesis(config.genesis_file)
        except ValueError as exc:
            raise NodeStartError(str(exc)) from None
        member = self.genesis.member(config.member_id)
        if member is None:
            raise NodeStartError(f"member {config.member_id!r} of the config is not a member in genesis {config.genesis_file}")
        self.member = member
        try:
            self.key = load_key_file(config.node_key_file)
        except ValueError as exc:
            raise NodeStartError(str(exc)) from None
        if self.key.public_key != member.node_key:
            raise NodeStartError(
                f"node key {config.node_key_file} has public key {self.key.public_key}, but genesis lists {member.node_key} for {member.member_id}"
            )
        self.chain_id = self.genesis.chain_id
        if config.clock.mode == "accelerated" and config.clock.real_epoch_ms == 0:
            raise NodeStartError(
                "the accelerated clock has real_epoch_ms 0; start the network with `xinlian network up`, "
                "which sets it, or set clock.real_epoch_ms to the same unix ms in every node's config"
            )
        self.clock = make_clock(config.clock)
        self.signer = Ed25519Signer(self.key.seed)
        self.consensus_verifier = Ed25519Verifier()
        limits = self.genesis.limits
        # Admission, proposal checks and block execution all share this verifier, and so its cache
        # and the genesis expiry window: a transaction's signature is checked once per node.
        self.tx_verifier = TxVerifier(self.chain_id, limits.tx_size_max_bytes, expiry_window_ms=limits.tx_expiry_window_ms)
        self.verify_pool = LazyProcessPool()
        self.executor = XinlianExecutor()
        self.mempool = Mempool(MempoolLimits(tx_count_max=config.limits.mempool_tx_max))
        self.events = EventBus()
        self.block_tx_max = min(config.block_tx_max, limits.block_tx_max)
        self.member_by_node_key = {m.node_key: m for m in self.genesis.members}
        self.member_by_client_key = {key: m.member_id for m in self.genesis.members for key in m.client_keys}

        self._store = store
        self.chain: Chain | None = None
        self.replica: Replica | None = None
        self.network: P2PNetwork | None = None
        self.privacy: NodePrivacy | None = None
        self._privacy_seen = ReplayCache(PRIVACY_REPLAY_CACHE_MAX)
        self.admission: Admission | None = None
        self.syncing = False
        self.peer_heights: dict[str, int] = {}
        self.consensus_dropped = 0
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._api_runner: web.AppRunner | None = None
        self._sync_lock = asyncio.Lock()
        self._fetch_task: asyncio.Task[None] | None = None
        self._ready_since_s: float | None = None
        self._height_at_last_probe = -1
        self.log = bind(_logger, live=self._log_context, node=config.member_id)

    # ---- lifecycle ----

    def _log_context(self) -> dict[str, Any]:
        return {
            "view": self.replica.view if self.replica is not None else None,
            "height": self.chain.height if self.chain is not None else None,
        }

    async def start(self) -> None:
        if self._store is None:
            self._store = LevelDBStore(self.config.data_dir / CHAIN_DIRECTORY)
        self.privacy = open_node_privacy(self.config.data_dir, self.config.privacy_secret_file)
        self.chain = Chain(self._store, self.genesis, self.executor, self.tx_verifier)
        self._reconcile_erasures()
        self.admission = Admission(
            lambda: self._require_chain(), self.mempool, self.tx_verifier, self.executor, self.clock.now_ms, pool=lambda: self.verify_pool
        )
        # A restored replica hands back the work it still owes (committed blocks not yet
        # executed, messages to resend) with the output of its first input, the first tick.
        self.replica = self._build_replica()

        self.network = self._build_network()
        BlockServer(self._require_chain, self.config.limits.sync_blocks_per_request_max, self.config.limits.message_bytes_max // 2).register(self.network)
        self.network.on_message(TOPIC_CONSENSUS, self._on_consensus_message)
        self.network.on_message(TOPIC_TXS, self._on_tx_gossip)
        self.network.on_request(PRIVACY_KIND, self._on_privacy_request)
        await self.network.start()

        app = create_app(NodeBackend(self), body_bytes_max=self.config.limits.api_body_bytes_max)
        self._api_runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._api_runner.setup()
        await web.TCPSite(self._api_runner, self.config.api_host, self.config.api_port).start()
        if self.config.api_port == 0:
            self.config = self.config.model_copy(update={"api_port": self._api_runner.addresses[0][1]})

        self._tasks.append(asyncio.create_task(self._tick_loop(), name="tick"))
        self._tasks.append(asyncio.create_task(self._sync_probe_loop(), name="sync-probe"))
        self.log.info(
            "node started",
            extra={"fields": {"chain_id": self.chain_id, "p2p_port": self.network.port, "api_port": self.config.api_port, "validators": len(self.validators())}},
        )

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        if self._fetch_task is not None:
            self._tasks.append(self._fetch_task)
            self._fetch_task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.events.close_all()
        if self._api_runner is not None:
            await self._api_runner.cleanup()
        if self.network is not None:
            await self.network.stop()
        if self.privacy is not None:
            self.privacy.close()
        self.verify_pool.shutdown(wait=True, cancel_futures=True)
        if self._store is not None:
            self._store.close()
        self.log.info("node stopped")

    def _require_chain(self) -> Chain:
        assert self.chain is not None, "the node is not started"
        return self.chain

    def _build_network(self) -> P2PNetwork:
        limits = self.config.limits
        p2p_limits = P2PLimits(
            message_bytes_max=limits.message_bytes_max,
            messages_per_second=limits.peer_messages_per_second,
            messages_burst=limits.peer_messages_burst,
            send_queue_max=limits.peer_send_queue_max,
            requests_in_flight_max=limits.peer_requests_in_flight_max,
        )
        # Every configured peer is dialed, but only while the chain lets its key link (see peer_allowed).
        peer_urls = {peer.node_key: peer.url for peer in self.config.peers}
        return P2PNetwork(
            self.chain_id,
            self.signer,
            self.peer_allowed,
            peer_urls,
            p2p_limits,
            self.config.p2p_host,
            self.config.p2p_port,
        )

    def peer_allowed(self, node_key: str) -> bool:
        """Check whether `node_key` may hold a peer link, by the chain state at the head.

        The key must be the node key of an active member: a suspended or removed
        member's node is refused. A validator of the current or the next scheduled
        set is allowed whatever its member status, because the consensus quorum
        needs its votes until governance takes it out of the validator set.
        """
        if self.replica is not None:
            seq = self.replica.last_executed_seq + 1
            if node_key in self.replica.validators_at(seq) or node_key in self.replica.validators_at(seq + self.replica.config.reconfig_delay_blocks):
                return True
        if self.chain is None:
            return self.genesis.member_by_node_key(node_key) is not None
        state = self.chain.state()
        owner = state.get(f"member_key/{node_key}")
        if not isinstance(owner, dict) or owner.get("kind") != "node":
            return False
        member = state.get(f"member/{owner['member_id']}")
        return isinstance(member, dict) and member.get("status") == "active"

    def _build_replica(self) -> Replica:
        chain = self._require_chain()
        records = chain.load_consensus()
        self._reconcile_validator_schedule(records)
        config = ReplicaConfig(
            chain_id=self.chain_id,
            validators=validator_node_keys(self.genesis),
            checkpoint_interval=self.config.checkpoint_interval,
            window_size=2 * self.config.checkpoint_interval,
            view_timeout_ticks=self.config.view_timeout_ticks,
            view_timeout_max_ticks=max(self.config.view_timeout_max_ticks, self.config.view_timeout_ticks),
            reconfig_delay_blocks=max(64, 2 * self.config.checkpoint_interval),
            payload_digest=payload_digest,
            validate_payload=self._validate_payload,
        )
        restored = RestoredState(records=records, last_executed_seq=chain.height, last_state_digest=chain.state_root())
        return Replica(config, self.signer, self.consensus_verifier, restored)

    def _reconcile_validator_schedule(self, records: dict[str, dict[str, Any]]) -> None:
        """Make the persisted validator schedule agree with the chain's validator state, in place and on disk.

        The replica learns a validator change from `block_executed`. Blocks
        committed by catch-up, or executed just before a crash, never reach it,
        so the chain's `validators` and `validators_pending` state is the source.
        """
        chain = self._require_chain()
        state = chain.state()
        record = records.get(VALIDATORS_KEY)
        schedule = ValidatorSchedule.from_record(record) if record is not None else ValidatorSchedule(validator_node_keys(self.genesis))
        changed = False
        current = state.get("validators")
        if isinstance(current, dict) and tuple(current["node_keys"]) != schedule.at(chain.height + 1):
            schedule.add(chain.height + 1, tuple(current["node_keys"]))
            changed = True
        pending = state.get("validators_pending")
        if isinstance(pending, dict) and tuple(pending["node_keys"]) != schedule.at(pending["effective_height"]):
            schedule.add(pending["effective_height"], tuple(pending["node_keys"]))
            changed = True
        if changed:
            records[VALIDATORS_KEY] = schedule.to_record()
            chain.save_consensus([(VALIDATORS_KEY, records[VALIDATORS_KEY])])
            self.log.info("validator schedule restored from chain state", extra={"fields": {"schedule": records[VALIDATORS_KEY]["schedule"]}})

    def validators(self) -> tuple[str, ...]:
        if self.replica is None:
            return validator_node_keys(self.genesis)
        return self.replica.validators_at(self.replica.last_executed_seq + 1)

    # ---- consensus inputs ----

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

    def _count_drop(self, peer: str, reason: str) -> None:
        self.consensus_dropped += 1
        if self.consensus_dropped == 1 or self.consensus_dropped % 100 == 0:
            self.log.warning("dropped consensus message", extra={"fields": {"peer": peer, "reason": reason, "dropped": self.consensus_dropped}})

    async def _on_tx_gossip(self, peer: str, body: Any) -> None:
        envelopes = body.get("transactions") if isinstance(body, dict) else None
        if not isinstance(envelopes, list) or len(envelopes) > GOSSIP_ENVELOPES_PER_MESSAGE_MAX:
            self.log.warning("dropped invalid transaction gossip", extra={"fields": {"peer": peer}})
            return
        assert self.admission is not None
        await self.admission.admit_many(envelopes, from_peer=True)

    async def _on_privacy_request(self, peer: str, body: Any) -> dict[str, Any]:
        """Serve a peer's request for a subject's personal details (node.privacy.sharing)."""
        assert self.privacy is not None
        chain = self._require_chain()
        owner = chain.state().get(f"member_key/{peer}")
        peer_member_id = owner["member_id"] if isinstance(owner, dict) and owner.get("kind") == "node" else None
        return handle_details_request(
            body,
            chain.state(),
            self.privacy.store,
            block_date(chain, self.genesis.utc_offset_minutes),
            # The request's freshness window is real time, like a signed read's, whatever the chain clock's speed.
            system_now_ms(),
            self.member.member_id,
            peer_member_id=peer_member_id,
            seen=self._privacy_seen,
        )

    async def send_privacy_request(self, peer: str, request: dict[str, Any]) -> dict[str, Any]:
        """Send a details request to a peer node; a `SendRequest` for node.privacy.sharing.request_details."""
        assert self.network is not None
        try:
            return await self.network.request(peer, PRIVACY_KIND, request)
        except PeerError as exc:
            raise ConnectionError(str(exc)) from None

    def has_pending_work(self) -> bool:
        return len(self.mempool) > 0

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

    def _flush_gossip(self) -> None:
        assert self.admission is not None and self.network is not None
        for batch in self.admission.take_gossip():
            self.network.broadcast(TOPIC_TXS, {"transactions": batch})

    # ---- proposing ----

    def _next_proposal_seq(self) -> int:
        replica = self.replica
        assert replica is not None
        # TODO: use a public Replica property once consensus exposes the seq propose() will assign.
        return replica._proposal_seq()

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

        seq = self._next_proposal_seq()
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

    # ---- performing outputs ----

    def _perform(self, first: Output) -> None:
        """Carry out an Output and every Output it leads to, each in the documented order."""
        chain = self._require_chain()
        replica = self.replica
        assert replica is not None
        queue: deque[Output] = deque([first])
        while queue:
            out = queue.popleft()
            if out.persist:
                chain.save_consensus(out.persist)
            for recipient, message in out.messages:
                self._send_consensus(recipient, message)
            for block in out.committed:
                queue.append(self._execute_committed(block))
            if out.view_changed is not None:
                requeued = self.mempool.requeue_in_flight()
                self.log.info("entered view", extra={"fields": {"new_view": out.view_changed, "primary": self._member_id(replica.primary), "requeued_txs": requeued}})
            if out.stable_checkpoint is not None:
                self.log.debug("stable checkpoint", extra={"fields": {"seq": out.stable_checkpoint}})
            if out.fetch is not None:
                self._start_fetch(out.fetch.from_seq, out.fetch.to_seq, out.fetch.hint_peers)

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
        for peer in sorted(recipients):
            network.send(peer, TOPIC_CONSENSUS, wire)

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

    def _commit_to_chain(self, block: CertifiedBlock) -> CommitResult:
        chain = self._require_chain()
        result = chain.commit(block.seq, block.view, block.digest, block.payload, certificate_wire(block))
        self.mempool.remove_committed([(vtx.tx_id, vtx.sender, vtx.nonce) for vtx in result.txs])
        self._apply_erasures(result)
        self._publish_events(result)
        self._enforce_peer_membership()
        return result

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
        begin_events: list[Event] = []
        end_events: list[Event] = []
        seen_tx = False
        for block_event in result.events:
            if block_event.tx_id is not None:
                seen_tx = True
            elif seen_tx:
                end_events.append(block_event.event)
            else:
                begin_events.append(block_event.event)
        senders = {vtx.tx_id: self._sender_member_id(vtx.sender) for vtx in result.txs}
        self.events.publish(events_for_block(result.header.height, result.receipts, begin_events, end_events, senders))

    def _member_id(self, node_key: str) -> str:
        member = self.member_by_node_key.get(node_key)
        if member is not None:
            return member.member_id
        owner = self.chain.state().get(f"member_key/{node_key}") if self.chain is not None else None
        return owner["member_id"] if isinstance(owner, dict) else node_key[:16]

    def _sender_member_id(self, client_key: str) -> str:
        """Return the member id of a client key, including members admitted after genesis, or "" for a subject or unknown key."""
        member_id = self.member_by_client_key.get(client_key)
        if member_id is not None:
            return member_id
        owner = self.chain.state().get(f"member_key/{client_key}") if self.chain is not None else None
        return owner["member_id"] if isinstance(owner, dict) and owner.get("kind") == "client" else ""

    # ---- catch-up ----

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
                self._perform(self.replica.deliver_fetched(blocks))
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
        wanted = len(self.network.peer_urls)
        while len(self.network.connected_peers()) < wanted and time.monotonic() < deadline and not self._stopping.is_set():
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
                count = self._commit_verified(peer, blocks)
                committed += count
                if count:
                    progressed = True
                    break
            if not progressed:
                break
        return committed

    def _commit_verified(self, peer: str, blocks: list[CertifiedBlock]) -> int:
        chain = self._require_chain()
        count = 0
        for block in blocks:
            if block.seq != chain.height + 1:
                break
            validators = self._catch_up_validators(block.seq)
            reason = verify_certified_block(block, validators, quorum_size(len(validators)), self.consensus_verifier, self.chain_id, payload_digest)
            if reason is not None:
                self.log.warning("peer sent a block with an invalid certificate", extra={"fields": {"peer": peer, "seq": block.seq, "reason": reason}})
                break
            self._commit_to_chain(block)
            count += 1
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

    # ---- status ----

    def status(self) -> dict[str, Any]:
        chain = self._require_chain()
        replica = self.replica
        network = self.network
        head = chain.head()
        connected = set(network.connected_peers()) if network is not None else set()
        peers = [
            {"member_id": peer.member_id, "node_key": peer.node_key, "connected": peer.node_key in connected, "height": self.peer_heights.get(peer.node_key)}
            for peer in self.config.peers
        ]
        return {
            "chain_id": self.chain_id,
            "node_id": self.member.member_id,
            "node_key": self.key.public_key,
            "role": self.member.role,
            "height": chain.height,
            "block_hash": head.block_hash(),
            "state_root": head.state_root,
            "chain_time_ms": self.clock.now_ms(),
            "view": replica.view if replica is not None else 0,
            "in_view_change": replica.in_view_change if replica is not None else False,
            "primary": self._member_id(replica.primary) if replica is not None else "",
            "validators": [self._member_id(key) for key in self.validators()],
            "peers": peers,
            "mempool_size": len(self.mempool),
            # Clients size expires_at by this genesis limit, which an accelerated network widens.
            "tx_expiry_window_ms": self.genesis.limits.tx_expiry_window_ms,
            "syncing": self.syncing,
            "version": VERSION,
        }

    # ---- running ----

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, self._stopping.set)
        await self.start()
        await self._stopping.wait()
        self.log.info("shutting down")
        await self.stop()


def run_node_forever(config: NodeConfig) -> int:
    """Run one node until SIGTERM or SIGINT; return the process exit status."""
    try:
        node = Node(config)
    except NodeStartError as exc:
        _logger.error("cannot start node: %s", exc)
        return 1
    try:
        asyncio.run(node.run_until_signalled())
    except ChainError as exc:
        _logger.error("cannot open the chain: %s", exc)
        return 1
    except OSError as exc:
        _logger.error("node stopped on an I/O error: %s", exc)
        return 1
    return 0
