"""The committed-event bus: the node publishes events of each executed block, subscribers read them.

Each subscriber has its own bounded queue. Publishing never blocks and never
buffers without limit: a subscriber whose queue is full is dropped and its
`get()` raises `SubscriptionClosed` with reason "too_slow", so one slow
websocket client cannot hold back the node or the other subscribers.

All methods must be called from the thread that runs the node's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from node.execution import Event, Receipt

logger = logging.getLogger("xinlian.events")

# The type of the event published for every committed transaction, ok or not.
TX_COMMITTED = "tx.committed"

SUBSCRIBER_QUEUE_SIZE_MAX = 1024
SUBSCRIBERS_MAX = 256


@dataclass(frozen=True)
class CommittedEvent:
    """One event of a committed block, as sent to subscribers."""

    height: int
    type: str
    data: dict[str, Any]
    members: tuple[str, ...] = ()  # member ids this event concerns; empty means everyone
    tx_id: str | None = None  # None for events of the block's time-driven step
    index: int | None = None  # the transaction's position in the block

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "type": self.type,
            "tx_id": self.tx_id,
            "index": self.index,
            "members": list(self.members),
            "data": self.data,
        }


def split_block_events(block_events: Iterable[Any]) -> tuple[list[Event], list[Event]]:
    """Split a committed block's events into the time-driven step's and the end-of-block ones.

    `block_events` are `node.chain.BlockEvent`s in execution order: those with a
    `tx_id` belong to a transaction and are left out here, because
    `events_for_block` rebuilds them from the receipts.
    """
    begin_events: list[Event] = []
    end_events: list[Event] = []
    seen_tx = False
    for block_event in block_events:
        if block_event.tx_id is not None:
            seen_tx = True
        elif seen_tx:
            end_events.append(block_event.event)
        else:
            begin_events.append(block_event.event)
    return begin_events, end_events


def events_for_block(
    height: int,
    receipts: Sequence[Receipt],
    begin_events: Iterable[Event] = (),
    end_events: Iterable[Event] = (),
    senders: dict[str, str] | None = None,
) -> list[CommittedEvent]:
    """List the events of one executed block in the order they happened.

    Order: the time-driven step's events, then per transaction a `tx.committed`
    event followed by the transaction's own events, then the end-of-block events.
    `senders` maps tx_id to the sender's member id, so a member filter also
    matches the `tx.committed` events of that member's own transactions.
    """
    events = [_from_execution(height, event) for event in begin_events]
    for index, receipt in enumerate(receipts):
        member = (senders or {}).get(receipt.tx_id)
        events.append(
            CommittedEvent(
                height=height,
                type=TX_COMMITTED,
                data={
                    "tx_id": receipt.tx_id,
                    "ok": receipt.ok,
                    "error_code": receipt.error_code,
                    "error_details": receipt.error_details,
                },
                members=(member,) if member else (),
                tx_id=receipt.tx_id,
                index=index,
            )
        )
        for event in receipt.events:
            events.append(_from_execution(height, event, receipt.tx_id, index))
    events.extend(_from_execution(height, event) for event in end_events)
    return events


def _from_execution(height: int, event: Event, tx_id: str | None = None, index: int | None = None) -> CommittedEvent:
    return CommittedEvent(height=height, type=event.type, data=event.data, members=event.members, tx_id=tx_id, index=index)


class SubscriptionClosed(Exception):
    """The subscription ended; `reason` is "too_slow" (dropped by the bus) or "closed"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooManySubscribers(Exception):
    pass


@dataclass(eq=False)
class Subscription:
    """One subscriber's filter and bounded queue."""

    bus: "EventBus"
    types: frozenset[str] | None  # None means every type
    member: str | None  # None means every member
    queue: asyncio.Queue[CommittedEvent] = field(default_factory=asyncio.Queue)
    closed_reason: str | None = None
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, event: CommittedEvent) -> bool:
        if self.types is not None and event.type not in self.types:
            return False
        if self.member is not None and event.members and self.member not in event.members:
            return False
        return True

    async def get(self) -> CommittedEvent:
        """Return the next queued event, waiting for one; raise `SubscriptionClosed` after the end.

        A subscription closed normally first hands out what is still queued. One
        dropped as too slow raises at once, because its subscriber already lost events.
        """
        while True:
            if self.closed_reason == "too_slow":
                raise SubscriptionClosed(self.closed_reason)
            if not self.queue.empty():
                return self.queue.get_nowait()
            if self.closed_reason is not None:
                raise SubscriptionClosed(self.closed_reason)
            self._wakeup.clear()
            await self._wakeup.wait()

    def close(self) -> None:
        self.bus._remove(self, "closed")

    def _offer(self, event: CommittedEvent) -> bool:
        """Queue `event`; return False when the queue is full."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        self._wakeup.set()
        return True

    def _end(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._wakeup.set()


class EventBus:
    """Fan-out of committed events to a bounded number of bounded subscriber queues."""

    def __init__(self, queue_size_max: int = SUBSCRIBER_QUEUE_SIZE_MAX, subscribers_max: int = SUBSCRIBERS_MAX) -> None:
        if queue_size_max < 1 or subscribers_max < 1:
            raise ValueError("queue_size_max and subscribers_max must be at least 1")
        self.queue_size_max = queue_size_max
        self.subscribers_max = subscribers_max
        self._subscriptions: list[Subscription] = []
        self.dropped_total = 0
        self.published_total = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, types: Iterable[str] | None = None, member: str | None = None) -> Subscription:
        """Add a subscriber for events of `types` (all when None) that concern `member` (all when None)."""
        if len(self._subscriptions) >= self.subscribers_max:
            raise TooManySubscribers(f"{self.subscribers_max} subscribers already")
        subscription = Subscription(
            bus=self,
            types=frozenset(types) if types is not None else None,
            member=member,
            queue=asyncio.Queue(maxsize=self.queue_size_max),
        )
        self._subscriptions.append(subscription)
        return subscription

    def publish(self, events: Iterable[CommittedEvent]) -> None:
        """Offer each event to every matching subscriber; drop subscribers whose queue is full."""
        for event in events:
            self.published_total += 1
            for subscription in list(self._subscriptions):
                if subscription.matches(event) and not subscription._offer(event):
                    self.dropped_total += 1
                    logger.warning(
                        "dropped a slow event subscriber at height %d: its queue of %d events is full",
                        event.height,
                        self.queue_size_max,
                    )
                    self._remove(subscription, "too_slow")

    def close_all(self) -> None:
        """End every subscription, for node shutdown."""
        for subscription in list(self._subscriptions):
            self._remove(subscription, "closed")

    def _remove(self, subscription: Subscription, reason: str) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        subscription._end(reason)
