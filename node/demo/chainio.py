"""The demo's connection to the consortium: sign and submit transactions, follow blocks and receipts, compute chain time.

Each member submits to its own node. Transactions are signed here rather than
with `XinlianClient.build_transaction`, because that caps `expires_at` at the
default one-hour window, and the demo's genesis widens the window to match its
accelerated clock (node.demo.network).

Receipts are collected by following the chain: every new block is read once,
and each of its transactions' receipts once, so the number of requests grows
with the transactions, not with how long they wait. Chain time is computed
from the shared accelerated clock in the node configs, as the nodes do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import nacl.signing

from node.client import XinlianClient
from node.clock import AcceleratedClock
from node.demo.network import Consortium
from node.tx import sign_transaction

logger = logging.getLogger("xinlian.demo.chainio")

SUBMIT_BATCH_MAX = 1000
READ_CONCURRENCY = 16
EXAMPLES_PER_CODE = 3
POLL_INTERVAL_S = 0.03


@dataclass
class Submitted:
    tx_id: str
    tx_type: str
    sender: str  # member id, or "subject"
    tag: str  # what the driver did it for: "timeline", "collector", "story", ...
    payload: dict[str, Any]
    receipt: dict[str, Any] | None = None
    height: int | None = None
    block_date: str | None = None
    block_time_ms: int | None = None
    submitted_ms: int = 0  # chain time when the node admitted it
    done: asyncio.Future | None = None


@dataclass
class Tally:
    """Counts over committed receipts."""

    ok_by_type: Counter = field(default_factory=Counter)
    refused_by_code: Counter = field(default_factory=Counter)  # error code -> count
    refused_by_type: Counter = field(default_factory=Counter)
    refused_by_tag: dict = field(default_factory=dict)  # tag -> Counter of error codes
    admission_rejected: Counter = field(default_factory=Counter)  # rejected before a block, by error code
    refusal_examples: dict = field(default_factory=dict)  # error code -> up to EXAMPLES_PER_CODE refused transactions


class ChainIO:
    def __init__(self, consortium: Consortium, session: aiohttp.ClientSession, chain_id: str, utc_offset_minutes: int) -> None:
        self.consortium = consortium
        self.session = session
        self.chain_id = chain_id
        self.zone = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
        self.expires_in_ms = 30 * 1000 * consortium.speed  # half of the widened genesis window
        self.keys: dict[str, nacl.signing.SigningKey] = {}
        self.urls = {member.member_id: member.api_url for member in consortium.members}
        for member in consortium.members:
            self.keys[member.member_id] = nacl.signing.SigningKey(consortium.client_seed(member.member_id))
        self.pending: dict[str, Submitted] = {}
        self.committed: list[Submitted] = []
        self.tally = Tally()
        self.block_times: dict[int, int] = {}
        self.height = 0
        self.tx_total = 0
        self._reader = asyncio.Semaphore(READ_CONCURRENCY)
        self._follow_task: asyncio.Task | None = None
        self._clock: AcceleratedClock | None = None
        self._progress = asyncio.Event()
        # Receipts are read from the last member's node (the regulator in the demo), which is
        # not the primary of view 0, so reading them adds no work to the node that proposes.
        self.follow_url = consortium.members[-1].api_url

    # ---- time ----

    def load_clock(self) -> None:
        """Read the shared accelerated clock from a node config, which `network up` completes at the first start."""
        config_path = self.consortium.directory / "nodes" / self.consortium.members[0].member_id / "config.json"
        clock = json.loads(config_path.read_text(encoding="utf-8"))["clock"]
        if clock.get("mode") != "accelerated" or not clock.get("real_epoch_ms"):
            raise ValueError(f"{config_path} has no started accelerated clock: {clock}")
        self._clock = AcceleratedClock(clock["real_epoch_ms"], clock["chain_epoch_ms"], clock["speed"])

    def now_ms(self) -> int:
        """Chain time now, computed with the nodes' own clock formula (no request)."""
        if self._clock is None:
            raise RuntimeError("load_clock() must run before chain time is read")
        return self._clock.now_ms()

    async def wait_chain_time(self, target_ms: int) -> int:
        """Sleep until chain time reaches `target_ms`; return chain time then."""
        while True:
            now_ms = self.now_ms()
            if now_ms >= target_ms:
                return now_ms
            await asyncio.sleep((target_ms - now_ms) / self.consortium.speed / 1000)

    def day_start_ms(self, date: str) -> int:
        day = dt.date.fromisoformat(date)
        return int(dt.datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp() * 1000)

    def local_date(self, time_ms: int) -> str:
        return dt.datetime.fromtimestamp(time_ms / 1000, tz=self.zone).date().isoformat()

    def local_minute(self, time_ms: int) -> int:
        moment = dt.datetime.fromtimestamp(time_ms / 1000, tz=self.zone)
        return moment.hour * 60 + moment.minute

    # ---- submitting ----

    def sign(self, key: nacl.signing.SigningKey, tx_type: str, payload: dict[str, Any], nonce: str | None = None) -> dict[str, Any]:
        body = {
            "chain_id": self.chain_id,
            "type": tx_type,
            "sender": key.verify_key.encode().hex(),
            "nonce": nonce or os.urandom(12).hex(),
            "expires_at": self.now_ms() + self.expires_in_ms,
            "payload": payload,
        }
        return sign_transaction(key, body)

    async def submit(self, node_member: str, items: list[tuple[nacl.signing.SigningKey, str, str, dict[str, Any], str | None]], tag: str) -> list[Submitted]:
        """Sign and submit (key, sender name, type, payload, nonce) items to `node_member`'s node, in order."""
        submitted = []
        for start in range(0, len(items), SUBMIT_BATCH_MAX):
            chunk = items[start : start + SUBMIT_BATCH_MAX]
            envelopes = [self.sign(key, tx_type, payload, nonce) for key, _, tx_type, payload, nonce in chunk]
            results = await self._post(self.urls[node_member], {"transactions": envelopes})
            admitted_ms = self.now_ms()
            for (_, sender, tx_type, payload, _), result in zip(chunk, results, strict=True):
                record = Submitted(result.get("tx_id") or "", tx_type, sender, tag, payload, submitted_ms=admitted_ms, done=asyncio.get_running_loop().create_future())
                if result.get("error"):
                    code = result["error"].get("code", "unknown")
                    self.tally.admission_rejected[code] += 1
                    logger.warning("node %s rejected %s before a block: %s", node_member, tx_type, result["error"])
                    record.receipt = {"ok": False, "error_code": code, "admission": True}
                    record.done.set_result(record)
                else:
                    self.pending[record.tx_id] = record
                    self.tx_total += 1
                submitted.append(record)
        return submitted

    async def submit_as_member(self, member_id: str, tx_type: str, payload: dict[str, Any], tag: str, nonce: str | None = None) -> Submitted:
        return (await self.submit(member_id, [(self.keys[member_id], member_id, tx_type, payload, nonce)], tag))[0]

    async def _post(self, api_url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.session.post(f"{api_url}/v1/transactions", json=body) as response:
            data = await response.json()
            if response.status >= 400 and "results" not in data:
                raise RuntimeError(f"{api_url} returned HTTP {response.status} for a batch: {data}")
            return data["results"]

    # ---- following the chain ----

    def start_following(self) -> None:
        self._follow_task = asyncio.create_task(self._follow())

    async def stop_following(self) -> None:
        if self._follow_task is not None:
            self._follow_task.cancel()
            await asyncio.gather(self._follow_task, return_exceptions=True)

    async def _get(self, api_url: str, path: str) -> dict[str, Any] | None:
        async with self._reader:
            async with self.session.get(f"{api_url}{path}") as response:
                if response.status == 404:
                    return None
                response.raise_for_status()
                return await response.json()

    async def _follow(self) -> None:
        url = self.follow_url
        while True:
            latest = await self._get(url, "/v1/blocks/latest")
            top = latest["header"]["height"] if latest else 0
            for height in range(self.height + 1, top + 1):
                block = latest if height == top else await self._get(url, f"/v1/blocks/{height}")
                await self._collect_block(url, block)
                self.height = height
            await asyncio.sleep(POLL_INTERVAL_S)

    async def _collect_block(self, url: str, block: dict[str, Any]) -> None:
        header = block["header"]
        self.block_times[header["height"]] = header["timestamp"]
        records = await asyncio.gather(*(self._get(url, f"/v1/transactions/{tx_id}") for tx_id in block["tx_ids"]))
        for tx_id, record in zip(block["tx_ids"], records, strict=True):
            submitted = self.pending.pop(tx_id, None)
            if submitted is None or record is None:
                continue
            submitted.receipt = record["receipt"]
            submitted.height = header["height"]
            submitted.block_date = self.local_date(header["timestamp"])
            submitted.block_time_ms = header["timestamp"]
            self._count(submitted)
            self.committed.append(submitted)
            if submitted.done is not None and not submitted.done.done():
                submitted.done.set_result(submitted)
        self._progress.set()

    def _count(self, submitted: Submitted) -> None:
        receipt = submitted.receipt or {}
        if receipt.get("ok"):
            self.tally.ok_by_type[submitted.tx_type] += 1
        else:
            code = receipt.get("error_code") or "unknown"
            self.tally.refused_by_code[code] += 1
            self.tally.refused_by_type[submitted.tx_type] += 1
            self.tally.refused_by_tag.setdefault(submitted.tag, Counter())[code] += 1
            examples = self.tally.refusal_examples.setdefault(code, [])
            if len(examples) < EXAMPLES_PER_CODE:
                examples.append({"type": submitted.tx_type, "tag": submitted.tag, "block_date": submitted.block_date, "details": receipt.get("error_details"), "payload": submitted.payload})

    async def wait_all(self, records: list[Submitted], timeout_s: float) -> list[Submitted]:
        futures = [record.done for record in records if record.done is not None]
        if futures:
            await asyncio.wait_for(asyncio.gather(*futures), timeout_s)
        return records

    async def wait_in_flight_below(self, limit: int, timeout_s: float) -> None:
        """Wait until fewer than `limit` submitted transactions lack a receipt."""
        async with asyncio.timeout(timeout_s):
            while len(self.pending) >= limit:
                self._progress.clear()
                await self._progress.wait()

    async def wait_idle(self, timeout_s: float) -> None:
        """Wait until every submitted transaction has a receipt."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.pending:
            if loop.time() > deadline:
                raise TimeoutError(f"{len(self.pending)} transactions still without a receipt after {timeout_s:.0f} s")
            await asyncio.sleep(0.05)

    # ---- reads ----

    async def read(self, path: str, member_id: str | None = None) -> dict[str, Any] | None:
        url = self.urls[member_id] if member_id else self.consortium.members[0].api_url
        return await self._get(url, path)

    def client_for(self, member_id: str) -> XinlianClient:
        return XinlianClient(self.urls[member_id], self.keys[member_id], chain_id=self.chain_id, language="en")

