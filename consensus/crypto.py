"""Ed25519 signing and verification for consensus messages (PyNaCl)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Protocol

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

VERIFY_CACHE_ENTRIES_MAX = 65536


class Signer(Protocol):
    public_key: str  # 64 hex chars

    def sign(self, data: bytes) -> bytes: ...


class Verifier(Protocol):
    def verify(self, public_key: str, data: bytes, signature: bytes) -> bool: ...


class Ed25519Signer:
    """A signer holding one ed25519 key derived from a 32-byte seed."""

    def __init__(self, seed32: bytes) -> None:
        if len(seed32) != 32:
            raise ValueError(f"ed25519 seed must be 32 bytes, got {len(seed32)}")
        self._signing_key = SigningKey(seed32)
        self.public_key = self._signing_key.verify_key.encode().hex()

    def sign(self, data: bytes) -> bytes:
        return self._signing_key.sign(data).signature


class Ed25519Verifier:
    """An ed25519 verifier that remembers recent results.

    Every vote reaches a replica once directly and again inside certificates,
    view changes and new views, so the memo cache lets each signature be checked
    once per process. The cache is an LRU bounded by `cache_entries_max`.
    """

    def __init__(self, cache_entries_max: int = VERIFY_CACHE_ENTRIES_MAX) -> None:
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._cache_entries_max = cache_entries_max
        self._keys: dict[str, VerifyKey | None] = {}
        self.verify_count = 0  # signatures checked with ed25519, not from the cache

    def verify(self, public_key: str, data: bytes, signature: bytes) -> bool:
        cache_key = hashlib.sha256(public_key.encode("ascii", "replace") + b"\x00" + signature + data).digest()
        cached = self._cache.get(cache_key)
        if cached is not None:
            self._cache.move_to_end(cache_key)
            return cached
        result = self._verify_uncached(public_key, data, signature)
        self._cache[cache_key] = result
        if len(self._cache) > self._cache_entries_max:
            self._cache.popitem(last=False)
        return result

    def _verify_uncached(self, public_key: str, data: bytes, signature: bytes) -> bool:
        verify_key = self._verify_key(public_key)
        if verify_key is None or len(signature) != 64:
            return False
        self.verify_count += 1
        try:
            verify_key.verify(data, signature)
        except BadSignatureError:
            return False
        return True

    def _verify_key(self, public_key: str) -> VerifyKey | None:
        if public_key in self._keys:
            return self._keys[public_key]
        try:
            raw = bytes.fromhex(public_key)
            verify_key = VerifyKey(raw) if len(raw) == 32 else None
        except ValueError:
            verify_key = None
        if len(self._keys) < VERIFY_CACHE_ENTRIES_MAX:
            self._keys[public_key] = verify_key
        return verify_key
