"""Simulated network: seeded delays, drops, duplicates, reordering and partitions.

Time is an integer tick owned by the cluster. Every random choice comes from the
random.Random passed in, so one seed always produces the same delivery order.
A partition is checked both when a message is sent and when it is due, so
messages in flight over a link that gets cut are lost too.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NetworkConfig:
    """Fault rates of one simulated run, with probabilities per message."""

    delay_min_ticks: int = 1
    delay_max_ticks: int = 6
    drop_probability: float = 0.0
    duplicate_probability: float = 0.0
    # A reordered message gets an extra delay of up to reorder_extra_ticks.
    reorder_probability: float = 0.0
    reorder_extra_ticks: int = 30
    in_flight_max: int = 200_000


HEALTHY_NETWORK = NetworkConfig()


@dataclass(order=True)
class Envelope:
    deliver_tick: int
    order: int
    source: str = field(compare=False)
    destination: str = field(compare=False)
    sent_tick: int = field(compare=False)
    payload: Any = field(compare=False)


class SimNetwork:
    """A bounded in-flight queue of envelopes between named endpoints."""

    def __init__(self, rng: random.Random, config: NetworkConfig = HEALTHY_NETWORK) -> None:
        self._rng = rng
        self.config = config
        self._queue: list[Envelope] = []
        self._next_order = 0
        # Endpoint -> partition group number. Endpoints absent from the map are in group 0.
        self._group_of: dict[str, int] = {}
        self.counters: dict[str, int] = {
            "sent": 0,
            "delivered": 0,
            "dropped_random": 0,
            "dropped_partition": 0,
            "dropped_overflow": 0,
            "dropped_crash": 0,
            "duplicated": 0,
        }

    # Partitions

    def partition(self, groups: list[list[str]]) -> None:
        """Cut every link between endpoints of different groups. Unlisted endpoints join group 0."""
        self._group_of = {}
        for number, group in enumerate(groups):
            for endpoint in group:
                self._group_of[endpoint] = number

    def isolate(self, endpoint: str) -> None:
        self._group_of = {endpoint: 1}

    def heal(self) -> None:
        self._group_of = {}

    @property
    def is_partitioned(self) -> bool:
        return bool(self._group_of)

    def is_connected(self, source: str, destination: str) -> bool:
        return self._group_of.get(source, 0) == self._group_of.get(destination, 0)

    # Sending and delivery

    def send(self, now: int, source: str, destination: str, payload: Any, faulty: bool = True) -> None:
        """Queue one message. With faulty=False it is only delayed, never dropped or duplicated."""
        self.counters["sent"] += 1
        if not self.is_connected(source, destination):
            self.counters["dropped_partition"] += 1
            return
        if faulty and self._rng.random() < self.config.drop_probability:
            self.counters["dropped_random"] += 1
            return
        copies = 1
        if faulty and self._rng.random() < self.config.duplicate_probability:
            copies = 2
            self.counters["duplicated"] += 1
        for _ in range(copies):
            self._enqueue(now, source, destination, payload, faulty)

    def _enqueue(self, now: int, source: str, destination: str, payload: Any, faulty: bool) -> None:
        if len(self._queue) >= self.config.in_flight_max:
            self.counters["dropped_overflow"] += 1
            return
        delay = self._rng.randint(self.config.delay_min_ticks, self.config.delay_max_ticks)
        if faulty and self._rng.random() < self.config.reorder_probability:
            delay += self._rng.randint(1, self.config.reorder_extra_ticks)
        envelope = Envelope(now + delay, self._next_order, source, destination, now, payload)
        self._next_order += 1
        heapq.heappush(self._queue, envelope)

    def pop_due(self, now: int) -> list[Envelope]:
        """Remove and return the envelopes due at or before `now` that can still cross the network."""
        due: list[Envelope] = []
        while self._queue and self._queue[0].deliver_tick <= now:
            envelope = heapq.heappop(self._queue)
            if not self.is_connected(envelope.source, envelope.destination):
                self.counters["dropped_partition"] += 1
                continue
            self.counters["delivered"] += 1
            due.append(envelope)
        return due

    def drop_sent_by(self, source: str, sent_tick: int) -> int:
        """Drop what `source` sent at `sent_tick`: a crash can stop messages it had persisted but not sent."""
        remaining = [e for e in self._queue if not (e.source == source and e.sent_tick == sent_tick)]
        dropped = len(self._queue) - len(remaining)
        if dropped:
            heapq.heapify(remaining)
            self._queue = remaining
            self.counters["dropped_crash"] += dropped
        return dropped

    def drop_to(self, destination: str) -> int:
        """Drop every message in flight to `destination` (its process is gone)."""
        remaining = [e for e in self._queue if e.destination != destination]
        dropped = len(self._queue) - len(remaining)
        if dropped:
            heapq.heapify(remaining)
            self._queue = remaining
            self.counters["dropped_crash"] += dropped
        return dropped

    def set_config(self, config: NetworkConfig) -> None:
        self.config = config

    @property
    def in_flight(self) -> int:
        return len(self._queue)
