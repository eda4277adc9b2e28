"""The demo's local consortium: write it with node.localnet, widen its time limits, start and stop it.

The consortium has five members, each a separate node process on 127.0.0.1:
two banks, a credit agency, a collection agency and the regulator. It runs an
accelerated clock, so its time limits are widened in genesis before the first
start (see `widen_time_limits`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from node import localnet
from node.genesis import GenesisLimits, load_genesis, save_genesis
from node.keys import load_key_file

logger = logging.getLogger("xinlian.demo.network")

DEMO_ROLES = ("bank", "bank", "credit_agency", "collector", "regulator")
DAY_MS = 86_400_000
# Real seconds a transaction stays valid, and how far (in real seconds) a
# proposal's timestamp may differ from a replica's clock. Multiplied by the
# clock speed, they become the genesis limits in chain milliseconds.
TX_VALID_REAL_SECONDS = 60
BLOCK_DRIFT_REAL_SECONDS = 2
# Short ticks and block intervals, so a block commits within a few tens of real
# milliseconds, which is a fraction of a chain day at the demo's speed.
NODE_SETTINGS: dict[str, Any] = {"tick_ms": 10, "block_interval_ms": 10, "block_tx_max": 1000, "log_level": "WARNING"}


@dataclass(frozen=True)
class Member:
    member_id: str
    role: str
    api_url: str
    client_key_file: Path


@dataclass(frozen=True)
class Consortium:
    directory: Path
    members: tuple[Member, ...]
    speed: int  # chain milliseconds per real millisecond

    def by_role(self, role: str) -> list[Member]:
        return [member for member in self.members if member.role == role]

    @property
    def secret_file(self) -> Path:
        return self.directory / "consortium_secret.hex"

    def client_seed(self, member_id: str) -> bytes:
        member = next(item for item in self.members if item.member_id == member_id)
        return load_key_file(member.client_key_file).seed


def widen_time_limits(directory: Path, speed: int) -> None:
    """Scale the genesis expiry window and block-time drift to the clock speed, before the first start.

    At one chain day per real 100 ms, the default one-hour window lasts about
    4 real milliseconds, so every transaction would expire before it commits.
    """
    path = directory / "genesis.json"
    genesis = load_genesis(path)
    limits = genesis.limits.model_dump()
    limits["tx_expiry_window_ms"] = max(limits["tx_expiry_window_ms"], TX_VALID_REAL_SECONDS * 1000 * speed)
    limits["block_time_drift_ms"] = max(limits["block_time_drift_ms"], BLOCK_DRIFT_REAL_SECONDS * 1000 * speed)
    save_genesis(path, genesis.model_copy(update={"limits": GenesisLimits(**limits)}))


def init_consortium(directory: Path, speed: int, start_date: str) -> Consortium:
    """Write the five-member network into `directory`, which must be empty or absent."""
    options = localnet.InitOptions(
        nodes=len(DEMO_ROLES),
        roles=DEMO_ROLES,
        accelerated=True,
        speed=speed,
        start_ms=localnet.parse_start_date(start_date),
        node_settings=NODE_SETTINGS,
    )
    localnet.init_network(directory, options)
    widen_time_limits(directory, speed)
    return load_consortium(directory)


def load_consortium(directory: Path) -> Consortium:
    genesis = json.loads((directory / "genesis.json").read_text(encoding="utf-8"))
    members = tuple(
        Member(
            member_id=member["member_id"],
            role=member["role"],
            api_url=member["api_url"],
            client_key_file=directory / "clients" / f"{member['member_id']}.json",
        )
        for member in genesis["members"]
    )
    speed = json.loads((directory / "nodes" / members[0].member_id / "config.json").read_text(encoding="utf-8"))["clock"]["speed"]
    return Consortium(directory=directory, members=members, speed=speed)


def start(consortium: Consortium) -> list[tuple[str, int]]:
    return localnet.network_up(consortium.directory)


def stop(consortium: Consortium) -> list[tuple[str, bool]]:
    """Stop every node of the consortium; log and skip a node that does not stop."""
    stopped = []
    for node_dir in localnet.node_dirs(consortium.directory):
        try:
            stopped.append((node_dir.name, localnet.stop_node(node_dir)))
        except localnet.NetworkError as exc:
            logger.error("could not stop node %s: %s", node_dir.name, exc)
    return stopped


async def fetch_status(session: aiohttp.ClientSession, api_url: str) -> dict[str, Any] | None:
    try:
        async with session.get(f"{api_url}/v1/status") as response:
            if response.status != 200:
                return None
            return await response.json()
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return None


async def wait_until_ready(session: aiohttp.ClientSession, consortium: Consortium, timeout_s: float) -> None:
    """Wait until every node answers /v1/status and sees all its peers connected."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        statuses = await asyncio.gather(*(fetch_status(session, member.api_url) for member in consortium.members))
        if all(status is not None and all(peer.get("connected") for peer in status.get("peers", [])) for status in statuses):
            return
        if loop.time() > deadline:
            missing = [member.member_id for member, status in zip(consortium.members, statuses) if status is None]
            raise TimeoutError(f"nodes not ready within {timeout_s:.0f} s (not answering: {missing or 'none'}); see nodes/*/node.log")
        await asyncio.sleep(0.1)
