"""Signed read requests: how a client proves who reads personal data.

A client signs every request that reads personal data with its ed25519 key and
sends three headers:

- `X-Xinlian-Key`: the public key, 64 hex characters (a member's client key or
  a data subject's own key);
- `X-Xinlian-Timestamp`: unix milliseconds, decimal;
- `X-Xinlian-Signature`: 128 hex characters, the signature over

      b"xinlian/read/v1\\x00" + METHOD + b"\\n" + path_with_query + b"\\n"
      + sha256_hex(body) + b"\\n" + timestamp

`path_with_query` is the request target exactly as sent on the request line
(percent-encoding kept), for example `/v1/subjects/ab12.../report?purpose=credit_query`.
The API should pass aiohttp's `request.raw_path`.

The verifier rejects a timestamp more than `window_ms` away from its clock, and
a request it has already accepted within that window (the replay cache).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import re
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import nacl.exceptions
import nacl.signing

from node.privacy.errors import PrivacyError

logger = logging.getLogger("xinlian.privacy.read_auth")

READ_SIGNATURE_PREFIX = b"xinlian/read/v1\x00"
HEADER_KEY = "X-Xinlian-Key"
HEADER_TIMESTAMP = "X-Xinlian-Timestamp"
HEADER_SIGNATURE = "X-Xinlian-Signature"

DEFAULT_WINDOW_MS = 300_000
DEFAULT_REPLAY_CACHE_MAX = 100_000

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX128 = re.compile(r"[0-9a-fA-F]{128}")
_TIMESTAMP = re.compile(r"[0-9]{1,16}")
_METHOD = re.compile(r"[A-Z]{1,16}")
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


def signing_bytes(method: str, path_with_query: str, body: bytes, timestamp_ms: int) -> bytes:
    """Build the exact bytes a read request's signature covers."""
    body_hash = hashlib.sha256(body).hexdigest()
    return b"".join(
        [
            READ_SIGNATURE_PREFIX,
            method.upper().encode("ascii"),
            b"\n",
            path_with_query.encode("utf-8"),
            b"\n",
            body_hash.encode("ascii"),
            b"\n",
            str(timestamp_ms).encode("ascii"),
        ]
    )


def sign_read_request(
    signing_key: nacl.signing.SigningKey,
    method: str,
    path_with_query: str,
    body: bytes = b"",
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    """Sign a read request and return the three headers to send with it.

    `timestamp_ms` defaults to the system clock; pass it explicitly in tests.
    """
    if timestamp_ms is None:
        timestamp_ms = time.time_ns() // 1_000_000
    message = signing_bytes(method, path_with_query, body, timestamp_ms)
    signature = signing_key.sign(message).signature
    return {
        HEADER_KEY: signing_key.verify_key.encode().hex(),
        HEADER_TIMESTAMP: str(timestamp_ms),
        HEADER_SIGNATURE: signature.hex(),
    }


class ReplayCache:
    """Digests of accepted requests, bounded in size.

    Entries older than the window are dropped, because such requests are
    rejected as stale anyway. When the cache is full of live entries, the entry
    with the oldest timestamp is evicted and `floor_ms` rises to its timestamp.
    From then on every request at or before the floor is rejected, so an evicted
    request can never be replayed.
    """

    def __init__(self, size_max: int) -> None:
        if size_max < 1:
            raise ValueError("replay cache size_max must be at least 1")
        self.size_max = size_max
        self.floor_ms = -1
        self._heap: list[tuple[int, bytes]] = []
        self._digests: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._digests)

    def contains(self, digest: bytes) -> bool:
        return digest in self._digests

    def expire(self, oldest_valid_ms: int) -> None:
        """Drop entries whose timestamp is before `oldest_valid_ms`."""
        while self._heap and self._heap[0][0] < oldest_valid_ms:
            _, digest = heapq.heappop(self._heap)
            self._digests.discard(digest)

    def add(self, digest: bytes, timestamp_ms: int) -> None:
        while len(self._digests) >= self.size_max:
            evicted_ms, evicted = heapq.heappop(self._heap)
            self._digests.discard(evicted)
            self.floor_ms = max(self.floor_ms, evicted_ms)
        heapq.heappush(self._heap, (timestamp_ms, digest))
        self._digests.add(digest)


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
    ) -> None:
        if window_ms <= 0:
            raise ValueError("window_ms must be positive")
        self.lookup = lookup
        self.window_ms = window_ms
        self.replay_cache = ReplayCache(replay_cache_max)
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def verify(self, method: str, path_with_query: str, body: bytes, headers: Mapping[str, str]) -> Reader:
        """Check the signature headers of one request and return its Reader.

        Raises PrivacyError with code missing_signature, invalid_read_signature,
        stale_request, unknown_reader or replayed_request.
        """
        key_hex = _header(headers, HEADER_KEY)
        timestamp_text = _header(headers, HEADER_TIMESTAMP)
        signature_hex = _header(headers, HEADER_SIGNATURE)
        if key_hex is None or timestamp_text is None or signature_hex is None:
            missing = [
                name
                for name, value in ((HEADER_KEY, key_hex), (HEADER_TIMESTAMP, timestamp_text), (HEADER_SIGNATURE, signature_hex))
                if value is None
            ]
            raise PrivacyError("missing_signature", missing_headers=missing)

        if not _HEX64.fullmatch(key_hex):
            raise PrivacyError("invalid_read_signature", reason=f"{HEADER_KEY} must be 64 hex characters")
        if not _HEX128.fullmatch(signature_hex):
            raise PrivacyError("invalid_read_signature", reason=f"{HEADER_SIGNATURE} must be 128 hex characters")
        if not _TIMESTAMP.fullmatch(timestamp_text):
            raise PrivacyError("invalid_read_signature", reason=f"{HEADER_TIMESTAMP} must be unix milliseconds in decimal digits")
        if not _METHOD.fullmatch(method.upper()) or len(path_with_query) > PATH_LENGTH_MAX:
            raise PrivacyError("invalid_read_signature", reason="request method or path is malformed")

        timestamp_ms = int(timestamp_text)
        now_ms = self._clock_ms()
        if abs(now_ms - timestamp_ms) > self.window_ms:
            raise PrivacyError("stale_request", timestamp_ms=timestamp_ms, now_ms=now_ms, window_ms=self.window_ms)

        message = signing_bytes(method, path_with_query, body, timestamp_ms)
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
        self.replay_cache.expire(now_ms - self.window_ms)
        if self.replay_cache.contains(digest) or timestamp_ms <= self.replay_cache.floor_ms:
            logger.warning("read request rejected as replay: key=%s timestamp_ms=%d", key_hex, timestamp_ms)
            raise PrivacyError("replayed_request", timestamp_ms=timestamp_ms)
        self.replay_cache.add(digest, timestamp_ms)
