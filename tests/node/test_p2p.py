"""Peer links over real aiohttp websockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import pytest

from node.keys import generate_key
from node.p2p import PEER_PATH, P2PLimits, P2PNetwork, PeerError, TokenBucket

CHAIN_ID = "xinlian-test"


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        await asyncio.sleep(0.01)


def url_of(network: P2PNetwork) -> str:
    return f"ws://127.0.0.1:{network.port}{PEER_PATH}"


class Node:
    """One P2PNetwork with a recorded inbox per topic."""

    def __init__(self, members: set[str], limits: P2PLimits = P2PLimits(), chain_id: str = CHAIN_ID) -> None:
        self.key = generate_key()
        self.members = members
        self.members.add(self.key.public_key)
        self.inbox: list[tuple[str, Any]] = []
        self.network = P2PNetwork(chain_id, self.key, lambda key: key in self.members, {}, limits)
        self.network.on_message("test", self._record)

    async def _record(self, peer: str, body: Any) -> None:
        self.inbox.append((peer, body))


@pytest.fixture
async def started() -> Any:
    nodes: list[Node] = []

    async def start(node: Node) -> Node:
        await node.network.start()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        await node.network.stop()


async def test_handshake_connects_and_delivers(started: Any) -> None:
    members: set[str] = set()
    a = await started(Node(members))
    b = await started(Node(members))
    a.network.add_peer(b.key.public_key, url_of(b.network))

    await wait_until(lambda: a.network.is_connected(b.key.public_key) and b.network.is_connected(a.key.public_key))
    assert a.network.send(b.key.public_key, "test", {"n": 1})
    assert b.network.send(a.key.public_key, "test", {"n": 2})
    await wait_until(lambda: len(a.inbox) == 1 and len(b.inbox) == 1)

    assert b.inbox == [(a.key.public_key, {"n": 1})]
    assert a.inbox == [(b.key.public_key, {"n": 2})]


async def test_request_response_and_errors(started: Any) -> None:
    members: set[str] = set()
    a = await started(Node(members))
    b = await started(Node(members))

    async def double(peer: str, body: Any) -> Any:
        return {"value": body["value"] * 2, "asked_by": peer}

    b.network.on_request("double", double)
    a.network.add_peer(b.key.public_key, url_of(b.network))
    await wait_until(lambda: a.network.is_connected(b.key.public_key))

    response = await a.network.request(b.key.public_key, "double", {"value": 21})
    assert response == {"value": 42, "asked_by": a.key.public_key}
    with pytest.raises(PeerError, match="unknown_topic"):
        await a.network.request(b.key.public_key, "missing", {})
    with pytest.raises(PeerError, match="not connected"):
        await a.network.request("00" * 32, "double", {"value": 1})


async def test_unknown_key_refused(started: Any) -> None:
    b = await started(Node(set()))
    stranger = await started(Node(set()))
    stranger.members.add(b.key.public_key)
    stranger.network.add_peer(b.key.public_key, url_of(b.network))

    await wait_until(lambda: b.network.counters["accept_unknown_key"] >= 1 and stranger.network.counters["dial_unknown_key"] >= 1)
    assert not stranger.network.is_connected(b.key.public_key)
    assert b.network.connected_peers() == []


async def test_wrong_chain_refused(started: Any) -> None:
    members: set[str] = set()
    b = await started(Node(members))
    other_chain = await started(Node(members, chain_id="another-chain"))
    other_chain.network.add_peer(b.key.public_key, url_of(b.network))

    await wait_until(lambda: b.network.counters["accept_wrong_chain"] >= 1)
    assert b.network.connected_peers() == []


async def test_impostor_key_refused(started: Any) -> None:
    # The dialer expects the real member's key at this URL, but another member listens there.
    members: set[str] = set()
    a = await started(Node(members))
    real = Node(members)
    impostor = await started(Node(members))
    a.network.add_peer(real.key.public_key, url_of(impostor.network))

    await wait_until(lambda: a.network.counters["dial_unexpected_key"] >= 1)
    assert not a.network.is_connected(real.key.public_key)


async def test_simultaneous_dial_keeps_lower_key_link(started: Any) -> None:
    members: set[str] = set()
    a = await started(Node(members))
    b = await started(Node(members))
    lower_key = min(a.key.public_key, b.key.public_key)

    a.network.add_peer(b.key.public_key, url_of(b.network))
    b.network.add_peer(a.key.public_key, url_of(a.network))

    def settled() -> bool:
        return a.network.link_dialer(b.key.public_key) == lower_key and b.network.link_dialer(a.key.public_key) == lower_key

    await wait_until(settled)
    assert a.network.send(b.key.public_key, "test", "ping")
    assert b.network.send(a.key.public_key, "test", "pong")
    await wait_until(lambda: len(a.inbox) == 1 and len(b.inbox) == 1)
    assert settled()
    assert a.network.connected_peers() == [b.key.public_key]
    assert b.network.connected_peers() == [a.key.public_key]


async def test_oversized_message_dropped_link_kept(started: Any) -> None:
    members: set[str] = set()
    a = await started(Node(members))
    b = await started(Node(members, P2PLimits(message_bytes_max=4096)))
    a.network.add_peer(b.key.public_key, url_of(b.network))
    await wait_until(lambda: a.network.is_connected(b.key.public_key))

    assert a.network.send(b.key.public_key, "test", "x" * 5000)
    assert a.network.send(b.key.public_key, "test", "small")
    await wait_until(lambda: len(b.inbox) == 1)

    assert b.inbox == [(a.key.public_key, "small")]
    assert b.network.counters["dropped_oversized"] == 1
    assert b.network.is_connected(a.key.public_key)


async def test_invalid_frames_dropped(started: Any) -> None:
    members: set[str] = set()
    a = await started(Node(members))
    b = await started(Node(members))
    a.network.add_peer(b.key.public_key, url_of(b.network))
    await wait_until(lambda: a.network.is_connected(b.key.public_key))
    link = a.network._links[b.key.public_key]

    link.enqueue('{"type":"message","topic":"test","body":1.5}')
    link.enqueue('{"type":"message","topic":"test","body":1,"body":2}')
    link.enqueue("[1,2]")
    link.enqueue('{"type":"message","topic":"nobody","body":1}')
    link.enqueue('{"type":"response","id":77,"body":1}')
    assert a.network.send(b.key.public_key, "test", "after")
    await wait_until(lambda: len(b.inbox) == 1)

    assert b.network.counters["dropped_invalid_json"] == 2
    assert b.network.counters["dropped_invalid_frame"] == 1
    assert b.network.counters["dropped_unknown_topic"] == 1
    assert b.network.counters["dropped_unexpected_response"] == 1
    assert b.network.is_connected(a.key.public_key)


async def test_rate_limit_drops_excess(started: Any) -> None:
    members: set[str] = set()
    a = await started(Node(members))
    b = await started(Node(members, P2PLimits(messages_per_second=1, messages_burst=5)))
    a.network.add_peer(b.key.public_key, url_of(b.network))
    await wait_until(lambda: a.network.is_connected(b.key.public_key))

    for number in range(30):
        assert a.network.send(b.key.public_key, "test", number)
    await wait_until(lambda: len(b.inbox) + b.network.counters["dropped_rate_limited"] == 30)

    assert 5 <= len(b.inbox) <= 7  # the burst, plus at most the refill during the test
    assert [body for _, body in b.inbox[:5]] == [0, 1, 2, 3, 4]
    assert b.network.is_connected(a.key.public_key)


async def test_slow_reader_dropped(started: Any) -> None:
    members: set[str] = set()
    a = await started(Node(members, P2PLimits(send_queue_max=8)))
    b = await started(Node(members))
    stuck = asyncio.Event()

    async def never_returns(peer: str, body: Any) -> None:
        await stuck.wait()

    # B handles messages in order on its reader, so a blocked handler stops it reading.
    b.network.on_message("test", never_returns)
    a.network.add_peer(b.key.public_key, url_of(b.network))
    await wait_until(lambda: a.network.is_connected(b.key.public_key))
    first_link = a.network._links[b.key.public_key]

    chunk = "y" * 65536
    accepted = 0
    for _ in range(5000):
        if not a.network.send(b.key.public_key, "test", chunk):
            break
        accepted += 1
        await asyncio.sleep(0)

    assert accepted < 5000, "the send queue never filled"
    await wait_until(lambda: first_link.closed.is_set())
    assert first_link.close_reason == "send_queue_full"
    assert a.network.counters["send_queue_full"] == 1
    stuck.set()


def test_token_bucket_refills_at_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(rate_per_s=2, burst=3, now_s=lambda: now[0])

    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5
    assert bucket.take()
    assert not bucket.take()
    now[0] += 100
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
