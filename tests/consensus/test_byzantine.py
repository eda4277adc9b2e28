"""Byzantine input: each case is rejected, counted, and never raises."""

from dataclasses import replace

import pytest

from consensus import (
    Commit,
    Ed25519Signer,
    NewView,
    PrePrepare,
    Prepare,
    PreparedCertificate,
    ViewChange,
    verify_certified_block,
)
from tests.consensus.harness import CHAIN_ID, SIGNERS, VERIFIER, Cluster, resign

OUTSIDER = Ed25519Signer(b"\x07" * 32)


def signed_pre_prepare(cluster, payload=b"p", view=0, seq=1, signer=None):
    digest = cluster.config.payload_digest(payload)
    return resign(PrePrepare(view, seq, digest, payload, "", b""), signer or SIGNERS[0])


def rejections_of(node, message):
    out = node.replica.step(message)
    return [reason for _, reason in out.rejections], out


def test_non_validator_sender():
    cluster = Cluster(4)
    reasons, out = rejections_of(cluster.nodes[1], signed_pre_prepare(cluster, signer=OUTSIDER))
    assert reasons == ["sender_not_validator"]
    assert out.messages == []
    assert cluster.nodes[1].replica.counters == {"sender_not_validator": 1}


def test_bad_signature():
    cluster = Cluster(4)
    message = replace(signed_pre_prepare(cluster), view=0, seq=2)
    reasons, out = rejections_of(cluster.nodes[1], message)
    assert reasons == ["bad_signature"]
    assert out.messages == []


def test_digest_mismatch():
    cluster = Cluster(4)
    message = resign(PrePrepare(0, 1, "0" * 64, b"p", "", b""), SIGNERS[0])
    assert rejections_of(cluster.nodes[1], message)[0] == ["digest_mismatch"]


def test_pre_prepare_from_backup():
    cluster = Cluster(4)
    message = signed_pre_prepare(cluster, signer=SIGNERS[2])
    assert rejections_of(cluster.nodes[1], message)[0] == ["not_primary"]


def test_invalid_payload():
    cluster = Cluster(4, validate_payload=lambda seq, payload: "bad block" if payload == b"evil" else None)
    assert rejections_of(cluster.nodes[1], signed_pre_prepare(cluster, b"evil"))[0] == ["invalid_payload"]


def test_equivocating_primary():
    cluster = Cluster(4)
    node = cluster.nodes[1]
    assert rejections_of(node, signed_pre_prepare(cluster, b"a"))[0] == []
    reasons, out = rejections_of(node, signed_pre_prepare(cluster, b"b"))
    assert reasons == ["equivocation"]
    assert out.messages == []
    assert node.replica._log.pre_prepares[(0, 1)].payload == b"a"


def test_duplicate_prepare_counted_once():
    cluster = Cluster(5)
    node = cluster.nodes[1]
    pre_prepare = signed_pre_prepare(cluster)
    node.replica.step(pre_prepare)
    prepare = resign(Prepare(0, 1, pre_prepare.digest, "", b""), SIGNERS[2])
    assert rejections_of(node, prepare)[0] == []
    reasons, out = rejections_of(node, prepare)
    assert reasons == ["duplicate"]
    # With n = 5 the quorum is 4: the pre-prepare, the own prepare and one
    # other prepare are 3, and the duplicate must not make them 4.
    assert not any(isinstance(m, Commit) for _, m in out.messages)
    assert (0, 1) not in node.replica._commit_sent


def test_equivocating_prepare():
    cluster = Cluster(4)
    node = cluster.nodes[1]
    first = resign(Prepare(0, 1, "a" * 64, "", b""), SIGNERS[2])
    second = resign(Prepare(0, 1, "b" * 64, "", b""), SIGNERS[2])
    assert rejections_of(node, first)[0] == []
    assert rejections_of(node, second)[0] == ["equivocation"]


def test_prepare_from_primary():
    cluster = Cluster(4)
    prepare = resign(Prepare(0, 1, "a" * 64, "", b""), SIGNERS[0])
    assert rejections_of(cluster.nodes[1], prepare)[0] == ["prepare_from_primary"]


def test_future_messages_buffer_bounded():
    cluster = Cluster(4, buffer_per_peer_max=5)
    node = cluster.nodes[1]
    for view in range(1, 9):
        assert rejections_of(node, resign(Prepare(view, 1, "a" * 64, "", b""), SIGNERS[2]))[0] == []
    assert len(node.replica._buffer) == 5
    assert node.replica.counters == {"buffer_overflow": 3}


def test_far_future_seq_is_buffered():
    cluster = Cluster(4)
    node = cluster.nodes[1]
    far = resign(Prepare(0, 10_000, "a" * 64, "", b""), SIGNERS[2])
    assert rejections_of(node, far)[0] == []
    assert len(node.replica._buffer) == 1


def test_below_watermark_rejected():
    cluster = Cluster(4, checkpoint_interval=2, window_size=4, reconfig_delay_blocks=4)
    cluster.propose(b"1")
    cluster.propose(b"2")
    old = resign(Prepare(0, 1, "a" * 64, "", b""), SIGNERS[2])
    assert rejections_of(cluster.nodes[1], old)[0] == ["below_watermark"]


def committed_block(cluster):
    cluster.propose(b"tx")
    return cluster.nodes[0].blocks[1]


def with_commits(block, commits):
    certificate = replace(block.certificate, commits=tuple(commits))
    return replace(block, certificate=certificate)


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda b: with_commits(b, b.certificate.commits[:2]), "too_few_signatures"),
        (lambda b: with_commits(b, b.certificate.commits[:2] + b.certificate.commits[:1]), "duplicate_signer"),
        (
            lambda b: with_commits(
                b, b.certificate.commits[:2] + (resign(b.certificate.commits[2], OUTSIDER),)
            ),
            "signer_not_validator",
        ),
        (
            lambda b: with_commits(b, b.certificate.commits[:2] + (replace(b.certificate.commits[2], signature=b"\x01" * 64),)),
            "bad_signature",
        ),
        (lambda b: replace(b, payload=b"other"), "digest_mismatch"),
        (lambda b: replace(b, view=5), "certificate_mismatch"),
    ],
)
def test_forged_commit_certificate(forge, reason):
    cluster = Cluster(4)
    block = committed_block(cluster)
    validators = cluster.config.validators
    assert verify_certified_block(block, validators, 3, VERIFIER, CHAIN_ID) is None
    assert verify_certified_block(forge(block), validators, 3, VERIFIER, CHAIN_ID) == reason


def test_forged_fetched_block_not_released():
    cluster = Cluster(4)
    block = committed_block(cluster)
    fresh = Cluster(4)
    node = fresh.nodes[1]
    out = node.replica.deliver_fetched([with_commits(block, block.certificate.commits[:2])])
    assert out.committed == []
    assert node.replica.counters == {"invalid_certificate:too_few_signatures": 1}
    out = node.replica.deliver_fetched([block])
    assert [b.seq for b in out.committed] == [1]


def view_change_quorum(cluster):
    """Run one view change with a prepared block at seq 1 and capture its messages."""
    captured = []
    old_primary = cluster.primary()
    cluster.drop = lambda s, r, m: isinstance(m, Commit) or (
        isinstance(m, (ViewChange, NewView)) and not captured.append(m)
    )
    cluster.propose(b"prepared")
    cluster.isolated.add(old_primary.key)
    cluster.tick_all(cluster.config.view_timeout_ticks)
    view_changes = {m.sender: m for m in captured if isinstance(m, ViewChange)}
    return [view_changes[k] for k in sorted(view_changes)]


def test_new_view_that_drops_prepared_block_rejected():
    cluster = Cluster(4, view_timeout_ticks=2)
    view_changes = view_change_quorum(cluster)
    new_primary = SIGNERS[1]
    null = PrePrepare(1, 1, cluster.config.payload_digest(b""), b"", "", b"")
    forged = resign(NewView(1, tuple(view_changes[:3]), (resign(null, new_primary),), "", b""), new_primary)
    node = Cluster(4, view_timeout_ticks=2).nodes[2]
    assert rejections_of(node, forged)[0] == ["invalid_new_view:pre_prepares_mismatch"]
    assert node.replica.view == 0


def test_new_view_from_wrong_primary_rejected():
    cluster = Cluster(4, view_timeout_ticks=2)
    view_changes = view_change_quorum(cluster)
    forged = resign(NewView(1, tuple(view_changes[:3]), (), "", b""), SIGNERS[3])
    node = Cluster(4).nodes[2]
    assert rejections_of(node, forged)[0] == ["invalid_new_view:not_primary"]


def test_new_view_with_too_few_view_changes_rejected():
    cluster = Cluster(4, view_timeout_ticks=2)
    view_changes = view_change_quorum(cluster)
    forged = resign(NewView(1, tuple(view_changes[:2]), (), "", b""), SIGNERS[1])
    node = Cluster(4).nodes[2]
    assert rejections_of(node, forged)[0] == ["invalid_new_view:too_few_view_changes"]


def test_view_change_with_forged_prepared_certificate():
    cluster = Cluster(4, view_timeout_ticks=2)
    view_changes = view_change_quorum(cluster)
    honest = next(vc for vc in view_changes if vc.prepared_certificates)
    certificate = honest.prepared_certificates[0]
    short = PreparedCertificate(certificate.pre_prepare, certificate.prepares[:1])
    forged = resign(replace(honest, prepared_certificates=(short,)), SIGNERS[honest_index(honest)])
    node = Cluster(4).nodes[0]
    reasons = rejections_of(node, forged)[0]
    assert reasons == ["invalid_view_change:prepared_certificate_too_few_signatures"]


def test_view_change_with_forged_checkpoint_proof():
    cluster = Cluster(4, view_timeout_ticks=2)
    honest = view_change_quorum(cluster)[0]
    forged = resign(replace(honest, stable_seq=4), SIGNERS[honest_index(honest)])
    node = Cluster(4).nodes[0]
    assert rejections_of(node, forged)[0] == ["invalid_view_change:checkpoint_proof_too_few_signatures"]


def honest_index(message):
    return next(i for i, s in enumerate(SIGNERS) if s.public_key == message.sender)


def test_byzantine_input_never_raises():
    cluster = Cluster(4, view_timeout_ticks=2)
    view_changes = view_change_quorum(cluster)
    node = Cluster(4).nodes[2]
    weird = [
        resign(PrePrepare(2**62, 2**62, "x", b"", "", b""), SIGNERS[0]),
        resign(Commit(0, 0, "x", "", b""), SIGNERS[1]),
        resign(NewView(5, (), (), "", b""), SIGNERS[1]),
        resign(NewView(1, tuple(view_changes) * 2, (), "", b""), SIGNERS[1]),
        resign(replace(view_changes[0], new_view=0), SIGNERS[honest_index(view_changes[0])]),
    ]
    reasons = []
    for message in weird:
        reasons.extend(rejections_of(node, message)[0])
    assert reasons == [
        "below_watermark",
        "invalid_new_view:too_few_view_changes",
        "invalid_new_view:duplicate_view_change_sender",
        "stale_view",
    ]
    assert len(node.replica._buffer) == 1
