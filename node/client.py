"""Client library for a Xinlian node's HTTP API: sign and submit transactions, wait for receipts, read.

`XinlianClient` is asyncio-based (aiohttp); `SyncXinlianClient` wraps it for
scripts that have no event loop. Every error response of the node raises
`XinlianApiError` with the node's stable error code.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import nacl.signing

from node.privacy.read_auth import sign_read_request
from node.tx import TX_EXPIRY_WINDOW_MS, sign_transaction

T = TypeVar("T")

# The default expiry is this fraction of the chain's expiry window: 10 minutes of the default 1-hour window.
DEFAULT_EXPIRY_WINDOW_DIVISOR = 6
DEFAULT_TIMEOUT_SECONDS = 30.0
POLL_INTERVAL_SECONDS = 0.25


class XinlianApiError(Exception):
    """The node returned an error response: `status` is the HTTP status, `code` the stable error code."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class TransactionRejected(Exception):
    """The node dropped a submitted transaction before committing it (for example, it expired)."""

    def __init__(self, tx_id: str, reason: str) -> None:
        super().__init__(f"transaction {tx_id} was rejected: {reason}")
        self.tx_id = tx_id
        self.reason = reason


class QueryRejected(Exception):
    """The chain committed a `report.query` with a failed receipt, so no report may be read with it."""

    def __init__(self, tx_id: str, code: str, details: dict[str, Any]) -> None:
        super().__init__(f"report.query {tx_id} was rejected: {code}")
        self.tx_id = tx_id
        self.code = code
        self.details = details


class ReceiptTimeout(TimeoutError):
    """No receipt arrived for a transaction before the deadline."""

    def __init__(self, tx_id: str, timeout_seconds: float) -> None:
        super().__init__(f"transaction {tx_id} was not committed within {timeout_seconds} s")
        self.tx_id = tx_id


def _system_now_ms() -> int:
    return time.time_ns() // 1_000_000


def _signing_key(key: bytes | nacl.signing.SigningKey | Any) -> nacl.signing.SigningKey:
    if isinstance(key, nacl.signing.SigningKey):
        return key
    if isinstance(key, bytes) and len(key) == 32:
        return nacl.signing.SigningKey(key)
    seed = getattr(key, "seed", None)  # node.keys.KeyPair
    if isinstance(seed, bytes) and len(seed) == 32:
        return nacl.signing.SigningKey(seed)
    raise TypeError("signing key must be a 32-byte seed, a nacl SigningKey or a node.keys.KeyPair")


class XinlianClient:
    """Asynchronous client of one node.

    `clock_ms` returns the chain time in unix milliseconds, and `expires_at`
    is computed from it. Pass the chain's clock when the network runs an
    accelerated clock, because the node checks expiry against block time.
    `expiry_window_ms` is the genesis `limits.tx_expiry_window_ms`, which an
    accelerated network widens. Transactions expire after a sixth of it by default.
    """

    def __init__(
        self,
        base_url: str,
        signing_key: bytes | nacl.signing.SigningKey | Any,
        chain_id: str,
        language: str = "zh-CN",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        clock_ms: Callable[[], int] = _system_now_ms,
        read_clock_ms: Callable[[], int] = _system_now_ms,
        expiry_window_ms: int = TX_EXPIRY_WINDOW_MS,
    ) -> None:
        self.expiry_window_ms = expiry_window_ms
        self.base_url = base_url.rstrip("/")
        self.signing_key = _signing_key(signing_key)
        self.public_key = self.signing_key.verify_key.encode().hex()
        self.chain_id = chain_id
        self.language = language
        self.timeout_seconds = timeout_seconds
        self._clock_ms = clock_ms
        self._read_clock_ms = read_clock_ms
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "XinlianClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout, headers={"Accept-Language": self.language})
        return self._session

    # Transactions

    def build_transaction(
        self,
        tx_type: str,
        payload: dict[str, Any],
        nonce: str | None = None,
        expires_in_ms: int | None = None,
    ) -> dict[str, Any]:
        """Build and sign an envelope; the nonce defaults to 128 random bits in hex."""
        if expires_in_ms is None:
            expires_in_ms = max(1, self.expiry_window_ms // DEFAULT_EXPIRY_WINDOW_DIVISOR)
        if not 0 < expires_in_ms <= self.expiry_window_ms:
            raise ValueError(f"expires_in_ms must be in 1..{self.expiry_window_ms}, got {expires_in_ms}")
        body = {
            "chain_id": self.chain_id,
            "type": tx_type,
            "sender": self.public_key,
            "nonce": nonce if nonce is not None else os.urandom(16).hex(),
            "expires_at": self._clock_ms() + expires_in_ms,
            "payload": payload,
        }
        return sign_transaction(self.signing_key, body)

    async def submit(self, envelope: dict[str, Any]) -> str:
        """Submit one envelope; return its tx_id once the node admitted it."""
        body = await self._request("POST", "/v1/transactions", json_body=envelope)
        return body["tx_id"]

    async def submit_batch(self, envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Submit up to 1000 envelopes; return one result per envelope ({"tx_id", "status", "error"?})."""
        body = await self._request("POST", "/v1/transactions", json_body={"transactions": envelopes})
        return body["results"]

    async def get_transaction(self, tx_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/v1/transactions/{quote(tx_id, safe='')}")

    async def wait_for_receipt(self, tx_id: str, timeout_seconds: float | None = None) -> dict[str, Any]:
        """Wait until `tx_id` is committed and return its record with the receipt.

        Listens on the event websocket and, in case the websocket fails or the
        commit happened before it opened, also polls the transaction. Raises
        ReceiptTimeout at the deadline and TransactionRejected if the node dropped it.
        """
        timeout = self.timeout_seconds if timeout_seconds is None else timeout_seconds
        try:
            return await asyncio.wait_for(self._wait_committed(tx_id), timeout)
        except asyncio.TimeoutError:
            raise ReceiptTimeout(tx_id, timeout) from None

    async def _wait_committed(self, tx_id: str) -> dict[str, Any]:
        committed = asyncio.Event()
        listener = asyncio.create_task(self._listen_for_commit(tx_id, committed))
        try:
            while True:
                record = await self._transaction_if_known(tx_id)
                if record is not None and record.get("status") == "committed":
                    return record
                if record is not None and record.get("status") == "rejected":
                    raise TransactionRejected(tx_id, str(record.get("reason", "")))
                try:
                    await asyncio.wait_for(committed.wait(), POLL_INTERVAL_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _transaction_if_known(self, tx_id: str) -> dict[str, Any] | None:
        try:
            return await self.get_transaction(tx_id)
        except XinlianApiError as exc:
            if exc.code == "transaction_not_found":
                return None
            raise

    async def _listen_for_commit(self, tx_id: str, committed: asyncio.Event) -> None:
        try:
            async for event in self.events(types=["tx.committed"]):
                if event.get("tx_id") == tx_id:
                    committed.set()
                    return
        except (aiohttp.ClientError, XinlianApiError):
            return  # polling in _wait_committed still finds the receipt

    async def submit_and_wait(self, tx_type: str, payload: dict[str, Any], timeout_seconds: float | None = None) -> dict[str, Any]:
        """Sign, submit and wait for the receipt of one transaction."""
        tx_id = await self.submit(self.build_transaction(tx_type, payload))
        return await self.wait_for_receipt(tx_id, timeout_seconds)

    # Reads

    async def status(self) -> dict[str, Any]:
        return await self._request("GET", "/v1/status")

    async def block(self, height: int | None = None) -> dict[str, Any]:
        """Return the block at `height`, or the latest when None."""
        path = "/v1/blocks/latest" if height is None else f"/v1/blocks/{int(height)}"
        return await self._request("GET", path)

    async def members(self) -> list[dict[str, Any]]:
        return (await self._request("GET", "/v1/members"))["members"]

    async def params(self) -> dict[str, Any]:
        return (await self._request("GET", "/v1/params"))["params"]

    async def get_object(self, kind: str, object_id: str) -> dict[str, Any]:
        """Read one object: kind is members, loans, cases, mandates, disputes or complaints."""
        return await self._request("GET", f"/v1/{quote(kind, safe='')}/{quote(object_id, safe='')}")

    async def state(self, key: str, proof: bool = False) -> dict[str, Any]:
        path = f"/v1/state/{quote(key, safe='/')}" + ("?proof=1" if proof else "")
        return await self._request("GET", path)

    async def subject_report(self, subject_id: str, purpose: str = "credit_query", query_tx: str | None = None) -> dict[str, Any]:
        """Read a subject's credit report with a signed read request.

        The node serves it only with `query_tx`, the id of this reader's committed
        `report.query` for the same subject and purpose. `query_report` does both steps.
        """
        query = {"purpose": purpose}
        if query_tx is not None:
            query["query_tx"] = query_tx
        path = f"/v1/subjects/{quote(subject_id, safe='')}/report?{urlencode(query)}"
        return await self.signed_get(path)

    async def query_report(
        self,
        subject_id: str,
        purpose: str = "credit_query",
        query_id: str | None = None,
        paid: bool = False,
        timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Record a `report.query` on chain, wait for it to commit, then read the report it allows.

        Raises QueryRejected when the contract rejects the query (for example
        `consent_required` or `free_reports_used`), with the receipt's error code.
        """
        payload = {"query_id": query_id or f"q-{os.urandom(8).hex()}", "subject_id": subject_id, "purpose": purpose, "paid": paid}
        record = await self.submit_and_wait("report.query", payload, timeout_seconds)
        receipt = record["receipt"]
        if not receipt["ok"]:
            raise QueryRejected(record["tx_id"], str(receipt["error_code"]), receipt.get("error_details") or {})
        return await self.subject_report(subject_id, purpose, query_tx=record["tx_id"])

    # Member id of the node at base_url, fetched from GET /v1/status on the first signed read.
    _serving_node_id: str | None = None

    async def serving_node_id(self) -> str:
        """Return the member id of the node this client reads from (`node_id` of GET /v1/status)."""
        if self._serving_node_id is None:
            status = await self.status()
            self._serving_node_id = str(status["node_id"])
        return self._serving_node_id

    async def signed_get(self, path_with_query: str) -> dict[str, Any]:
        """GET a path with a signed read request bound to the serving node; the signature covers the path exactly as sent."""
        node_member_id = await self.serving_node_id()
        headers = sign_read_request(self.signing_key, "GET", path_with_query, b"", self._read_clock_ms(), node_member_id=node_member_id)
        return await self._request("GET", path_with_query, headers=headers)

    async def events(self, types: list[str] | None = None, member: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield committed events as the node publishes them, until the node closes the stream."""
        query: dict[str, str] = {}
        if types:
            query["types"] = ",".join(types)
        if member:
            query["member"] = member
        url = self.base_url + "/v1/events" + (f"?{urlencode(query)}" if query else "")
        try:
            websocket = await self._http().ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5.0), heartbeat=30.0)
        except aiohttp.WSServerHandshakeError as exc:
            raise XinlianApiError(exc.status, "websocket_rejected", exc.message) from None
        async with websocket:
            async for message in websocket:
                if message.type == aiohttp.WSMsgType.TEXT:
                    yield json.loads(message.data)
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                    break

    async def _request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        data = None
        request_headers = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            request_headers["Content-Type"] = "application/json"
        async with self._http().request(method, self.base_url + path, data=data, headers=request_headers) as response:
            text = await response.text()
            try:
                body = json.loads(text) if text else {}
            except json.JSONDecodeError:
                raise XinlianApiError(response.status, "invalid_response", f"the node answered non-JSON: {text[:200]!r}") from None
            if response.status >= 400:
                error = body.get("error", {}) if isinstance(body, dict) else {}
                raise XinlianApiError(
                    response.status,
                    str(error.get("code", "unknown_error")),
                    str(error.get("message", text[:200])),
                    error.get("details") if isinstance(error.get("details"), dict) else {},
                )
            return body


class SyncXinlianClient:
    """Blocking wrapper of `XinlianClient` for scripts; not for use inside a running event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = XinlianClient(*args, **kwargs)

    def _run(self, call: Awaitable[T]) -> T:
        return self._loop.run_until_complete(call)

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._client.close())
            self._loop.close()

    def __enter__(self) -> "SyncXinlianClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def build_transaction(self, tx_type: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._client.build_transaction(tx_type, payload, **kwargs)

    def submit(self, envelope: dict[str, Any]) -> str:
        return self._run(self._client.submit(envelope))

    def submit_batch(self, envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._run(self._client.submit_batch(envelopes))

    def submit_and_wait(self, tx_type: str, payload: dict[str, Any], timeout_seconds: float | None = None) -> dict[str, Any]:
        return self._run(self._client.submit_and_wait(tx_type, payload, timeout_seconds))

    def wait_for_receipt(self, tx_id: str, timeout_seconds: float | None = None) -> dict[str, Any]:
        return self._run(self._client.wait_for_receipt(tx_id, timeout_seconds))

    def get_transaction(self, tx_id: str) -> dict[str, Any]:
        return self._run(self._client.get_transaction(tx_id))

    def status(self) -> dict[str, Any]:
        return self._run(self._client.status())

    def block(self, height: int | None = None) -> dict[str, Any]:
        return self._run(self._client.block(height))

    def get_object(self, kind: str, object_id: str) -> dict[str, Any]:
        return self._run(self._client.get_object(kind, object_id))

    def state(self, key: str, proof: bool = False) -> dict[str, Any]:
        return self._run(self._client.state(key, proof))

    def subject_report(self, subject_id: str, purpose: str = "credit_query", query_tx: str | None = None) -> dict[str, Any]:
        return self._run(self._client.subject_report(subject_id, purpose, query_tx))

    def query_report(self, subject_id: str, purpose: str = "credit_query", **kwargs: Any) -> dict[str, Any]:
        return self._run(self._client.query_report(subject_id, purpose, **kwargs))
