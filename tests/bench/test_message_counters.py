"""The peer message counters that the network benchmark reads from /metrics, over real websockets on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from node.keys import generate_key
from node.metrics import MetricFamily, NodeMetrics, node_families, render_prometheus
from node.p2p import P2PNetwork
from tests.node.test_p2p import url_of, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import node_metrics  # noqa: E402

CHAIN_ID = "xinlian-test"


async def test_sent_and_received_counted_per_topic() -> None:
    keys = [generate_key() for _ in range(3)]
    members = {key.public_key for key in keys}
    inboxes: list[list[Any]] = [[], [], []]
    networks = [P2PNetwork(CHAIN_ID, key, lambda peer: peer in members, {}) for key in keys]
    for network, inbox in zip(networks, inboxes):
        network.on_message("consensus", lambda peer, body, inbox=inbox: _record(inbox, body))
    try:
        for network in networks:
            await network.start()
        networks[0].add_peer(keys[1].public_key, url_of(networks[1]))
        networks[0].add_peer(keys[2].public_key, url_of(networks[2]))
        await wait_until(lambda: len(networks[0].connected_peers()) == 2)

        assert networks[0].broadcast("consensus", {"n": 1}) == 2
        assert networks[0].send(keys[1].public_key, "consensus", {"n": 2})
        assert networks[0].send(keys[1].public_key, "unregistered", {"n": 3})
        await wait_until(lambda: len(inboxes[1]) == 2 and len(inboxes[2]) == 1 and networks[1].counters["dropped_unknown_topic"] == 1)

        assert networks[0].counters["message_sent_consensus"] == 3
        assert networks[0].counters["message_sent_unregistered"] == 1
        assert networks[1].counters["message_received_consensus"] == 2
        assert networks[2].counters["message_received_consensus"] == 1
        assert "message_received_unregistered" not in networks[1].counters
    finally:
        for network in networks:
            await network.stop()


async def _record(inbox: list[Any], body: Any) -> None:
    inbox.append(body)


def test_benchmark_parses_node_exposition() -> None:
    snapshot = NodeMetrics(height=5, view=0, mempool_size=0, peers_connected=3, tx_admitted_total=0)
    samples = {(("kind", "message_sent_consensus"),): 7, (("kind", "message_received_txs"),): 2, (("kind", "dial_failed"),): 1}
    family = MetricFamily("xinlian_p2p_events_total", "counter", "peer link events", samples)
    figures = node_metrics.parse_metrics(render_prometheus(node_families(snapshot) + [family]))
    assert figures == {"height": 5, "sent_consensus": 7, "received_txs": 2}
