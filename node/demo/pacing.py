"""Submit the replay's transactions on their chain day without waiting for earlier ones to commit.

The driver hands over each day's events as soon as chain time reaches the day.
Every sender's events go to its own node, in timeline order for each subject.
An event about a subject that another member registers waits until that
`subject.register` commits, because the other member's transaction travels to
the primary over a different link and could otherwise arrive second. Such an
event, and every later event of the same sender about the same subject (its
loans and repayments), is then sent by a background task, so the order per
subject is kept and other subjects' events are not held up. Nothing else
waits for a commit. The number of transactions without a receipt is bounded by
`in_flight_max`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from node.demo.chainio import ChainIO, Submitted
from node.demo.collector import CollectionAgency

logger = logging.getLogger("xinlian.demo.pacing")


class DaySubmitter:
    def __init__(self, io: ChainIO, agency: CollectionAgency, in_flight_max: int, receipt_timeout_s: float) -> None:
        self.io = io
        self.agency = agency
        self.in_flight_max = in_flight_max
        self.receipt_timeout_s = receipt_timeout_s
        self.deferred_events = 0
        self._registers: dict[str, asyncio.Future] = {}  # subject id -> future of its subject.register record
        self._registrar: dict[str, str] = {}  # subject id -> member that registers it
        self._loan_subject: dict[str, str] = {}  # loan id -> subject id
        self._tails: dict[tuple[str, str], asyncio.Task] = {}  # (sender, subject id) -> task sending deferred events

    async def submit_day(self, events: list[dict[str, Any]]) -> None:
        """Submit one or more days' events, in timeline order per sender and subject."""
        await self.io.wait_in_flight_below(self.in_flight_max, self.receipt_timeout_s)
        loop = asyncio.get_running_loop()
        for event in events:
            payload = event["payload"]
            if event["type"] == "subject.register":
                self._registers[payload["subject_id"]] = loop.create_future()
                self._registrar[payload["subject_id"]] = event["sender"]
            elif event["type"] == "loan.register":
                self._loan_subject[payload["loan_id"]] = payload["subject_id"]

        immediate: dict[str, list[dict[str, Any]]] = defaultdict(list)
        deferred: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            sender, subject_id = event["sender"], self._subject_of(event)
            key = (sender, subject_id or "")
            tail = self._tails.get(key)
            if subject_id is not None and (key in deferred or (tail is not None and not tail.done()) or self._blocking_register(sender, subject_id) is not None):
                deferred[key].append(event)
            else:
                immediate[sender].append(event)
        for key, waiting in deferred.items():
            self.deferred_events += len(waiting)
            self._tails[key] = asyncio.create_task(self._send_after(key, waiting, self._tails.get(key)))
        await asyncio.gather(*(self._send(sender, immediate[sender]) for sender in sorted(immediate)))

    def _subject_of(self, event: dict[str, Any]) -> str | None:
        payload = event["payload"]
        if "subject_id" in payload:
            return payload["subject_id"]
        return self._loan_subject.get(payload.get("loan_id", ""))

    def _blocking_register(self, sender: str, subject_id: str) -> asyncio.Future | None:
        """Return the future of another member's register of the subject, unless that register has committed."""
        if self._registrar.get(subject_id, sender) == sender:
            return None
        registered = self._registers[subject_id]
        if registered.done() and registered.result().done.done():
            return None
        return registered

    async def _send_after(self, key: tuple[str, str], events: list[dict[str, Any]], previous: asyncio.Task | None) -> None:
        """Send a subject's deferred events once the earlier ones are sent and its register has committed."""
        if previous is not None:
            await previous
        sender, subject_id = key
        registered = self._blocking_register(sender, subject_id)
        if registered is not None:
            record: Submitted = await registered
            await self.io.wait_all([record], self.receipt_timeout_s)
        await self._send(sender, events)

    async def _send(self, sender: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        items = []
        for event in events:
            payload = event["payload"]
            if event["type"] == "repayment.record" and payload["loan_id"] in self.agency.loan_case:
                payload = dict(payload, case_id=self.agency.loan_case[payload["loan_id"]])
            items.append((self.io.keys[sender], sender, event["type"], payload, event["nonce"]))
        records = await self.io.submit(sender, items, "timeline")
        for event, record in zip(events, records, strict=True):
            if event["type"] == "subject.register":
                self._registers[event["payload"]["subject_id"]].set_result(record)

    async def finish(self) -> None:
        """Wait until every deferred event has been submitted."""
        await asyncio.gather(*self._tails.values())
