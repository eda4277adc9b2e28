"""Wire form of consensus messages and strict decoding of peer input."""

import json

import pytest

from consensus import (
    CertifiedBlock,
    ConsensusDecodeError,
    Ed25519Signer,
    Ed25519Verifier,
    decode_message,
)
from consensus.encoding import SIGNATURE_DOMAIN
from tests.consensus.harness import CHAIN_ID, Cluster


@pytest.fixture(scope="module")
def sample_messages():
    """Every message type, captured from a view change with a prepared block."""
    cluster = Cluster(4, view_timeout_ticks=2, checkpoint_interval=1, window_size=2, reconfig_delay_blocks=2)
    seen = {}

    def capture(sender, recipient, message):
        seen.setdefault(type(message).__name__, message)
        return False

    cluster.drop = capture
    cluster.propose(b"one")
    cluster.isolated.add(cluster.primary().key)
    cluster.tick_all(2)
    cluster.propose(b"two")
    return seen


def test_all_types_captured(sample_messages):
    assert sorted(sample_messages) == ["Checkpoint", "Commit", "NewView", "PrePrepare", "Prepare", "ViewChange"]


@pytest.mark.parametrize("name", ["Checkpoint", "Commit", "NewView", "PrePrepare", "Prepare", "ViewChange"])
def test_wire_round_trip(sample_messages, name):
    message = sample_messages[name]
    wire = json.loads(json.dumps(message.to_wire()))
    assert decode_message(wire) == message


def test_certified_block_round_trip():
    cluster = Cluster(4)
    cluster.propose(b"block")
    block = cluster.nodes[0].blocks[1]
    assert CertifiedBlock.from_wire(json.loads(json.dumps(block.to_wire()))) == block


def valid_prepare_wire(sample_messages):
    return sample_messages["Prepare"].to_wire()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda w: w.update(type="vote"),
        lambda w: w.pop("digest"),
        lambda w: w.update(extra=1),
        lambda w: w.update(view=-1),
        lambda w: w.update(view=True),
        lambda w: w.update(seq=2**63),
        lambda w: w.update(seq="1"),
        lambda w: w.update(sender="AB" * 32),
        lambda w: w.update(sender="ab" * 31),
        lambda w: w.update(signature="zz" * 64),
        lambda w: w.update(signature="ab" * 63),
        lambda w: w.update(digest=""),
        lambda w: w.update(digest="x" * 129),
        lambda w: w.update(digest="a\nb"),
    ],
)
def test_malformed_prepare_rejected(sample_messages, mutate):
    wire = valid_prepare_wire(sample_messages)
    mutate(wire)
    with pytest.raises(ConsensusDecodeError):
        decode_message(wire)


@pytest.mark.parametrize("wire", [None, [], "prepare", 5, {"type": 5}, {}])
def test_non_object_rejected(wire):
    with pytest.raises(ConsensusDecodeError):
        decode_message(wire)


def test_nested_message_type_checked(sample_messages):
    wire = sample_messages["NewView"].to_wire()
    wire["pre_prepares"] = [sample_messages["Prepare"].to_wire()]
    with pytest.raises(ConsensusDecodeError):
        decode_message(wire)


def test_payload_hex_checked(sample_messages):
    wire = sample_messages["PrePrepare"].to_wire()
    wire["payload"] = "0 1"
    with pytest.raises(ConsensusDecodeError):
        decode_message(wire)


def test_signature_domain_and_chain_bound(sample_messages):
    message = sample_messages["Prepare"]
    data = message.signing_bytes(CHAIN_ID)
    assert data.startswith(SIGNATURE_DOMAIN + CHAIN_ID.encode() + b"\x00")
    verifier = Ed25519Verifier()
    assert verifier.verify(message.sender, data, message.signature)
    assert not verifier.verify(message.sender, message.signing_bytes("other-chain"), message.signature)


def test_verifier_memo_cache():
    signer = Ed25519Signer(b"\x01" * 32)
    verifier = Ed25519Verifier(cache_entries_max=2)
    signature = signer.sign(b"data")
    assert verifier.verify(signer.public_key, b"data", signature)
    assert verifier.verify(signer.public_key, b"data", signature)
    assert verifier.verify_count == 1
    assert not verifier.verify(signer.public_key, b"other", signature)
    assert not verifier.verify("zz", b"data", signature)
    assert verifier.verify(signer.public_key, b"data", signature)
    assert verifier.verify_count == 3


def test_signer_rejects_short_seed():
    with pytest.raises(ValueError):
        Ed25519Signer(b"short")
