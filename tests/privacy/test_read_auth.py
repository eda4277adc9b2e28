import nacl.signing
import pytest

from node.privacy.errors import PrivacyError
from node.privacy.read_auth import (
    HEADER_KEY,
    HEADER_NODE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Reader,
    ReadVerifier,
    sign_read_request,
    signing_bytes,
)

NOW_MS = 1_780_000_000_000
PATH = "/v1/subjects/" + "ab" * 32 + "/report?purpose=credit_query"


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def member_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW_MS)


@pytest.fixture
def verifier(member_key, clock) -> ReadVerifier:
    readers = {member_key.verify_key.encode().hex(): Reader(public_key=member_key.verify_key.encode().hex(), member_id="bank-1", role="bank")}
    return ReadVerifier(readers.get, window_ms=300_000, replay_cache_max=8, clock_ms=clock)


def error_code(verifier: ReadVerifier, method: str, path: str, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(PrivacyError) as raised:
        verifier.verify(method, path, body, headers)
    return raised.value.code


def test_signed_request_returns_reader(verifier, member_key):
    headers = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS)
    reader = verifier.verify("GET", PATH, b"", headers)
    assert reader.member_id == "bank-1"
    assert reader.role == "bank"
    assert not reader.is_subject


def test_headers_are_case_insensitive(verifier, member_key):
    headers = {name.lower(): value for name, value in sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS).items()}
    assert verifier.verify("GET", PATH, b"", headers).member_id == "bank-1"


def test_signing_bytes_layout():
    message = signing_bytes("get", "/p?q=1", b"{}", 42)
    expected_hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert message == b"xinlian/read/v1\x00GET\n/p?q=1\n" + expected_hash.encode() + b"\n42"


@pytest.mark.parametrize("dropped", [HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE])
def test_missing_header_rejected(verifier, member_key, dropped):
    headers = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS)
    del headers[dropped]
    assert error_code(verifier, "GET", PATH, b"", headers) == "missing_signature"


def test_forged_signature_rejected(verifier, member_key):
    forger = nacl.signing.SigningKey.generate()
    headers = sign_read_request(forger, "GET", PATH, timestamp_ms=NOW_MS)
    headers[HEADER_KEY] = member_key.verify_key.encode().hex()
    assert error_code(verifier, "GET", PATH, b"", headers) == "invalid_read_signature"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", PATH, b""),
        ("GET", PATH.replace("credit_query", "collection"), b""),
        ("GET", PATH, b"{}"),
    ],
)
def test_altered_request_rejected(verifier, member_key, method, path, body):
    headers = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS)
    assert error_code(verifier, method, path, body, headers) == "invalid_read_signature"


@pytest.mark.parametrize(
    "header, value",
    [
        (HEADER_KEY, "zz" * 32),
        (HEADER_KEY, "ab" * 31),
        (HEADER_SIGNATURE, "00" * 63),
        (HEADER_TIMESTAMP, "-5"),
        (HEADER_TIMESTAMP, "1.5e12"),
    ],
)
def test_malformed_header_rejected(verifier, member_key, header, value):
    headers = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS)
    headers[header] = value
    assert error_code(verifier, "GET", PATH, b"", headers) == "invalid_read_signature"


def test_timestamp_window_boundaries(verifier, member_key):
    for offset_ms in (300_000, -300_000):
        headers = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS + offset_ms)
        assert verifier.verify("GET", PATH, b"", headers).member_id == "bank-1"
    for offset_ms in (300_001, -300_001):
        headers = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS + offset_ms)
        assert error_code(verifier, "GET", PATH, b"", headers) == "stale_request"


def test_replayed_request_rejected(verifier, member_key):
    headers = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS)
    verifier.verify("GET", PATH, b"", headers)
    assert error_code(verifier, "GET", PATH, b"", headers) == "replayed_request"


def test_replay_after_window_is_stale(verifier, member_key, clock):
    headers = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS)
    verifier.verify("GET", PATH, b"", headers)
    clock.now_ms = NOW_MS + 300_001
    assert error_code(verifier, "GET", PATH, b"", headers) == "stale_request"


def test_unknown_reader_rejected(verifier):
    stranger = nacl.signing.SigningKey.generate()
    headers = sign_read_request(stranger, "GET", PATH, timestamp_ms=NOW_MS)
    assert error_code(verifier, "GET", PATH, b"", headers) == "unknown_reader"


def test_full_replay_cache_still_rejects_evicted(verifier, member_key):
    first = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS - 1000)
    verifier.verify("GET", PATH, b"", first)
    for index in range(8):
        headers = sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS + index)
        verifier.verify("GET", PATH, b"", headers)
    assert len(verifier.replay_cache) == 8
    assert error_code(verifier, "GET", PATH, b"", first) == "replayed_request"


def test_error_messages_bilingual(verifier):
    with pytest.raises(PrivacyError) as raised:
        verifier.verify("GET", PATH, b"", {})
    body = raised.value.to_json("en")
    assert body["error"]["code"] == "missing_signature"
    assert "not signed" in body["error"]["message"]
    assert "未签名" in raised.value.message("zh-CN")
    assert raised.value.http_status == 401


def two_reader_verifier(clock, per_reader_max=8, readers_max=4, node_member_id=None):
    keys = [nacl.signing.SigningKey.generate() for _ in range(2)]
    readers = {
        key.verify_key.encode().hex(): Reader(public_key=key.verify_key.encode().hex(), member_id=f"bank-{index}", role="bank")
        for index, key in enumerate(keys)
    }
    verifier = ReadVerifier(
        readers.get, replay_cache_max=per_reader_max, replay_readers_max=readers_max, clock_ms=clock, node_member_id=node_member_id
    )
    return verifier, keys


def test_flood_by_one_reader_never_locks_out_another(clock):
    verifier, (attacker, victim) = two_reader_verifier(clock)
    for index in range(50):
        path = f"{PATH}&n={index}"
        verifier.verify("GET", path, b"", sign_read_request(attacker, "GET", path, timestamp_ms=NOW_MS + 250_000 + index))

    assert verifier.replay_cache.floor_for(attacker.verify_key.encode().hex()) == NOW_MS + 250_000 + 41
    fresh = sign_read_request(victim, "GET", PATH, timestamp_ms=NOW_MS)
    assert verifier.verify("GET", PATH, b"", fresh).member_id == "bank-1"
    assert error_code(verifier, "GET", PATH, b"", fresh) == "replayed_request"


def test_reader_own_floor_rejects_own_evicted(clock):
    verifier, (reader, _) = two_reader_verifier(clock, per_reader_max=2)
    first = sign_read_request(reader, "GET", PATH, timestamp_ms=NOW_MS - 10)
    verifier.verify("GET", PATH, b"", first)
    for offset in range(2):
        verifier.verify("GET", PATH, b"", sign_read_request(reader, "GET", PATH, timestamp_ms=NOW_MS + offset))
    assert error_code(verifier, "GET", PATH, b"", first) == "replayed_request"
    assert verifier.verify("GET", PATH, b"", sign_read_request(reader, "GET", PATH, timestamp_ms=NOW_MS + 5)).member_id == "bank-0"


def test_evicted_reader_cannot_replay_and_others_unaffected(clock):
    keys = [nacl.signing.SigningKey.generate() for _ in range(4)]
    readers = {key.verify_key.encode().hex(): Reader(public_key=key.verify_key.encode().hex(), member_id=f"m-{i}", role="bank") for i, key in enumerate(keys)}
    verifier = ReadVerifier(readers.get, replay_cache_max=4, replay_readers_max=2, clock_ms=clock)
    first, second, third, fourth = keys
    recorded = sign_read_request(first, "GET", PATH, timestamp_ms=NOW_MS)
    verifier.verify("GET", PATH, b"", recorded)
    verifier.verify("GET", PATH, b"", sign_read_request(second, "GET", PATH, timestamp_ms=NOW_MS + 200_000))
    verifier.verify("GET", PATH, b"", sign_read_request(third, "GET", PATH, timestamp_ms=NOW_MS + 250_000))
    assert verifier.replay_cache.reader_count == 2

    # The first reader was evicted, but its floor still refuses its recorded request.
    assert error_code(verifier, "GET", PATH, b"", recorded) == "replayed_request"
    # A reader the cache never saw is not held back by the future timestamps of the others.
    assert verifier.verify("GET", PATH, b"", sign_read_request(fourth, "GET", PATH, timestamp_ms=NOW_MS)).member_id == "m-3"
    assert verifier.verify("GET", PATH, b"", sign_read_request(first, "GET", PATH, timestamp_ms=NOW_MS + 1)).member_id == "m-0"


def test_readers_expire_after_window(clock):
    verifier, (reader, other) = two_reader_verifier(clock, readers_max=1)
    verifier.verify("GET", PATH, b"", sign_read_request(reader, "GET", PATH, timestamp_ms=NOW_MS))
    clock.now_ms += 300_001
    verifier.verify("GET", PATH, b"", sign_read_request(other, "GET", PATH, timestamp_ms=clock.now_ms))
    assert verifier.replay_cache.reader_count == 1
    assert verifier.replay_cache.floor_for(reader.verify_key.encode().hex()) == -1


def test_node_bound_signing_bytes_layout():
    message = signing_bytes("get", "/v1/x?a=1", b"", 42, "bank-1")
    expected_body_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert message == b"xinlian/read/v2\x00GET\n/v1/x?a=1\n" + expected_body_hash.encode() + b"\n42\nbank-1"


def test_node_binding_accepts_own_node(clock):
    verifier, (reader, _) = two_reader_verifier(clock, node_member_id="bank-1")
    headers = sign_read_request(reader, "GET", PATH, timestamp_ms=NOW_MS, node_member_id="bank-1")
    assert headers[HEADER_NODE] == "bank-1"
    assert verifier.verify("GET", PATH, b"", headers).member_id == "bank-0"


def test_node_binding_rejects_other_node(clock):
    on_bank, (reader, _) = two_reader_verifier(clock, node_member_id="bank-1")
    on_regulator, _ = two_reader_verifier(clock, node_member_id="regulator-4")
    on_regulator.lookup = on_bank.lookup
    headers = sign_read_request(reader, "GET", PATH, timestamp_ms=NOW_MS, node_member_id="bank-1")
    on_bank.verify("GET", PATH, b"", headers)
    assert error_code(on_regulator, "GET", PATH, b"", headers) == "wrong_node"

    relabelled = dict(headers, **{HEADER_NODE: "regulator-4"})
    assert error_code(on_regulator, "GET", PATH, b"", relabelled) == "invalid_read_signature"


def test_node_binding_needs_node_header(clock):
    verifier, (reader, _) = two_reader_verifier(clock, node_member_id="bank-1")
    unbound = sign_read_request(reader, "GET", PATH, timestamp_ms=NOW_MS)
    with pytest.raises(PrivacyError) as raised:
        verifier.verify("GET", PATH, b"", unbound)
    assert raised.value.code == "missing_signature"
    assert raised.value.details["missing_headers"] == [HEADER_NODE]
    bad = sign_read_request(reader, "GET", PATH, timestamp_ms=NOW_MS, node_member_id="bank 1")
    assert error_code(verifier, "GET", PATH, b"", bad) == "invalid_read_signature"


def test_unbound_verifier_accepts_both_forms(verifier, member_key):
    verifier.verify("GET", PATH, b"", sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS))
    verifier.verify("GET", PATH, b"", sign_read_request(member_key, "GET", PATH, timestamp_ms=NOW_MS + 1, node_member_id="bank-1"))


def test_wrong_node_message_bilingual(clock):
    verifier, (reader, _) = two_reader_verifier(clock, node_member_id="bank-1")
    with pytest.raises(PrivacyError) as raised:
        verifier.verify("GET", PATH, b"", sign_read_request(reader, "GET", PATH, timestamp_ms=NOW_MS, node_member_id="bank-2"))
    assert raised.value.http_status == 401
    assert "X-Xinlian-Node" in raised.value.message("en")
    assert "其他节点" in raised.value.message("zh-CN")
