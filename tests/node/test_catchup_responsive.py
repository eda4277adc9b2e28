"""The API of a node that catches up on many blocks stays responsive, because catch-up yields after each block."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp

from node.client import XinlianClient
from node.daemon import Node
from node.keys import load_key_file
from node.localnet import InitOptions, init_network

# Two transactions a block and one range of 500 blocks a request, so catch-up has many blocks to commit at once.
SETTINGS = {"tick_ms": 10, "block_interval_ms": 5, "view_timeout_ticks": 200, "block_tx_max": 2, "limits": {"sync_blocks_per_request_max": 500}}
TX_COUNT = 300
WAIT_S = 60.0
STATUS_TIMEOUT_S = 1.0


async def _wait_until(condition, description: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {description}"
        await asyncio.sleep(0.02)


async def _fill_chain(directory: Path, node: Node) -> int:
    seed = load_key_file(directory / "clients" / "bank-1.json").seed
    url = f"http://127.0.0.1:{node.config.api_port}"
    async with XinlianClient(url, seed, chain_id="xinlian-local", language="en", timeout_seconds=WAIT_S) as client:
        envelopes = [client.build_transaction("subject.register", {"subject_id": os.urandom(32).hex(), "commitment": os.urandom(32).hex()}) for _ in range(TX_COUNT)]
        await client.submit_batch(envelopes)
    await _wait_until(lambda: len(node.mempool) == 0, "the validator commits every transaction")
    assert node.chain is not None
    return node.chain.height


async def _measure_stalls(done: asyncio.Event) -> float:
    """Return the longest gap between two wakeups of a 5 ms sleep until `done` is set."""
    longest_s = 0.0
    last = time.monotonic()
    while not done.is_set():
        await asyncio.sleep(0.005)
        now = time.monotonic()
        longest_s = max(longest_s, now - last)
        last = now
    return longest_s


async def _poll_status(url: str, done: asyncio.Event) -> list[float]:
    durations = []
    async with aiohttp.ClientSession() as session:
        while not done.is_set():
            started = time.monotonic()
            async with session.get(f"{url}/v1/status", timeout=aiohttp.ClientTimeout(total=10)) as response:
                assert response.status == 200
                await response.read()
            durations.append(time.monotonic() - started)
            await asyncio.sleep(0.01)
    return durations


async def test_status_answers_during_catch_up(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    configs = init_network(directory, InitOptions(nodes=2, roles=("bank", "regulator"), node_settings=SETTINGS, validator_count=1))
    validator, follower = Node(configs[0]), Node(configs[1])
    await validator.start()
    try:
        target_height = await _fill_chain(directory, validator)
        await follower.start()
        try:
            done = asyncio.Event()
            stalls = asyncio.create_task(_measure_stalls(done))
            statuses = asyncio.create_task(_poll_status(f"http://127.0.0.1:{follower.config.api_port}", done))
            started = time.monotonic()
            await _wait_until(lambda: follower.chain is not None and follower.chain.height >= target_height, "the follower catches up")
            catch_up_s = time.monotonic() - started
            done.set()
            longest_stall_s = await stalls
            status_durations = await statuses
        finally:
            await follower.stop()
    finally:
        await validator.stop()

    assert target_height >= TX_COUNT // 2
    assert status_durations, "no status request completed during catch-up"
    assert max(status_durations) < STATUS_TIMEOUT_S
    # Without a yield per block, one 500-block range would stall the loop for most of the catch-up.
    assert longest_stall_s < max(0.2, catch_up_s / 4), (longest_stall_s, catch_up_s)
