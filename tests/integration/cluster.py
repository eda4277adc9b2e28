"""A local network of real `xinlian node run` processes on 127.0.0.1, for integration tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp

from node.client import XinlianClient
from node.config import NodeConfig
from node.keys import KeyPair, load_key_file
from node.localnet import InitOptions, init_network, node_command

REPOSITORY = Path(__file__).resolve().parents[2]

# Fast timing so view changes and catch-up finish in seconds: a tick is 20 ms, a view times out after 0.8 s.
FAST_SETTINGS: dict[str, Any] = {
    "tick_ms": 20,
    "view_timeout_ticks": 40,
    "view_timeout_max_ticks": 400,
    "block_interval_ms": 20,
    "checkpoint_interval": 4,
}


class Cluster:
    def __init__(self, directory: Path, nodes: int = 4) -> None:
        self.directory = directory
        self.configs: dict[str, NodeConfig] = {config.member_id: config for config in init_network(directory, InitOptions(nodes=nodes, node_settings=FAST_SETTINGS))}
        self.members = sorted(self.configs)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))

    def node_dir(self, member_id: str) -> Path:
        return self.directory / "nodes" / member_id

    def api_url(self, member_id: str) -> str:
        return f"http://127.0.0.1:{self.configs[member_id].api_port}"

    def p2p_url(self, member_id: str) -> str:
        return f"ws://127.0.0.1:{self.configs[member_id].p2p_port}/v1/peer"

    def client_key(self, member_id: str) -> KeyPair:
        return load_key_file(self.directory / "clients" / f"{member_id}.json")

    def client(self, sender: str, node: str) -> XinlianClient:
        return XinlianClient(self.api_url(node), self.client_key(sender).seed, chain_id="xinlian-local", language="en", timeout_seconds=30)

    def start(self, member_id: str, hash_seed: int | None = None) -> None:
        environment = dict(os.environ)
        environment["PYTHONHASHSEED"] = str(hash_seed if hash_seed is not None else self.members.index(member_id) + 1)
        log_file = open(self.node_dir(member_id) / "node.log", "ab")
        try:
            self.processes[member_id] = subprocess.Popen(
                node_command(self.node_dir(member_id) / "config.json"),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=REPOSITORY,
            )
        finally:
            log_file.close()

    def start_all(self) -> None:
        for member_id in self.members:
            self.start(member_id)

    def kill(self, member_id: str) -> None:
        """Kill -9: no shutdown code runs, like a power cut."""
        process = self.processes.pop(member_id)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def terminate(self, member_id: str) -> int:
        process = self.processes.pop(member_id)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=15)

    def wipe(self, member_id: str) -> None:
        shutil.rmtree(self.configs[member_id].data_dir)

    async def close(self) -> None:
        for member_id in list(self.processes):
            process = self.processes.pop(member_id)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await self.session.close()

    def log_tail(self, member_id: str, lines: int = 30) -> str:
        text = (self.node_dir(member_id) / "node.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def status(self, member_id: str) -> dict[str, Any] | None:
        try:
            async with self.session.get(f"{self.api_url(member_id)}/v1/status") as response:
                return await response.json() if response.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None

    async def statuses(self, members: list[str] | None = None) -> dict[str, dict[str, Any] | None]:
        members = members or list(self.processes)
        results = await asyncio.gather(*(self.status(member_id) for member_id in members))
        return dict(zip(members, results))

    async def transaction(self, member_id: str, tx_id: str) -> dict[str, Any] | None:
        async with self.session.get(f"{self.api_url(member_id)}/v1/transactions/{tx_id}") as response:
            return await response.json() if response.status == 200 else None

    async def metrics(self, member_id: str) -> str:
        async with self.session.get(f"{self.api_url(member_id)}/metrics") as response:
            return await response.text()


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_started(cluster: Cluster, members: list[str], timeout_s: float = 20) -> None:
    async def all_connected() -> bool:
        statuses = await cluster.statuses(members)
        return all(
            status is not None and sum(peer["connected"] for peer in status["peers"] if peer["member_id"] in members) == len(members) - 1
            for status in statuses.values()
        )

    await wait_until(all_connected, timeout_s, f"{members} to start and connect")


async def wait_converged(cluster: Cluster, members: list[str], height_min: int, timeout_s: float = 30) -> dict[str, dict[str, Any]]:
    """Wait until every member reports the same height (at least height_min), block hash and state root."""
    latest: dict[str, Any] = {}

    async def converged() -> bool:
        statuses = await cluster.statuses(members)
        latest.update(statuses)
        if any(status is None for status in statuses.values()):
            return False
        heads = {(status["height"], status["block_hash"], status["state_root"]) for status in statuses.values()}  # type: ignore[index]
        return len(heads) == 1 and next(iter(heads))[0] >= height_min

    try:
        await wait_until(converged, timeout_s, f"{members} to converge at height >= {height_min}")
    except AssertionError:
        summary = {member: (s or {}).get("height") for member, s in latest.items()}
        raise AssertionError(f"not converged: heights {summary}\n" + "\n".join(cluster.log_tail(m, 8) for m in members)) from None
    return latest


def random_hex() -> str:
    return os.urandom(32).hex()


def subject_payload() -> dict[str, Any]:
    return {"subject_id": random_hex(), "commitment": random_hex()}
