"""Normal-case ordering: PRE-PREPARE, PREPARE, COMMIT, release in seq order."""

import pytest

from consensus import Commit, PrePrepare, quorum_size
from tests.consensus.harness import Cluster


@pytest.mark.parametrize("validator_count", [1, 4, 5, 7])
def test_blocks_commit_on_every_replica(validator_count):
    cluster = Cluster(validator_count)
    payloads = [b"block-%d" % i for i in range(1, 6)]
    for payload in payloads:
        cluster.propose(payload)

    for node in cluster.nodes:
        assert node.payloads() == payloads
        assert node.replica.last_committed_seq == 5
        assert node.replica.last_executed_seq == 5
        assert node.replica.counters == {}


@pytest.mark.parametrize("validator_count", [4, 5, 7])
def test_commit_certificate_has_quorum(validator_count):
    cluster = Cluster(validator_count)
    cluster.propose(b"tx")

    for node in cluster.nodes:
        certificate = node.blocks[1].certificate
        assert len(certificate.commits) == quorum_size(validator_count)
        assert len({c.sender for c in certificate.commits}) == len(certificate.commits)
        assert {c.digest for c in certificate.commits} == {node.blocks[1].digest}


def test_message_counts_for_four_validators():
    cluster = Cluster(4)
    cluster.propose(b"tx", deliver=False)
    assert [type(m) for _, _, m in cluster.queue] == [PrePrepare] * 3
    cluster.deliver_all()
    # 3 pre-prepares + 3 backups x 3 prepares + 4 replicas x 3 commits
    assert cluster.delivered_count == 3 + 9 + 12


def test_commits_with_one_silent_backup():
    cluster = Cluster(4)
    silent = cluster.nodes[3].key
    cluster.isolated.add(silent)
    cluster.propose(b"a")
    cluster.propose(b"b")

    for node in cluster.nodes[:3]:
        assert node.payloads() == [b"a", b"b"]
    assert cluster.nodes[3].payloads() == []


def test_no_commit_without_quorum():
    cluster = Cluster(4)
    cluster.isolated.update({cluster.nodes[2].key, cluster.nodes[3].key})
    cluster.propose(b"a")
    for node in cluster.nodes:
        assert node.payloads() == []


def test_pipelined_out_of_order_arrival():
    cluster = Cluster(4)
    primary = cluster.primary()
    for payload in (b"one", b"two", b"three"):
        cluster.apply(primary, primary.replica.propose(payload))
    # Deliver everything in reverse order: later seqs prepare and commit first.
    cluster.queue = type(cluster.queue)(reversed(cluster.queue))
    delayed_commits = []
    cluster.drop = lambda s, r, m: isinstance(m, Commit) and m.seq == 1 and not delayed_commits.append((s, r, m))
    cluster.deliver_all()

    for node in cluster.nodes:
        assert node.payloads() == []
        assert node.replica.last_committed_seq == 0

    cluster.drop = None
    cluster.queue.extend(delayed_commits)
    cluster.deliver_all()
    for node in cluster.nodes:
        assert node.payloads() == [b"one", b"two", b"three"]


def test_window_limits_proposals():
    cluster = Cluster(4, checkpoint_interval=2, window_size=4, reconfig_delay_blocks=4)
    primary = cluster.primary()
    cluster.isolated.update(n.key for n in cluster.nodes[1:])
    for index in range(4):
        cluster.apply(primary, primary.replica.propose(b"%d" % index))
    assert not primary.replica.can_propose()
    with pytest.raises(ValueError):
        primary.replica.propose(b"too far")


def test_backup_cannot_propose():
    cluster = Cluster(4)
    backup = cluster.nodes[1]
    assert not backup.replica.can_propose()
    with pytest.raises(ValueError):
        backup.replica.propose(b"x")


def test_prepare_before_pre_prepare_counts():
    cluster = Cluster(4)
    primary = cluster.primary()
    cluster.apply(primary, primary.replica.propose(b"late"))
    pre_prepares = [item for item in cluster.queue if isinstance(item[2], PrePrepare)]
    late = [item for item in pre_prepares if item[1] == cluster.nodes[3].key]
    cluster.queue = type(cluster.queue)(item for item in cluster.queue if item not in late)
    cluster.deliver_all()
    # Node 3 has received the others' prepares and commits but no pre-prepare yet.
    assert cluster.nodes[3].payloads() == []
    cluster.queue.extend(late)
    cluster.deliver_all()
    assert cluster.nodes[3].payloads() == [b"late"]


def test_next_proposal_seq_matches_propose():
    cluster = Cluster(4)
    primary = cluster.primary()
    assert primary.replica.next_proposal_seq == 1
    out = primary.replica.propose(b"a")
    assert [m.seq for _, m in out.messages] == [1]
    assert primary.replica.next_proposal_seq == 2
