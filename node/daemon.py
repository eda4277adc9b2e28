"""The node daemon: the I/O shell around the PBFT replica.

`Node` owns the event loop's work for one member: it starts and stops the
chain, the peer network, the HTTP API and the off-chain store, and serves
transaction gossip and personal-data requests from peers. Its other work is
split by concept into the mixins it is built from:

- `node.consensus_driver`: feed the replica peer messages and ticks, and
  perform each `Output` in the documented order;
- `node.proposer`: cut blocks from the mempool and check proposals;
- `node.block_commit`: commit a block and apply what follows from it
  (mempool, erasures, events, peer links);
- `node.catchup`: fetch and verify the blocks this node is missing.

Transaction signatures are verified once per node: at admission (API batches
and gossip, in a process pool when large) or when a PRE-PREPARE brings
transactions this node has not seen. Proposal checks and execution then find
every result in the shared verifier's cache.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web

from consensus import Ed25519Signer, Ed25519Verifier, ReplicaConfig, RestoredState
from consensus.membership import ValidatorSchedule
from consensus.records import VALIDATORS_KEY
from consensus.replica import Replica
from node.admission import Admission
from node.api import create_app
from node.backend import NodeBackend
from node.block import payload_digest
from node.block_commit import BlockCommitMixin
from node.catchup import CatchUpMixin
from node.chain import Chain, ChainError, CommitResult
from node.clock import make_clock, system_now_ms
from node.config import NodeConfig
from node.consensus_driver import TOPIC_CONSENSUS, TOPIC_TXS, ConsensusDriverMixin
from node.contracts import XinlianExecutor
from node.events import EventBus
from node.genesis import Genesis, load_genesis, validator_node_keys
from node.keys import load_key_file
from node.logs import bind
from node.mempool import Mempool, MempoolLimits
from node.p2p import P2PLimits, P2PNetwork, PeerError
from node.privacy.read_auth import ReplayCache
from node.privacy.setup import NodePrivacy, open_node_privacy
from node.privacy.sharing import KIND as PRIVACY_KIND
from node.privacy.sharing import handle_details_request
from node.proposer import ProposerMixin
from node.report_access import block_date
from node.storage import KeyValueStore, LevelDBStore
from node.sync import BlockServer
from node.tx import TxVerifier
from node.verify_pool import LazyProcessPool

VERSION = "0.1.0"
GOSSIP_ENVELOPES_PER_MESSAGE_MAX = 1000
PRIVACY_REPLAY_CACHE_MAX = 10_000
CHAIN_DIRECTORY = "chain"  # LevelDB of the chain under data_dir; node.privacy keeps its store beside it

_logger = logging.getLogger("xinlian.node")


class NodeStartError(RuntimeError):
    """The node cannot start: its config, key, genesis or data directory does not fit together."""


class Node(ConsensusDriverMixin, ProposerMixin, BlockCommitMixin, CatchUpMixin):
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
        self._undurable: list[CommitResult] = []
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
            lambda: self._require_chain(),
            self.mempool,
            self.tx_verifier,
            self.executor,
            self.clock.now_ms,
            pool=lambda: self.verify_pool,
            on_admitted=self._request_work,
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

    # ---- peer requests ----

    async def _on_tx_gossip(self, peer: str, body: Any) -> None:
        envelopes = body.get("transactions") if isinstance(body, dict) else None
        if not isinstance(envelopes, list) or len(envelopes) > GOSSIP_ENVELOPES_PER_MESSAGE_MAX:
            self.log.warning("dropped invalid transaction gossip", extra={"fields": {"peer": peer}})
            return
        assert self.admission is not None
        # P2PNetwork parses every frame with parse_json, which checked every value.
        await self.admission.admit_many(envelopes, from_peer=True, parsed_strictly=True)

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

    def _member_id(self, node_key: str) -> str:
        member = self.member_by_node_key.get(node_key)
        if member is not None:
            return member.member_id
        owner = self.chain.state().get(f"member_key/{node_key}") if self.chain is not None else None
        return owner["member_id"] if isinstance(owner, dict) else node_key[:16]

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
