"""Empty blocks on an idle chain: the time step runs on its date, at a bounded real-time rate, without view changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.config import load_config
from node.contracts import queries
from node.daemon import Node
from node.localnet import InitOptions, init_network, parse_start_date, set_shared_clock_epoch
from node.proposer import empty_block_due
from tests.node.accelerated_node import (
    BANK,
    START_DATE,
    chain_date,
    client_for,
    next_event,
    register_overdue_loan,
    start_accelerated_node,
    wait_until,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
CHINA_OFFSET_MINUTES = 480
# 2024-03-04 00:00 +08:00
MIDNIGHT_MS = parse_start_date("2024-03-04")


@pytest.mark.parametrize(
    ("head_ms", "now_ms", "expected"),
    [
        (MIDNIGHT_MS + HOUR_MS, MIDNIGHT_MS + 2 * HOUR_MS - 1, False),  # same date, interval not reached
        (MIDNIGHT_MS + HOUR_MS, MIDNIGHT_MS + 2 * HOUR_MS, True),  # interval reached
        (MIDNIGHT_MS - 1, MIDNIGHT_MS, True),  # previous local date
        (MIDNIGHT_MS - DAY_MS + 1, MIDNIGHT_MS - 1, True),  # same date but a day old
        (MIDNIGHT_MS + 10, MIDNIGHT_MS + 5, False),  # the clock is behind the head
        # 16:00 UTC is local midnight: a UTC date change alone is no reason.
        (MIDNIGHT_MS + 8 * HOUR_MS - 1, MIDNIGHT_MS + 8 * HOUR_MS + 1, False),
    ],
)
def test_empty_block_due_cases(head_ms: int, now_ms: int, expected: bool) -> None:
    assert empty_block_due(head_ms, now_ms, HOUR_MS, CHINA_OFFSET_MINUTES) is expected


async def test_idle_chain_opens_case_on_date(tmp_path: Path) -> None:
    """With only the midnight rule (a 30-day interval), the case opens on the day after the due date."""
    settings = {"empty_block_interval_ms": 30 * DAY_MS, "empty_block_min_real_interval_ms": 100}
    # 12 chain hours per real second: the real-time floor is 20 chain minutes.
    node = await start_accelerated_node(tmp_path / "net", speed=43_200, settings=settings)
    subscription = node.events.subscribe(frozenset({"case.opened"}), None)
    try:
        async with client_for(node, tmp_path / "net", BANK) as bank:
            loan = await register_overdue_loan(node, bank)
        chain = node.chain
        assert chain is not None
        assert chain_date(node, chain.head().timestamp_ms) < loan.due_date

        opened = await next_event(subscription, lambda event: event.data["loan_id"] == loan.loan_id)
        case = queries.get_case(chain.state(), opened.data["case_id"])
        heights = range(loan.last_tx_height + 1, opened.height + 1)
        block_txs = {height: chain.get_block_txs(height) for height in heights}
        headers = [chain.get_header(height) for height in heights]
    finally:
        subscription.close()
        await node.stop()

    assert opened.tx_id is None  # raised by the time step
    assert opened.height > loan.last_tx_height
    assert case is not None
    assert case["opened_on"] == loan.open_date.isoformat()
    assert all(txs == [] for txs in block_txs.values()), block_txs
    assert all(header is not None and header.proposer == BANK for header in headers)
    dates = [chain_date(node, header.timestamp_ms) for header in headers if header is not None]
    assert dates[-1] == loan.open_date
    # The midnight rule gives each date its first block, and with a 30-day interval nothing else does.
    assert dates[-2:] == [loan.due_date, loan.open_date]
    assert len(dates) == len(set(dates))


async def test_empty_blocks_respect_real_floor(tmp_path: Path) -> None:
    """At one chain day per real second the 1 h interval is always due, so the real-time floor sets the pace."""
    floor_ms = 150
    speed = 86_400
    node = await start_accelerated_node(tmp_path / "net", speed=speed, settings={"empty_block_min_real_interval_ms": floor_ms})
    try:
        chain = node.chain
        assert chain is not None
        await wait_until(lambda: chain.height >= 5, "five empty blocks are committed")
        headers = [chain.get_header(height) for height in range(1, 6)]
    finally:
        await node.stop()

    times = [header.timestamp_ms for header in headers if header is not None]
    assert len(times) == 5
    for earlier, later in zip(times, times[1:]):
        # Chain time runs `speed` times real time; allow 10 % for the gap between the system and monotonic clocks.
        assert later - earlier >= floor_ms * speed * 9 // 10, (earlier, later)


async def test_idle_four_nodes_keep_view(tmp_path: Path) -> None:
    """Backups accept the primary's empty blocks, and an idle network does not change view."""
    options = InitOptions(
        nodes=4,
        accelerated=True,
        speed=86_400,
        start_ms=parse_start_date(START_DATE),
        node_settings={"tick_ms": 10, "view_timeout_ticks": 30, "empty_block_min_real_interval_ms": 100},
    )
    init_network(tmp_path / "net", options)
    set_shared_clock_epoch(tmp_path / "net")
    nodes = [Node(load_config(path / "config.json")) for path in sorted((tmp_path / "net" / "nodes").iterdir())]
    started: list[Node] = []
    try:
        for node in nodes:
            await node.start()
            started.append(node)
        await wait_until(lambda: all(node.chain is not None and node.chain.height >= 4 for node in nodes), "every node commits four blocks")
        views = [node.replica.view if node.replica is not None else -1 for node in nodes]
        roots = {node.chain.get_header(4).state_root for node in nodes if node.chain is not None}
        proposers = {node.chain.get_header(height).proposer for node in nodes if node.chain is not None for height in range(1, 5)}
    finally:
        await asyncio.gather(*(node.stop() for node in started))

    assert views == [0, 0, 0, 0]
    assert len(roots) == 1
    assert proposers == {"bank-1"}
