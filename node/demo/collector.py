"""The collection agency of the demo: it learns of its cases from the event stream and works them through the API.

For each case assigned to it the agency sends `case.accept` and one voice call
to the debtor inside the allowed contact hours (rule C3), so each case shows a
lawful contact on chain. The contract takes a contact only if its `at` time lies
in the day before the block time. So the agency places the call a few chain
minutes before the current chain time. Outside the contact hours it first waits
for the next opening.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from node.client import XinlianApiError
from node.demo.chainio import ChainIO, Submitted

logger = logging.getLogger("xinlian.demo.collector")

MINUTE_MS = 60_000
DAY_MS = 86_400_000
# A call's `at` lies this many chain minutes before the chain time when it is
# signed. The block that takes it is proposed later, so `at` is never after the
# block time, and the contract accepts it for almost a whole chain day.
CALL_MARGIN_MINUTES = 10
COLLECTOR_IDS = ("agent-007", "agent-011")


@dataclass
class CaseInfo:
    case_id: str
    loan_id: str
    opened_height: int
    accepted: bool = False
    contacts: int = 0
    closed: bool = False


def number_hash(subject_or_loan: str) -> str:
    """Stand-in hash of the debtor's phone number: the chain stores only a hash, never the number."""
    return hashlib.sha256(f"demo-phone/{subject_or_loan}".encode()).hexdigest()


@dataclass(frozen=True)
class ContactHours:
    """The allowed contact hours [start_minute, end_minute) in local minutes of the day (genesis parameters, rule C3)."""

    start_minute: int
    end_minute: int
    utc_offset_minutes: int

    @classmethod
    def from_params(cls, params: dict[str, Any], utc_offset_minutes: int) -> "ContactHours":
        return cls(params["contact_start_minute"], params["contact_end_minute"], utc_offset_minutes)

    def next_call_time_ms(self, now_ms: int, margin_minutes: int = CALL_MARGIN_MINUTES) -> int:
        """Return the earliest chain time from `now_ms` at which a call `margin_minutes` earlier is inside the hours."""
        day_start = now_ms - (now_ms + self.utc_offset_minutes * MINUTE_MS) % DAY_MS
        minute = (now_ms - day_start) // MINUTE_MS
        earliest = self.start_minute + margin_minutes
        if earliest <= minute < self.end_minute:
            return now_ms
        if minute < earliest:
            return day_start + earliest * MINUTE_MS
        return day_start + DAY_MS + earliest * MINUTE_MS


async def wait_contact_time(io: ChainIO, hours: ContactHours, not_before_ms: int = 0) -> int:
    """Wait until chain time, from `not_before_ms` on, allows a call placed CALL_MARGIN_MINUTES earlier; return it."""
    while True:
        target_ms = hours.next_call_time_ms(max(io.now_ms(), not_before_ms))
        now_ms = await io.wait_chain_time(target_ms)
        if hours.next_call_time_ms(now_ms) == now_ms:
            return now_ms


def call_time_ms(now_ms: int, margin_minutes: int = CALL_MARGIN_MINUTES) -> int:
    """Place a call `margin_minutes` before `now_ms`, to the minute."""
    at_ms = now_ms - margin_minutes * MINUTE_MS
    return at_ms - at_ms % MINUTE_MS


class CollectionAgency:
    def __init__(self, io: ChainIO, member_id: str) -> None:
        self.io = io
        self.member_id = member_id
        self.cases: dict[str, CaseInfo] = {}
        self.loan_case: dict[str, str] = {}  # loan id -> its open case (any agency), for the banks' recovery links
        self.new_cases: list[str] = []
        self.events_seen = 0
        self._listener: asyncio.Task | None = None
        self.stream_failed: str | None = None
        self._new_case = asyncio.Event()
        self._worked = asyncio.Event()

    def start(self) -> None:
        self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    async def _listen(self) -> None:
        client = self.io.client_for(self.member_id)
        try:
            async for event in client.events(types=["case.opened", "case.closed"]):
                self._on_event(event)
            self.stream_failed = "the node closed the event stream"
        except (aiohttp.ClientError, XinlianApiError) as exc:
            self.stream_failed = str(exc)
            logger.error("event stream of %s failed: %s", self.member_id, exc)
        finally:
            await client.close()

    def _on_event(self, event: dict[str, Any]) -> None:
        self.events_seen += 1
        data = event["data"]
        if event["type"] == "case.opened":
            self.loan_case[data["loan_id"]] = data["case_id"]
            if data.get("agency") == self.member_id:
                self.cases[data["case_id"]] = CaseInfo(data["case_id"], data["loan_id"], event["height"])
                self.new_cases.append(data["case_id"])
                self._new_case.set()
        elif event["type"] == "case.closed":
            info = self.cases.get(data["case_id"])
            if info is not None:
                info.closed = True
            for loan_id, case_id in list(self.loan_case.items()):
                if case_id == data["case_id"]:
                    del self.loan_case[loan_id]

    def open_accepted_cases(self) -> list[CaseInfo]:
        return [info for _, info in sorted(self.cases.items()) if info.accepted and not info.closed]

    async def work_cases(self, hours: ContactHours) -> None:
        """Work new cases until cancelled: inside the contact hours, accept each one and place one lawful call."""
        while True:
            await self._new_case.wait()
            now_ms = await wait_contact_time(self.io, hours)
            await self.work_new_cases(call_time_ms(now_ms))
            self._worked.set()

    async def wait_worked(self, timeout_s: float) -> None:
        """Wait until every case that has arrived on the event stream so far has been worked."""
        async with asyncio.timeout(timeout_s):
            while self.new_cases:
                self._worked.clear()
                await self._worked.wait()

    async def work_new_cases(self, at_ms: int) -> list[Submitted]:
        """Accept every open case that arrived since the last call and place one call at `at_ms` on each."""
        self._new_case.clear()
        case_ids, self.new_cases = self.new_cases, []
        key = self.io.keys[self.member_id]
        items = []
        for case_id in case_ids:
            info = self.cases[case_id]
            if info.closed:
                continue
            items.append((key, self.member_id, "case.accept", {"case_id": case_id}, None))
            items.append((key, self.member_id, "case.contact", self.contact_payload(info, at_ms, "voice", "no_answer", COLLECTOR_IDS[:1]), None))
            info.accepted = True
        if not items:
            return []
        return await self.io.submit(self.member_id, items, "collector")

    def contact_payload(self, info: CaseInfo, at_ms: int, channel: str, outcome: str, collectors: tuple[str, ...]) -> dict[str, Any]:
        """Build a contact attempt on the debtor with a new contact id."""
        info.contacts += 1
        payload: dict[str, Any] = {
            "case_id": info.case_id,
            "contact_id": f"{info.case_id[5:21]}-{info.contacts:03d}",
            "at": at_ms,
            "channel": channel,
            "target": "debtor",
            "collectors": list(collectors),
            "outcome": outcome,
        }
        if channel == "voice":
            payload["number_hash"] = number_hash(info.loan_id)
        return payload
