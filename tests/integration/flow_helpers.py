"""Helpers for end-to-end flows on real node processes with an accelerated chain clock.

An idle primary proposes an empty block about once per real second and after
each local midnight, so the time-driven step of the contracts runs on every
date. A flow that needs a block at or after an exact chain time waits until the
nodes' chain time reaches the target, then commits an unrelated transaction (a
heartbeat), whose block runs the time step.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import aiohttp

from node.client import XinlianClient
from node.clock import AcceleratedClock
from node.config import load_config
from node.genesis import load_genesis
from node.localnet import InitOptions, init_network, set_shared_clock_epoch
from tests.integration.cluster import FAST_SETTINGS, Cluster

MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000
CHAIN_TIME_POLL_SECONDS = 0.05
EVENT_QUEUE_SIZE_MAX = 1024
# credit-agency-2 sends the heartbeats, each a subject.register of a fresh subject, which touches no loan.
HEARTBEAT_SENDER = "credit-agency-2"


class AcceleratedCluster(Cluster):
    """A `Cluster` whose genesis and node configs use an accelerated clock.

    The genesis limits are the ones `xinlian network init --accelerated` writes
    (`node.localnet.genesis_limits`). A transaction may expire up to 30 real
    seconds ahead, and a proposal's time may differ from a replica's clock by
    1 real second, each multiplied by `speed` into chain milliseconds.
    """

    def __init__(self, directory: Path, speed: int, start_ms: int, nodes: int = 4) -> None:
        # Cluster.__init__ would write a network with the system clock, so the same attributes are set here.
        options = InitOptions(nodes=nodes, accelerated=True, speed=speed, start_ms=start_ms, node_settings=FAST_SETTINGS)
        self.directory = directory
        self.configs = {config.member_id: config for config in init_network(directory, options)}
        self.members = sorted(self.configs)
        self.processes = {}
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self.genesis = load_genesis(directory / "genesis.json")
        self.speed = speed
        self.chain_clock: AcceleratedClock | None = None

    def start_all(self) -> None:
        """Write one real epoch into every config, so chain time starts at genesis time now, then start the nodes."""
        set_shared_clock_epoch(self.directory)
        clock = load_config(self.node_dir(self.members[0]) / "config.json").clock
        self.chain_clock = AcceleratedClock(clock.real_epoch_ms, clock.chain_epoch_ms, clock.speed)
        super().start_all()

    def client(self, sender: str, node: str) -> XinlianClient:
        return self.client_for_key(self.client_key(sender).seed, node)

    def client_for_key(self, seed: bytes, node: str) -> XinlianClient:
        """A client that signs with `seed` and sets `expires_at` from chain time, through `node`'s API."""
        if self.chain_clock is None:
            raise RuntimeError("start the cluster before creating clients: chain time begins at start_all()")
        return XinlianClient(
            self.api_url(node),
            seed,
            chain_id=self.genesis.chain_id,
            language="en",
            timeout_seconds=30,
            clock_ms=self.chain_clock.now_ms,
            expiry_window_ms=self.genesis.limits.tx_expiry_window_ms,
        )

    @property
    def utc_offset_minutes(self) -> int:
        return self.genesis.utc_offset_minutes

    async def get_json(self, member_id: str, path: str) -> tuple[int, Any]:
        """GET `path` from a node's API, and return the HTTP status with the decoded body."""
        async with self.session.get(f"{self.api_url(member_id)}{path}") as response:
            return response.status, await response.json()

    async def read_object(self, member_id: str, path: str) -> dict[str, Any]:
        status, body = await self.get_json(member_id, path)
        assert status == 200, f"GET {path} on {member_id} returned {status}: {body}"
        return body

    async def block_header(self, member_id: str, height: int) -> dict[str, Any]:
        return (await self.read_object(member_id, f"/v1/blocks/{height}"))["header"]


def local_date(time_ms: int, utc_offset_minutes: int) -> datetime.date:
    """Calendar date of a unix-ms instant in the consortium's fixed UTC offset."""
    zone = datetime.timezone(datetime.timedelta(minutes=utc_offset_minutes))
    return datetime.datetime.fromtimestamp(time_ms / 1000, tz=zone).date()


def local_minute(time_ms: int, utc_offset_minutes: int) -> int:
    """Minute of the local day (0-1439) of a unix-ms instant."""
    return ((time_ms + utc_offset_minutes * MS_PER_MINUTE) % MS_PER_DAY) // MS_PER_MINUTE


def local_ms(day: datetime.date, hour: int, minute: int, utc_offset_minutes: int) -> int:
    """Unix ms of hour:minute local time on `day`."""
    zone = datetime.timezone(datetime.timedelta(minutes=utc_offset_minutes))
    return int(datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp() * 1000)


async def wait_for_chain_time(cluster: AcceleratedCluster, member_id: str, target_ms: int, timeout_s: float) -> int:
    """Poll the node's /v1/status until its chain time reaches `target_ms`, and return the chain time seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await cluster.status(member_id)
        if status is not None and status["chain_time_ms"] >= target_ms:
            return status["chain_time_ms"]
        if time.monotonic() > deadline:
            seen = status["chain_time_ms"] if status else None
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for chain time {target_ms} on {member_id} (last seen {seen})")
        await asyncio.sleep(CHAIN_TIME_POLL_SECONDS)


async def commit_heartbeat(cluster: AcceleratedCluster) -> dict[str, Any]:
    """Commit one unrelated transaction and return its record with the block timestamp added as `block_time_ms`."""
    payload = {"subject_id": os.urandom(32).hex(), "commitment": os.urandom(32).hex()}
    async with cluster.client(HEARTBEAT_SENDER, HEARTBEAT_SENDER) as client:
        record = await client.submit_and_wait("subject.register", payload)
    assert record["receipt"]["ok"], record["receipt"]
    header = await cluster.block_header(HEARTBEAT_SENDER, record["height"])
    return {**record, "block_time_ms": header["timestamp"]}


async def heartbeat_at(cluster: AcceleratedCluster, target_ms: int, timeout_s: float = 30) -> dict[str, Any]:
    """Wait until chain time reaches `target_ms`, then commit a heartbeat, whose block time is at or after the target."""
    await wait_for_chain_time(cluster, HEARTBEAT_SENDER, target_ms, timeout_s)
    record = await commit_heartbeat(cluster)
    assert record["block_time_ms"] >= target_ms, (record["block_time_ms"], target_ms)
    return record


class EventStream:
    """A websocket subscription to a node's /v1/events, open from `__aenter__` until `__aexit__`.

    The node registers the subscription before it completes the handshake, so
    every event committed after `__aenter__` returns reaches the stream.
    """

    def __init__(self, api_url: str, types: list[str], member: str | None = None) -> None:
        query = f"types={','.join(types)}" + (f"&member={member}" if member else "")
        self.url = f"{api_url}/v1/events?{query}"
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=EVENT_QUEUE_SIZE_MAX)
        self._session: aiohttp.ClientSession | None = None
        self._websocket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "EventStream":
        self._session = aiohttp.ClientSession()
        self._websocket = await self._session.ws_connect(self.url, timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._websocket is not None:
            await self._websocket.close()
        if self._session is not None:
            await self._session.close()

    async def _read(self) -> None:
        assert self._websocket is not None
        async for message in self._websocket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            # put_nowait raises QueueFull, which ends this task, and next_matching then reports it.
            self.queue.put_nowait(json.loads(message.data))

    async def next_matching(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float) -> dict[str, Any]:
        """Return the next received event for which `predicate` holds, or fail at the deadline or when the stream ends."""
        assert self._reader is not None, "enter the EventStream before reading from it"
        deadline = time.monotonic() + timeout_s
        while True:
            if self.queue.empty() and self._reader.done():
                failure = None if self._reader.cancelled() else self._reader.exception()
                raise AssertionError(f"event stream {self.url} ended before a matching event arrived: {failure!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for a matching event on {self.url}")
            getter = asyncio.ensure_future(self.queue.get())
            await asyncio.wait({getter, self._reader}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                await asyncio.gather(getter, return_exceptions=True)
                continue
            event = getter.result()
            if predicate(event):
                return event
