"""A request whose body stalls after the headers gets 408 in the error shape, and the connection is closed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from node.api import start_api_server
from node.storage import LevelDBStore
from tests.api.ledger import LedgerBackend

BODY_READ_TIMEOUT_SECONDS = 0.3


async def _read_until_closed(reader: asyncio.StreamReader, timeout_seconds: float) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout_seconds)


async def test_stalled_body_gets_408(tmp_path: Path) -> None:
    backend = LedgerBackend(LevelDBStore(str(tmp_path / "db")), "en", None)
    runner = await start_api_server(backend, "127.0.0.1", 0, body_read_timeout_seconds=BODY_READ_TIMEOUT_SECONDS)
    port = runner.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = (
            "POST /v1/transactions HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            "Accept-Language: en\r\n"
            "Content-Length: 100000\r\n\r\n"
            '{"bod'
        )
        writer.write(request.encode())
        await writer.drain()
        # The server must respond and close the connection well before this client-side limit.
        response = await _read_until_closed(reader, 10 * BODY_READ_TIMEOUT_SECONDS + 5)
        writer.close()
    finally:
        await runner.cleanup()
        backend.store.close()

    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout"
    assert error["details"] == {"timeout_seconds": BODY_READ_TIMEOUT_SECONDS}
    assert "not received within 0.3 s" in error["message"]


async def test_complete_body_not_timed_out(tmp_path: Path) -> None:
    backend = LedgerBackend(LevelDBStore(str(tmp_path / "db")), "en", None)
    runner = await start_api_server(backend, "127.0.0.1", 0, body_read_timeout_seconds=BODY_READ_TIMEOUT_SECONDS)
    port = runner.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b"[]"
        request = (
            "POST /v1/transactions HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            "Connection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        writer.write(request)
        await writer.drain()
        response = await _read_until_closed(reader, 5)
        writer.close()
    finally:
        await runner.cleanup()
        backend.store.close()

    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(payload)["error"]["code"] == "invalid_request_body"
