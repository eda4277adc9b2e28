import aiohttp
import pytest
from aiohttp import web

from node.canonical import parse_json
from node.privacy.commitment import verify_commitment
from node.privacy.errors import PrivacyError
from node.privacy.offchain import OffchainStore
from node.privacy.read_auth import ReplayCache
from node.privacy.sharing import build_details_request, handle_details_request, request_details
from tests.privacy.chain import new_chain, time_of

SUBJECT = "4f" * 32
RECORD = {"name": "赵共享", "phones": ["13700001111"], "address": "上海市浦东新区样例路 1 号"}
TODAY = "2026-04-01"
NOW_MS = time_of(TODAY)


@pytest.fixture
def chain():
    chain = new_chain()
    chain.register_subject(SUBJECT, "2026-03-02")
    return chain


@pytest.fixture
def store(tmp_path):
    opened = OffchainStore(tmp_path / "bank-1-offchain", bytes(range(32)))
    opened.put(SUBJECT, RECORD, NOW_MS - 86_400_000)
    yield opened
    opened.close()


def grant_sharing(chain, expires_on="2026-12-31", grantee="agency-1"):
    chain.grant(f"c-query-{grantee}", SUBJECT, grantee, "credit_query", "2026-12-31", "2026-03-10")
    chain.grant(f"c-share-{grantee}", SUBJECT, grantee, "data_sharing", expires_on, "2026-03-10")


def handle(chain, store, request, peer_member_id=None, seen=None, date=TODAY, now_ms=NOW_MS):
    return handle_details_request(request, chain.state, store, date, now_ms, holder="bank-1", peer_member_id=peer_member_id, seen=seen)


def agency_request(chain, purpose="credit_query", timestamp_ms=NOW_MS, requester="agency-1"):
    return build_details_request(chain.client_keys[requester], requester, SUBJECT, purpose, timestamp_ms)


def error_code(response) -> str:
    assert response["ok"] is False
    return response["error"]["code"]


async def holding_node_server(chain, store, seen):
    """Serve details requests over HTTP on 127.0.0.1, as the holding node bank-1."""

    async def serve(request: web.Request) -> web.Response:
        message = parse_json(await request.read())
        return web.json_response(handle(chain, store, message, peer_member_id=request.headers.get("X-Peer-Member"), seen=seen))

    app = web.Application()
    app.router.add_post("/privacy", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/privacy"


def http_sender(session: aiohttp.ClientSession, member_id: str):
    async def send_request(peer: str, message: dict) -> dict:
        async with session.post(peer, json=message, headers={"X-Peer-Member": member_id}) as response:
            return parse_json(await response.read())

    return send_request


async def test_details_shared_over_real_http(chain, store):
    grant_sharing(chain)
    runner, url = await holding_node_server(chain, store, ReplayCache(100))
    try:
        async with aiohttp.ClientSession() as session:
            response = await request_details(
                http_sender(session, "agency-1"), url, chain.client_keys["agency-1"], "agency-1", SUBJECT, "credit_query", NOW_MS
            )
            assert response["record"] == RECORD
            assert verify_commitment(response["commitment"], RECORD, bytes.fromhex(response["salt"]))
            assert response["basis"] == "consent"
            record = response["access_record"]
            assert (record["subject_id"], record["holder"], record["purpose"]) == (SUBJECT, "bank-1", "credit_query")
            assert record["record_hash"] == response["commitment"]
            # The requesting member records the access on chain with its client key.
            receipt = chain.member("agency-1", "data.access", record, TODAY)
            assert any(event.type == "data.accessed" for event in receipt.events)
            assert chain.state.get(f"access_log/{SUBJECT}/{record['access_id']}")["reader"] == "agency-1"

            with pytest.raises(PrivacyError) as raised:
                await request_details(
                    http_sender(session, "bank-2"), url, chain.client_keys["bank-2"], "bank-2", SUBJECT, "credit_query", NOW_MS
                )
            assert raised.value.code == "no_consent"
    finally:
        await runner.cleanup()


async def test_unreachable_peer_reported(chain, store):
    runner, url = await holding_node_server(chain, store, None)
    await runner.cleanup()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PrivacyError) as raised:
            await request_details(http_sender(session, "agency-1"), url, chain.client_keys["agency-1"], "agency-1", SUBJECT, "credit_query", NOW_MS)
    assert raised.value.code == "peer_unavailable"


def test_sharing_without_consent_refused(chain, store):
    chain.grant("c-query", SUBJECT, "agency-1", "credit_query", "2026-12-31", "2026-03-10")
    assert error_code(handle(chain, store, agency_request(chain))) == "no_consent"


def test_sharing_expired_consent_refused(chain, store):
    grant_sharing(chain, expires_on="2026-03-31")
    assert error_code(handle(chain, store, agency_request(chain))) == "consent_expired"


def test_sharing_revoked_consent_refused(chain, store):
    grant_sharing(chain)
    chain.revoke("c-share-agency-1", SUBJECT, "2026-03-20")
    assert error_code(handle(chain, store, agency_request(chain))) == "consent_revoked"


def test_replayed_request_refused(chain, store):
    grant_sharing(chain)
    seen = ReplayCache(100)
    request = agency_request(chain)
    assert handle(chain, store, request, seen=seen)["ok"] is True
    assert error_code(handle(chain, store, request, seen=seen)) == "replayed_request"


def test_forged_request_refused(chain, store):
    grant_sharing(chain)
    request = agency_request(chain, purpose="assessment")
    request["purpose"] = "credit_query"
    assert error_code(handle(chain, store, request)) == "invalid_read_signature"


def test_request_signed_by_other_member_refused(chain, store):
    grant_sharing(chain)
    request = build_details_request(chain.client_keys["bank-2"], "agency-1", SUBJECT, "credit_query", NOW_MS)
    assert error_code(handle(chain, store, request)) == "unknown_reader"


def test_request_from_wrong_peer_refused(chain, store):
    grant_sharing(chain)
    assert error_code(handle(chain, store, agency_request(chain), peer_member_id="bank-2")) == "unknown_reader"


def test_stale_request_refused(chain, store):
    grant_sharing(chain)
    request = agency_request(chain, timestamp_ms=NOW_MS - 300_001)
    assert error_code(handle(chain, store, request)) == "stale_request"


@pytest.mark.parametrize("state_change", ["erase", "freeze"])
def test_erased_or_frozen_not_shared(chain, store, state_change):
    grant_sharing(chain)
    if state_change == "erase":
        store.erase(SUBJECT, NOW_MS - 1, reason="subject request")
        expected = "erased"
    else:
        store.freeze(SUBJECT, NOW_MS - 1, retain_until="2031-01-01", reason="court order")
        expected = "frozen"
    assert error_code(handle(chain, store, agency_request(chain))) == expected
    assert error_code(handle(chain, store, agency_request(chain, requester="regulator-1"))) == expected


def test_regulator_reads_details(chain, store):
    response = handle(chain, store, agency_request(chain, requester="regulator-1"))
    assert response["ok"] is True
    assert response["basis"] == "regulator"


@pytest.mark.parametrize(
    "request_",
    [
        None,
        [],
        "details",
        {"kind": "privacy", "op": "details_request"},
        {"kind": "privacy", "op": "details_request", "request_id": "r", "subject_id": "XYZ", "purpose": "credit_query",
         "requester": "agency-1", "requester_key": "00" * 32, "timestamp_ms": NOW_MS, "signature": "00" * 64},
        {"kind": "privacy", "op": "details_request", "request_id": "r", "subject_id": SUBJECT, "purpose": "credit_query",
         "requester": "agency-1", "requester_key": "00" * 32, "timestamp_ms": 1.5, "signature": "00" * 64},
    ],
)
def test_malformed_request_answered(chain, store, request_):
    assert error_code(handle(chain, store, request_)) == "invalid_request"


async def test_tampered_response_rejected(chain, store):
    grant_sharing(chain)

    async def tampering_sender(peer, message):
        response = handle(chain, store, message)
        response["record"] = dict(response["record"], name="someone else")
        return response

    with pytest.raises(PrivacyError) as raised:
        await request_details(tampering_sender, "bank-1", chain.client_keys["agency-1"], "agency-1", SUBJECT, "credit_query", NOW_MS)
    assert raised.value.code == "invalid_request"
