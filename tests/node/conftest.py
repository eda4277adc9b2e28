"""Shared fixtures of the node tests: a one-validator network and its running node."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from node.config import NodeConfig
from node.daemon import Node
from node.localnet import InitOptions, init_network

# Short ticks, batches and view timeouts, so a test node commits within milliseconds.
FAST_NODE_SETTINGS = {"tick_ms": 10, "block_interval_ms": 10, "view_timeout_ticks": 50}


@pytest.fixture
def network(tmp_path: Path) -> tuple[Path, NodeConfig]:
    """Write a bank and a regulator; only bank-1 validates, so one process forms the network."""
    configs = init_network(
        tmp_path / "net",
        InitOptions(nodes=2, roles=("bank", "regulator"), node_settings=FAST_NODE_SETTINGS, validator_count=1),
    )
    return tmp_path / "net", configs[0]


@pytest.fixture
async def node(network: tuple[Path, NodeConfig]) -> AsyncIterator[Node]:
    running = Node(network[1])
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
