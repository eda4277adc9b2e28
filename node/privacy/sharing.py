"""Sharing a subject's personal details between members over the peer channel.

A member's node sends a `details_request` message, signed by the requesting
member's client key, to the node holding the details. The holding node checks
the signature and the access policy against its own chain state, and responds
with the decrypted record or an error code. The module does no I/O: p2p calls
`handle_details_request` for an incoming message and passes a `send_request`
callable to `request_details` for an outgoing one.

Request (kind "privacy", op "details_request"):
    {kind, op, request_id, subject_id, purpose, requester, requester_key, timestamp_ms, signature}
where `signature` is the requester's ed25519 signature over
    b"xinlian/privacy-request/v1\\x00" + canonical(request without "signature").

Response (op "details_response"), on success:
    {kind, op, request_id, ok: true, subject_id, record, salt, commitment, basis, access_record}
and on refusal:
    {kind, op, request_id, ok: false, error: {code, details}}

`access_record` is the payload of the `data.access` transaction that records
the access on chain. The contract takes the reader from the transaction's
sender, so the requesting member submits it, signed with its client key.
NOTE: the holding node does not yet check that the access was recorded.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Any, Awaitable, Callable

import nacl.exceptions
import nacl.signing

from node.canonical import CanonicalError, canonical_bytes
from node.privacy.access import PURPOSES, check_access
from node.privacy.commitment import verify_commitment
from node.privacy.errors import MESSAGES, PrivacyError
from node.privacy.offchain import OffchainStore
from node.privacy.read_auth import Reader, ReplayCache

logger = logging.getLogger("xinlian.privacy.sharing")

REQUEST_SIGNATURE_PREFIX = b"xinlian/privacy-request/v1\x00"
KIND = "privacy"
OP_REQUEST = "details_request"
OP_RESPONSE = "details_response"
ACCESS_TX_TYPE = "data.access"
REQUEST_WINDOW_MS = 300_000

_REQUEST_FIELDS = frozenset(
    {"kind", "op", "request_id", "subject_id", "purpose", "requester", "requester_key", "timestamp_ms", "signature"}
)
_RECORD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")

SendRequest = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def _request_signing_bytes(request: dict[str, Any]) -> bytes:
    unsigned = {key: value for key, value in request.items() if key != "signature"}
    return REQUEST_SIGNATURE_PREFIX + canonical_bytes(unsigned)


def build_details_request(
    signing_key: nacl.signing.SigningKey,
    requester: str,
    subject_id: str,
    purpose: str,
    timestamp_ms: int,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Build and sign a details_request message with the requesting member's client key."""
    request: dict[str, Any] = {
        "kind": KIND,
        "op": OP_REQUEST,
        "request_id": request_id or secrets.token_hex(16),
        "subject_id": subject_id,
        "purpose": purpose,
        "requester": requester,
        "requester_key": signing_key.verify_key.encode().hex(),
        "timestamp_ms": timestamp_ms,
    }
    request["signature"] = signing_key.sign(_request_signing_bytes(request)).signature.hex()
    return request


def _invalid(reason: str) -> PrivacyError:
    return PrivacyError("invalid_request", reason=reason)


def _check_request_shape(request: Any) -> None:
    if not isinstance(request, dict) or set(request) != _REQUEST_FIELDS:
        raise _invalid(f"a details_request has exactly the fields {', '.join(sorted(_REQUEST_FIELDS))}")
    if request["kind"] != KIND or request["op"] != OP_REQUEST:
        raise _invalid("kind must be privacy and op details_request")
    checks = [
        ("request_id", _RECORD_ID),
        ("requester", _RECORD_ID),
        ("subject_id", _HEX64),
        ("requester_key", _HEX64),
        ("signature", _HEX128),
    ]
    for field, pattern in checks:
        if not isinstance(request[field], str) or not pattern.fullmatch(request[field]):
            raise _invalid(f"{field} is malformed")
    if request["purpose"] not in PURPOSES:
        raise PrivacyError("invalid_purpose", purpose=str(request["purpose"])[:64])
    if type(request["timestamp_ms"]) is not int or request["timestamp_ms"] < 0:
        raise _invalid("timestamp_ms must be a non-negative integer")


def _verify_requester(request: dict[str, Any], state: Any) -> Reader:
    try:
        signed = _request_signing_bytes(request)
        nacl.signing.VerifyKey(bytes.fromhex(request["requester_key"])).verify(signed, bytes.fromhex(request["signature"]))
    except (CanonicalError, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise PrivacyError("invalid_read_signature", reason="details_request signature does not verify") from None
    owner = state.get(f"member_key/{request['requester_key']}")
    if owner is None or owner.get("kind") != "client" or owner.get("member_id") != request["requester"]:
        raise PrivacyError("unknown_reader", public_key=request["requester_key"])
    member = state.get(f"member/{request['requester']}")
    if member is None:
        raise PrivacyError("unknown_reader", public_key=request["requester_key"])
    return Reader(public_key=request["requester_key"], member_id=member["member_id"], role=member["role"])


def access_record(request: dict[str, Any], holder: str, commitment: str) -> dict[str, Any]:
    """Return the `data.access` transaction payload that records one served request."""
    access_id = "acc-" + hashlib.sha256(canonical_bytes(request)).hexdigest()[:40]
    return {
        "access_id": access_id,
        "subject_id": request["subject_id"],
        "holder": holder,
        "purpose": request["purpose"],
        "record_hash": commitment,
    }


def _error_response(request_id: Any, error: PrivacyError) -> dict[str, Any]:
    safe_id = request_id if isinstance(request_id, str) and _RECORD_ID.fullmatch(request_id) else None
    return {"kind": KIND, "op": OP_RESPONSE, "request_id": safe_id, "ok": False, "error": {"code": error.code, "details": error.details}}


def handle_details_request(
    request: Any,
    state: Any,
    store: OffchainStore,
    date: str,
    now_ms: int,
    holder: str,
    peer_member_id: str | None = None,
    seen: ReplayCache | None = None,
) -> dict[str, Any]:
    """Handle one details_request from a peer and return the response; never raises for bad input.

    `state` is this node's chain state at its current height and `date` that
    height's block date. `holder` is this node's member id. `peer_member_id`,
    when given, is the member the authenticated peer link belongs to: a node
    may only ask on behalf of its own member. `seen` rejects a repeated request.
    """
    request_id = request.get("request_id") if isinstance(request, dict) else None
    try:
        _check_request_shape(request)
        if abs(now_ms - request["timestamp_ms"]) > REQUEST_WINDOW_MS:
            raise PrivacyError("stale_request", timestamp_ms=request["timestamp_ms"], now_ms=now_ms)
        if peer_member_id is not None and request["requester"] != peer_member_id:
            raise PrivacyError("unknown_reader", reason="requester is not the member of this peer link")
        reader = _verify_requester(request, state)
        if seen is not None:
            digest = hashlib.sha256(bytes.fromhex(request["signature"])).digest()
            oldest_valid_ms = now_ms - REQUEST_WINDOW_MS
            seen.expire(oldest_valid_ms)
            # Kept per requesting key, so one member's requests never move another member's replay floor.
            if seen.is_replay(reader.public_key, digest, request["timestamp_ms"], oldest_valid_ms):
                raise PrivacyError("replayed_request", request_id=request["request_id"])
            seen.add(reader.public_key, digest, request["timestamp_ms"])
        subject_id = request["subject_id"]
        decision = check_access(
            state, reader, subject_id, request["purpose"], date, kind="details", store_state=store.state(subject_id)
        )
        stored = store.get(subject_id)
    except PrivacyError as error:
        logger.info("details_request %s rejected: %s", request_id, error.code)
        return _error_response(request_id, error)

    if decision.audit:
        logger.warning("regulator %s read details of subject %s", reader.member_id, subject_id)
    logger.info("details_request %s served: subject %s to %s (%s)", request_id, subject_id, reader.member_id, decision.basis)
    return {
        "kind": KIND,
        "op": OP_RESPONSE,
        "request_id": request["request_id"],
        "ok": True,
        "subject_id": subject_id,
        "record": stored.record,
        "salt": stored.salt.hex(),
        "commitment": stored.commitment,
        "basis": decision.basis,
        "access_record": access_record(request, holder, stored.commitment),
    }


async def request_details(
    send_request: SendRequest,
    peer: str,
    signing_key: nacl.signing.SigningKey,
    requester: str,
    subject_id: str,
    purpose: str,
    now_ms: int,
) -> dict[str, Any]:
    """Ask `peer` for a subject's details and return the checked response.

    Raises PrivacyError with the holder's error code, `peer_unavailable` when
    the transport fails, or `invalid_request` when the response is malformed or
    its record does not match its commitment.
    """
    request = build_details_request(signing_key, requester, subject_id, purpose, now_ms)
    try:
        response = await send_request(peer, request)
    except (OSError, TimeoutError, ConnectionError) as exc:
        logger.warning("details_request %s to %s failed: %s", request["request_id"], peer, exc)
        raise PrivacyError("peer_unavailable", peer=peer) from None
    return _check_response(request, response)


def _check_response(request: dict[str, Any], response: Any) -> dict[str, Any]:
    if not isinstance(response, dict) or response.get("op") != OP_RESPONSE or response.get("request_id") != request["request_id"]:
        raise _invalid("the peer's message is not a response to this request")
    if response.get("ok") is not True:
        error = response.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if code not in MESSAGES:
            raise _invalid("the peer rejected the request with an unknown error code")
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
        raise PrivacyError(code, **{key: value for key, value in details.items() if key != "code"})
    try:
        salt = bytes.fromhex(response["salt"])
        matches = verify_commitment(response["commitment"], response["record"], salt)
    except (KeyError, TypeError, ValueError, CanonicalError):
        matches = False
    if response.get("subject_id") != request["subject_id"] or not matches:
        raise _invalid("the peer's record does not match its commitment")
    return response
