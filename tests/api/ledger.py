"""A real ApiBackend for the API tests: the node's chain on LevelDB, admission, mempool and contracts.

`LedgerBackend` admits transactions through the node's `Admission`, which
checks encoding, signature, expiry, committed nonces and the contracts' rules
before the bounded mempool takes them. It commits blocks on demand. Each block
is an encoded proposal with a commit certificate signed by the validators'
real ed25519 keys, committed through `node.chain.Chain`, which executes the
contracts and writes one synced batch. Only the clock is fake, so tests
control block time.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import aiohttp
import nacl.signing
from aiohttp import web

from consensus import Commit, CommitCertificate, Ed25519Signer, quorum_size, sign_message
from node.admission import Admission
from node.api import SubmitResult, start_api_server
from node.backend import header_to_api
from node.block import encode_proposal, payload_digest
from node.chain import Chain, CommitResult
from node.contracts import XinlianExecutor, queries
from node.contracts.dates import local_date
from node.events import CommittedEvent, EventBus, Subscription, events_for_block, split_block_events
from node.genesis import Genesis, parse_genesis
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node.privacy.access import reader_for_key
from node.privacy.read_auth import ReadVerifier, Reader, sign_read_request
from node.report_access import serve_subject_report
from node.state import ReadOnlyState
from node.storage import KeyValueStore, LevelDBStore
from node.tx import TxVerifier, compute_tx_id, public_key_hex, sign_transaction

CHAIN_ID = "xinlian-api-test"
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01 08:00 +08:00
DAY_MS = 86_400_000
UTC_OFFSET_MINUTES = 480

BANK_SEED = b"\x01" * 32
AGENCY_SEED = b"\x02" * 32
COLLECTOR_SEED = b"\x03" * 32
REGULATOR_SEED = b"\x04" * 32
# (member id, role, client key seed, node key seed)
_MEMBERS = [
    ("bank-a", "bank", BANK_SEED, b"\x11" * 32),
    ("agency-x", "credit_agency", AGENCY_SEED, b"\x12" * 32),
    ("collector-1", "collector", COLLECTOR_SEED, b"\x13" * 32),
    ("regulator", "regulator", REGULATOR_SEED, b"\x14" * 32),
]


def make_subject_id(name: str) -> str:
    return hashlib.sha256(b"subject:" + name.encode()).hexdigest()


def make_genesis() -> Genesis:
    members = [
        {
            "member_id": member_id,
            "name": member_id,
            "role": role,
            "node_key": public_key_hex(node_seed),
            "client_keys": [public_key_hex(client_seed)],
            "licensed": role == "credit_agency",
        }
        for member_id, role, client_seed, node_seed in _MEMBERS
    ]
    return parse_genesis(
        {
            "chain_id": CHAIN_ID,
            "genesis_time_ms": GENESIS_TIME_MS,
            "utc_offset_minutes": UTC_OFFSET_MINUTES,
            "members": members,
            "validators": [member_id for member_id, _, _, _ in _MEMBERS],
        }
    )


class LedgerBackend:
    """An `ApiBackend` over the real chain, admission, mempool, contracts and signed commit certificates."""

    def __init__(self, store: KeyValueStore, default_language: str = "zh-CN", bus: EventBus | None = None) -> None:
        self.chain_id = CHAIN_ID
        self._default_language = default_language
        self.store = store
        self.genesis = make_genesis()
        executor = XinlianExecutor()
        self.chain = Chain(store, self.genesis, executor)
        self.mempool = Mempool()
        self.now_ms = GENESIS_TIME_MS + DAY_MS
        self.admission = Admission(lambda: self.chain, self.mempool, TxVerifier(CHAIN_ID), executor, lambda: self.now_ms)
        self.bus = bus or EventBus()
        self.view = 0
        self.nonce_counter = 0
        self._signers = [Ed25519Signer(node_seed) for _, _, _, node_seed in _MEMBERS]
        self._members_by_client_key = {public_key_hex(client_seed): member_id for member_id, _, client_seed, _ in _MEMBERS}
        self.read_verifier = ReadVerifier(lambda key: reader_for_key(self.chain.state(), key), clock_ms=lambda: self.now_ms)
        self._subscribers_changed = asyncio.Event()
        self._admitted = asyncio.Event()

    # Block production and waiting, driven by the tests.

    def _certificate(self, seq: int, digest: str) -> CommitCertificate:
        quorum = quorum_size(len(self._signers))
        commits = tuple(sign_message(Commit(self.view, seq, digest, ""), signer, CHAIN_ID) for signer in self._signers[:quorum])
        return CommitCertificate(self.view, seq, digest, commits)

    async def commit_block(self) -> int:
        """Commit one block of every ready mempool transaction, one second after the last; return its height."""
        self.now_ms += 1_000
        for tx_id in self.mempool.drop_expired(self.now_ms):
            self.admission.rejected[tx_id] = f"expired: dropped from the mempool at {self.now_ms} ms"
        vtxs = self.mempool.reap(tx_max=2_000, size_max_bytes=8 * 1024 * 1024)
        height = self.chain.height + 1
        payload = encode_proposal(height, self.now_ms, "bank-a", vtxs)
        digest = payload_digest(payload)
        result = self.chain.commit(height, self.view, digest, payload, self._certificate(height, digest).to_wire())
        self.mempool.remove_included([(vtx.tx_id, vtx.sender, vtx.nonce) for vtx in result.txs])
        self._publish(result)
        return height

    def _publish(self, result: CommitResult) -> None:
        begin_events, end_events = split_block_events(result.events)
        senders = {vtx.tx_id: self._members_by_client_key.get(vtx.sender, "") for vtx in result.txs}
        self.bus.publish(events_for_block(result.header.height, result.receipts, begin_events, end_events, senders))

    async def submit_and_commit(self, seed: bytes, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Submit one transaction, commit a block, and return its receipt."""
        envelope = sign_envelope(self, seed, tx_type, payload)
        [result] = await self.submit_transactions([envelope])
        assert result.admitted, result
        await self.commit_block()
        record = self.get_transaction(str(result.tx_id))
        assert record is not None and record["status"] == "committed", record
        return record["receipt"]

    async def record_report_query(self, seed: bytes, subject_id: str, purpose: str = "credit_query") -> str:
        """Commit a report.query from `seed`'s key and return its tx_id, which a report read names as query_tx."""
        self.nonce_counter += 1
        payload = {"query_id": f"query-{self.nonce_counter}", "subject_id": subject_id, "purpose": purpose}
        envelope = sign_envelope(self, seed, "report.query", payload)
        [result] = await self.submit_transactions([envelope])
        assert result.admitted, result
        await self.commit_block()
        record = self.get_transaction(str(result.tx_id))
        assert record is not None and record["receipt"]["ok"], record
        return str(result.tx_id)

    async def grant_consent(self, subject_id: str, grantee: str, purpose: str) -> None:
        """Record a consent that the bank attests with evidence, as a member may do for a subject."""
        payload = {
            "consent_id": f"consent-{subject_id[:8]}-{grantee}-{purpose}",
            "subject_id": subject_id,
            "grantee": grantee,
            "purpose": purpose,
            "expires_on": "2030-01-01",
            "evidence": "e" * 64,
        }
        receipt = await self.submit_and_commit(BANK_SEED, "consent.grant", payload)
        assert receipt["ok"], receipt

    async def publish_marker(self, event_type: str, count: int = 1) -> None:
        """Publish `count` synthetic events of `event_type` in one call, at the current height."""
        self.bus.publish([CommittedEvent(height=self.chain.height, type=event_type, data={"n": n}) for n in range(count)])

    async def wait_for_pending(self) -> None:
        """Wait until the mempool contains at least one transaction."""

        async def admitted() -> None:
            while len(self.mempool) == 0:
                self._admitted.clear()
                await self._admitted.wait()

        await asyncio.wait_for(admitted(), 10)

    async def wait_for_subscribers(self, count: int) -> None:
        async def reached() -> None:
            while self.bus.subscriber_count < count:
                self._subscribers_changed.clear()
                await self._subscribers_changed.wait()

        await asyncio.wait_for(reached(), 5)

    def read_headers(self, seed: bytes, method: str, path_with_query: str) -> dict[str, str]:
        return sign_read_request(nacl.signing.SigningKey(seed), method, path_with_query, b"", self.now_ms)

    def _state(self) -> ReadOnlyState:
        return self.chain.state()

    def _today(self) -> str:
        return local_date(self.chain.head().timestamp_ms, UTC_OFFSET_MINUTES)

    # ApiBackend

    @property
    def default_language(self) -> str:
        return self._default_language

    async def submit_transactions(self, envelopes: list[Any]) -> list[SubmitResult]:
        results = [self.admission.admit(envelope) for envelope in envelopes]
        if any(result.admitted for result in results):
            self._admitted.set()
        return results

    def get_transaction(self, tx_id: str) -> dict[str, Any] | None:
        location = self.chain.get_tx(tx_id)
        if location is not None:
            return {"tx_id": tx_id, "status": "committed", "height": location.height, "index": location.index, "receipt": location.receipt}
        if tx_id in self.mempool:
            return {"tx_id": tx_id, "status": "pending"}
        reason = self.admission.rejected.get(tx_id)
        if reason is not None:
            return {"tx_id": tx_id, "status": "rejected", "reason": reason}
        return None

    def get_block(self, height: int | None) -> dict[str, Any] | None:
        if height is None:
            height = self.chain.height
        header = self.chain.get_header(height)
        if header is None:
            return None
        txs = self.chain.get_block_txs(height)
        return {"header": header_to_api(header), "tx_ids": [compute_tx_id(envelope) for envelope in txs], "certificate": self.chain.get_certificate(height)}

    def status(self) -> dict[str, Any]:
        return {
            "chain_id": CHAIN_ID,
            "node_id": "bank-a",
            "role": "bank",
            "height": self.chain.height,
            "view": self.view,
            "primary": "bank-a",
            "validators": [member_id for member_id, _, _, _ in _MEMBERS],
            "peers": [],
            "mempool_size": len(self.mempool),
            "version": "test",
        }

    def list_members(self) -> list[dict[str, Any]]:
        return queries.list_members(self._state())

    def get_params(self) -> dict[str, Any]:
        return queries.get_params(self._state())

    def get_object(self, kind: str, object_id: str) -> dict[str, Any] | None:
        state = self._state()
        if kind == "member":
            return queries.get_member(state, object_id)
        if kind == "loan":
            return queries.get_loan(state, object_id, self._today())
        if kind == "loan_schedule":
            loan = state.get(f"loan/{object_id}")
            return None if loan is None else {"loan_id": object_id, "schedule": loan["instalments"]}
        if kind == "case":
            return queries.get_case(state, object_id)
        if kind == "mandate":
            return queries.get_mandate(state, object_id)
        if kind == "dispute":
            return queries.get_dispute(state, object_id)
        if kind == "complaint":
            return queries.get_complaint(state, object_id)
        return None

    def read_state(self, key: str) -> Any | None:
        return self._state().get(key)

    def prove_state(self, key: str) -> dict[str, Any]:
        _, proof, root = self.chain.prove(key)
        return {"state_root": root, "proof": proof.to_dict()}

    def verify_read_request(self, method: str, path_with_query: str, body: bytes, headers: Mapping[str, str]) -> Reader:
        return self.read_verifier.verify(method, path_with_query, body, headers)

    async def subject_report(self, subject_id: str, reader: Reader, purpose: str, query_tx: str | None) -> dict[str, Any]:
        # The node's own report path: access policy, then the recorded report.query, then the report.
        return serve_subject_report(
            self.chain,
            reader,
            subject_id,
            purpose,
            query_tx,
            utc_offset_minutes=UTC_OFFSET_MINUTES,
            now_ms=self.now_ms,
            max_age_ms=self.genesis.limits.tx_expiry_window_ms,
            pending=query_tx is not None and query_tx in self.mempool,
        )

    def subscribe_events(self, types: frozenset[str] | None, member: str | None) -> Subscription:
        subscription = self.bus.subscribe(types, member)
        self._subscribers_changed.set()
        return subscription

    def metrics_snapshot(self) -> NodeMetrics:
        return NodeMetrics(
            height=self.chain.height,
            view=self.view,
            mempool_size=len(self.mempool),
            peers_connected=0,
            tx_admitted_total=self.admission.admitted_total,
            tx_rejected_total=dict(self.admission.rejected_by_code),
            event_subscribers=self.bus.subscriber_count,
        )


def sign_envelope(
    backend: LedgerBackend,
    seed: bytes,
    tx_type: str,
    payload: dict[str, Any],
    nonce: str | None = None,
    chain_id: str = CHAIN_ID,
) -> dict[str, Any]:
    """Sign a transaction that expires 10 minutes after the backend's clock."""
    backend.nonce_counter += 1
    body = {
        "chain_id": chain_id,
        "type": tx_type,
        "nonce": nonce or f"nonce-{backend.nonce_counter}",
        "expires_at": backend.now_ms + 10 * 60 * 1000,
        "payload": payload,
    }
    return sign_transaction(seed, body)


@dataclass
class ApiNode:
    """A running API server on 127.0.0.1 with its backend and a client session."""

    backend: LedgerBackend
    base_url: str
    session: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return self.base_url + path


async def start_api_node(store_path: str, default_language: str = "zh-CN", bus: EventBus | None = None) -> tuple[ApiNode, web.AppRunner]:
    backend = LedgerBackend(LevelDBStore(store_path), default_language, bus)
    runner = await start_api_server(backend, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    session = aiohttp.ClientSession()
    return ApiNode(backend, f"http://127.0.0.1:{port}", session), runner


async def stop_api_node(node: ApiNode, runner: web.AppRunner) -> None:
    await node.session.close()
    node.backend.bus.close_all()
    await runner.cleanup()
    node.backend.store.close()
