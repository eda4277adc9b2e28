"""The shortcuts of the verification path (signed bytes cut from the envelope, caches by tx_id) match the full path."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from node.block import decode_proposal, encode_proposal, payload_digest
from node.canonical import parse_json
from node.chain import Chain
from node.storage import MemoryStore
from node.tx import TxVerifier, signing_bytes
from tests.node.helpers import CHAIN_ID, GENESIS_TIME_MS, make_envelope, make_genesis
from tests.node.kv_executor import KeyValueTestExecutor

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10)
payloads = st.dictionaries(texts, st.integers(min_value=-(2**63), max_value=2**63 - 1) | texts | st.lists(texts, max_size=3), max_size=6)


@settings(max_examples=150, deadline=None)
@given(payloads, texts.filter(lambda nonce: 1 <= len(nonce) <= 64))
def test_message_cut_equals_signing_bytes(payload: dict[str, Any], nonce: str) -> None:
    envelope = make_envelope(nonce=nonce, payload=payload)
    verifier = TxVerifier(CHAIN_ID)
    parsed = verifier._parse_envelope(envelope, None)
    assert parsed.message == signing_bytes(envelope["body"])
    assert verifier._check_signature(parsed) is True


def test_message_cut_tampered_body_fails() -> None:
    envelope = make_envelope(payload={"amount": 100})
    envelope["body"]["payload"]["amount"] = 101
    verifier = TxVerifier(CHAIN_ID)
    assert verifier.verify_many([envelope])[0].code == "invalid_signature"


def test_decode_proposal_known_txs_cached() -> None:
    verifier = TxVerifier(CHAIN_ID)
    envelopes = [make_envelope(nonce=str(number), payload={"n": number}) for number in range(5)]
    admitted = verifier.verify_many(envelopes, now_ms=GENESIS_TIME_MS)
    checks_after_admission = verifier.signature_checks
    assert checks_after_admission == 5
    payload = encode_proposal(1, GENESIS_TIME_MS + 1, "m0", admitted)
    value = parse_json(payload)
    assert all(verifier.is_known(envelope) for envelope in value["txs"])
    first = decode_proposal(payload, verifier, parsed=value)
    assert [vtx.tx_id for vtx in first.txs] == [vtx.tx_id for vtx in admitted]
    # The second decode of the same payload (the proposal check, then execution) comes from the cache.
    assert decode_proposal(payload, verifier) is first
    assert verifier.signature_checks == checks_after_admission


def test_decode_proposal_unknown_tx_verified() -> None:
    admitted_by_other_node = TxVerifier(CHAIN_ID).verify_many([make_envelope(nonce="7")], now_ms=GENESIS_TIME_MS)
    payload = encode_proposal(1, GENESIS_TIME_MS + 1, "m0", admitted_by_other_node)
    verifier = TxVerifier(CHAIN_ID)
    assert not verifier.is_known(parse_json(payload)["txs"][0])
    proposal = decode_proposal(payload, verifier)
    assert verifier.signature_checks == 1
    assert proposal.txs[0].tx_id == admitted_by_other_node[0].tx_id


def test_chain_commit_certified_checks_no_signature() -> None:
    """Catch-up commits blocks from peers, and their certificate replaces a second check of each signature."""
    from_peer = TxVerifier(CHAIN_ID).verify_many([make_envelope(nonce="1", payload={"key": "k", "value": 5})], now_ms=GENESIS_TIME_MS)
    payload = encode_proposal(1, GENESIS_TIME_MS + 1000, "m0", from_peer)
    verifier = TxVerifier(CHAIN_ID)
    chain = Chain(MemoryStore(), make_genesis(), KeyValueTestExecutor(), verifier)
    result = chain.commit(1, 0, payload_digest(payload), payload, {"view": 0, "seq": 1, "commits": []})
    assert [receipt.ok for receipt in result.receipts] == [True]
    assert chain.state().get("kv/k") == 5
    assert verifier.signature_checks == 0
    # The skipped check leaves no cached result that admission could later take for a verified signature.
    assert not verifier.signature_cached(from_peer[0].tx_id)
    assert not verifier.is_known(from_peer[0].envelope)


def test_verify_many_parsed_strictly_matches_full_check() -> None:
    envelopes = [make_envelope(nonce=str(number), payload={"note": "中文", "n": number}) for number in range(3)]
    envelopes[1]["signature"] = envelopes[2]["signature"]
    strict = parse_json(orjson.dumps(envelopes))
    fast = TxVerifier(CHAIN_ID).verify_many(strict, parsed_strictly=True)
    full = TxVerifier(CHAIN_ID).verify_many(envelopes)
    assert [getattr(result, "tx_id", None) for result in fast] == [getattr(result, "tx_id", None) for result in full]
    assert [getattr(result, "code", None) for result in fast] == [None, "invalid_signature", None]
