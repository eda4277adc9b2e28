"""The running node as seen by the HTTP API: `NodeBackend` implements `node.api.ApiBackend`.

Reads come from the node's chain at its head; submissions go through the
node's admission. Everything here runs on the event loop and reads LevelDB
directly, which is fast enough for single-object reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from node.api import SubmitResult
from node.chain import Chain
from node.clock import system_now_ms
from node.contracts import queries
from node.events import Subscription
from node.metrics import MetricFamily, NodeMetrics
from node.privacy.access import reader_for_key
from node.privacy.read_auth import Reader, ReadVerifier
from node.report_access import ServedQueryLog, block_date, serve_subject_report
from node.tx import compute_tx_id

if TYPE_CHECKING:
    from node.daemon import Node


# Readers of node.api_reads.OBJECT_KINDS: each takes the state at the head, the object id and the
# head block's local date, and returns the object as the contract queries present it, or None.
OBJECT_READERS: dict[str, Callable[[Any, str, str], dict[str, Any] | None]] = {
    "member": lambda state, object_id, today: queries.get_member(state, object_id),
    "loan": lambda state, object_id, today: queries.get_loan(state, object_id, today),
    "loan_schedule": lambda state, object_id, today: loan_schedule(state, object_id, today),
    "case": lambda state, object_id, today: queries.get_case(state, object_id),
    "mandate": lambda state, object_id, today: queries.get_mandate(state, object_id),
    "dispute": lambda state, object_id, today: queries.get_dispute(state, object_id),
    "complaint": lambda state, object_id, today: queries.get_complaint(state, object_id),
}


def loan_schedule(state: Any, loan_id: str, today: str) -> dict[str, Any] | None:
    """Return a loan's instalments (due and paid amounts) with its DPD on `today`, or None."""
    loan = queries.get_loan(state, loan_id, today)
    if loan is None:
        return None
    return {"loan_id": loan_id, "as_of_date": today, "dpd": loan["dpd"], "schedule": loan["instalments"]}


def header_to_api(header: Any) -> dict[str, Any]:
    """Return a block header with the field names of the API (SPEC section 3)."""
    return {
        "height": header.height,
        "previous_hash": header.prev_hash,
        "timestamp": header.timestamp_ms,
        "proposer": header.proposer,
        "view": header.view,
        "payload_digest": header.payload_digest,
        "transactions_root": header.tx_root,
        "state_root": header.state_root,
        "block_hash": header.block_hash(),
    }


class NodeBackend:
    """`report_query_max_age_ms` bounds, in chain time, how long a committed `report.query` allows report reads."""

    def __init__(self, node: "Node", report_query_max_age_ms: int | None = None) -> None:
        self._node = node
        # Read-request freshness is about real time (replays over the network), not chain time, which
        # an accelerated clock runs so fast that the 300 s window would last milliseconds.
        # The node's member id is part of every signed read, so headers signed for one node fail on another.
        self._read_verifier = ReadVerifier(
            lambda key: reader_for_key(self._chain().state(), key),
            clock_ms=system_now_ms,
            node_member_id=node.member.member_id,
        )
        self._served_queries: ServedQueryLog | None = None
        # The genesis expiry window already scales with an accelerated clock, so it is the default age limit.
        self.report_query_max_age_ms = report_query_max_age_ms or node.genesis.limits.tx_expiry_window_ms

    def _chain(self) -> Chain:
        chain = self._node.chain
        assert chain is not None, "the API runs only while the node is started"
        return chain

    @property
    def default_language(self) -> str:
        return self._node.config.language

    async def submit_transactions(self, envelopes: list[Any]) -> list[SubmitResult]:
        admission = self._node.admission
        assert admission is not None
        # The API parsed the body with parse_json, which checked every value.
        return await admission.admit_many(envelopes, parsed_strictly=True)

    def get_transaction(self, tx_id: str) -> dict[str, Any] | None:
        location = self._chain().get_tx(tx_id)
        if location is not None:
            return {"tx_id": tx_id, "status": "committed", "height": location.height, "index": location.index, "receipt": location.receipt}
        if tx_id in self._node.mempool:
            return {"tx_id": tx_id, "status": "pending"}
        reason = self._node.mempool.dropped.get(tx_id)
        admission = self._node.admission
        if reason is None and admission is not None:
            reason = admission.rejected.get(tx_id)
        if reason is not None:
            return {"tx_id": tx_id, "status": "rejected", "reason": reason}
        return None

    def get_block(self, height: int | None) -> dict[str, Any] | None:
        chain = self._chain()
        if height is None:
            height = chain.height
        header = chain.get_header(height)
        if header is None:
            return None
        tx_ids = [compute_tx_id(envelope) for envelope in chain.get_block_txs(height)]
        return {"header": header_to_api(header), "tx_ids": tx_ids, "certificate": chain.get_certificate(height)}

    def status(self) -> dict[str, Any]:
        return self._node.status()

    def list_members(self) -> list[dict[str, Any]]:
        return queries.list_members(self._chain().state())

    def get_params(self) -> dict[str, Any]:
        return queries.get_params(self._chain().state())

    def get_object(self, kind: str, object_id: str) -> dict[str, Any] | None:
        reader = OBJECT_READERS.get(kind)
        if reader is None:
            return None
        chain = self._chain()
        value = reader(chain.state(), object_id, block_date(chain, self._node.genesis.utc_offset_minutes))
        return value if isinstance(value, dict) else None

    def read_state(self, key: str) -> Any | None:
        return self._chain().state().get(key)

    def prove_state(self, key: str) -> dict[str, Any]:
        value, proof, root = self._chain().prove(key)
        return {"key": key, "value": value, "state_root": root, "proof": proof.to_dict()}

    def verify_read_request(self, method: str, path_with_query: str, body: bytes, headers: Mapping[str, str]) -> Reader:
        return self._read_verifier.verify(method, path_with_query, body, headers)

    async def subject_report(self, subject_id: str, reader: Reader, purpose: str, query_tx: str | None) -> dict[str, Any]:
        """Build the report after the access policy and the recorded `report.query` both allow the read."""
        node = self._node
        return serve_subject_report(
            self._chain(),
            reader,
            subject_id,
            purpose,
            query_tx,
            utc_offset_minutes=node.genesis.utc_offset_minutes,
            now_ms=node.clock.now_ms(),
            max_age_ms=self.report_query_max_age_ms,
            pending=query_tx is not None and query_tx in node.mempool,
            served=self._served_query_log(),
        )

    def _served_query_log(self) -> ServedQueryLog:
        # The chain's LevelDB store exists only once the node has started, so the log is opened on first use.
        if self._served_queries is None:
            self._served_queries = ServedQueryLog(self._node._store)
        return self._served_queries

    def subscribe_events(self, types: frozenset[str] | None, member: str | None) -> Subscription:
        return self._node.events.subscribe(types, member)

    def metrics_snapshot(self) -> NodeMetrics:
        node = self._node
        admission = node.admission
        replica = node.replica
        network = node.network
        extra = [
            MetricFamily("xinlian_syncing", "gauge", "1 while the node catches up from peers", {(): int(node.syncing)}),
            MetricFamily("xinlian_consensus_messages_dropped_total", "counter", "consensus messages dropped before the replica", {(): node.consensus_dropped}),
        ]
        if replica is not None:
            extra.append(
                MetricFamily(
                    "xinlian_consensus_rejections_total",
                    "counter",
                    "peer messages the replica rejected, by reason",
                    {(("reason", reason),): count for reason, count in sorted(replica.counters.items())},
                )
            )
        if network is not None:
            extra.append(
                MetricFamily(
                    "xinlian_p2p_events_total",
                    "counter",
                    "peer link events (drops, refusals, failures), by kind",
                    {(("kind", kind),): count for kind, count in sorted(network.counters.items())},
                )
            )
        return NodeMetrics(
            height=self._chain().height,
            view=replica.view if replica is not None else 0,
            mempool_size=len(node.mempool),
            peers_connected=len(network.connected_peers()) if network is not None else 0,
            tx_admitted_total=admission.admitted_total if admission is not None else 0,
            tx_rejected_total=dict(admission.rejected_by_code) if admission is not None else {},
            event_subscribers=node.events.subscriber_count,
            extra=extra,
        )
