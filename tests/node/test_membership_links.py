"""Peer links follow committed membership: a suspended member's node is disconnected and refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from node.client import XinlianClient
from node.daemon import Node
from node.keys import load_key_file
from node.localnet import InitOptions, init_network

FAST = {"tick_ms": 10, "block_interval_ms": 10, "view_timeout_ticks": 50}
WAIT_S = 15.0


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[dict[str, Node]]:
    # bank-1 validates alone and collector-2 runs a follower node. regulator-3 only signs transactions.
    configs = init_network(tmp_path / "net", InitOptions(nodes=3, roles=("bank", "collector", "regulator"), node_settings=FAST, validator_count=1))
    running = {config.member_id: Node(config) for config in configs[:2]}
    for node in running.values():
        await node.start()
    try:
        yield running
    finally:
        await asyncio.gather(*(node.stop() for node in running.values()))


def regulator_client(node: Node) -> XinlianClient:
    directory = node.config.genesis_file.parent
    seed = load_key_file(directory / "clients" / "regulator-3.json").seed
    return XinlianClient(f"http://127.0.0.1:{node.config.api_port}", seed, chain_id="xinlian-local", language="en", timeout_seconds=WAIT_S)


async def test_suspended_member_link_closed(nodes: dict[str, Node]) -> None:
    bank, collector = nodes["bank-1"], nodes["collector-2"]
    collector_key = collector.key.public_key
    await wait_until(lambda: bank.network.is_connected(collector_key), "the collector connects")
    assert bank.peer_allowed(collector_key)

    async with regulator_client(bank) as regulator:
        record = await regulator.submit_and_wait("member.suspend", {"member_id": "collector-2", "reason": "licence_withdrawn"})
    assert record["receipt"]["ok"], record["receipt"]

    await wait_until(lambda: bank.network.counters["closed_not_member"] >= 1, "the bank closes the collector's link")
    # The collector redials at once, and the bank refuses its key at the handshake.
    await wait_until(lambda: bank.network.counters["accept_unknown_key"] >= 1, "the bank refuses a redial")
    assert not bank.peer_allowed(collector_key)
    assert not bank.network.is_connected(collector_key)
    assert collector.network.counters["dial_unknown_key"] >= 1


async def test_validator_key_allowed_unknown_refused(nodes: dict[str, Node]) -> None:
    bank, collector = nodes["bank-1"], nodes["collector-2"]

    assert collector.peer_allowed(bank.key.public_key)
    assert not bank.peer_allowed("ab" * 32)
    # A client key belongs to a member but is not a node key.
    assert not bank.peer_allowed(bank.genesis.member("collector-2").client_keys[0])
