"""Throughput, commit latency and view change of an n-validator Xinlian network on 127.0.0.1.

The network is created and started with the documented CLI (`xinlian network
init/up/down`); load goes through node/client.py to every node in turn. All
transactions are signed before the clock starts. Senders are the client keys of
the n - 1 banks (the last member is the regulator). Each subject contributes, in
one batch to one node so their order holds: subject.register, consent.grant
(data_sharing, with evidence), loan.register (12-36 instalments) and
repayment.record.

Modes:
- closed loop: at most C transactions in flight, sent in batches of up to 100;
  committed tx/s over the steady window and latency p50/p95/p99;
- open loop: a fixed rate (50 tx/s), one transaction per request, for latency at light load;
- view change: under closed-loop load, SIGKILL the primary's process and time
  from the kill to the next committed transaction seen on another node;
- catch-up: stop one node, load the others until they are N blocks ahead,
  restart it and time until it reports their height.

Commit time is when a `tx.committed` event for the tx_id arrives on the event
websocket of the first node, so latency includes the event push to the client.

Usage: .venv/bin/python benchmarks/network.py [--nodes 4] [--concurrency 10 100] [--window-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import random
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
from node.tx import sign_transaction
from workload import consent_grant_payload, loan_register_payload, repayment_payload, subject_register_payload

logger = logging.getLogger("xinlian.bench.network")

XINLIAN_CLI = [sys.executable, "-m", "node.cli"]
BATCH_SIZE_MAX = 100
WARMUP_S = 5
READY_TIMEOUT_S = 60
DRAIN_TIMEOUT_S = 30
LIGHT_LOAD_TX_PER_S = 50
CLOSED_LOOP_SUBJECTS_PER_S = 125  # 500 transactions per second of run; more than the 4-node network commits here
VIEW_CHANGE_CONCURRENCY = 100
CATCH_UP_CONCURRENCY = 20  # small blocks, so 10,000 blocks need fewer pre-signed transactions
CATCH_UP_TIMEOUT_S = 1_800
CHINA_UTC_OFFSET = dt.timezone(dt.timedelta(hours=8))


@dataclass
class Network:
    directory: Path
    chain_id: str
    api_urls: list[str]
    bank_keys: list[Any]
    pids: dict[str, int] = field(default_factory=dict)


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


def presign(network: Network, subject_count: int, first_subject: int) -> list[list[dict[str, Any]]]:
    """Sign, per subject, its four transactions; returns one list (a batch unit) per subject."""
    today = dt.datetime.now(CHINA_UTC_OFFSET).date()
    start_date = (today - dt.timedelta(days=10)).isoformat()
    expires_at = int(time.time() * 1000) + 50 * 60 * 1000
    rng = random.Random(first_subject)
    units = []
    for index in range(first_subject, first_subject + subject_count):
        key = network.bank_keys[index % len(network.bank_keys)]
        bank_id = f"bank-{index % len(network.bank_keys) + 1}"
        loan = loan_register_payload(index, index, start_date, rng)
        bodies = [
            ("subject.register", subject_register_payload(index)),
            ("consent.grant", consent_grant_payload(index, bank_id, (today + dt.timedelta(days=365)).isoformat())),
            ("loan.register", loan),
            ("repayment.record", repayment_payload(index, 1, loan["schedule"][0]["interest"] + 100, today.isoformat())),
        ]
        unit = []
        for number, (tx_type, payload) in enumerate(bodies):
            body = {"chain_id": network.chain_id, "type": tx_type, "nonce": f"b{index}-{number}", "expires_at": expires_at, "payload": payload}
            unit.append(sign_transaction(key.signing_key, body))
        units.append(unit)
    return units


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


async def closed_loop(clients: list[XinlianClient], watcher: CommitWatcher, units: list[list[dict[str, Any]]], concurrency: int, window_s: float) -> dict[str, Any]:
    """Keep up to `concurrency` transactions in flight for WARMUP_S + window_s, then measure the window.

    A subject's four transactions always travel together, so at least four are in flight.
    """
    submitted_at: dict[str, float] = {}
    in_flight: set[str] = set()
    started = time.perf_counter()
    window_start, window_end = started + WARMUP_S, started + WARMUP_S + window_s
    next_unit, node_turn, rejected = 0, 0, 0
    while time.perf_counter() < window_end and next_unit < len(units):
        if watcher.task is not None and watcher.task.done():
            raise RuntimeError("the event websocket closed (the node drops subscribers that read too slowly); the run is void")
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
    return _window_figures(watcher, submitted_at, window_start, window_end, rejected)


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


async def view_change(network: Network, clients: list[XinlianClient], concurrency: int) -> dict[str, Any]:
    """SIGKILL the primary under closed-loop load; time from the kill to the next commits; restart it.

    Returns the time to the first commit seen after the kill (possibly a block
    certified just before it) and to the first commit of a transaction submitted
    after the kill, which is when clients are served again.
    """
    statuses = [status for status in [await asyncio.to_thread(localnet.fetch_status, url) for url in network.api_urls] if status]
    # A node that restarted may still report an old view, so trust the highest view.
    primary = max(statuses, key=lambda status: status.get("view", 0))["primary"]
    survivors = [client for member, client in zip(_member_ids(network), clients) if member != primary]
    units = presign(network, concurrency * 20, 10_000_000_000 + int(time.time() * 1000) % 1_000_000_000)
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


async def catch_up(network: Network, clients: list[XinlianClient], block_count: int, concurrency: int) -> dict[str, Any]:
    """Stop one non-primary node, load the others until they are `block_count` blocks ahead, restart it, time its catch-up.

    The time runs from the restart command to the node reporting the height the
    others had when it was restarted, so it includes process start and handshakes.
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
    units = presign(network, block_count * -(-concurrency // 4) + concurrency, 20_000_000_000 + int(time.time() * 1000) % 1_000_000_000)
    watcher = CommitWatcher(live[0])
    watcher.task = asyncio.create_task(watcher.run())
    load = asyncio.create_task(closed_loop(live, watcher, units, concurrency, 24 * 3600))
    try:
        while (await _height(network.api_urls[0]) or 0) < stopped_height + block_count:
            if load.done():
                raise RuntimeError(f"load generator ended before the network was {block_count} blocks ahead")
            await asyncio.sleep(1)
    finally:
        load.cancel()
        await asyncio.gather(load, return_exceptions=True)
    await asyncio.sleep(2)  # let in-flight transactions commit so the target height is settled
    watcher.task.cancel()
    target_height = await _height(network.api_urls[0]) or 0
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
    return {
        "member": member,
        "blocks_behind": target_height - stopped_height,
        "transactions_behind": tx_count,
        "catch_up_s": seconds,
        "catch_up_after_first_status_s": time.perf_counter() - (answered_at or started),
        "blocks_per_s": (target_height - stopped_height) / seconds,
        "tx_per_s": tx_count / seconds,
    }


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


async def _view_changes(network: Network, clients: list[XinlianClient], count: int) -> dict[str, Any]:
    """Kill the primary `count` times, restarting it and waiting for a connected network in between."""
    runs = []
    for _ in range(count):
        await wait_ready(network)
        runs.append(await view_change(network, clients, VIEW_CHANGE_CONCURRENCY))
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


async def measure_network(
    node_count: int, concurrencies: list[int], window_s: float, repeats: int, light_load: bool, view_changes: int, catch_up_blocks: int
) -> dict[str, Any]:
    network = start_network(node_count)
    clients = _clients(network)
    try:
        await wait_ready(network)
        # Sign everything first: signing blocks the event loop, and a watcher that stops
        # reading its websocket is dropped by the node as too slow.
        run_count = max(repeats, REPEATS_MIN)
        closed_units = [[presign(network, CLOSED_LOOP_SUBJECTS_PER_S * int(WARMUP_S + window_s), _subject_base(concurrency, run)) for run in range(run_count)] for concurrency in concurrencies]
        light_subjects = int(LIGHT_LOAD_TX_PER_S * (WARMUP_S + window_s) / 4) + 1
        open_units = [presign(network, light_subjects, _subject_base(0, run)) for run in range(run_count)] if light_load else []

        watcher = CommitWatcher(clients[0])
        watcher.task = asyncio.create_task(watcher.run())
        result: dict[str, Any] = {"nodes": node_count, "closed_loop": [], "senders": len(network.bank_keys), "node_settings": node_settings(network)}
        for concurrency, units_per_run in zip(concurrencies, closed_units):
            runs = [await closed_loop(clients, watcher, units, concurrency, window_s) for units in units_per_run]
            result["closed_loop"].append(_summarize(concurrency, runs))
        if open_units:
            runs = [await open_loop(clients, watcher, units, LIGHT_LOAD_TX_PER_S, window_s) for units in open_units]
            result["open_loop_50_tx_per_s"] = _summarize(None, runs)
        watcher.task.cancel()
        # A failed fault run is recorded with its error, so the load figures above are kept.
        if view_changes:
            try:
                result["view_change"] = await _view_changes(network, clients, view_changes)
            except (RuntimeError, TimeoutError, OSError) as exc:
                logger.error("view change run failed: %r", exc)
                result["view_change_error"] = repr(exc)
        if catch_up_blocks:
            try:
                await wait_ready(network)
                result["catch_up"] = await catch_up(network, clients, catch_up_blocks, CATCH_UP_CONCURRENCY)
            except (RuntimeError, TimeoutError, OSError) as exc:
                logger.error("catch-up run failed: %r", exc)
                result["catch_up_error"] = repr(exc)
        return result
    finally:
        for client in clients:
            await client.close()
        stop_network(network)


def _summarize(concurrency: int | None, runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"concurrency": concurrency, "runs": runs}
    for name in ("committed_per_s", "ok_fraction", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
        values = [run[name] for run in runs if run[name] is not None]
        summary[name] = spread(values) if values else None
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure a local Xinlian network started with `xinlian network init/up`.")
    parser.add_argument("--nodes", type=int, nargs="+", default=[4], help="validator counts to measure, one network each")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 100], help="in-flight transactions of the closed loop")
    parser.add_argument("--window-s", type=float, default=20, help="measured window in seconds, after a 5 s warm-up")
    parser.add_argument("--repeats", type=int, default=REPEATS_MIN, help=f"windows per setting (at least {REPEATS_MIN})")
    parser.add_argument("--no-light-load", action="store_true", help="skip the open-loop run at 50 tx/s")
    parser.add_argument("--view-changes", type=int, default=REPEATS_MIN, help="times to SIGKILL the primary under load (0 to skip)")
    parser.add_argument("--catch-up-blocks", type=int, default=0, help="blocks a stopped node falls behind before its catch-up is timed (0 to skip)")
    parser.add_argument("--out", type=Path, default=OUT_DIR_DEFAULT, help="directory for network.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    machine = machine_info()
    networks = [asyncio.run(measure_network(count, args.concurrency, args.window_s, args.repeats, not args.no_light_load, args.view_changes, args.catch_up_blocks)) for count in args.nodes]
    result = {"benchmark": "network", "measured_at": utc_timestamp(), "command": command_line(), "machine": machine, "window_s": args.window_s, "warmup_s": WARMUP_S, "networks": networks}
    path = write_result(args.out, "network", result)
    print(f"wrote {path}")
    for network in networks:
        for run in network["closed_loop"]:
            print(f"n={network['nodes']} concurrency {run['concurrency']}: {run['committed_per_s']['median']:.1f} committed/s, p50 {run['latency_p50_ms']}")


if __name__ == "__main__":
    main()
