import pytest

from node.block import (
    NULL_PAYLOAD,
    BlockError,
    BlockHeader,
    check_proposal,
    decode_proposal,
    effective_block_time,
    encode_proposal,
    payload_digest,
    tx_root,
)
from node.canonical import canonical_bytes, sha256_hex
from node.tx import TxVerifier

from tests.node.helpers import CHAIN_ID, GENESIS_TIME_MS, HOUR_MS, make_envelope, make_verified

VERIFIER = TxVerifier(CHAIN_ID)
PARENT_MS = GENESIS_TIME_MS
BLOCK_MS = GENESIS_TIME_MS + 1000


def proposal(txs=None, height=1, timestamp_ms=BLOCK_MS, proposer="m0") -> bytes:
    if txs is None:
        txs = [make_verified(VERIFIER, nonce="1")]
    return encode_proposal(height, timestamp_ms, proposer, txs)


def check(payload, **overrides):
    arguments = dict(height=1, parent_time_ms=PARENT_MS, now_ms=BLOCK_MS, drift_ms=5000, verifier=VERIFIER)
    arguments.update(overrides)
    return check_proposal(payload, **arguments)


def test_encode_decode_round_trip():
    txs = [make_verified(VERIFIER, nonce=str(n)) for n in range(3)]
    payload = proposal(txs)
    decoded = decode_proposal(payload, VERIFIER)
    assert decoded.height == 1
    assert decoded.timestamp_ms == BLOCK_MS
    assert decoded.proposer == "m0"
    assert [v.tx_id for v in decoded.txs] == [v.tx_id for v in txs]
    assert payload_digest(payload) == sha256_hex(payload)


def test_valid_proposal_accepted():
    assert check(proposal()) is None
    assert check(proposal(), expected_proposer="m0") is None


def test_null_payload_accepted():
    assert check(NULL_PAYLOAD) is None


@pytest.mark.parametrize(
    "payload, code",
    [
        (b"{", "invalid_payload"),
        (b"[]", "invalid_payload"),
        (canonical_bytes({"height": 1, "timestamp_ms": 1, "proposer": "m0"}), "invalid_payload"),
        (canonical_bytes({"height": 0, "timestamp_ms": 1, "proposer": "m0", "txs": []}), "invalid_payload"),
        (canonical_bytes({"height": True, "timestamp_ms": 1, "proposer": "m0", "txs": []}), "invalid_payload"),
        (canonical_bytes({"height": 1, "timestamp_ms": -1, "proposer": "m0", "txs": []}), "invalid_payload"),
        (canonical_bytes({"height": 1, "timestamp_ms": 1, "proposer": "", "txs": []}), "invalid_payload"),
        (canonical_bytes({"height": 1, "timestamp_ms": 1, "proposer": "m0", "txs": {}}), "invalid_payload"),
        (b'{"txs":[],"height":1,"proposer":"m0","timestamp_ms":1}', "invalid_payload"),
        (canonical_bytes({"height": 1, "timestamp_ms": 1, "proposer": "m0", "txs": [{"body": {}}]}), "invalid_tx"),
    ],
)
def test_decode_rejects(payload, code):
    with pytest.raises(BlockError) as info:
        decode_proposal(payload, VERIFIER)
    assert info.value.code == code


def test_rejects_tampered_tx():
    envelope = make_envelope(nonce="1")
    envelope["body"]["payload"]["value"] = 99
    payload = canonical_bytes({"height": 1, "timestamp_ms": BLOCK_MS, "proposer": "m0", "txs": [envelope]})
    assert check(payload).startswith("invalid_tx")


def test_rejects_too_many_txs():
    txs = [make_verified(VERIFIER, nonce=str(n)) for n in range(3)]
    assert check(proposal(txs), block_tx_max=2).startswith("too_many_txs")
    assert check(proposal(txs), block_tx_max=3) is None


def test_rejects_too_large():
    payload = proposal()
    assert check(payload, block_size_max_bytes=len(payload) - 1).startswith("block_too_large")
    assert check(payload, block_size_max_bytes=len(payload)) is None


def test_rejects_wrong_height_and_proposer():
    assert check(proposal(height=2)).startswith("wrong_height")
    assert check(proposal(), expected_proposer="m1").startswith("wrong_proposer")


def test_timestamp_must_follow_parent():
    assert check(proposal(timestamp_ms=PARENT_MS)).startswith("timestamp_not_after_parent")
    assert check(proposal(timestamp_ms=PARENT_MS + 1), now_ms=PARENT_MS + 1) is None


def test_timestamp_drift_boundaries():
    assert check(proposal(), now_ms=BLOCK_MS - 5000) is None
    assert check(proposal(), now_ms=BLOCK_MS + 5000) is None
    assert check(proposal(), now_ms=BLOCK_MS - 5001).startswith("timestamp_drift")
    assert check(proposal(), now_ms=BLOCK_MS + 5001).startswith("timestamp_drift")


def test_rejects_duplicate_nonce_in_block():
    txs = [make_verified(VERIFIER, nonce="1", payload={"v": 1}), make_verified(VERIFIER, nonce="1", payload={"v": 2})]
    assert check(proposal(txs)).startswith("duplicate_nonce")


def test_rejects_committed_nonce():
    committed = {(make_verified(VERIFIER, nonce="1").sender, "1")}
    reason = check(proposal(), nonce_committed=lambda sender, nonce: (sender, nonce) in committed)
    assert reason.startswith("duplicate_nonce")


def test_tx_expiry_against_block_time():
    expired = [make_verified(VERIFIER, nonce="1", expires_at=BLOCK_MS)]
    assert check(proposal(expired)).startswith("expired")
    too_far = [make_verified(VERIFIER, nonce="1", expires_at=BLOCK_MS + HOUR_MS + 1)]
    assert check(proposal(too_far)).startswith("expiry_too_far")
    edge = [make_verified(VERIFIER, nonce="1", expires_at=BLOCK_MS + HOUR_MS)]
    assert check(proposal(edge)) is None


def test_effective_block_time():
    assert effective_block_time(100, 50) == 100
    assert effective_block_time(50, 50) == 51
    assert effective_block_time(10, 50) == 51


def test_tx_root():
    ids = [sha256_hex(bytes([n])) for n in range(5)]
    assert tx_root([]) == sha256_hex(b"")
    assert tx_root(ids) != tx_root(ids[:4])
    assert tx_root(ids) != tx_root(list(reversed(ids)))
    assert tx_root(ids) == tx_root(list(ids))


def test_header_hash():
    header = BlockHeader(1, "00" * 32, 5, "m0", 0, "aa" * 32, "bb" * 32, "cc" * 32)
    assert BlockHeader.from_dict(header.to_dict()) == header
    assert header.block_hash() == sha256_hex(canonical_bytes(header.to_dict()))


@pytest.mark.parametrize(
    "nonce, payload, field",
    [
        ("pd-1", {"key": "k", "value": "call 13800138000"}, "payload.value"),
        ("11010519491231002X", {"key": "k", "value": 1}, "nonce"),
    ],
)
def test_personal_data_proposal_rejected(nonce, payload, field):
    tx = make_verified(VERIFIER, nonce=nonce, payload=payload)
    reason = check(proposal([tx]))
    assert reason is not None
    assert reason.startswith("personal_data_in_payload:"), reason
    assert field in reason
    assert "13800138000" not in reason
    assert "11010519491231002X" not in reason


def test_hex_nonce_proposal_accepted():
    tx = make_verified(VERIFIER, nonce="3f9a0c61d2b84e7790aa1234", payload={"key": "k", "value": 20240101})
    assert check(proposal([tx])) is None
