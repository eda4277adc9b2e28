"""The node's HTTP API under /v1: transaction submission, reads, the event websocket and metrics.

`create_app(backend)` builds the aiohttp application. The running node
implements `ApiBackend`, and the API keeps no chain state itself. Read endpoints
live in `node.api_reads`, the error shape in `node.api_errors`, and the
OpenAPI document in `node.openapi`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from aiohttp import web

from node import api_messages, i18n
from node.api_errors import (
    DEFAULT_LANGUAGE_KEY,
    HTTP_METRICS_KEY,
    ApiError,
    error_middleware,
    json_response,
    request_language,
)
from node.api_reads import BACKEND_KEY, add_read_routes
from node.canonical import CanonicalError, parse_json
from node.events import CommittedEvent, Subscription, SubscriptionClosed, TooManySubscribers
from node.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from node.metrics import HttpMetrics, NodeMetrics, node_families, render_prometheus
from node.openapi import build_document
from node.privacy.read_auth import Reader

logger = logging.getLogger("xinlian.api")

BATCH_SIZE_MAX = 1000
# NOTE: 1000 transactions of the 64 KiB maximum exceed this default body limit,
# so a batch of large transactions must be split by the client.
BODY_BYTES_MAX = 16 * 1024 * 1024
# A client that sent the headers gets this long to send the whole body, then 408 and the connection is closed.
BODY_READ_TIMEOUT_SECONDS = 30.0
EVENT_TYPES_MAX = 64
EVENT_SEND_TIMEOUT_SECONDS = 10.0
# Websocket close code for a subscriber dropped because it fell behind (4000-4999 is for applications).
CLOSE_CODE_TOO_SLOW = 4008
CLOSE_CODE_SHUTDOWN = 1001

# The HTTP layer's own code, registered here because only this module raises it.
i18n.register_messages(
    {
        "request_timeout": (
            408,
            "The request body was not received in time: send the whole request again.",
            "未能及时收到完整的请求体：请重新发送完整的请求。",
        )
    }
)

BODY_BYTES_MAX_KEY = web.AppKey("body_bytes_max", int)
BODY_READ_TIMEOUT_KEY = web.AppKey("body_read_timeout_seconds", float)

_EVENT_TYPE_PATTERN = re.compile(r"[a-z][a-z_]*\.[a-z][a-z_]*")
_MEMBER_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True)
class SubmitResult:
    """The admission result of one submitted envelope: admitted (`error_code` None) or rejected."""

    tx_id: str | None  # None when the envelope was too malformed to have an id
    error_code: str | None = None
    error_details: dict[str, Any] = field(default_factory=dict)

    @property
    def admitted(self) -> bool:
        return self.error_code is None


class ApiBackend(Protocol):
    """What the HTTP API needs from the running node.

    Read methods are called on the event loop and must not block on I/O for
    long. Object reads return None when the object does not exist. Errors a
    client caused are raised as `ApiError`, `node.privacy.errors.PrivacyError`
    or `node.execution.ContractError`, and the API returns a 4xx response for them.
    """

    @property
    def default_language(self) -> str:
        """"zh-CN" or "en": the language of error messages when the client names neither."""
        ...

    async def submit_transactions(self, envelopes: list[Any]) -> list[SubmitResult]:
        """Check and admit each decoded envelope to the mempool; one result per envelope, in order."""
        ...

    def get_transaction(self, tx_id: str) -> dict[str, Any] | None:
        """Return {"tx_id", "status": "pending"|"committed"|"rejected", ...} or None if unknown.

        A committed transaction also has "height", "index" and "receipt"
        ({"ok", "error_code", "error_details", "events"}); a rejected one has "reason".
        """
        ...

    def get_block(self, height: int | None) -> dict[str, Any] | None:
        """Return block `height` (the latest when None) as {"header", "tx_ids", "certificate"}, or None."""
        ...

    def status(self) -> dict[str, Any]:
        """Return the node's status with the fields of the OpenAPI Status schema (node.openapi)."""
        ...

    def list_members(self) -> list[dict[str, Any]]: ...

    def get_params(self) -> dict[str, Any]: ...

    def get_object(self, kind: str, object_id: str) -> dict[str, Any] | None:
        """Return the current state of one object; `kind` is one of `api_reads.OBJECT_KINDS`."""
        ...

    def read_state(self, key: str) -> Any | None:
        """Return the state value at `key`, or None when absent."""
        ...

    def prove_state(self, key: str) -> dict[str, Any]:
        """Return {"state_root", "proof"}: a node.merkle.MerkleProof.to_dict() of the value or absence at `key`."""
        ...

    def verify_read_request(self, method: str, path_with_query: str, body: bytes, headers: Mapping[str, str]) -> Reader:
        """Verify a signed read request (see node.privacy.read_auth); raise PrivacyError."""
        ...

    async def subject_report(self, subject_id: str, reader: Reader, purpose: str, query_tx: str | None) -> dict[str, Any]:
        """Build the credit report of `subject_id` for `reader` after access control.

        `query_tx` is the id of the reader's committed `report.query` for this
        subject and purpose (node.report_access), or None when the request named none.
        """
        ...

    def subscribe_events(self, types: frozenset[str] | None, member: str | None) -> Subscription:
        """Open a subscription on the node's `node.events.EventBus`; may raise TooManySubscribers."""
        ...

    def metrics_snapshot(self) -> NodeMetrics: ...


def create_app(
    backend: ApiBackend,
    body_bytes_max: int = BODY_BYTES_MAX,
    body_read_timeout_seconds: float = BODY_READ_TIMEOUT_SECONDS,
) -> web.Application:
    """Build the HTTP API application for `backend`."""
    api_messages.register_all()
    app = web.Application(client_max_size=body_bytes_max, middlewares=[error_middleware])
    app[BACKEND_KEY] = backend
    app[DEFAULT_LANGUAGE_KEY] = backend.default_language
    app[HTTP_METRICS_KEY] = HttpMetrics()
    app[BODY_BYTES_MAX_KEY] = body_bytes_max
    app[BODY_READ_TIMEOUT_KEY] = body_read_timeout_seconds

    app.router.add_post("/v1/transactions", post_transactions)
    add_read_routes(app)
    app.router.add_get("/v1/events", get_events)
    app.router.add_get("/v1/openapi.json", get_openapi)
    app.router.add_get("/metrics", get_metrics)
    return app


async def start_api_server(
    backend: ApiBackend,
    host: str,
    port: int,
    body_bytes_max: int = BODY_BYTES_MAX,
    body_read_timeout_seconds: float = BODY_READ_TIMEOUT_SECONDS,
) -> web.AppRunner:
    """Serve the API on host:port and return the runner; stop it with `await runner.cleanup()`.

    lingering_time=0 makes the server drop the unread rest of a body it
    rejected (too large, or not received within `body_read_timeout_seconds`),
    instead of reading it for aiohttp's default 10 s.
    """
    runner = web.AppRunner(create_app(backend, body_bytes_max, body_read_timeout_seconds), lingering_time=0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    logger.info("HTTP API listening on %s", ", ".join(f"{address[0]}:{address[1]}" for address in runner.addresses))
    return runner


async def _read_json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise ApiError("unsupported_media_type", {"content_type": request.content_type})
    body_bytes_max = request.app[BODY_BYTES_MAX_KEY]
    if request.content_length is not None and request.content_length > body_bytes_max:
        raise ApiError("body_too_large", {"size_bytes": request.content_length, "size_max_bytes": body_bytes_max})
    timeout_seconds = request.app[BODY_READ_TIMEOUT_KEY]
    try:
        data = await asyncio.wait_for(request.read(), timeout_seconds)
    except web.HTTPRequestEntityTooLarge:
        raise ApiError("body_too_large", {"size_max_bytes": body_bytes_max}) from None
    except asyncio.TimeoutError:
        logger.info("request body from %s not received within %s s", request.remote, timeout_seconds)
        raise ApiError("request_timeout", {"timeout_seconds": timeout_seconds}, localize=_body_timeout_message(timeout_seconds)) from None
    try:
        return parse_json(data)
    except CanonicalError as exc:
        raise ApiError(exc.code, {"reason": str(exc)}, status=400) from None


def _body_timeout_message(timeout_seconds: float) -> Callable[[str], str]:
    """Return the request_timeout message with the node's limit in it, in the response language."""

    def localize(language: str) -> str:
        if language.startswith("zh"):
            return f"请求体未在 {timeout_seconds:g} 秒内接收完毕；请重新发送完整的请求。"
        return f"The request body was not received within {timeout_seconds:g} s; send the whole request again."

    return localize


def _envelopes_from_body(value: Any) -> tuple[list[Any], bool]:
    """Return (envelopes, is_batch) from a decoded request body."""
    if not isinstance(value, dict):
        raise ApiError("invalid_request_body", {"reason": "the body must be a JSON object"})
    if "transactions" not in value:
        return [value], False
    if set(value) != {"transactions"}:
        raise ApiError("invalid_request_body", {"reason": "a batch object has only the key transactions"})
    batch = value["transactions"]
    if not isinstance(batch, list):
        raise ApiError("invalid_request_body", {"reason": "transactions must be a list"})
    if not batch:
        raise ApiError("batch_empty")
    if len(batch) > BATCH_SIZE_MAX:
        raise ApiError("batch_too_large", {"count": len(batch), "count_max": BATCH_SIZE_MAX})
    return batch, True


def _result_json(result: SubmitResult, language: str) -> dict[str, Any]:
    if result.admitted:
        return {"tx_id": result.tx_id, "status": "pending"}
    details = dict(result.error_details)
    if result.tx_id is not None:
        details.setdefault("tx_id", result.tx_id)
    error = ApiError(str(result.error_code), details)
    return {"tx_id": result.tx_id, "status": "rejected", "error": error.body(language)["error"]}


async def post_transactions(request: web.Request) -> web.Response:
    """Admit one envelope (202 or an error) or a batch (202 with one result per item)."""
    backend: ApiBackend = request.app[BACKEND_KEY]
    envelopes, is_batch = _envelopes_from_body(await _read_json_body(request))
    results = await backend.submit_transactions(envelopes)
    if len(results) != len(envelopes):
        raise RuntimeError(f"backend returned {len(results)} results for {len(envelopes)} envelopes")

    if not is_batch:
        result = results[0]
        if not result.admitted:
            details = dict(result.error_details)
            if result.tx_id is not None:
                details.setdefault("tx_id", result.tx_id)
            raise ApiError(str(result.error_code), details)
        return json_response({"tx_id": result.tx_id, "status": "pending"}, status=202)

    language = request_language(request)
    items = [{"index": index, **_result_json(result, language)} for index, result in enumerate(results)]
    admitted_count = sum(1 for result in results if result.admitted)
    body = {"admitted": admitted_count, "rejected": len(results) - admitted_count, "results": items}
    return json_response(body, status=202)


def _event_filters(query: Mapping[str, str]) -> tuple[frozenset[str] | None, str | None]:
    types: frozenset[str] | None = None
    raw_types = query.get("types")
    if raw_types is not None:
        names = [name.strip() for name in raw_types.split(",") if name.strip()]
        invalid = [name for name in names if not _EVENT_TYPE_PATTERN.fullmatch(name)]
        if not names or invalid or len(names) > EVENT_TYPES_MAX:
            raise ApiError(
                "invalid_query_parameter",
                {"parameter": "types", "expected": f"1-{EVENT_TYPES_MAX} comma-separated event types like case.opened"},
            )
        types = frozenset(names)
    member = query.get("member")
    if member is not None and not _MEMBER_ID_PATTERN.fullmatch(member):
        raise ApiError("invalid_query_parameter", {"parameter": "member", "expected": "a member id of 1-64 [A-Za-z0-9._:-]"})
    return types, member


async def get_events(request: web.Request) -> web.StreamResponse:
    """Stream committed events over a websocket, filtered by ?types=a,b and ?member=id.

    NOTE: the stream is not access-controlled. The member filter selects events
    and authorizes nothing, so event data must stay free of personal data.
    """
    types, member = _event_filters(request.query)
    websocket = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    if not websocket.can_prepare(request).ok:
        raise ApiError("websocket_required")
    backend: ApiBackend = request.app[BACKEND_KEY]
    try:
        subscription = backend.subscribe_events(types, member)
    except TooManySubscribers:
        raise ApiError("too_many_subscribers") from None

    try:
        await websocket.prepare(request)
        sender = asyncio.create_task(_send_events(websocket, subscription))
        # Incoming frames are read only to notice the client closing; their content is ignored.
        async for _ in websocket:
            pass
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    finally:
        subscription.close()
    return websocket


async def _send_events(websocket: web.WebSocketResponse, subscription: Subscription) -> None:
    while True:
        try:
            event: CommittedEvent = await subscription.get()
        except SubscriptionClosed as closed:
            code = CLOSE_CODE_TOO_SLOW if closed.reason == "too_slow" else CLOSE_CODE_SHUTDOWN
            await websocket.close(code=code, message=closed.reason.encode())
            return
        try:
            await asyncio.wait_for(websocket.send_json(event.to_wire()), EVENT_SEND_TIMEOUT_SECONDS)
        except (asyncio.TimeoutError, ConnectionResetError):
            logger.warning("closing an event subscriber that did not read for %.0f s", EVENT_SEND_TIMEOUT_SECONDS)
            await websocket.close(code=CLOSE_CODE_TOO_SLOW, message=b"too_slow")
            return


async def get_openapi(request: web.Request) -> web.Response:
    return json_response(build_document())


async def get_metrics(request: web.Request) -> web.Response:
    backend: ApiBackend = request.app[BACKEND_KEY]
    snapshot = backend.metrics_snapshot()
    families = node_families(snapshot) + list(snapshot.extra) + [request.app[HTTP_METRICS_KEY].family()]
    return web.Response(body=render_prometheus(families).encode("utf-8"), headers={"Content-Type": METRICS_CONTENT_TYPE})

