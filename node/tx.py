"""Signed transactions: the envelope format, signing, strict parsing and verification.

An envelope is `{"body": {...}, "signature": "<128 hex>"}`. The signature is
ed25519 over `b"xinlian/tx/v1\\x00" + canonical_bytes(body)`, and the
transaction id is the SHA-256 hex of `canonical_bytes(envelope)`. Every failure
raises `TxError` with a stable `code` that the HTTP API and the peer layer pass
on unchanged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import nacl.exceptions
import nacl.signing
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.canonical import CanonicalError, canonical_bytes, canonical_bytes_of_checked, parse_json, sha256_hex
from node.execution import Transaction

logger = logging.getLogger("xinlian.tx")

TX_SIGNATURE_PREFIX = b"xinlian/tx/v1\x00"
TX_SIZE_MAX_BYTES = 64 * 1024
# A transaction is valid only while block_time < expires_at <= block_time + this window.
TX_EXPIRY_WINDOW_MS = 60 * 60 * 1000
SIGNATURE_CACHE_SIZE_MAX = 100_000
# Verified transactions kept by tx_id (a few blocks' worth), so a proposal or a block that carries
# a transaction this node admitted costs a hash lookup instead of a second field check.
VERIFIED_CACHE_SIZE_MAX = 20_000
# Decoded proposals kept by payload digest, because the PRE-PREPARE, the proposal check and the
# block's execution all decode the same payload on one node.
PROPOSAL_CACHE_SIZE_MAX = 8
# Uncached signatures in one batch from which verify_many hands them to a pool. An ed25519 check
# costs tens of microseconds, so smaller batches cost less inline than the pickling round trip.
POOL_BATCH_THRESHOLD = 128

# One signature check for a pool worker: (tx_id, sender public key hex, signed bytes, signature hex).
SignatureJob = tuple[str, str, bytes, str]

_HEX64 = r"^[0-9a-f]{64}$"
_HEX128 = r"^[0-9a-f]{128}$"
_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TYPE_PATTERN = r"^[a-z][a-z_]*\.[a-z][a-z_]*$"


class TxError(ValueError):
    """An invalid transaction. `code` is the stable identifier, for example `invalid_signature`."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class TxBody(BaseModel):
    """The signed part of a transaction."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    chain_id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=3, max_length=64, pattern=_TYPE_PATTERN)
    sender: str = Field(pattern=_HEX64)
    nonce: str = Field(min_length=1, max_length=64)
    expires_at: int = Field(ge=0)
    payload: dict[str, Any]


class TxEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    body: TxBody
    signature: str = Field(pattern=_HEX128)


@dataclass(frozen=True)
class VerifiedTransaction:
    """A transaction whose encoding and signature are checked, with its canonical bytes."""

    tx: Transaction
    envelope: dict[str, Any]
    encoded: bytes  # canonical_bytes(envelope)

    @property
    def tx_id(self) -> str:
        return self.tx.tx_id

    @property
    def sender(self) -> str:
        return self.tx.sender

    @property
    def nonce(self) -> str:
        return self.tx.nonce

    @property
    def expires_at(self) -> int:
        return self.tx.expires_at

    @property
    def size_bytes(self) -> int:
        return len(self.encoded)


def valid_id(value: Any) -> bool:
    """Check a submitter-chosen id (loan_id, payment_id, ...): 1-64 characters of [A-Za-z0-9._:-]."""
    return isinstance(value, str) and _ID_PATTERN.fullmatch(value) is not None


def signing_bytes(body: dict[str, Any]) -> bytes:
    """Return the exact bytes an ed25519 transaction signature covers."""
    return TX_SIGNATURE_PREFIX + canonical_bytes(body)


def compute_tx_id(envelope: dict[str, Any]) -> str:
    return sha256_hex(canonical_bytes(envelope))


def _signing_key(key: bytes | nacl.signing.SigningKey) -> nacl.signing.SigningKey:
    if isinstance(key, nacl.signing.SigningKey):
        return key
    if isinstance(key, bytes) and len(key) == 32:
        return nacl.signing.SigningKey(key)
    raise TypeError("key must be a 32-byte ed25519 seed or a nacl SigningKey")


def public_key_hex(key: bytes | nacl.signing.SigningKey) -> str:
    """Return the lowercase hex ed25519 public key of a seed or signing key."""
    return _signing_key(key).verify_key.encode().hex()


def sign_transaction(key: bytes | nacl.signing.SigningKey, body: dict[str, Any]) -> dict[str, Any]:
    """Sign `body` and return the envelope dict.

    A missing `sender` is filled in with the key's public key; a `sender` that
    differs from the key raises TxError(invalid_field).
    """
    signing_key = _signing_key(key)
    sender = signing_key.verify_key.encode().hex()
    body = dict(body)
    body.setdefault("sender", sender)
    if body["sender"] != sender:
        raise TxError("invalid_field", f"body.sender {body['sender']} is not the public key of the signing key", field="sender")
    signature = signing_key.sign(signing_bytes(body)).signature
    return {"body": body, "signature": signature.hex()}


def check_expiry(expires_at: int, time_ms: int, window_ms: int = TX_EXPIRY_WINDOW_MS) -> TxError | None:
    """Return the error for an `expires_at` outside (time_ms, time_ms + window_ms], or None."""
    if expires_at <= time_ms:
        return TxError("expired", f"transaction expired at {expires_at} ms, time is {time_ms} ms", expires_at=expires_at, time_ms=time_ms)
    if expires_at > time_ms + window_ms:
        return TxError(
            "expiry_too_far",
            f"expires_at {expires_at} ms is more than {window_ms} ms after {time_ms} ms",
            expires_at=expires_at,
            time_ms=time_ms,
            window_ms=window_ms,
        )
    return None


def _field_error(exc: ValidationError) -> TxError:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "envelope"
    return TxError("invalid_field", f"invalid field {location}: {first['msg']}", field=location)


class TxVerifier:
    """Parse and verify transactions for one chain, verifying each signature once.

    Signature results are kept in a bounded LRU cache keyed by tx_id. The id
    hashes the body and the signature together, so a cached result can never
    apply to different bytes. Chain id, size and expiry are checked on every call
    because they depend on the caller's context, not on the bytes alone.
    """

    def __init__(
        self,
        chain_id: str,
        size_max_bytes: int = TX_SIZE_MAX_BYTES,
        cache_size_max: int = SIGNATURE_CACHE_SIZE_MAX,
        expiry_window_ms: int = TX_EXPIRY_WINDOW_MS,
    ) -> None:
        if cache_size_max < 1:
            raise ValueError("cache_size_max must be at least 1")
        self.chain_id = chain_id
        self.size_max_bytes = size_max_bytes
        self.expiry_window_ms = expiry_window_ms
        self._cache_size_max = cache_size_max
        self._signature_valid: OrderedDict[str, bool] = OrderedDict()
        self._verified: OrderedDict[str, VerifiedTransaction] = OrderedDict()
        self._proposals: OrderedDict[tuple[str, int, int, bool], Any] = OrderedDict()
        self._cache_lock = threading.Lock()  # the daemon may verify from worker threads
        self.signature_checks = 0  # number of ed25519 verifications actually run

    def parse(self, data: bytes, now_ms: int | None = None) -> VerifiedTransaction:
        """Parse an envelope from untrusted bytes. Raises TxError."""
        if len(data) > self.size_max_bytes:
            raise TxError("too_large", f"transaction is {len(data)} bytes, the maximum is {self.size_max_bytes}", size_bytes=len(data), size_max_bytes=self.size_max_bytes)
        try:
            value = parse_json(data)
        except CanonicalError as exc:
            raise TxError(exc.code, str(exc)) from None
        return self.verify(value, now_ms)

    def verify(self, envelope: Any, now_ms: int | None = None) -> VerifiedTransaction:
        """Verify an already-decoded envelope dict. Raises TxError.

        With `now_ms`, the expiry is checked against it; without it the caller
        checks expiry against the block time later.
        """
        parsed = self._parse_envelope(envelope, now_ms)
        return self._finish(parsed, self._check_signature(parsed))

    def verify_checked(self, envelope: Any, certified: bool = False) -> VerifiedTransaction:
        """Verify an envelope taken from a value `parse_json` returned (a proposal's), without expiry. Raises TxError.

        Such an envelope is known to have a canonical form, so its bytes are
        encoded without a second check, and a transaction this node verified
        before comes from the cache by its tx_id. With `certified`, the envelope
        is from a block with a valid commit certificate: a quorum of validators
        checked its signature, so the fields are checked and the signature is not.
        """
        cached = self._verified_before(envelope)
        if cached is not None:
            return cached
        if certified:
            return self._finish(self._parse_envelope(envelope, None, parsed_strictly=True), True, remember=False)
        return self.verify(envelope)

    def is_known(self, envelope: Any) -> bool:
        """Check whether an envelope of a parsed proposal is a transaction this node verified (see verify_checked)."""
        return self._verified_before(envelope) is not None

    def _verified_before(self, envelope: Any) -> VerifiedTransaction | None:
        """Return the cached verified transaction with this envelope's canonical bytes, or None."""
        if not isinstance(envelope, dict):
            return None
        encoded = canonical_bytes_of_checked(envelope)
        with self._cache_lock:
            cached = self._verified.get(sha256_hex(encoded))
        return cached if cached is not None and cached.encoded == encoded else None

    def cached_proposal(self, key: tuple[str, int, int, bool]) -> Any:
        """Return the proposal node.block.decode_proposal decoded for (payload digest, limits, certified), or None."""
        with self._cache_lock:
            return self._proposals.get(key)

    def remember_proposal(self, key: tuple[str, int, int, bool], proposal: Any) -> None:
        with self._cache_lock:
            self._proposals[key] = proposal
            if len(self._proposals) > PROPOSAL_CACHE_SIZE_MAX:
                self._proposals.popitem(last=False)

    def verify_many(
        self,
        envelopes: Sequence[Any],
        now_ms: int | None = None,
        pool: concurrent.futures.Executor | None = None,
        pool_threshold: int = POOL_BATCH_THRESHOLD,
        parsed_strictly: bool = False,
    ) -> list[VerifiedTransaction | TxError]:
        """Verify a batch and return one result per envelope, in order: the transaction or its TxError.

        Signatures already in the cache are not checked again. When `pool` is
        given and at least `pool_threshold` signatures are uncached, they are
        checked in the pool (a process pool takes the work off the calling
        thread and its GIL), and otherwise here. Every result is added to the cache.
        `parsed_strictly` says the envelopes come from `parse_json`, which
        checked their values, so their encoding is not checked again.
        """
        parsed, pending = self._parse_batch(envelopes, now_ms, parsed_strictly)
        if pool is not None and len(pending) >= pool_threshold:
            jobs = _signature_jobs(pending)
            outcomes = [valid for chunk in pool.map(verify_signatures, _chunks(jobs, pool)) for valid in chunk]
            self._record_signatures(jobs, outcomes)
        return self._finish_batch(parsed)

    async def verify_many_async(
        self,
        envelopes: Sequence[Any],
        now_ms: int | None = None,
        pool: concurrent.futures.Executor | None = None,
        pool_threshold: int = POOL_BATCH_THRESHOLD,
        parsed_strictly: bool = False,
    ) -> list[VerifiedTransaction | TxError]:
        """Like `verify_many`, but await the pool without blocking the event loop."""
        parsed, pending = self._parse_batch(envelopes, now_ms, parsed_strictly)
        if pool is not None and len(pending) >= pool_threshold:
            jobs = _signature_jobs(pending)
            loop = asyncio.get_running_loop()
            futures = [loop.run_in_executor(pool, verify_signatures, chunk) for chunk in _chunks(jobs, pool)]
            outcomes = [valid for chunk in await asyncio.gather(*futures) for valid in chunk]
            self._record_signatures(jobs, outcomes)
        return self._finish_batch(parsed)

    def signature_cached(self, tx_id: str) -> bool:
        """Check whether the signature result of `tx_id` is in the cache, so verifying it costs no ed25519 check."""
        with self._cache_lock:
            return tx_id in self._signature_valid

    def _parse_batch(
        self, envelopes: Sequence[Any], now_ms: int | None, parsed_strictly: bool = False
    ) -> tuple[list["_ParsedEnvelope | TxError"], list["_ParsedEnvelope"]]:
        """Parse every envelope and list those whose signature the cache cannot answer, once per tx_id."""
        parsed: list[_ParsedEnvelope | TxError] = []
        pending: list[_ParsedEnvelope] = []
        queued: set[str] = set()
        for envelope in envelopes:
            try:
                item = self._parse_envelope(envelope, now_ms, parsed_strictly)
            except TxError as exc:
                parsed.append(exc)
                continue
            parsed.append(item)
            if item.tx_id not in queued and not self.signature_cached(item.tx_id):
                queued.add(item.tx_id)
                pending.append(item)
        return parsed, pending

    def _finish_batch(self, parsed: list["_ParsedEnvelope | TxError"]) -> list[VerifiedTransaction | TxError]:
        results: list[VerifiedTransaction | TxError] = []
        for item in parsed:
            if isinstance(item, TxError):
                results.append(item)
                continue
            try:
                results.append(self._finish(item, self._check_signature(item)))
            except TxError as exc:
                results.append(exc)
        return results

    def _record_signatures(self, jobs: list[SignatureJob], outcomes: list[bool]) -> None:
        with self._cache_lock:
            self.signature_checks += len(jobs)
            for (tx_id, _, _, _), valid in zip(jobs, outcomes):
                self._signature_valid[tx_id] = valid
                self._signature_valid.move_to_end(tx_id)
            while len(self._signature_valid) > self._cache_size_max:
                self._signature_valid.popitem(last=False)

    def _parse_envelope(self, envelope: Any, now_ms: int | None, parsed_strictly: bool = False) -> "_ParsedEnvelope":
        """Check encoding, size, fields, chain id and, with `now_ms`, expiry: everything but the signature."""
        if not isinstance(envelope, dict):
            raise TxError("invalid_field", "a transaction must be a JSON object with body and signature", field="envelope")
        try:
            encoded = canonical_bytes_of_checked(envelope) if parsed_strictly else canonical_bytes(envelope)
        except CanonicalError as exc:
            raise TxError(exc.code, str(exc)) from None
        if len(encoded) > self.size_max_bytes:
            raise TxError("too_large", f"transaction is {len(encoded)} bytes encoded, the maximum is {self.size_max_bytes}", size_bytes=len(encoded), size_max_bytes=self.size_max_bytes)
        try:
            model = TxEnvelope.model_validate(envelope)
        except ValidationError as exc:
            raise _field_error(exc) from None
        body = model.body
        if body.chain_id != self.chain_id:
            raise TxError("wrong_chain", f"transaction is for chain {body.chain_id!r}, this node runs {self.chain_id!r}", chain_id=body.chain_id)
        if now_ms is not None:
            expiry_error = check_expiry(body.expires_at, now_ms, self.expiry_window_ms)
            if expiry_error is not None:
                raise expiry_error
        return _ParsedEnvelope(sha256_hex(encoded), envelope, encoded, model)

    def _finish(self, parsed: "_ParsedEnvelope", signature_valid: bool, remember: bool = True) -> VerifiedTransaction:
        body = parsed.model.body
        if not signature_valid:
            raise TxError("invalid_signature", f"signature of transaction {parsed.tx_id} does not verify for sender {body.sender}", tx_id=parsed.tx_id)
        tx = Transaction(
            tx_id=parsed.tx_id,
            type=body.type,
            sender=body.sender,
            nonce=body.nonce,
            expires_at=body.expires_at,
            payload=parsed.envelope["body"]["payload"],
        )
        verified = VerifiedTransaction(tx=tx, envelope=parsed.envelope, encoded=parsed.encoded)
        if not remember:
            return verified
        with self._cache_lock:
            self._verified[parsed.tx_id] = verified
            if len(self._verified) > VERIFIED_CACHE_SIZE_MAX:
                self._verified.popitem(last=False)
        return verified

    def _check_signature(self, parsed: "_ParsedEnvelope") -> bool:
        tx_id = parsed.tx_id
        with self._cache_lock:
            cached = self._signature_valid.get(tx_id)
            if cached is not None:
                self._signature_valid.move_to_end(tx_id)
                return cached
            self.signature_checks += 1
        valid = _signature_valid(parsed.sender, parsed.message, parsed.signature)
        with self._cache_lock:
            self._signature_valid[tx_id] = valid
            if len(self._signature_valid) > self._cache_size_max:
                self._signature_valid.popitem(last=False)
        return valid


@dataclass(frozen=True)
class _ParsedEnvelope:
    """An envelope whose encoding and fields are checked, before its signature is."""

    tx_id: str
    envelope: dict[str, Any]
    encoded: bytes
    model: TxEnvelope

    @property
    def body(self) -> dict[str, Any]:
        return self.envelope["body"]

    @property
    def message(self) -> bytes:
        """The signed bytes, cut from the envelope's canonical bytes.

        The envelope has exactly the keys body and signature (the model forbids
        others) and keys sort by code point, so its encoding is
        `{"body":<canonical body>,"signature":"<128 hex>"}` and the body's
        canonical bytes need not be encoded a second time.
        """
        tail = b',"signature":"' + self.model.signature.encode("ascii") + b'"}'
        head = b'{"body":'
        if not (self.encoded.startswith(head) and self.encoded.endswith(tail)):
            return signing_bytes(self.body)
        return TX_SIGNATURE_PREFIX + self.encoded[len(head) : len(self.encoded) - len(tail)]

    @property
    def sender(self) -> str:
        return self.model.body.sender

    @property
    def signature(self) -> str:
        return self.model.signature


def _signature_valid(sender: str, message: bytes, signature_hex: str) -> bool:
    try:
        nacl.signing.VerifyKey(bytes.fromhex(sender)).verify(message, bytes.fromhex(signature_hex))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False
    return True


def verify_signatures(jobs: list[SignatureJob]) -> list[bool]:
    """Check each (tx_id, sender, signed bytes, signature hex) job. It is a module-level function so that a process pool can run it."""
    return [_signature_valid(sender, message, signature_hex) for _, sender, message, signature_hex in jobs]


def _signature_jobs(pending: list["_ParsedEnvelope"]) -> list[SignatureJob]:
    """Return the pool's work for envelopes whose signature is not cached; the signed bytes are cut only here."""
    return [(item.tx_id, item.sender, item.message, item.signature) for item in pending]


def _chunks(jobs: list[SignatureJob], pool: concurrent.futures.Executor) -> list[list[SignatureJob]]:
    """Split jobs into one chunk per pool worker, so each worker gets one task and little pickling overhead."""
    workers = getattr(pool, "_max_workers", None) or 1
    size = max(1, -(-len(jobs) // workers))
    return [jobs[start : start + size] for start in range(0, len(jobs), size)]
