"""An accelerated network's genesis widens the chain-time limits, so transactions still commit in real time."""

from __future__ import annotations

import os
import time
from pathlib import Path

from node.client import XinlianClient
from node.daemon import Node
from node.genesis import GenesisLimits, load_genesis
from node.keys import load_key_file
from node.localnet import InitOptions, genesis_limits, init_network

FAST = {"tick_ms": 10, "block_interval_ms": 10, "view_timeout_ticks": 50}
DAY_PER_SECOND = 86_400


def test_genesis_limits_scale_with_speed() -> None:
    defaults = GenesisLimits()

    assert genesis_limits(1) == defaults
    # Twice real time: 30 real seconds is less than the default hour, which stays.
    assert genesis_limits(2) == defaults
    assert genesis_limits(1_000).tx_expiry_window_ms == 30_000_000
    assert genesis_limits(1_000).block_time_drift_ms == 1_000_000
    assert genesis_limits(DAY_PER_SECOND).tx_expiry_window_ms == DAY_PER_SECOND * 30_000
    assert genesis_limits(DAY_PER_SECOND).block_time_drift_ms == DAY_PER_SECOND * 1_000


def test_init_writes_accelerated_limits(tmp_path: Path) -> None:
    init_network(tmp_path / "fast", InitOptions(nodes=1, roles=("regulator",), accelerated=True, speed=DAY_PER_SECOND))
    init_network(tmp_path / "real", InitOptions(nodes=1, roles=("regulator",)))

    fast = load_genesis(tmp_path / "fast" / "genesis.json").limits
    real = load_genesis(tmp_path / "real" / "genesis.json").limits

    assert fast.tx_expiry_window_ms == DAY_PER_SECOND * 30_000
    assert fast.block_time_drift_ms == DAY_PER_SECOND * 1_000
    assert real == GenesisLimits()


def accelerated_client(node: Node, directory: Path, member_id: str, expiry_window_ms: int) -> XinlianClient:
    seed = load_key_file(directory / "clients" / f"{member_id}.json").seed
    return XinlianClient(
        f"http://127.0.0.1:{node.config.api_port}",
        seed,
        chain_id="xinlian-local",
        language="en",
        timeout_seconds=10,
        clock_ms=node.clock.now_ms,
        expiry_window_ms=expiry_window_ms,
    )


async def test_accelerated_node_commits_and_reports(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    configs = init_network(
        directory,
        InitOptions(nodes=2, roles=("bank", "regulator"), accelerated=True, speed=DAY_PER_SECOND, node_settings=FAST, validator_count=1),
    )
    clock = configs[0].clock.model_copy(update={"real_epoch_ms": time.time_ns() // 1_000_000})
    node = Node(configs[0].model_copy(update={"clock": clock}))
    await node.start()
    try:
        status = node.status()
        window_ms = status["tx_expiry_window_ms"]
        subject_id = os.urandom(32).hex()
        async with accelerated_client(node, directory, "bank-1", window_ms) as bank:
            record = await bank.submit_and_wait("subject.register", {"subject_id": subject_id, "commitment": os.urandom(32).hex()})
        # Signed reads carry real-time timestamps, which the node checks against real time.
        async with accelerated_client(node, directory, "regulator-2", window_ms) as regulator:
            answer = await regulator.query_report(subject_id)
    finally:
        await node.stop()

    assert window_ms == DAY_PER_SECOND * 30_000
    assert record["receipt"]["ok"], record["receipt"]
    assert answer["basis"] == "regulator"
    assert answer["report"]["subject_id"] == subject_id
