import json
from pathlib import Path

import nacl.signing

from node.canonical import canonical_bytes, sha256_hex
from node.tx import TX_SIGNATURE_PREFIX, TxVerifier
from scripts.make_tx_vectors import VECTORS_PATH, render_vectors

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "tx-test-vectors.json"


def test_vector_file_matches_generator():
    assert DOC_PATH == VECTORS_PATH
    assert DOC_PATH.read_text(encoding="utf-8") == render_vectors()


def test_vectors_recompute_independently():
    vectors = json.loads(DOC_PATH.read_text(encoding="utf-8"))["vectors"]
    assert len(vectors) == 3
    for vector in vectors:
        seed = bytes.fromhex(vector["seed_hex"])
        key = nacl.signing.SigningKey(seed)
        assert key.verify_key.encode().hex() == vector["public_key"]
        body_bytes = canonical_bytes(vector["body"])
        assert body_bytes.decode("utf-8") == vector["canonical_body_utf8"]
        assert body_bytes.hex() == vector["canonical_body_hex"]
        signature = key.sign(TX_SIGNATURE_PREFIX + body_bytes).signature.hex()
        assert signature == vector["signature"]
        envelope = {"body": vector["body"], "signature": signature}
        assert sha256_hex(canonical_bytes(envelope)) == vector["tx_id"]
        verified = TxVerifier("xinlian-local").parse(vector["canonical_envelope_utf8"].encode("utf-8"))
        assert verified.tx_id == vector["tx_id"]


def test_vectors_cover_chinese_and_nesting():
    text = DOC_PATH.read_text(encoding="utf-8")
    assert "夜间催收" in text
    vectors = json.loads(text)["vectors"]
    assert any(isinstance(v["body"]["payload"].get("schedule"), list) for v in vectors)
