"""Throughput, commit latency, messages per block, view change and catch-up of an n-validator Xinlian network on 127.0.0.1.

The network is created and started with the documented CLI (`xinlian network
init/up/down`); load goes through node/client.py to every node in turn. Each
run's transactions are signed just before it starts, in a process pool (see
presign.py), so no measured window waits for signing. Senders are the
client keys of the n - 1 banks (the last member is the regulator). Each subject
contributes, in one batch to one node so their order holds: subject.register,
consent.grant (data_sharing, with evidence), loan.register (12-36 instalments)
and repayment.record.

Modes:
- closed loop: at most C transactions in flight, sent in batches of up to 100;
  committed tx/s over the steady window, latency p50/p95/p99, and messages per
  committed block from every node's /metrics counters;
- open loop: a fixed rate (50 tx/s), one transaction per request, for latency at light load;
- view change: under closed-loop load, SIGKILL the primary's process and time
  from the kill to the next committed transaction seen on another node;
- catch-up: stop one node, load the others until they are N blocks ahead,
  restart it and time until it reports their height.
- scaling: further networks (n = 7, 10) with the closed loop only, no faults.

Commit time is when a `tx.committed` event for the tx_id arrives on the event
websocket of the first node, so latency includes the event push to the client.

Usage: .venv/bin/python benchmarks/network.py [--nodes 4] [--concurrency 10 100] [--window-s 20]
           [--scaling-nodes 7 10 --scaling-concurrency 1000] [--run-id ID]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from common import OUT_DIR_DEFAULT, REPEATS_MIN, REPO_ROOT, command_line, machine_info, spread, utc_timestamp, write_result
from node import localnet
from node.client import XinlianApiError, XinlianClient
from node.config import load_config
from node.keys import load_key_file
from node_metrics import Snapshot, fetch_metrics, per_block, take_snapshot
from presign import SignedLoad, new_pool, plan_for, sign_in_pool

logger = logging.getLogger("xinlian.bench.network")

XINLIAN_CLI = [sys.executable, "-m", "node.cli"]
BATCH_SIZE_MAX = 100
WARMUP_S = 5
READY_TIMEOUT_S = 60
DRAIN_TIMEOUT_S = 30
LIGHT_LOAD_TX_PER_S = 50
# The closed loop signs enough for this rate over warm-up plus window. A loop with C in flight
# cannot exceed C / COMMIT_LATENCY_MIN_S, so small concurrencies sign less.
CLOSED_LOOP_TX_PER_S_MAX = 3_000
COMMIT_LATENCY_MIN_S = 0.01
VIEW_CHANGE_CONCURRENCY = 100
# Two subjects in flight keep the next block's transactions ready when a block commits, while
# blocks stay small. So 10,000 blocks need at most 10,000 x 8 pre-signed transactions.
CATCH_UP_CONCURRENCY = 8
CATCH_UP_FULL_CONCURRENCY = 1000  # blocks as large as at the top of the closed loop, to compare catch-up tx/s with it
CATCH_UP_TIMEOUT_S = 1_800


@dataclass
class Network:
    directory: Path
    chain_id: str
    api_urls: list[str]
    bank_keys: list[Any]
    pids: dict[str, int] = field(default_factory=dict)

    def bank_seeds(self) -> list[bytes]:
        return [key.seed for key in self.bank_keys]


def cli(*arguments: str) -> str:
    completed = subprocess.run(XINLIAN_CLI + ["--lang", "en", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    if completed.returncode != 0:
        raise RuntimeError(f"xinlian {' '.join(arguments)} failed: {completed.stdout.strip()} {completed.stderr.strip()}")
    return completed.stdout


def start_network(node_count: int) -> Network:
    directory = Path(tempfile.mkdtemp(prefix=f"xinlian-bench-net{node_count}-"))
    roles = ",".join(["bank"] * (node_count - 1) + ["regulator"])
    cli("network", "init", "--nodes", str(node_count), "--dir", str(directory), "--roles", roles)
    genesis = json.loads((directory / "genesis.json").read_text(encoding="utf-8"))
    members = genesis["members"]
    network = Network(
        directory=directory,
        chain_id=genesis["chain_id"],
        api_urls=[member["api_url"] for member in members],
        bank_keys=[load_key_file(directory / "clients" / f"{member['member_id']}.json") for member in members if member["role"] == "bank"],
    )
    cli("network", "up", "--dir", str(directory))
    for node_dir in localnet.node_dirs(directory):
        pid = localnet.running_pid(node_dir)
        if pid is not None:
            network.pids[node_dir.name] = pid
    logger.info("network of %d nodes started in %s, PIDs %s", node_count, directory, network.pids)
    return network


def process_alive(pid: int) -> bool:
    """Check /proc for a live (not zombie) process with this PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_network(network: Network) -> None:
    """Stop our nodes with `xinlian network down`, then SIGKILL any of our PIDs still alive after 10 s."""
    try:
        cli("network", "down", "--dir", str(network.directory))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        logger.warning("network down failed: %s", exc)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(process_alive(pid) for pid in network.pids.values()):
        time.sleep(0.1)
    for member_id, pid in network.pids.items():
        if process_alive(pid):
            logger.warning("node %s (PID %d) survived network down, sending SIGKILL", member_id, pid)
            os.kill(pid, signal.SIGKILL)


async def wait_ready(network: Network) -> None:
    """Wait until every node has all of its peers connected and is not syncing."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    peer_count = len(network.api_urls) - 1
    while time.monotonic() < deadline:
        statuses = [await asyncio.to_thread(localnet.fetch_status, url) for url in network.api_urls]
        # Views may differ here: an idle restarted node learns the current view only from new traffic.
        if all(status is not None and _connected_peers(status) >= peer_count and not status.get("syncing") for status in statuses):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"network in {network.directory} not connected after {READY_TIMEOUT_S} s")


def _connected_peers(status: dict[str, Any]) -> int:
    peers = status.get("peers", [])
    if isinstance(peers, dict):
        peers = list(peers.values())
    return sum(1 for peer in peers if isinstance(peer, dict) and peer.get("connected"))


async def presign(network: Network, subject_count: int, first_subject: int, pool: Any) -> SignedLoad:
    """Sign `subject_count` units (a subject's four transactions) in the process pool."""
    signed = await sign_in_pool(pool, plan_for(network.chain_id, network.bank_seeds()), first_subject, subject_count)
    logger.info("signed %d transactions in %.1f s", signed.transactions, signed.seconds)
    return signed


class WindowProbe:
    """Snapshots every node's /metrics and CPU time when the measured window starts and when it ends."""

    def __init__(self, network: Network, session: aiohttp.ClientSession) -> None:
        self.network = network
        self.session = session
        self._before: asyncio.Task[Snapshot] | None = None

    def _snapshot(self) -> Any:
        return take_snapshot(self.session, self.network.api_urls, sorted(self.network.pids.values()))

    def begin(self) -> None:
        if self._before is None:
            self._before = asyncio.create_task(self._snapshot())

    async def end(self) -> dict[str, Any] | None:
        if self._before is None:
            return None
        before = await self._before
        after = await self._snapshot()
        return {**per_block(before, after), "seconds": round(after.at - before.at, 2)}


class CommitWatcher:
    """Records the arrival time of `tx.committed` events from one node's websocket."""

    def __init__(self, client: XinlianClient) -> None:
        self.client = client
        self.committed_at: dict[str, float] = {}
        self.submitted_at: dict[str, float] = {}  # filled in by the load generator
        self.ok: dict[str, bool] = {}
        self.changed = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async for event in self.client.events(types=["tx.committed"]):
            tx_id = event["data"]["tx_id"]
            self.committed_at[tx_id] = time.perf_counter()
            self.ok[tx_id] = bool(event["data"]["ok"])
            async with self.changed:
                self.changed.notify_all()


async def closed_loop(
    clients: list[XinlianClient],
    watcher: CommitWatcher,
    units: list[list[dict[str, Any]]],
    concurrency: int,
    window_s: float,
    probe: WindowProbe | None = None,
) -> dict[str, Any]:
    """Keep up to `concurrency` transactions in flight for WARMUP_S + window_s, then measure the window.

    A subject's four transactions always travel together, so at least four are in
    flight. With a `probe`, the result also has the nodes' messages per block.
    """
    load_average_1m = round(os.getloadavg()[0], 2)
    submitted_at: dict[str, float] = {}
    in_flight: set[str] = set()
    started = time.perf_counter()
    window_start, window_end = started + WARMUP_S, started + WARMUP_S + window_s
    next_unit, node_turn, rejected = 0, 0, 0
    while time.perf_counter() < window_end and next_unit < len(units):
        if watcher.task is not None and watcher.task.done():
            raise RuntimeError("the event websocket closed (the node drops subscribers that read too slowly); the run is void")
        if probe is not None and time.perf_counter() >= window_start:
            probe.begin()
        in_flight = {tx_id for tx_id in in_flight if tx_id not in watcher.committed_at}
        room = max(concurrency - len(in_flight), 0)
        if room < len(units[next_unit]) and in_flight:
            if not await _wait_for_commit(watcher):
                logger.warning("no commit for 10 s with %d transactions in flight; ending the run", len(in_flight))
                break
            continue
        batch: list[dict[str, Any]] = list(units[next_unit])
        next_unit += 1
        while next_unit < len(units) and len(batch) + len(units[next_unit]) <= min(room, BATCH_SIZE_MAX):
            batch.extend(units[next_unit])
            next_unit += 1
        sent_at = time.perf_counter()
        try:
            results = await clients[node_turn % len(clients)].submit_batch(batch)
        except (aiohttp.ClientError, TimeoutError, XinlianApiError) as exc:
            logger.warning("batch of %d to node %d failed: %r", len(batch), node_turn % len(clients), exc)
            rejected += len(batch)
            results = []
        node_turn += 1
        for outcome in results:
            if outcome["status"] == "rejected":
                rejected += 1
                continue
            submitted_at[outcome["tx_id"]] = sent_at
            watcher.submitted_at[outcome["tx_id"]] = sent_at
            in_flight.add(outcome["tx_id"])
    if next_unit >= len(units):
        logger.warning("closed loop ran out of pre-signed transactions before the window ended")
    figures = _window_figures(watcher, submitted_at, window_start, window_end, rejected)
    figures["load_average_1m_at_start"] = load_average_1m
    if probe is not None:
        figures["messages"] = await probe.end()
        figures["node_cpu_ms_per_tx"] = cpu_ms_per_tx(figures["committed_per_s"], figures["messages"])
    return figures


def cpu_ms_per_tx(committed_per_s: float, messages: dict[str, Any] | None) -> float | None:
    """Node CPU ms (all nodes) per committed transaction, from the probe's CPU seconds over its interval.

    The probe's snapshots bracket the measured window to within one loop turn,
    so its interval and the window nearly match.
    """
    if not messages or messages.get("node_cpu_s") is None or not messages.get("seconds") or committed_per_s <= 0:
        return None
    return 1000 * messages["node_cpu_s"] / (committed_per_s * messages["seconds"])


async def _wait_for_commit(watcher: CommitWatcher, timeout_s: float = 10.0) -> bool:
    try:
        async with watcher.changed:
            await asyncio.wait_for(watcher.changed.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


async def open_loop(clients: list[XinlianClient], watcher: CommitWatcher, units: list[list[dict[str, Any]]], rate_per_s: float, window_s: float) -> dict[str, Any]:
    """Send one transaction every 1/rate seconds, whatever has committed, and measure latency in the window."""
    envelopes = [envelope for unit in units for envelope in unit]
    submitted_at: dict[str, float] = {}
    started = time.perf_counter()
    window_start, window_end = started + WARMUP_S, started + WARMUP_S + window_s
    pending: set[asyncio.Task[Any]] = set()
    rejected = [0]

    async def send(index: int) -> None:
        sent_at = time.perf_counter()
        try:
            # A subject's four transactions go to the same node, so they reach the primary in order.
            tx_id = await clients[(index // 4) % len(clients)].submit(envelopes[index])
        except Exception as exc:  # noqa: BLE001  (any failed submission counts as rejected)
            rejected[0] += 1
            logger.debug("submission %d failed: %s", index, exc)
            return
        submitted_at[tx_id] = sent_at

    for index in range(len(envelopes)):
        due = started + index / rate_per_s
        if due >= window_end:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(send(index))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return _window_figures(watcher, submitted_at, window_start, window_end, rejected[0])


def _window_figures(watcher: CommitWatcher, submitted_at: dict[str, float], window_start: float, window_end: float, rejected: int) -> dict[str, Any]:
    committed_in_window = [tx_id for tx_id, at in watcher.committed_at.items() if window_start <= at < window_end and tx_id in submitted_at]
    latencies = sorted(
        (watcher.committed_at[tx_id] - sent) * 1000
        for tx_id, sent in submitted_at.items()
        if window_start <= sent < window_end and tx_id in watcher.committed_at
    )
    window_s = window_end - window_start
    return {
        "committed_per_s": len(committed_in_window) / window_s,
        "ok_fraction": sum(watcher.ok[tx_id] for tx_id in committed_in_window) / max(len(committed_in_window), 1),
        "latency_p50_ms": _percentile(latencies, 0.50),
        "latency_p95_ms": _percentile(latencies, 0.95),
        "latency_p99_ms": _percentile(latencies, 0.99),
        "submitted": len(submitted_at),
        "rejected_at_submission": rejected,
        "committed_in_window": len(committed_in_window),
    }


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


async def view_change(network: Network, clients: list[XinlianClient], concurrency: int, pool: Any) -> dict[str, Any]:
    """SIGKILL the primary under closed-loop load; time from the kill to the next commits; restart it.

    Returns the time to the first commit seen after the kill (possibly a block
    certified just before it) and to the first commit of a transaction submitted
    after the kill, which is when clients are served again.
    """
    statuses = [status for status in [await asyncio.to_thread(localnet.fetch_status, url) for url in network.api_urls] if status]
    # A node that restarted may still report an old view, so trust the highest view.
    primary = max(statuses, key=lambda status: status.get("view", 0))["primary"]
    survivors = [client for member, client in zip(_member_ids(network), clients) if member != primary]
    units = (await presign(network, concurrency * 20, 10_000_000_000 + int(time.time() * 1000) % 1_000_000_000, pool)).units
    watcher = CommitWatcher(survivors[0])
    watcher.task = asyncio.create_task(watcher.run())
    load = asyncio.create_task(closed_loop(survivors, watcher, units, concurrency, 60))
    try:
        await asyncio.wait_for(_first_commit_after(watcher, 0.0), 30)
        await asyncio.sleep(2)
        killed_at = time.perf_counter()
        os.kill(network.pids[primary], signal.SIGKILL)
        logger.info("killed primary %s (PID %d) under load", primary, network.pids[primary])
        first_commit = await asyncio.wait_for(_first_commit_after(watcher, killed_at), 120)
        first_new = await asyncio.wait_for(_first_commit_submitted_after(watcher, killed_at), 120)
    finally:
        load.cancel()
        await asyncio.gather(load, return_exceptions=True)
        watcher.task.cancel()
    cli("network", "up", "--dir", str(network.directory))
    network.pids[primary] = localnet.running_pid(network.directory / "nodes" / primary) or network.pids[primary]
    return {"killed": primary, "first_commit_after_kill_s": first_commit - killed_at, "first_new_tx_commit_after_kill_s": first_new - killed_at}


async def _height(url: str) -> int | None:
    status = await asyncio.to_thread(localnet.fetch_status, url)
    return None if status is None else status.get("height")


async def catch_up(network: Network, clients: list[XinlianClient], block_count: int, concurrency: int, pool: Any) -> dict[str, Any]:
    """Stop one non-primary node, load the others until they are `block_count` blocks ahead, restart it, time its catch-up.

    The time runs from the restart command to the node reporting the height the
    others had when it was restarted, so it includes process start and handshakes.
    The result also has the rate at which the live nodes committed those same
    blocks while the node was down (`live_blocks_per_s`, `live_tx_per_s`).
    """
    member_ids = _member_ids(network)
    member = member_ids[-1]
    node_dir = network.directory / "nodes" / member
    url = network.api_urls[-1]
    live = clients[:-1]
    stopped_height = await _height(url) or 0
    await asyncio.to_thread(localnet.stop_node, node_dir)
    logger.info("stopped %s at height %d; loading until %d blocks ahead", member, stopped_height, block_count)

    # A block holds at most `concurrency` of our transactions, that is concurrency / 4 subjects.
    signed = await presign(network, block_count * -(-concurrency // 4) + concurrency, 20_000_000_000 + int(time.time() * 1000) % 1_000_000_000, pool)
    watcher = CommitWatcher(live[0])
    watcher.task = asyncio.create_task(watcher.run())
    load_started_height = await _height(network.api_urls[0]) or 0
    load_started = time.perf_counter()
    load = asyncio.create_task(closed_loop(live, watcher, signed.units, concurrency, 24 * 3600))
    try:
        await _wait_for_height(network.api_urls[0], stopped_height + block_count, load)
    finally:
        load.cancel()
        await asyncio.gather(load, return_exceptions=True)
    await asyncio.sleep(2)  # let in-flight transactions commit so the target height is settled
    watcher.task.cancel()
    target_height = await _height(network.api_urls[0]) or 0
    load_s = time.perf_counter() - load_started
    tx_count = len(watcher.committed_at)

    started = time.perf_counter()
    cli("network", "up", "--dir", str(network.directory))
    network.pids[member] = localnet.running_pid(node_dir) or network.pids[member]
    answered_at = None
    while True:
        height = await _height(url)
        if height is not None and answered_at is None:
            answered_at = time.perf_counter()
        if height is not None and height >= target_height:
            break
        if time.perf_counter() - started > CATCH_UP_TIMEOUT_S:
            raise TimeoutError(f"{member} reached height {height} of {target_height} within {CATCH_UP_TIMEOUT_S} s")
        await asyncio.sleep(0.1)
    seconds = time.perf_counter() - started
    blocks_behind = target_height - stopped_height
    live_blocks_per_s = (target_height - load_started_height) / load_s
    return {
        "member": member,
        "blocks_behind": blocks_behind,
        "transactions_behind": tx_count,
        "tx_per_block": round(tx_count / max(blocks_behind, 1), 2),
        "concurrency": concurrency,
        "presign": signed.figures(),
        "catch_up_s": seconds,
        "catch_up_after_first_status_s": time.perf_counter() - (answered_at or started),
        "blocks_per_s": blocks_behind / seconds,
        "tx_per_s": tx_count / seconds,
        "live_load_s": load_s,
        "live_blocks_per_s": live_blocks_per_s,
        "live_tx_per_s": tx_count / load_s,
        "blocks_per_s_ratio_to_live": (blocks_behind / seconds) / max(live_blocks_per_s, 1e-9),
    }


async def _wait_for_height(url: str, target_height: int, load: asyncio.Task[Any]) -> None:
    """Wait until the node at `url` reports `target_height` in /metrics; raise RuntimeError if `load` ends first.

    Reads /metrics rather than /v1/status, because its longer timeout lets a busy node respond.
    """
    next_log_at = time.perf_counter() + 10
    async with aiohttp.ClientSession() as session:
        while True:
            metrics = await fetch_metrics(session, url)
            height = None if metrics is None else metrics["height"]
            if height is not None and height >= target_height:
                return
            if load.done():
                raise RuntimeError(f"load generator ended at height {height}, before the network reached height {target_height}")
            if time.perf_counter() >= next_log_at:
                logger.info("loading: height %s of %d", height, target_height)
                next_log_at += 10
            await asyncio.sleep(0.5)


def _member_ids(network: Network) -> list[str]:
    genesis = json.loads((network.directory / "genesis.json").read_text(encoding="utf-8"))
    return [member["member_id"] for member in genesis["members"]]


async def _first_commit_after(watcher: CommitWatcher, moment: float) -> float:
    async with watcher.changed:
        await watcher.changed.wait_for(lambda: any(at > moment for at in watcher.committed_at.values()))
    return min(at for at in watcher.committed_at.values() if at > moment)


async def _first_commit_submitted_after(watcher: CommitWatcher, moment: float) -> float:
    async with watcher.changed:
        await watcher.changed.wait_for(lambda: any(watcher.submitted_at.get(tx_id, 0.0) > moment for tx_id in watcher.committed_at))
    return min(at for tx_id, at in watcher.committed_at.items() if watcher.submitted_at.get(tx_id, 0.0) > moment)


def _subject_base(concurrency: int, run: int) -> int:
    """First subject index of a run, so that no two runs share a subject or a nonce."""
    return (concurrency * 100 + run) * 1_000_000


def _clients(network: Network) -> list[XinlianClient]:
    key = network.bank_keys[0]
    return [XinlianClient(url, key.signing_key, network.chain_id, language="en") for url in network.api_urls]


async def _view_changes(network: Network, clients: list[XinlianClient], count: int, pool: Any) -> dict[str, Any]:
    """Kill the primary `count` times, restarting it and waiting for a connected network in between."""
    runs = []
    for _ in range(count):
        await wait_ready(network)
        runs.append(await view_change(network, clients, VIEW_CHANGE_CONCURRENCY, pool))
    node_config = load_config(network.directory / "nodes" / _member_ids(network)[0] / "config.json")
    return {
        "concurrency": VIEW_CHANGE_CONCURRENCY,
        "view_timeout_s": node_config.view_timeout_ticks * node_config.tick_ms / 1000,
        "first_commit_after_kill_s": spread([run["first_commit_after_kill_s"] for run in runs]),
        "first_new_tx_commit_after_kill_s": spread([run["first_new_tx_commit_after_kill_s"] for run in runs]),
        "runs": runs,
    }


def node_settings(network: Network) -> dict[str, Any]:
    """Return the consensus and block settings the nodes ran with (defaults unless the config sets them)."""
    config = load_config(network.directory / "nodes" / _member_ids(network)[0] / "config.json")
    return {name: getattr(config, name) for name in ("block_interval_ms", "block_tx_max", "tick_ms", "view_timeout_ticks", "checkpoint_interval")}


@dataclass(frozen=True)
class NetworkPlan:
    """Settings of the measurements on one network."""

    node_count: int
    concurrencies: tuple[int, ...]
    window_s: float
    repeats: int
    light_load: bool = False
    view_changes: int = 0
    catch_up_blocks: int = 0
    catch_up_full_blocks: int = 0  # a second catch-up, over blocks made at CATCH_UP_FULL_CONCURRENCY
    role: str = "main"  # "main" (n = 4, every mode) or "scaling" (closed loop only)


def closed_loop_subjects(concurrency: int, window_s: float) -> int:
    """Units (four transactions each) to sign for one closed-loop run of WARMUP_S + window_s."""
    tx_per_s = min(CLOSED_LOOP_TX_PER_S_MAX, concurrency / COMMIT_LATENCY_MIN_S)
    return int(tx_per_s * (WARMUP_S + window_s) / 4) + 1


async def measure_network(plan: NetworkPlan) -> dict[str, Any]:
    network = start_network(plan.node_count)
    clients = _clients(network)
    pool = new_pool()
    session = aiohttp.ClientSession()
    try:
        await wait_ready(network)
        run_count = max(plan.repeats, REPEATS_MIN)
        watcher = CommitWatcher(clients[0])
        watcher.task = asyncio.create_task(watcher.run())
        result: dict[str, Any] = {
            "nodes": plan.node_count,
            "role": plan.role,
            "closed_loop": [],
            "senders": len(network.bank_keys),
            "node_settings": node_settings(network),
            "presign": [],
        }
        # Each run is signed in the pool just before it starts, while the event loop keeps
        # reading the watcher's websocket (the node drops subscribers that read too slowly).
        for concurrency in plan.concurrencies:
            runs = []
            for run in range(run_count):
                signed = await presign(network, closed_loop_subjects(concurrency, plan.window_s), _subject_base(concurrency, run), pool)
                result["presign"].append(signed.figures())
                runs.append(await closed_loop(clients, watcher, signed.units, concurrency, plan.window_s, WindowProbe(network, session)))
            result["closed_loop"].append(_summarize(concurrency, runs))
        if plan.light_load:
            light_subjects = int(LIGHT_LOAD_TX_PER_S * (WARMUP_S + plan.window_s) / 4) + 1
            runs = []
            for run in range(run_count):
                signed = await presign(network, light_subjects, _subject_base(0, run), pool)
                runs.append(await open_loop(clients, watcher, signed.units, LIGHT_LOAD_TX_PER_S, plan.window_s))
            result["open_loop_50_tx_per_s"] = _summarize(None, runs)
        watcher.task.cancel()
        await _fault_runs(network, clients, plan, pool, result)
        return result
    finally:
        await session.close()
        for client in clients:
            await client.close()
        pool.shutdown(cancel_futures=True)
        stop_network(network)


async def _fault_runs(network: Network, clients: list[XinlianClient], plan: NetworkPlan, pool: Any, result: dict[str, Any]) -> None:
    """Run the view changes and the catch-up; a failed one is recorded with its error, so the load figures are kept."""
    if plan.view_changes:
        try:
            result["view_change"] = await _view_changes(network, clients, plan.view_changes, pool)
        except (RuntimeError, TimeoutError, OSError) as exc:
            logger.error("view change run failed: %r", exc)
            result["view_change_error"] = repr(exc)
    catch_ups = (("catch_up", plan.catch_up_blocks, CATCH_UP_CONCURRENCY), ("catch_up_full", plan.catch_up_full_blocks, CATCH_UP_FULL_CONCURRENCY))
    for key, block_count, concurrency in catch_ups:
        if not block_count:
            continue
        try:
            await wait_ready(network)
            result[key] = await catch_up(network, clients, block_count, concurrency, pool)
        except (RuntimeError, TimeoutError, OSError) as exc:
            logger.error("%s run failed: %r", key, exc)
            result[f"{key}_error"] = repr(exc)


def _summarize(concurrency: int | None, runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"concurrency": concurrency, "runs": runs}
    for name in ("committed_per_s", "ok_fraction", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
        values = [run[name] for run in runs if run[name] is not None]
        summary[name] = spread(values) if values else None
    for name in ("sent_consensus_per_block", "sent_txs_per_block"):
        values = [run["messages"][name] for run in runs if run.get("messages") and run["messages"].get(name) is not None]
        summary[name] = spread(values) if values else None
    cpu_values = [run["node_cpu_ms_per_tx"] for run in runs if run.get("node_cpu_ms_per_tx") is not None]
    summary["node_cpu_ms_per_tx"] = spread(cpu_values) if cpu_values else None
    return summary


def plans_from(args: argparse.Namespace) -> list[NetworkPlan]:
    plans = [
        NetworkPlan(
            count, tuple(args.concurrency), args.window_s, args.repeats, not args.no_light_load, args.view_changes, args.catch_up_blocks, args.catch_up_full_blocks
        )
        for count in args.nodes
    ]
    scaling_concurrency = tuple(args.scaling_concurrency or args.concurrency)
    plans += [NetworkPlan(count, scaling_concurrency, args.window_s, args.scaling_repeats, role="scaling") for count in args.scaling_nodes]
    return plans


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Measure a local Xinlian network started with `xinlian network init/up`.")
    parser.add_argument("--nodes", type=int, nargs="+", default=[4], help="validator counts to measure with every mode, one network each")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 100], help="in-flight transactions of the closed loop")
    parser.add_argument("--window-s", type=float, default=20, help=f"measured window in seconds, after a {WARMUP_S} s warm-up")
    parser.add_argument("--repeats", type=int, default=REPEATS_MIN, help=f"windows per setting (at least {REPEATS_MIN})")
    parser.add_argument("--no-light-load", action="store_true", help="skip the open-loop run at 50 tx/s")
    parser.add_argument("--view-changes", type=int, default=REPEATS_MIN, help="times to SIGKILL the primary under load (0 to skip)")
    parser.add_argument("--catch-up-blocks", type=int, default=0, help="blocks a stopped node falls behind before its catch-up is timed (0 to skip)")
    parser.add_argument(
        "--catch-up-full-blocks", type=int, default=0, help="blocks of a second catch-up, made at the closed loop's top concurrency (full blocks; 0 to skip)"
    )
    parser.add_argument("--scaling-nodes", type=int, nargs="*", default=[], help="further validator counts measured with the closed loop only, no faults")
    parser.add_argument("--scaling-concurrency", type=int, nargs="*", default=[], help="closed-loop concurrencies of the scaling networks (default: --concurrency)")
    parser.add_argument("--scaling-repeats", type=int, default=REPEATS_MIN, help=f"windows per scaling network (at least {REPEATS_MIN})")
    parser.add_argument("--run-id", default=None, help="id shared by all results of one run_all invocation (default: this run's start time)")
    parser.add_argument("--out", type=Path, default=OUT_DIR_DEFAULT, help="directory for network.json")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    machine = machine_info()
    started_at = utc_timestamp()
    networks = [asyncio.run(measure_network(plan)) for plan in plans_from(args)]
    result = {
        "benchmark": "network",
        "run_id": args.run_id or started_at,
        "measured_at": started_at,
        "command": command_line(),
        "machine": machine,
        "window_s": args.window_s,
        "warmup_s": WARMUP_S,
        "networks": networks,
    }
    path = write_result(args.out, "network", result)
    print(f"wrote {path}")
    for network in networks:
        for run in network["closed_loop"]:
            print(f"n={network['nodes']} concurrency {run['concurrency']}: {run['committed_per_s']['median']:.1f} committed/s, p50 {run['latency_p50_ms']}")
        catch = network.get("catch_up")
        if catch:
            print(f"n={network['nodes']} catch-up of {catch['blocks_behind']} blocks: {catch['blocks_per_s']:.1f} blocks/s (live {catch['live_blocks_per_s']:.1f})")


if __name__ == "__main__":
    main()
