"""A bounded buffer for messages that arrive before the replica can use them."""

from __future__ import annotations

from collections import deque

from consensus.messages import Message


class FutureBuffer:
    """Messages for a later view or beyond the high watermark, bounded per peer.

    When a peer's queue is full its oldest message is dropped, so a Byzantine
    peer cannot grow the buffer past `per_peer_max` messages.
    """

    def __init__(self, per_peer_max: int) -> None:
        self._per_peer_max = per_peer_max
        self._queues: dict[str, deque[tuple[int, Message]]] = {}
        self._arrival = 0

    def add(self, message: Message) -> bool:
        """Buffer a message; return True when it pushed out the peer's oldest one."""
        queue = self._queues.setdefault(message.sender, deque())
        self._arrival += 1
        queue.append((self._arrival, message))
        if len(queue) > self._per_peer_max:
            queue.popleft()
            return True
        return False

    def take_all(self) -> list[Message]:
        """Remove and return every buffered message in arrival order."""
        entries = [entry for queue in self._queues.values() for entry in queue]
        self._queues.clear()
        entries.sort(key=lambda entry: entry[0])
        return [message for _, message in entries]

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())
