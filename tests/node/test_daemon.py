"""One Node in this process (a one-validator network): admission, commit, reads, restart."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.client import XinlianApiError, XinlianClient
from node.config import NodeConfig
from node.daemon import Node, NodeStartError
from node.keys import load_key_file
from node.p2p import P2PNetwork
from node.tx import compute_tx_id


def client_for(network: tuple[Path, NodeConfig], node: Node) -> XinlianClient:
    directory, config = network
    seed = load_key_file(directory / "clients" / f"{config.member_id}.json").seed
    return XinlianClient(f"http://127.0.0.1:{node.config.api_port}", seed, chain_id="xinlian-local", language="en", timeout_seconds=10)


def subject() -> dict[str, Any]:
    return {"subject_id": os.urandom(32).hex(), "commitment": os.urandom(32).hex()}


async def test_single_node_commits_and_serves_block(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with client_for(network, node) as client:
        record = await client.submit_and_wait("subject.register", subject())
        block = await client.block(record["height"])
        status = await client.status()

    assert record["receipt"]["ok"]
    assert status["height"] == record["height"]
    assert status["node_id"] == "bank-1"
    assert status["state_root"] == block["header"]["state_root"]
    assert block["tx_ids"] == [record["tx_id"]]
    assert block["certificate"]["seq"] == record["height"]


async def test_invalid_transactions_rejected(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with client_for(network, node) as client:
        envelope = client.build_transaction("subject.register", subject())
        envelope["signature"] = "00" * 64
        with pytest.raises(XinlianApiError) as bad_signature:
            await client.submit(envelope)
        # A role decision is committed with ok: false, but a malformed payload is rejected whatever the role.
        wrong_role_malformed = client.build_transaction("member.suspend", {"member_id": "bank-1"})
        with pytest.raises(XinlianApiError) as malformed:
            await client.submit(wrong_role_malformed)
        record = await client.get_transaction(compute_tx_id(envelope))

    assert bad_signature.value.code == "invalid_signature"
    assert 400 <= bad_signature.value.status < 500
    assert malformed.value.code == "invalid_payload"
    assert record["status"] == "rejected"
    assert len(node.mempool) == 0


async def test_committed_resubmission_rejected(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with client_for(network, node) as client:
        envelope = client.build_transaction("subject.register", subject())
        tx_id = await client.submit(envelope)
        await client.wait_for_receipt(tx_id)
        with pytest.raises(XinlianApiError) as again:
            await client.submit(envelope)

    assert again.value.code == "duplicate_nonce"


async def test_restart_keeps_chain(network: tuple[Path, NodeConfig]) -> None:
    first = Node(network[1])
    await first.start()
    try:
        async with client_for(network, first) as client:
            record = await client.submit_and_wait("subject.register", subject())
        before = first.status()
    finally:
        await first.stop()

    second = Node(network[1])
    await second.start()
    try:
        after = second.status()
        async with client_for(network, second) as client:
            seen = await client.get_transaction(record["tx_id"])
            later = await client.submit_and_wait("subject.register", subject())
    finally:
        await second.stop()

    assert (after["height"], after["block_hash"], after["state_root"]) == (before["height"], before["block_hash"], before["state_root"])
    assert seen["status"] == "committed"
    assert later["height"] == before["height"] + 1


async def test_events_websocket_after_commit(network: tuple[Path, NodeConfig], node: Node) -> None:
    url = f"http://127.0.0.1:{node.config.api_port}/v1/events?types=tx.committed"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as websocket:
        async with client_for(network, node) as client:
            tx_id = await client.submit(client.build_transaction("subject.register", subject()))
            message = await websocket.receive_json(timeout=10)

    assert message["type"] == "tx.committed"
    assert message["tx_id"] == tx_id


def test_node_rejects_key_of_other_member(network: tuple[Path, NodeConfig]) -> None:
    directory, config = network
    wrong_key = config.model_copy(update={"node_key_file": directory / "clients" / "bank-1.json"})

    with pytest.raises(NodeStartError, match="genesis lists"):
        Node(wrong_key)


async def test_privacy_request_served_over_peer_link(network: tuple[Path, NodeConfig], node: Node) -> None:
    directory, config = network
    # The regulator member is not running a node; the test plays it with the regulator's node key.
    regulator_key = load_key_file(directory / "nodes" / "regulator-2" / "node_key.json")
    regulator = P2PNetwork("xinlian-local", regulator_key, lambda key: True, {})
    await regulator.start()
    try:
        regulator.add_peer(node.key.public_key, f"ws://127.0.0.1:{node.network.port}/v1/peer")
        deadline = asyncio.get_running_loop().time() + 10
        while not regulator.is_connected(node.key.public_key):
            assert asyncio.get_running_loop().time() < deadline, "regulator never connected"
            await asyncio.sleep(0.02)
        response = await regulator.request(node.key.public_key, "privacy", {"kind": "privacy", "op": "details_request", "request_id": "r1"})
    finally:
        await regulator.stop()

    assert response["ok"] is False
    assert response["request_id"] == "r1"
    assert response["error"]["code"] == "invalid_request"
