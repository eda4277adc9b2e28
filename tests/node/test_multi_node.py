"""Four validator nodes in this process: erasure reaches every node, and each node verifies a signature once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import AsyncIterator, Callable

import nacl.signing
import pytest

from node.client import XinlianClient
from node.daemon import Node
from node.keys import load_key_file
from node.localnet import InitOptions, init_network
from node.privacy.errors import PrivacyError
from node.tx import POOL_BATCH_THRESHOLD, TX_SIGNATURE_PREFIX

FAST = {"tick_ms": 10, "block_interval_ms": 20, "view_timeout_ticks": 200}
WAIT_S = 20.0


class Network:
    def __init__(self, directory: Path, nodes: dict[str, Node]) -> None:
        self.directory = directory
        self.nodes = nodes

    def client(self, sender: str, node: str) -> XinlianClient:
        seed = load_key_file(self.directory / "clients" / f"{sender}.json").seed
        port = self.nodes[node].config.api_port
        return XinlianClient(f"http://127.0.0.1:{port}", seed, chain_id="xinlian-local", language="en", timeout_seconds=WAIT_S)

    async def wait_all_at(self, height: int) -> None:
        await wait_until(lambda: all(node.chain is not None and node.chain.height >= height for node in self.nodes.values()), "every node reaches the height")


async def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[Network]:
    configs = init_network(tmp_path / "net", InitOptions(nodes=4, node_settings=FAST))
    nodes = {config.member_id: Node(config) for config in configs}
    started: list[Node] = []
    try:
        for node in nodes.values():
            await node.start()
            started.append(node)
        running = Network(tmp_path / "net", nodes)
        await wait_until(lambda: all(len(node.network.connected_peers()) == 3 for node in nodes.values()), "all peers connect")
        yield running
    finally:
        await asyncio.gather(*(node.stop() for node in started))


@pytest.fixture
def inline_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every transaction signature that any verifier checks in this process. Pool workers are other processes."""
    checked: list[bytes] = []
    original_verify = nacl.signing.VerifyKey.verify

    def counting_verify(self: nacl.signing.VerifyKey, message: bytes, signature: bytes | None = None, **kwargs: object) -> bytes:
        if message.startswith(TX_SIGNATURE_PREFIX):
            checked.append(message)
        return original_verify(self, message, signature, **kwargs)

    monkeypatch.setattr(nacl.signing.VerifyKey, "verify", counting_verify)
    return checked


async def test_erasure_reaches_node_holding_copy(network: Network) -> None:
    holder = network.nodes["credit-agency-2"]
    assert holder.privacy is not None
    subject_id = os.urandom(32).hex()
    stored = holder.privacy.store.put(subject_id, {"name": "张三", "phones": ["13800000000"], "address": "北京", "details": {}}, holder.clock.now_ms())

    async with network.client("bank-1", "bank-1") as bank:
        register = await bank.submit_and_wait("subject.register", {"subject_id": subject_id, "commitment": stored.commitment})
        assert holder.privacy.store.get(subject_id).record["name"] == "张三"
        erase = await bank.submit_and_wait("subject.erase", {"erasure_id": "e-1", "subject_id": subject_id, "mode": "erase", "reason": "subject_request"})
    await network.wait_all_at(erase["height"])

    assert register["receipt"]["ok"]
    assert erase["receipt"]["ok"], erase["receipt"]
    assert holder.privacy.store.state(subject_id) == "erased"
    with pytest.raises(PrivacyError) as unreadable:
        holder.privacy.store.get(subject_id)
    assert unreadable.value.code == "erased"
    # Nodes that held nothing record the status too, so a copy they receive later is not served.
    for member_id in ("bank-1", "collector-3", "regulator-4"):
        assert network.nodes[member_id].privacy.store.state(subject_id) == "erased", member_id


async def test_batch_verified_once_per_node(network: Network, inline_checks: list[bytes]) -> None:
    count = POOL_BATCH_THRESHOLD + 22
    before = {member_id: node.tx_verifier.signature_checks for member_id, node in network.nodes.items()}
    async with network.client("bank-1", "bank-1") as bank:
        envelopes = [bank.build_transaction("subject.register", {"subject_id": os.urandom(32).hex(), "commitment": os.urandom(32).hex()}) for _ in range(count)]
        results = await bank.submit_batch(envelopes)
        records = [await bank.wait_for_receipt(item["tx_id"]) for item in results]
    await network.wait_all_at(max(record["height"] for record in records))

    assert [item["status"] for item in results] == ["pending"] * count
    assert all(record["receipt"]["ok"] for record in records)
    assert network.nodes["bank-1"].verify_pool.started
    # Every node verified the batch in its pool, and nothing in the block path checked a signature again.
    assert inline_checks == []
    for member_id, node in network.nodes.items():
        # Admission (API or gossip) verified each signature, and proposal checks and execution used the cache.
        assert node.tx_verifier.signature_checks - before[member_id] == count, member_id


async def test_proposal_verified_in_pool(network: Network, inline_checks: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    count = POOL_BATCH_THRESHOLD + 10
    primary = network.nodes["bank-1"]
    # Without gossip, the other nodes first see the transactions in the primary's PRE-PREPARE.
    monkeypatch.setattr(primary, "_flush_gossip", lambda: None)
    before = {member_id: node.tx_verifier.signature_checks for member_id, node in network.nodes.items()}
    async with network.client("bank-1", "bank-1") as bank:
        envelopes = [bank.build_transaction("subject.register", {"subject_id": os.urandom(32).hex(), "commitment": os.urandom(32).hex()}) for _ in range(count)]
        results = await bank.submit_batch(envelopes)
        records = [await bank.wait_for_receipt(item["tx_id"]) for item in results]
    await network.wait_all_at(max(record["height"] for record in records))

    assert all(record["receipt"]["ok"] for record in records)
    assert {record["height"] for record in records} == {records[0]["height"]}
    assert inline_checks == []
    for member_id, node in network.nodes.items():
        assert node.tx_verifier.signature_checks - before[member_id] == count, member_id
        assert node.verify_pool.started, member_id
