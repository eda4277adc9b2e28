"""A view change across the seq where a new validator set takes effect, and fetching past the window.

Validators A, B, C, D decide at seq 2 that a new set takes effect at seq 10,
so seq 9 is the last seq of the old set. Blocks 8 and 9 are proposed but not
committed, then every validator times out into view 1. The window above the
stable checkpoint at 4 ends at 9, so the NEW-VIEW of the old set's primary
re-proposes nothing past 9. Seq 10 is proposed by the new set's primary of
view 1 once the checkpoint at 9 is stable.
"""

from dataclasses import dataclass

import pytest

from consensus import (
    CertifiedBlock,
    Commit,
    PrePrepare,
    Prepare,
    PreparedCertificate,
    ViewChange,
    quorum_size,
)
from tests.consensus.harness import Cluster, resign

INTERVAL = 4
WINDOW = 8
TIMEOUT = 5
DECIDED_SEQ = 2
EFFECTIVE_SEQ = DECIDED_SEQ + WINDOW
LAST_OLD_SEQ = EFFECTIVE_SEQ - 1
# Reasons that mean a correct replica's message was judged malformed or forged.
CONTENT_REJECTIONS = ("not_primary", "prepare_from_primary", "conflicts_own_vote", "digest_mismatch", "invalid_")


def make_cluster(new_set_indexes: tuple[int, ...], **fields) -> Cluster:
    """Return four validators and one observer (index 4) that schedule the new set at EFFECTIVE_SEQ."""
    settings = dict(
        checkpoint_interval=INTERVAL,
        window_size=WINDOW,
        reconfig_delay_blocks=WINDOW,
        view_timeout_ticks=TIMEOUT,
        view_timeout_max_ticks=8 * TIMEOUT,
    )
    settings.update(fields)
    cluster = Cluster(4, observer_count=1, **settings)
    new_set = tuple(cluster.nodes[index].key for index in new_set_indexes)
    for node in cluster.nodes:
        node.validator_updates[DECIDED_SEQ] = (EFFECTIVE_SEQ, new_set)
    return cluster


def content_rejections(cluster: Cluster) -> dict[str, int]:
    found = {}
    for node in cluster.nodes:
        for reason, count in node.replica.counters.items():
            if reason.startswith(CONTENT_REJECTIONS):
                found[f"{node.key[:8]}:{reason}"] = count
    return found


@dataclass(frozen=True)
class BoundaryCase:
    name: str
    new_set_indexes: tuple[int, ...]  # indexes into cluster.nodes, where 4 is the observer
    seq_9_prepared: bool  # False: the PREPAREs for seq 9 are lost too, so seq 9 is not prepared anywhere
    payloads_after_view_change: tuple[bytes, ...]
    expected_payloads: tuple[bytes, ...]


COMMITTED = tuple(b"block-%d" % seq for seq in range(1, 8))
CASES = [
    BoundaryCase(
        "joiner_appended_same_primary",
        (0, 1, 2, 3, 4),
        True,
        (b"after",),
        COMMITTED + (b"block-8", b"block-9", b"after"),
    ),
    BoundaryCase(
        "joiner_first_other_primary",
        (4, 0, 1, 2, 3),
        True,
        (b"after",),
        COMMITTED + (b"block-8", b"block-9", b"after"),
    ),
    BoundaryCase(
        "joiner_primary_of_view_1",
        (0, 4, 1, 2, 3),
        True,
        (b"after",),
        COMMITTED + (b"block-8", b"block-9", b"after"),
    ),
    BoundaryCase(
        "rotated_joiner_is_primary",
        (2, 4, 0, 1, 3),
        True,
        (b"after",),
        COMMITTED + (b"block-8", b"block-9", b"after"),
    ),
    BoundaryCase(
        "old_view_1_primary_removed",
        (0, 2, 3, 4),
        True,
        (b"after",),
        COMMITTED + (b"block-8", b"block-9", b"after"),
    ),
    BoundaryCase(
        "seq_9_proposed_again_by_old_primary",
        (4, 0, 1, 2, 3),
        False,
        (b"nine", b"after"),
        COMMITTED + (b"block-8", b"nine", b"after"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_view_change_across_boundary(case: BoundaryCase) -> None:
    cluster = make_cluster(case.new_set_indexes)
    old_set = cluster.config.validators
    new_set = tuple(cluster.nodes[index].key for index in case.new_set_indexes)
    for payload in COMMITTED:
        cluster.propose(payload)

    def lose_commits(sender, recipient, message):
        if isinstance(message, Commit):
            return True
        return not case.seq_9_prepared and isinstance(message, Prepare) and message.seq == LAST_OLD_SEQ

    cluster.drop = lose_commits
    cluster.propose(b"block-8")
    cluster.propose(b"block-9")
    old_primary = cluster.primary()
    high_watermark = old_primary.replica.high_watermark
    # The primary proposes whatever its window allows. Seq 10 belongs to the new set.
    extra_seqs = []
    while old_primary.replica.can_propose():
        extra_seqs.append(old_primary.replica.next_proposal_seq)
        cluster.propose(b"extra-%d" % extra_seqs[-1])
    cluster.drop = None

    cluster.tick_all(TIMEOUT)
    new_view = cluster.nodes[1].replica._installed_new_view
    for payload in case.payloads_after_view_change:
        cluster.propose(payload)

    assert content_rejections(cluster) == {}
    assert high_watermark == LAST_OLD_SEQ
    assert extra_seqs == []
    for node in cluster.nodes[:4]:
        assert node.replica.view == 1
        assert not node.replica.in_view_change
    assert new_view.sender == old_set[1]
    assert max(pre_prepare.seq for pre_prepare in new_view.pre_prepares) <= LAST_OLD_SEQ
    for node in cluster.nodes:
        assert tuple(node.payloads()) == case.expected_payloads, node.key[:8]
        assert node.replica.low_watermark >= LAST_OLD_SEQ
    block_10 = cluster.nodes[0].blocks[EFFECTIVE_SEQ]
    assert block_10.view == 1
    assert {commit.sender for commit in block_10.certificate.commits} <= set(new_set)
    assert len(block_10.certificate.commits) == quorum_size(len(new_set))


def test_boundary_is_checkpoint():
    cluster = make_cluster((0, 1, 2, 3, 4))
    for index in range(LAST_OLD_SEQ):
        cluster.propose(b"%d" % index)
    for node in cluster.nodes:
        assert node.replica.low_watermark == LAST_OLD_SEQ
        assert node.replica.high_watermark == LAST_OLD_SEQ + WINDOW


def test_view_change_certificate_past_boundary():
    cluster = make_cluster((4, 0, 1, 2, 3))
    for index in range(7):
        cluster.propose(b"%d" % index)
    receiver = cluster.nodes[1].replica
    assert receiver.low_watermark == INTERVAL
    new_set = receiver.validators_at(EFFECTIVE_SEQ)
    signers = {node.key: node.signer for node in cluster.nodes}

    # A genuine-looking prepared certificate for seq 10 under the new set, in a
    # VIEW-CHANGE whose stable checkpoint (4) is below the old set's last seq.
    payload = b"past-boundary"
    digest = cluster.config.payload_digest(payload)
    pre_prepare = resign(PrePrepare(0, EFFECTIVE_SEQ, digest, payload, "", b""), signers[new_set[0]])
    prepares = tuple(
        resign(Prepare(0, EFFECTIVE_SEQ, digest, "", b""), signers[key])
        for key in new_set[1 : quorum_size(len(new_set))]
    )
    certificate = PreparedCertificate(pre_prepare, prepares)
    view_change = resign(
        ViewChange(1, INTERVAL, receiver._stable_proof, (certificate,), "", b""), cluster.nodes[2].signer
    )

    out = receiver.step(view_change)

    assert [reason for _, reason in out.rejections] == ["invalid_view_change:certificate_seq_out_of_range"]


def test_fetched_blocks_past_window():
    delay = 3 * WINDOW
    cluster = Cluster(4, checkpoint_interval=INTERVAL, window_size=WINDOW, reconfig_delay_blocks=delay)
    lagging = cluster.nodes[3]
    cluster.isolated.add(lagging.key)
    for index in range(2 * WINDOW + 2):
        cluster.propose(b"%d" % index)
    source = cluster.nodes[0].blocks
    assert lagging.replica.last_committed_seq == 0
    assert lagging.fetches == []

    # The node fetched these itself, without a FetchRequest from its replica.
    out = lagging.replica.deliver_fetched([source[seq] for seq in sorted(source)])
    cluster.apply(lagging, out)

    assert [reason for _, reason in out.rejections] == []
    assert lagging.payloads() == cluster.nodes[0].payloads()
    assert lagging.replica.last_executed_seq == 2 * WINDOW + 2


def test_fetched_blocks_bounded():
    delay = 2 * WINDOW
    cluster = Cluster(4, checkpoint_interval=INTERVAL, window_size=WINDOW, reconfig_delay_blocks=delay)
    lagging = cluster.nodes[3]
    cluster.isolated.add(lagging.key)
    for index in range(delay + 2):
        cluster.propose(b"%d" % index)
    source = cluster.nodes[0].blocks
    forged = CertifiedBlock(3, source[3].view, source[2].digest, source[2].payload, source[3].certificate)
    blocks = [source[1], source[2], forged] + [source[seq] for seq in range(4, delay + 3)]

    out = lagging.replica.deliver_fetched(blocks)
    cluster.apply(lagging, out)

    reasons = [reason for _, reason in out.rejections]
    assert reasons == ["unrequested_block", "unrequested_block", "invalid_certificate:certificate_mismatch"]
    assert lagging.replica.last_committed_seq == 2
