import json

import pytest

from node.canonical import canonical_bytes
from node.execution import Transaction
from node.tx import TxError, TxVerifier, check_expiry, compute_tx_id, sign_transaction, valid_id

from tests.node.helpers import CHAIN_ID, GENESIS_TIME_MS, HOUR_MS, make_envelope, seed_of


def encode(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def error_code(verifier: TxVerifier, data: bytes, now_ms: int | None = None) -> str:
    with pytest.raises(TxError) as info:
        verifier.parse(data, now_ms)
    return info.value.code


def test_parse_valid_transaction():
    verifier = TxVerifier(CHAIN_ID)
    envelope = make_envelope(payload={"名称": "甲银行", "amount": 100})
    verified = verifier.parse(encode(envelope), now_ms=GENESIS_TIME_MS)
    assert isinstance(verified.tx, Transaction)
    assert verified.tx_id == compute_tx_id(envelope)
    assert verified.encoded == canonical_bytes(envelope)
    assert verified.size_bytes == len(canonical_bytes(envelope))
    assert verified.tx.payload == {"名称": "甲银行", "amount": 100}
    assert verified.sender == envelope["body"]["sender"]


def test_signature_verified_once_per_tx_id():
    verifier = TxVerifier(CHAIN_ID)
    data = encode(make_envelope())
    for _ in range(3):
        verifier.parse(data)
    assert verifier.signature_checks == 1


def test_signature_cache_is_bounded():
    verifier = TxVerifier(CHAIN_ID, cache_size_max=2)
    envelopes = [make_envelope(nonce=str(n)) for n in range(3)]
    for envelope in envelopes:
        verifier.verify(envelope)
    verifier.verify(envelopes[0])  # evicted, so verified again
    assert verifier.signature_checks == 4
    assert len(verifier._signature_valid) == 2


def test_rejects_non_json():
    assert error_code(TxVerifier(CHAIN_ID), b"{not json") == "invalid_json"


def test_rejects_invalid_utf8():
    assert error_code(TxVerifier(CHAIN_ID), b'{"body": "\xff"}') == "invalid_utf8"


def test_rejects_float():
    text = encode(make_envelope()).replace(b'"value": 1', b'"value": 1.5')
    assert error_code(TxVerifier(CHAIN_ID), text) == "float_not_allowed"


def test_rejects_duplicate_key():
    text = encode(make_envelope()).replace(b'"value": 1', b'"value": 1, "value": 2')
    assert error_code(TxVerifier(CHAIN_ID), text) == "duplicate_key"


def test_rejects_integer_out_of_range():
    envelope = make_envelope()
    text = encode(envelope).replace(b'"value": 1', b'"value": 9223372036854775808')
    assert error_code(TxVerifier(CHAIN_ID), text) == "integer_out_of_range"


def test_rejects_tampered_payload():
    envelope = make_envelope()
    envelope["body"]["payload"]["value"] = 2
    assert error_code(TxVerifier(CHAIN_ID), encode(envelope)) == "invalid_signature"


def test_rejects_signature_of_other_key():
    envelope = make_envelope(seed_number=1)
    other = make_envelope(seed_number=2)
    envelope["signature"] = other["signature"]
    assert error_code(TxVerifier(CHAIN_ID), encode(envelope)) == "invalid_signature"


def test_rejects_sender_not_on_curve():
    envelope = make_envelope()
    envelope["body"]["sender"] = "ff" * 32
    assert error_code(TxVerifier(CHAIN_ID), encode(envelope)) == "invalid_signature"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e["body"].update(sender="AB" * 32),
        lambda e: e["body"].update(sender="ab" * 31),
        lambda e: e["body"].update(nonce=""),
        lambda e: e["body"].update(nonce="x" * 65),
        lambda e: e["body"].update(expires_at="1767225600000"),
        lambda e: e["body"].update(expires_at=True),
        lambda e: e["body"].update(expires_at=-1),
        lambda e: e["body"].update(payload=[1, 2]),
        lambda e: e["body"].update(type="no-dot"),
        lambda e: e["body"].update(extra=1),
        lambda e: e["body"].pop("chain_id"),
        lambda e: e.update(signature="00" * 63),
        lambda e: e.update(signature="ZZ" * 64),
        lambda e: e.update(extra="x"),
        lambda e: e.pop("signature"),
    ],
)
def test_rejects_invalid_field(mutate):
    envelope = make_envelope()
    mutate(envelope)
    assert error_code(TxVerifier(CHAIN_ID), encode(envelope)) == "invalid_field"


def test_rejects_non_object():
    assert error_code(TxVerifier(CHAIN_ID), b"[1, 2]") == "invalid_field"


def test_rejects_too_large_raw_bytes():
    verifier = TxVerifier(CHAIN_ID, size_max_bytes=2048)
    assert error_code(verifier, b" " * 2049) == "too_large"


def test_rejects_too_large_encoded():
    verifier = TxVerifier(CHAIN_ID, size_max_bytes=2048)
    envelope = make_envelope(payload={"blob": "x" * 2048})
    assert error_code(verifier, encode(envelope)) == "too_large"


def test_size_limit_boundary():
    envelope = make_envelope(payload={"blob": "x" * 100})
    size = len(canonical_bytes(envelope))
    TxVerifier(CHAIN_ID, size_max_bytes=size).verify(envelope)
    with pytest.raises(TxError) as info:
        TxVerifier(CHAIN_ID, size_max_bytes=size - 1).verify(envelope)
    assert info.value.code == "too_large"


def test_rejects_wrong_chain():
    envelope = make_envelope(chain_id="other-chain")
    assert error_code(TxVerifier(CHAIN_ID), encode(envelope)) == "wrong_chain"


def test_expiry_boundaries():
    verifier = TxVerifier(CHAIN_ID)
    now = GENESIS_TIME_MS
    verifier.verify(make_envelope(nonce="a", expires_at=now + 1), now_ms=now)
    verifier.verify(make_envelope(nonce="b", expires_at=now + HOUR_MS), now_ms=now)
    assert error_code(verifier, encode(make_envelope(nonce="c", expires_at=now)), now) == "expired"
    assert error_code(verifier, encode(make_envelope(nonce="d", expires_at=now + HOUR_MS + 1)), now) == "expiry_too_far"


def test_check_expiry_returns_none_inside_window():
    assert check_expiry(11, 10) is None
    assert check_expiry(10, 10).code == "expired"
    assert check_expiry(10 + HOUR_MS + 1, 10).code == "expiry_too_far"


def test_sign_rejects_wrong_sender():
    with pytest.raises(TxError) as info:
        sign_transaction(seed_of(1), {"chain_id": CHAIN_ID, "sender": "ab" * 32, "type": "a.b", "nonce": "1", "expires_at": 1, "payload": {}})
    assert info.value.code == "invalid_field"


def test_sign_rejects_bad_key():
    with pytest.raises(TypeError):
        sign_transaction(b"short", {})


@pytest.mark.parametrize("value", ["a", "L.2026:001", "A-b_c", "x" * 64])
def test_valid_id_accepts(value):
    assert valid_id(value)


@pytest.mark.parametrize("value", ["", "x" * 65, "a b", "贷款1", "a/b", 5, None, "a\n"])
def test_valid_id_rejects(value):
    assert not valid_id(value)


def test_rejects_too_deep_nesting():
    nested = b'{"n":' * 70 + b"{}" + b"}" * 70
    text = encode(make_envelope()).replace(b'"value": 1', b'"value": ' + nested)
    assert error_code(TxVerifier(CHAIN_ID), text) == "too_deep"
