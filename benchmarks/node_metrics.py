"""Read block height, peer message counters and CPU time of running nodes, to turn them into per-block figures.

Each node's `GET /metrics` (Prometheus text) reports `xinlian_block_height` and,
under `xinlian_p2p_events_total`, the kinds `message_sent_<topic>` (messages
queued for one peer) and `message_received_<topic>` (messages passed to a
handler). The topics are `consensus` (PBFT messages) and `txs` (transaction
gossip). A snapshot before and after a window gives messages per committed block.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

METRICS_TIMEOUT_S = 5
TOPICS = ("consensus", "txs")
_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>-?\d+)$')
_KIND = re.compile(r'kind="(?P<kind>[^"]*)"')
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def parse_metrics(text: str) -> dict[str, int]:
    """Return block height and message counters from Prometheus text, keyed `height` and `<sent|received>_<topic>`."""
    figures = {"height": 0}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        if match["name"] == "xinlian_block_height":
            figures["height"] = int(match["value"])
        elif match["name"] == "xinlian_p2p_events_total":
            kind = _KIND.search(match["labels"] or "")
            if kind and kind["kind"].startswith("message_"):
                figures[kind["kind"].removeprefix("message_")] = int(match["value"])
    return figures


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a live process, from /proc; None if it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_PER_S  # utime and stime, fields 14 and 15 of stat



@dataclass
class Snapshot:
    at: float  # time.perf_counter()
    nodes: list[dict[str, int] | None]  # parse_metrics per node; None where /metrics failed
    cpu_s: float  # CPU seconds of all node processes so far


async def fetch_metrics(session: aiohttp.ClientSession, url: str) -> dict[str, int] | None:
    """Return parse_metrics of one node's /metrics, or None if it did not return status 200 within METRICS_TIMEOUT_S."""
    try:
        async with session.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=METRICS_TIMEOUT_S)) as response:
            if response.status != 200:
                return None
            return parse_metrics(await response.text())
    except (aiohttp.ClientError, TimeoutError):
        return None


async def take_snapshot(session: aiohttp.ClientSession, api_urls: list[str], pids: list[int]) -> Snapshot:
    nodes = await asyncio.gather(*(fetch_metrics(session, url) for url in api_urls))
    cpu = sum(cpu_seconds(pid) or 0.0 for pid in pids)
    return Snapshot(time.perf_counter(), list(nodes), cpu)


def per_block(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """Messages per committed block over all nodes, and node CPU seconds, between two snapshots.

    Blocks are counted on the first node that returned metrics for both
    snapshots. A node missing from either snapshot is left out of the message
    sums, and `nodes_counted` is the number of nodes summed.
    """
    pairs = [(old, new) for old, new in zip(before.nodes, after.nodes) if old is not None and new is not None]
    if not pairs:
        return {"blocks": None, "nodes_counted": 0}
    blocks = pairs[0][1]["height"] - pairs[0][0]["height"]
    result: dict[str, Any] = {"blocks": blocks, "nodes_counted": len(pairs), "node_cpu_s": round(after.cpu_s - before.cpu_s, 2)}
    for direction in ("sent", "received"):
        for topic in TOPICS:
            name = f"{direction}_{topic}"
            total = sum(new.get(name, 0) - old.get(name, 0) for old, new in pairs)
            result[f"{name}_per_block"] = round(total / blocks, 2) if blocks > 0 else None
    return result
