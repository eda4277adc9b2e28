"""Signed read requests: how a client proves who reads personal data, and on which node.

A client signs every request that reads personal data with its ed25519 key and
sends four headers:

- `X-Xinlian-Key`: the public key, 64 hex characters (a member's client key or
  a data subject's own key);
- `X-Xinlian-Timestamp`: unix milliseconds, decimal;
- `X-Xinlian-Node`: the member id of the node that serves the request, as in
  that node's `GET /v1/status` (`node_id`);
- `X-Xinlian-Signature`: 128 hex characters, the signature over

      b"xinlian/read/v2\\x00" + METHOD + b"\\n" + path_with_query + b"\\n"
      + sha256_hex(body) + b"\\n" + timestamp + b"\\n" + node_member_id

`path_with_query` is the request target exactly as sent on the request line
(percent-encoding kept), for example `/v1/subjects/ab12.../report?purpose=credit_query`.
The API should pass aiohttp's `request.raw_path`. The node id binds the
signature to one node, so a request recorded on one node cannot be replayed
on another, whose replay cache never saw it.

A verifier built with `node_member_id` requires the node header and rejects
another node's id with `wrong_node`. Without `node_member_id` it also accepts
the older form without the node header, signed with the prefix
`xinlian/read/v1` over the first four lines.

The verifier rejects a timestamp more than `window_ms` away from its clock, and
a request it has already accepted within that window (the replay cache).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping

import nacl.exceptions
import nacl.signing

from node.privacy.errors import PrivacyError

logger = logging.getLogger("xinlian.privacy.read_auth")

READ_SIGNATURE_PREFIX = b"xinlian/read/v1\x00"
NODE_BOUND_SIGNATURE_PREFIX = b"xinlian/read/v2\x00"
HEADER_KEY = "X-Xinlian-Key"
HEADER_TIMESTAMP = "X-Xinlian-Timestamp"
HEADER_SIGNATURE = "X-Xinlian-Signature"
HEADER_NODE = "X-Xinlian-Node"

DEFAULT_WINDOW_MS = 300_000
# Accepted requests remembered per reader key, and reader keys with a cache of their own: at most
# about one million digests in all. A reader that sends more than 256 reads within the window
# still gets through as long as its timestamps increase, because only its oldest entries are evicted.
DEFAULT_REPLAY_CACHE_MAX = 256
DEFAULT_REPLAY_READERS_MAX = 4_096

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX128 = re.compile(r"[0-9a-fA-F]{128}")
_TIMESTAMP = re.compile(r"[0-9]{1,16}")
_METHOD = re.compile(r"[A-Z]{1,16}")
_MEMBER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
PATH_LENGTH_MAX = 8192


@dataclass(frozen=True)
class Reader:
    """The verified author of a read request.

    A member client has `member_id` and `role` set; a data subject has
    `subject_id` set. `public_key` is the key that signed the request.
    """

    public_key: str
    member_id: str | None = None
    role: str | None = None
    subject_id: str | None = None

    @property
    def is_subject(self) -> bool:
        return self.subject_id is not None and self.member_id is None


# Maps a public key (lowercase hex) to its Reader, or None when the key is unknown.
ReaderLookup = Callable[[str], "Reader | None"]


def signing_bytes(method: str, path_with_query: str, body: bytes, timestamp_ms: int, node_member_id: str | None = None) -> bytes:
    """Build the exact bytes a read request's signature covers, bound to `node_member_id` when given."""
    body_hash = hashlib.sha256(body).hexdigest()
    parts = [
        NODE_BOUND_SIGNATURE_PREFIX if node_member_id is not None else READ_SIGNATURE_PREFIX,
        method.upper().encode("ascii"),
        b"\n",
        path_with_query.encode("utf-8"),
        b"\n",
        body_hash.encode("ascii"),
        b"\n",
        str(timestamp_ms).encode("ascii"),
    ]
    if node_member_id is not None:
        parts += [b"\n", node_member_id.encode("ascii")]
    return b"".join(parts)


def sign_read_request(
    signing_key: nacl.signing.SigningKey,
    method: str,
    path_with_query: str,
    body: bytes = b"",
    timestamp_ms: int | None = None,
    node_member_id: str | None = None,
) -> dict[str, str]:
    """Sign a read request and return the headers to send with it.

    `node_member_id` is the member id of the node that will serve the request;
    nodes that enforce the binding reject a request without it. `timestamp_ms`
    defaults to the system clock; pass it explicitly in tests.
    """
    if timestamp_ms is None:
        timestamp_ms = time.time_ns() // 1_000_000
    message = signing_bytes(method, path_with_query, body, timestamp_ms, node_member_id)
    signature = signing_key.sign(message).signature
    headers = {
        HEADER_KEY: signing_key.verify_key.encode().hex(),
        HEADER_TIMESTAMP: str(timestamp_ms),
        HEADER_SIGNATURE: signature.hex(),
    }
    if node_member_id is not None:
        headers[HEADER_NODE] = node_member_id
    return headers


class _ReaderReplay:
    """One reader's accepted request digests, with the floor its own evictions raised."""

    def __init__(self) -> None:
        self.floor_ms = -1
        self.newest_ms = -1
        self.heap: list[tuple[int, bytes]] = []
        self.digests: set[bytes] = set()

    def expire(self, oldest_valid_ms: int) -> None:
        while self.heap and self.heap[0][0] < oldest_valid_ms:
            _, digest = heapq.heappop(self.heap)
            self.digests.discard(digest)

    def add(self, digest: bytes, timestamp_ms: int, size_max: int) -> None:
        while len(self.digests) >= size_max:
            evicted_ms, evicted = heapq.heappop(self.heap)
            self.digests.discard(evicted)
            self.floor_ms = max(self.floor_ms, evicted_ms)
        heapq.heappush(self.heap, (timestamp_ms, digest))
        self.digests.add(digest)
        self.newest_ms = max(self.newest_ms, timestamp_ms)


class ReplayCache:
    """Digests of accepted requests, kept per reader key and bounded in size.

    Each reader has its own cache of at most `per_reader_max` digests. When it
    is full, the reader's oldest digest is evicted and that reader's own floor
    rises to its timestamp: from then on the reader's requests at or before
    its floor are rejected, so an evicted request can never be replayed. The
    floor of one reader never applies to another.

    At most `readers_max` readers have a cache. A new reader then evicts the
    least recently used one, which keeps only a floor (the newest timestamp it
    had), so none of its requests can be replayed either. Such floors are
    bounded by `readers_max` too. When they overflow as well, the oldest is
    folded into `overflow_floor_ms`, which applies to readers with neither a
    cache nor a floor of their own.

    NOTE: only more than 2 x `readers_max` distinct reader keys active within
    the window reach the overflow floor, and they need valid signatures from
    that many keys registered on chain.
    Entries older than the window are dropped, because such requests are
    rejected as stale anyway.
    """

    def __init__(self, per_reader_max: int, readers_max: int = DEFAULT_REPLAY_READERS_MAX) -> None:
        if per_reader_max < 1 or readers_max < 1:
            raise ValueError("replay cache bounds must be at least 1")
        self.per_reader_max = per_reader_max
        self.readers_max = readers_max
        self.overflow_floor_ms = -1
        self._readers: OrderedDict[str, _ReaderReplay] = OrderedDict()
        self._evicted_floors: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(reader.digests) for reader in self._readers.values())

    @property
    def reader_count(self) -> int:
        return len(self._readers)

    def floor_for(self, key_hex: str) -> int:
        """Return the timestamp at or before which `key_hex`'s requests are rejected."""
        reader = self._readers.get(key_hex)
        if reader is not None:
            return reader.floor_ms
        evicted_floor = self._evicted_floors.get(key_hex)
        if evicted_floor is not None:
            return evicted_floor
        return self.overflow_floor_ms

    def expire(self, oldest_valid_ms: int) -> None:
        """Drop entries, readers and floors that only concern requests before `oldest_valid_ms`."""
        while self._readers:
            key_hex, reader = next(iter(self._readers.items()))
            if reader.newest_ms >= oldest_valid_ms:
                break
            del self._readers[key_hex]
        for key_hex in [key for key, floor_ms in self._evicted_floors.items() if floor_ms < oldest_valid_ms]:
            del self._evicted_floors[key_hex]

    def is_replay(self, key_hex: str, digest: bytes, timestamp_ms: int, oldest_valid_ms: int) -> bool:
        reader = self._readers.get(key_hex)
        if reader is not None:
            reader.expire(oldest_valid_ms)
            if digest in reader.digests:
                return True
        return timestamp_ms <= self.floor_for(key_hex)

    def add(self, key_hex: str, digest: bytes, timestamp_ms: int) -> None:
        reader = self._readers.get(key_hex)
        if reader is None:
            reader = self._new_reader(key_hex)
        self._readers.move_to_end(key_hex)
        reader.add(digest, timestamp_ms, self.per_reader_max)

    def _new_reader(self, key_hex: str) -> _ReaderReplay:
        reader = _ReaderReplay()
        reader.floor_ms = self.floor_for(key_hex)
        self._evicted_floors.pop(key_hex, None)
        if len(self._readers) >= self.readers_max:
            evicted_key, evicted = self._readers.popitem(last=False)
            self._evicted_floors[evicted_key] = max(evicted.newest_ms, evicted.floor_ms)
            if len(self._evicted_floors) > self.readers_max:
                _, folded_ms = self._evicted_floors.popitem(last=False)
                self.overflow_floor_ms = max(self.overflow_floor_ms, folded_ms)
        self._readers[key_hex] = reader
        return reader


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # Plain dicts are case-sensitive; aiohttp's CIMultiDictProxy is not.
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


class ReadVerifier:
    """Verifies signed read requests and returns who made them.

    `lookup` maps a public key to a Reader (see `ReaderLookup`); the API builds
    it from the current chain state. `clock_ms` returns unix milliseconds and
    defaults to the system clock.
    """

    def __init__(
        self,
        lookup: ReaderLookup,
        window_ms: int = DEFAULT_WINDOW_MS,
        replay_cache_max: int = DEFAULT_REPLAY_CACHE_MAX,
        clock_ms: Callable[[], int] | None = None,
        replay_readers_max: int = DEFAULT_REPLAY_READERS_MAX,
        node_member_id: str | None = None,
    ) -> None:
        if window_ms <= 0:
            raise ValueError("window_ms must be positive")
        self.lookup = lookup
        self.window_ms = window_ms
        self.replay_cache = ReplayCache(replay_cache_max, replay_readers_max)
        self.node_member_id = node_member_id
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def verify(self, method: str, path_with_query: str, body: bytes, headers: Mapping[str, str]) -> Reader:
        """Check the signature headers of one request and return its Reader.

        Raises PrivacyError with code missing_signature, invalid_read_signature,
        wrong_node, stale_request, unknown_reader or replayed_request.
        """
        key_hex = _header(headers, HEADER_KEY)
        timestamp_text = _header(headers, HEADER_TIMESTAMP)
        signature_hex = _header(headers, HEADER_SIGNATURE)
        node_text = _header(headers, HEADER_NODE)
        required = [(HEADER_KEY, key_hex), (HEADER_TIMESTAMP, timestamp_text), (HEADER_SIGNATURE, signature_hex)]
        if self.node_member_id is not None:
            required.append((HEADER_NODE, node_text))
        missing = [name for name, value in required if value is None]
        if missing or key_hex is None or timestamp_text is None or signature_hex is None:
            raise PrivacyError("missing_signature", missing_headers=missing)

        if not _HEX64.fullmatch(key_hex):
            raise PrivacyError("invalid_read_signature", reason=f"{HEADER_KEY} must be 64 hex characters")
        if not _HEX128.fullmatch(signature_hex):
            raise PrivacyError("invalid_read_signature", reason=f"{HEADER_SIGNATURE} must be 128 hex characters")
        if not _TIMESTAMP.fullmatch(timestamp_text):
            raise PrivacyError("invalid_read_signature", reason=f"{HEADER_TIMESTAMP} must be unix milliseconds in decimal digits")
        if not _METHOD.fullmatch(method.upper()) or len(path_with_query) > PATH_LENGTH_MAX:
            raise PrivacyError("invalid_read_signature", reason="request method or path is malformed")
        if node_text is not None and not _MEMBER_ID.fullmatch(node_text):
            raise PrivacyError("invalid_read_signature", reason=f"{HEADER_NODE} must be a member id: 1-64 characters of [A-Za-z0-9._:-]")
        if self.node_member_id is not None and node_text != self.node_member_id:
            raise PrivacyError("wrong_node", node=self.node_member_id)

        timestamp_ms = int(timestamp_text)
        now_ms = self._clock_ms()
        if abs(now_ms - timestamp_ms) > self.window_ms:
            raise PrivacyError("stale_request", timestamp_ms=timestamp_ms, now_ms=now_ms, window_ms=self.window_ms)

        message = signing_bytes(method, path_with_query, body, timestamp_ms, node_text)
        try:
            nacl.signing.VerifyKey(bytes.fromhex(key_hex)).verify(message, bytes.fromhex(signature_hex))
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
            raise PrivacyError("invalid_read_signature", reason="signature does not verify with the given key") from None

        key_hex = key_hex.lower()
        reader = self.lookup(key_hex)
        if reader is None:
            raise PrivacyError("unknown_reader", public_key=key_hex)

        self._check_replay(key_hex, message, timestamp_ms, now_ms)
        return reader

    def _check_replay(self, key_hex: str, message: bytes, timestamp_ms: int, now_ms: int) -> None:
        # The digest covers key and signed bytes, so the same request is refused
        # even if it arrives with a second valid signature.
        digest = hashlib.sha256(key_hex.encode("ascii") + b"\x00" + message).digest()
        oldest_valid_ms = now_ms - self.window_ms
        self.replay_cache.expire(oldest_valid_ms)
        if self.replay_cache.is_replay(key_hex, digest, timestamp_ms, oldest_valid_ms):
            logger.warning("read request rejected as replay: key=%s timestamp_ms=%d", key_hex, timestamp_ms)
            raise PrivacyError("replayed_request", timestamp_ms=timestamp_ms)
        self.replay_cache.add(key_hex, digest, timestamp_ms)
