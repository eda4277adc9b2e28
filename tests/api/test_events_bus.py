"""The committed-event bus: filters, ordering, bounds and slow-subscriber drops."""

from __future__ import annotations

import asyncio

import pytest

from node.events import TX_COMMITTED, CommittedEvent, EventBus, SubscriptionClosed, TooManySubscribers, events_for_block
from node.execution import Event, Receipt


def _event(height: int, event_type: str = "case.opened", members: tuple[str, ...] = ()) -> CommittedEvent:
    return CommittedEvent(height=height, type=event_type, data={"n": height}, members=members)


async def test_bus_delivers_in_order() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    bus.publish([_event(1), _event(2), _event(3)])
    heights = [(await subscription.get()).height for _ in range(3)]
    assert heights == [1, 2, 3]


async def test_bus_filters_type_and_member() -> None:
    bus = EventBus()
    by_type = bus.subscribe(types=["loan.overdue"])
    by_member = bus.subscribe(member="bank-a")
    bus.publish(
        [
            _event(1, "case.opened", ("bank-b",)),
            _event(2, "loan.overdue", ("bank-a",)),
            _event(3, "case.opened", ()),
        ]
    )
    assert (await by_type.get()).height == 2
    assert by_type.queue.empty()
    assert [(await by_member.get()).height for _ in range(2)] == [2, 3]
    assert by_member.queue.empty()


async def test_get_waits_for_publish() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    waiter = asyncio.create_task(subscription.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    bus.publish([_event(7)])
    event = await asyncio.wait_for(waiter, 1.0)
    assert event.height == 7


async def test_slow_subscriber_dropped() -> None:
    bus = EventBus(queue_size_max=2)
    slow = bus.subscribe()
    other = bus.subscribe(types=["other.type"])
    bus.publish([_event(1), _event(2), _event(3)])
    assert bus.dropped_total == 1
    assert bus.subscriber_count == 1
    with pytest.raises(SubscriptionClosed) as closed:
        await slow.get()
    assert closed.value.reason == "too_slow"
    bus.publish([_event(4, "other.type")])
    assert (await other.get()).height == 4


async def test_closed_subscription_raises() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    waiter = asyncio.create_task(subscription.get())
    await asyncio.sleep(0)
    subscription.close()
    with pytest.raises(SubscriptionClosed) as closed:
        await asyncio.wait_for(waiter, 1.0)
    assert closed.value.reason == "closed"
    assert bus.subscriber_count == 0


def test_subscriber_limit() -> None:
    bus = EventBus(subscribers_max=2)
    bus.subscribe()
    bus.subscribe()
    with pytest.raises(TooManySubscribers):
        bus.subscribe()


def test_events_for_block_order() -> None:
    receipts = [
        Receipt(tx_id="aa", ok=True, events=[Event("loan.registered", {"loan_id": "L1"}, ("bank-a",))]),
        Receipt(tx_id="bb", ok=False, error_code="not_creditor", error_details={"rule": "L12"}),
    ]
    events = events_for_block(
        5,
        receipts,
        begin_events=[Event("loan.overdue", {"loan_id": "L0"})],
        end_events=[Event("dispute.escalated", {"dispute_id": "D1"})],
        senders={"aa": "bank-a"},
    )
    assert [event.type for event in events] == [
        "loan.overdue",
        TX_COMMITTED,
        "loan.registered",
        TX_COMMITTED,
        "dispute.escalated",
    ]
    assert events[1].members == ("bank-a",)
    assert events[1].index == 0
    assert events[3].data["error_code"] == "not_creditor"
    assert events[3].members == ()
    assert events[2].tx_id == "aa"
    assert all(event.height == 5 for event in events)
    assert events[0].to_wire()["tx_id"] is None


def test_split_block_events_by_position():
    from node.chain import BlockEvent
    from node.events import split_block_events

    def block_event(kind: str, tx_id: str | None) -> BlockEvent:
        return BlockEvent(height=1, tx_id=tx_id, event=Event(type=kind, data={}))

    events = [block_event("loan.overdue", None), block_event("loan.registered", "t1"), block_event("case.opened", None)]
    begin_events, end_events = split_block_events(events)
    assert [event.type for event in begin_events] == ["loan.overdue"]
    assert [event.type for event in end_events] == ["case.opened"]
