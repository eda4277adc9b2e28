"""Authenticated websocket links between member nodes.

Handshake (the dialer connects to the listener's `/v1/peer`):

1. dialer -> `hello` {chain_id, node_key, challenge}
2. listener checks the chain id and that `is_member` accepts the key, then
   -> `hello_ack` {chain_id, node_key, challenge, signature(listener transcript)}
3. dialer checks that the key is the one it dialed and the signature, then
   -> `auth` {signature(dialer transcript)}
4. listener checks the signature -> `welcome`, or `error` and close.

Each transcript is b"xinlian/peer/v1\\x00" + chain_id + b"\\x00" + canonical JSON
of the role, both keys and both fresh 32-byte challenges. The prefix keeps a
peer signature from ever being valid as a transaction or consensus signature,
and the role keeps one side's signature from being replayed as the other's.

One link per pair of nodes. When both dial at once, the link dialed by the
lower key wins on both sides. A newer link in the same direction replaces an
older one, because a dialer only redials after it lost its link.

After the handshake every frame is a JSON object with `type`:
`message` {topic, body}, `request` {id, topic, body} or `response` {id, body |
error}. Inbound frames are size-checked, rate-limited per peer (token bucket)
and strictly parsed; a bad frame is dropped, counted and logged, and the link
stays up. Outbound frames go through a bounded queue per peer; a peer whose
queue is full does not read fast enough and is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Protocol

import aiohttp
from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from node.canonical import CanonicalError, canonical_bytes, parse_json

PEER_SIGNATURE_PREFIX = b"xinlian/peer/v1\x00"
PEER_PATH = "/v1/peer"

CLOSE_UNKNOWN_KEY = 4003
CLOSE_BAD_HANDSHAKE = 4004
CLOSE_DUPLICATE = 4009
CLOSE_DROPPED = 4010
CLOSE_SHUTDOWN = 4011

log = logging.getLogger("xinlian.p2p")

MessageHandler = Callable[[str, Any], Awaitable[None]]
RequestHandler = Callable[[str, Any], Awaitable[Any]]


class Signer(Protocol):
    public_key: str

    def sign(self, data: bytes) -> bytes: ...


class PeerError(Exception):
    """A request to a peer failed: not connected, timed out, or the peer returned an error."""


class HandshakeError(Exception):
    def __init__(self, reason: str, close_code: int = CLOSE_BAD_HANDSHAKE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code


@dataclass(frozen=True)
class P2PLimits:
    message_bytes_max: int = 8 * 1024 * 1024
    messages_per_second: int = 5_000
    messages_burst: int = 10_000
    send_queue_max: int = 4_096
    requests_in_flight_max: int = 8
    handshake_timeout_s: float = 5.0
    request_timeout_s: float = 10.0
    close_timeout_s: float = 1.0
    reconnect_base_s: float = 0.1
    reconnect_max_s: float = 5.0


class TokenBucket:
    """Allow `rate_per_s` events per second on average, with bursts up to `burst`."""

    def __init__(self, rate_per_s: float, burst: int, now_s: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._now_s = now_s
        self._tokens = float(burst)
        self._updated_s = now_s()

    def take(self) -> bool:
        now = self._now_s()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated_s) * self.rate_per_s)
        self._updated_s = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def transcript(chain_id: str, role: str, dialer_key: str, listener_key: str, dialer_challenge: str, listener_challenge: str) -> bytes:
    fields = {
        "role": role,
        "dialer_key": dialer_key,
        "listener_key": listener_key,
        "dialer_challenge": dialer_challenge,
        "listener_challenge": listener_challenge,
    }
    return PEER_SIGNATURE_PREFIX + chain_id.encode("utf-8") + b"\x00" + canonical_bytes(fields)


def verify_signature(public_key: str, data: bytes, signature_hex: Any) -> bool:
    if not isinstance(signature_hex, str) or len(signature_hex) != 128:
        return False
    try:
        VerifyKey(bytes.fromhex(public_key)).verify(data, bytes.fromhex(signature_hex))
    except (BadSignatureError, ValueError):
        return False
    return True


def _is_hex(value: Any, length: int) -> bool:
    if not isinstance(value, str) or len(value) != length:
        return False
    return all(char in "0123456789abcdef" for char in value)


class PeerLink:
    """One authenticated websocket to a peer, with its send queue and writer task."""

    def __init__(self, network: "P2PNetwork", peer_key: str, dialer_key: str, ws: Any) -> None:
        self.network = network
        self.peer_key = peer_key
        self.dialer_key = dialer_key
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=network.limits.send_queue_max)
        self.bucket = TokenBucket(network.limits.messages_per_second, network.limits.messages_burst)
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.requests_in_flight = 0
        self._writer_task: asyncio.Task[None] | None = None

    def start_writer(self) -> None:
        self._writer_task = asyncio.create_task(self._write_loop(), name=f"p2p-writer-{self.peer_key[:8]}")

    def enqueue(self, text: str) -> bool:
        if self.closed.is_set():
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.network.count("send_queue_full")
            log.warning("send queue full; disconnecting peer", extra={"fields": {"peer": self.peer_key, "queued": self.queue.qsize()}})
            asyncio.create_task(self.close("send_queue_full", CLOSE_DROPPED))
            return False
        return True

    async def _write_loop(self) -> None:
        try:
            while True:
                text = await self.queue.get()
                await self.ws.send_str(text)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            log.info("peer link write failed", extra={"fields": {"peer": self.peer_key, "error": repr(exc)}})
            asyncio.create_task(self.close("write_failed", CLOSE_DROPPED))

    async def close(self, reason: str, code: int = CLOSE_DROPPED) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.close_reason = reason
        if self._writer_task is not None:
            self._writer_task.cancel()
        try:
            # close() sends a close frame and waits for the peer's, so a peer that does not
            # read would block it. Cancelling it at the timeout makes aiohttp close the transport.
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), self.network.limits.close_timeout_s)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError, aiohttp.ClientError):
            pass
        self.network._unregister(self)


class P2PNetwork:
    """The peer-to-peer layer of one node: a websocket listener plus one dialer per known peer.

    `is_member(key)` decides which node keys may connect. It is asked at every
    handshake, in both directions, and by `close_disallowed`, so it may follow
    a membership that changes. `peer_urls` maps the node keys this node dials to
    their websocket URLs.
    """

    def __init__(
        self,
        chain_id: str,
        signer: Signer,
        is_member: Callable[[str], bool],
        peer_urls: dict[str, str],
        limits: P2PLimits = P2PLimits(),
        host: str = "127.0.0.1",
        port: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.signer = signer
        self.node_key = signer.public_key
        self.is_member = is_member
        self.peer_urls = dict(peer_urls)
        self.limits = limits
        self.host = host
        self.port = port
        # Link events and drops by kind, plus peer messages by topic: message_sent_<topic> counts
        # messages queued for one peer, message_received_<topic> messages passed to a handler.
        self.counters: Counter[str] = Counter()
        self._rng = rng or random.Random()
        self._links: dict[str, PeerLink] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._message_handlers: dict[str, MessageHandler] = {}
        self._request_handlers: dict[str, RequestHandler] = {}
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._next_request_id = 1
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._on_connect: list[Callable[[str], None]] = []
        self._handshaking: set[web.WebSocketResponse] = set()

    # ---- public interface ----

    def on_message(self, topic: str, handler: MessageHandler) -> None:
        self._message_handlers[topic] = handler

    def on_request(self, topic: str, handler: RequestHandler) -> None:
        """Serve requests of `topic`; the handler returns the JSON-compatible response body."""
        self._request_handlers[topic] = handler

    def on_connect(self, callback: Callable[[str], None]) -> None:
        self._on_connect.append(callback)

    def count(self, reason: str) -> None:
        self.counters[reason] += 1

    def connected_peers(self) -> list[str]:
        return sorted(key for key, link in self._links.items() if not link.closed.is_set())

    def is_connected(self, peer_key: str) -> bool:
        link = self._links.get(peer_key)
        return link is not None and not link.closed.is_set()

    def close_disallowed(self) -> list[str]:
        """Close every link whose key `is_member` no longer accepts, and return those keys, sorted.

        Call it whenever membership may have changed. A closed peer's redial is
        then refused at the handshake, and this node stops dialing it.
        """
        closed = []
        for peer_key in self.connected_peers():
            if not self.is_member(peer_key):
                self.count("closed_not_member")
                asyncio.create_task(self._links[peer_key].close("not_a_member", CLOSE_UNKNOWN_KEY))
                closed.append(peer_key)
        return closed

    def link_dialer(self, peer_key: str) -> str | None:
        link = self._links.get(peer_key)
        return link.dialer_key if link is not None else None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(PEER_PATH, self._handle_incoming)
        # Handlers still in a handshake at shutdown are closed by stop(); the timeout bounds the rest.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=self.limits.close_timeout_s)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()
        for peer_key in sorted(self.peer_urls):
            self.add_peer(peer_key, self.peer_urls[peer_key])
        log.info("p2p listening", extra={"fields": {"host": self.host, "port": self.port, "peers": len(self.peer_urls)}})

    def add_peer(self, peer_key: str, url: str) -> None:
        """Dial `peer_key` at `url` and keep redialing whenever the link is lost."""
        self.peer_urls[peer_key] = url
        if self._session is None or peer_key in self._wake:
            return
        self._wake[peer_key] = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._dial_loop(peer_key), name=f"p2p-dial-{peer_key[:8]}"))

    async def stop(self) -> None:
        self._stopping.set()
        for event in self._wake.values():
            event.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(link.close("shutdown", CLOSE_SHUTDOWN) for link in list(self._links.values())), return_exceptions=True)
        await asyncio.gather(*(ws.close(code=CLOSE_SHUTDOWN, message=b"shutdown") for ws in list(self._handshaking)), return_exceptions=True)
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(PeerError("p2p network stopped"))
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("p2p stopped", extra={"fields": {"counters": dict(sorted(self.counters.items()))}})

    def send(self, peer_key: str, topic: str, body: Any) -> bool:
        """Queue one message for a peer; return False if it is not connected or was dropped."""
        return self.send_many((peer_key,), topic, body) == 1

    def send_many(self, peer_keys: Iterable[str], topic: str, body: Any) -> int:
        """Queue one message for each of `peer_keys`, encoded once; return how many links accepted it."""
        text: str | None = None
        sent = 0
        for peer_key in peer_keys:
            link = self._links.get(peer_key)
            if link is None:
                self.count("send_not_connected")
                continue
            if text is None:
                text = json.dumps({"type": "message", "topic": topic, "body": body}, separators=(",", ":"))
            if link.enqueue(text):
                sent += 1
        if sent:
            self.counters[f"message_sent_{topic}"] += sent
        return sent

    def broadcast(self, topic: str, body: Any, exclude: tuple[str, ...] = ()) -> int:
        """Queue one message for every connected peer; return how many links accepted it."""
        text = json.dumps({"type": "message", "topic": topic, "body": body}, separators=(",", ":"))
        sent = 0
        for peer_key in self.connected_peers():
            if peer_key not in exclude and self._links[peer_key].enqueue(text):
                sent += 1
        if sent:
            self.counters[f"message_sent_{topic}"] += sent
        return sent

    async def request(self, peer_key: str, topic: str, body: Any, timeout_s: float | None = None) -> Any:
        """Send a request and wait for the response body; raise PeerError on failure."""
        link = self._links.get(peer_key)
        if link is None or link.closed.is_set():
            raise PeerError(f"peer {peer_key[:16]} is not connected")
        request_id = self._next_request_id
        self._next_request_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (peer_key, future)
        frame = {"type": "request", "id": request_id, "topic": topic, "body": body}
        try:
            if not link.enqueue(json.dumps(frame, separators=(",", ":"))):
                raise PeerError(f"peer {peer_key[:16]} dropped before the request was sent")
            closed_wait = asyncio.ensure_future(link.closed.wait())
            try:
                done, _ = await asyncio.wait(
                    {future, closed_wait}, timeout=timeout_s or self.limits.request_timeout_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                closed_wait.cancel()
            if future in done:
                return future.result()
            if closed_wait in done:
                raise PeerError(f"peer {peer_key[:16]} disconnected during a {topic} request")
            raise PeerError(f"{topic} request to peer {peer_key[:16]} timed out")
        finally:
            self._pending.pop(request_id, None)

    # ---- link registry ----

    def _register(self, link: PeerLink) -> bool:
        existing = self._links.get(link.peer_key)
        if existing is not None and not existing.closed.is_set():
            preferred_dialer = min(self.node_key, link.peer_key)
            if link.dialer_key != existing.dialer_key and link.dialer_key != preferred_dialer:
                return False
            asyncio.create_task(existing.close("replaced", CLOSE_DUPLICATE))
        self._links[link.peer_key] = link
        log.info("peer connected", extra={"fields": {"peer": link.peer_key, "dialer": link.dialer_key == self.node_key}})
        self._wake_dialer(link.peer_key)
        for callback in self._on_connect:
            callback(link.peer_key)
        return True

    def _unregister(self, link: PeerLink) -> None:
        if self._links.get(link.peer_key) is link:
            del self._links[link.peer_key]
            log.info("peer disconnected", extra={"fields": {"peer": link.peer_key, "reason": link.close_reason}})
        self._wake_dialer(link.peer_key)

    def _wake_dialer(self, peer_key: str) -> None:
        event = self._wake.get(peer_key)
        if event is not None:
            event.set()

    # ---- dialing ----

    async def _dial_loop(self, peer_key: str) -> None:
        failures = 0
        wake = self._wake[peer_key]
        while not self._stopping.is_set():
            link = self._links.get(peer_key)
            if link is not None and not link.closed.is_set():
                await link.closed.wait()
                failures = 0
                continue
            if not self.is_member(peer_key):
                # Membership may return (a reinstated member), so keep checking at the slowest redial pace.
                self.count("dial_skipped_not_member")
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), self.limits.reconnect_max_s)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                await self._dial(peer_key, self.peer_urls[peer_key])
                failures = 0
                continue
            except HandshakeError as exc:
                failures += 1
                self.count(f"dial_{exc.reason}")
                if failures == 1 or failures % 20 == 0:
                    log.info("peer handshake failed", extra={"fields": {"peer": peer_key, "reason": exc.reason, "failures": failures}})
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                failures += 1
                self.count("dial_failed")
                if failures == 1 or failures % 20 == 0:
                    log.info("peer dial failed", extra={"fields": {"peer": peer_key, "error": repr(exc), "failures": failures}})
            delay_s = min(self.limits.reconnect_max_s, self.limits.reconnect_base_s * 2 ** min(failures, 16))
            delay_s *= self._rng.uniform(0.5, 1.0)
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), delay_s)
            except asyncio.TimeoutError:
                pass

    async def _dial(self, peer_key: str, url: str) -> None:
        assert self._session is not None
        hard_max = self.limits.message_bytes_max * 2
        ws = await self._session.ws_connect(url, max_msg_size=hard_max, timeout=aiohttp.ClientWSTimeout(ws_close=self.limits.close_timeout_s))
        try:
            dialer_challenge = secrets.token_hex(32)
            await ws.send_str(json.dumps({"type": "hello", "chain_id": self.chain_id, "node_key": self.node_key, "challenge": dialer_challenge}))
            ack = await self._receive_frame(ws)
            if ack.get("type") == "error":
                raise HandshakeError(str(ack.get("reason", "rejected"))[:64])
            if ack.get("type") != "hello_ack" or ack.get("chain_id") != self.chain_id:
                raise HandshakeError("bad_hello_ack")
            if ack.get("node_key") != peer_key:
                raise HandshakeError("unexpected_key")
            if not self.is_member(peer_key):
                raise HandshakeError("unknown_key", CLOSE_UNKNOWN_KEY)
            listener_challenge = ack.get("challenge")
            if not _is_hex(listener_challenge, 64):
                raise HandshakeError("bad_hello_ack")
            listener_data = transcript(self.chain_id, "listener", self.node_key, peer_key, dialer_challenge, listener_challenge)
            if not verify_signature(peer_key, listener_data, ack.get("signature")):
                raise HandshakeError("bad_signature")
            dialer_data = transcript(self.chain_id, "dialer", self.node_key, peer_key, dialer_challenge, listener_challenge)
            await ws.send_str(json.dumps({"type": "auth", "signature": self.signer.sign(dialer_data).hex()}))
            welcome = await self._receive_frame(ws)
            if welcome.get("type") != "welcome":
                raise HandshakeError(str(welcome.get("reason", "rejected"))[:64])
        except BaseException:
            await ws.close()
            raise
        link = PeerLink(self, peer_key, self.node_key, ws)
        if not self._register(link):
            await ws.close(code=CLOSE_DUPLICATE, message=b"duplicate")
            raise HandshakeError("duplicate", CLOSE_DUPLICATE)
        link.start_writer()
        # The reader runs as its own task so the dial loop can wait on `closed`.
        self._tasks.append(asyncio.create_task(self._read_loop(link), name=f"p2p-reader-{peer_key[:8]}"))

    async def _receive_frame(self, ws: Any) -> dict[str, Any]:
        try:
            message = await ws.receive(timeout=self.limits.handshake_timeout_s)
        except asyncio.TimeoutError:
            raise HandshakeError("handshake_timeout") from None
        if message.type != aiohttp.WSMsgType.TEXT:
            raise HandshakeError("closed_during_handshake")
        if len(message.data) > 4096:
            raise HandshakeError("handshake_too_large")
        try:
            frame = parse_json(message.data)
        except CanonicalError:
            raise HandshakeError("bad_handshake_json") from None
        if not isinstance(frame, dict):
            raise HandshakeError("bad_handshake_json")
        return frame

    # ---- listening ----

    async def _handle_incoming(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.limits.message_bytes_max * 2, timeout=self.limits.close_timeout_s)
        await ws.prepare(request)
        if self._stopping.is_set():
            await ws.close(code=CLOSE_SHUTDOWN, message=b"shutdown")
            return ws

        self._handshaking.add(ws)
        try:
            peer_key = await self._accept_handshake(ws)
        except HandshakeError as exc:
            self.count(f"accept_{exc.reason}")
            log.warning("rejected incoming peer", extra={"fields": {"remote": request.remote, "reason": exc.reason}})
            if not ws.closed:
                try:
                    await ws.send_str(json.dumps({"type": "error", "reason": exc.reason}))
                except (ConnectionError, RuntimeError):
                    pass
                await ws.close(code=exc.close_code, message=exc.reason.encode())
            return ws
        finally:
            self._handshaking.discard(ws)

        if self._stopping.is_set():
            await ws.close(code=CLOSE_SHUTDOWN, message=b"shutdown")
            return ws
        link = PeerLink(self, peer_key, peer_key, ws)
        if not self._register(link):
            self.count("accept_duplicate")
            await ws.send_str(json.dumps({"type": "error", "reason": "duplicate"}))
            await ws.close(code=CLOSE_DUPLICATE, message=b"duplicate")
            return ws

        await ws.send_str(json.dumps({"type": "welcome"}))
        link.start_writer()
        await self._read_loop(link)
        return ws

    async def _accept_handshake(self, ws: web.WebSocketResponse) -> str:
        hello = await self._receive_frame(ws)
        if hello.get("type") != "hello":
            raise HandshakeError("bad_hello")
        if hello.get("chain_id") != self.chain_id:
            raise HandshakeError("wrong_chain")
        peer_key = hello.get("node_key")
        dialer_challenge = hello.get("challenge")
        if not _is_hex(peer_key, 64) or not _is_hex(dialer_challenge, 64):
            raise HandshakeError("bad_hello")
        if peer_key == self.node_key or not self.is_member(peer_key):
            raise HandshakeError("unknown_key", CLOSE_UNKNOWN_KEY)
        listener_challenge = secrets.token_hex(32)
        listener_data = transcript(self.chain_id, "listener", peer_key, self.node_key, dialer_challenge, listener_challenge)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello_ack",
                    "chain_id": self.chain_id,
                    "node_key": self.node_key,
                    "challenge": listener_challenge,
                    "signature": self.signer.sign(listener_data).hex(),
                }
            )
        )
        auth = await self._receive_frame(ws)
        dialer_data = transcript(self.chain_id, "dialer", peer_key, self.node_key, dialer_challenge, listener_challenge)
        if auth.get("type") != "auth" or not verify_signature(peer_key, dialer_data, auth.get("signature")):
            raise HandshakeError("bad_signature")
        return peer_key

    # ---- inbound frames ----

    async def _read_loop(self, link: PeerLink) -> None:
        try:
            async for message in link.ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await self._handle_frame(link, message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    self._drop(link, "binary_frame")
                else:
                    break
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            log.info("peer link read failed", extra={"fields": {"peer": link.peer_key, "error": repr(exc)}})
        finally:
            close_code = link.ws.close_code
            if close_code is not None and close_code not in (1000, CLOSE_SHUTDOWN, CLOSE_DUPLICATE):
                self.count(f"closed_{close_code}")
            await link.close("remote_closed" if not link.closed.is_set() else link.close_reason)

    def _drop(self, link: PeerLink, reason: str) -> None:
        self.counters[f"dropped_{reason}"] += 1
        count = self.counters[f"dropped_{reason}"]
        # Log the first drop of each kind and then every 100th, so a flood cannot flood the log.
        if count == 1 or count % 100 == 0:
            log.warning("dropped peer message", extra={"fields": {"peer": link.peer_key, "reason": reason, "count": count}})

    async def _handle_frame(self, link: PeerLink, text: str) -> None:
        if not link.bucket.take():
            self._drop(link, "rate_limited")
            return
        size_max = self.limits.message_bytes_max
        if len(text) > size_max or (len(text) * 4 > size_max and len(text.encode("utf-8")) > size_max):
            self._drop(link, "oversized")
            return
        try:
            frame = parse_json(text)
        except CanonicalError:
            self._drop(link, "invalid_json")
            return
        if not isinstance(frame, dict):
            self._drop(link, "invalid_frame")
            return
        frame_type = frame.get("type")
        if frame_type == "message":
            await self._handle_message(link, frame)
        elif frame_type == "request":
            self._handle_request(link, frame)
        elif frame_type == "response":
            self._handle_response(link, frame)
        else:
            self._drop(link, "invalid_frame")

    async def _handle_message(self, link: PeerLink, frame: dict[str, Any]) -> None:
        handler = self._message_handlers.get(frame.get("topic"))  # type: ignore[arg-type]
        if handler is None:
            self._drop(link, "unknown_topic")
            return
        # Counted only for registered topics, so a peer cannot grow the counter's label set.
        self.counters[f"message_received_{frame['topic']}"] += 1
        try:
            await handler(link.peer_key, frame.get("body"))
        except Exception:
            self.count("handler_error")
            log.exception("peer message handler failed", extra={"fields": {"peer": link.peer_key, "topic": frame.get("topic")}})

    def _handle_request(self, link: PeerLink, frame: dict[str, Any]) -> None:
        request_id = frame.get("id")
        if not isinstance(request_id, int):
            self._drop(link, "invalid_frame")
            return
        handler = self._request_handlers.get(frame.get("topic"))  # type: ignore[arg-type]
        if handler is None:
            self._respond(link, request_id, error="unknown_topic")
            return
        if link.requests_in_flight >= self.limits.requests_in_flight_max:
            self._respond(link, request_id, error="busy")
            return
        link.requests_in_flight += 1
        asyncio.create_task(self._serve_request(link, handler, request_id, frame))

    async def _serve_request(self, link: PeerLink, handler: RequestHandler, request_id: int, frame: dict[str, Any]) -> None:
        try:
            body = await asyncio.wait_for(handler(link.peer_key, frame.get("body")), self.limits.request_timeout_s)
        except PeerError as exc:
            self._respond(link, request_id, error=str(exc)[:200])
        except Exception:
            self.count("handler_error")
            log.exception("peer request handler failed", extra={"fields": {"peer": link.peer_key, "topic": frame.get("topic")}})
            self._respond(link, request_id, error="internal_error")
        else:
            self._respond(link, request_id, body=body)
        finally:
            link.requests_in_flight -= 1

    def _respond(self, link: PeerLink, request_id: int, body: Any = None, error: str | None = None) -> None:
        frame: dict[str, Any] = {"type": "response", "id": request_id}
        if error is not None:
            frame["error"] = error
        else:
            frame["body"] = body
        link.enqueue(json.dumps(frame, separators=(",", ":")))

    def _handle_response(self, link: PeerLink, frame: dict[str, Any]) -> None:
        pending = self._pending.get(frame.get("id"))  # type: ignore[arg-type]
        # A response only resolves a request that was sent to the same peer.
        if pending is None or pending[0] != link.peer_key or pending[1].done():
            self._drop(link, "unexpected_response")
            return
        future = pending[1]
        if "error" in frame:
            future.set_exception(PeerError(f"peer {link.peer_key[:16]} returned error: {frame['error']}"))
        else:
            future.set_result(frame.get("body"))
