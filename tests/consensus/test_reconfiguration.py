"""Reconfiguration: a governance decision adds a fifth validator."""

from consensus import quorum_size
from tests.consensus.harness import Cluster

WINDOW = 8
DECIDED_SEQ = 2
EFFECTIVE_SEQ = DECIDED_SEQ + WINDOW


def make_cluster():
    cluster = Cluster(4, observer_count=1, checkpoint_interval=4, window_size=WINDOW, reconfig_delay_blocks=WINDOW)
    new_set = tuple(node.key for node in cluster.nodes)
    for node in cluster.nodes:
        node.validator_updates[DECIDED_SEQ] = (EFFECTIVE_SEQ, new_set)
    return cluster, new_set


def test_fifth_validator_joins_at_effective_seq():
    cluster, new_set = make_cluster()
    joiner = cluster.nodes[4]
    for index in range(EFFECTIVE_SEQ + 3):
        cluster.propose(b"%d" % index)

    for node in cluster.nodes:
        assert node.replica.validators_at(EFFECTIVE_SEQ - 1) == new_set[:4]
        assert node.replica.validators_at(EFFECTIVE_SEQ) == new_set
        assert node.payloads() == cluster.nodes[0].payloads()
    before = cluster.nodes[0].blocks[EFFECTIVE_SEQ - 1].certificate.commits
    after = cluster.nodes[0].blocks[EFFECTIVE_SEQ].certificate.commits
    assert len(before) == quorum_size(4)
    assert len(after) == quorum_size(5)
    assert all(c.sender != joiner.key for c in before)


def test_new_validator_vote_is_needed():
    cluster, _ = make_cluster()
    for index in range(EFFECTIVE_SEQ - 1):
        cluster.propose(b"%d" % index)
    # Four of five validators are a quorum only with the joiner's votes.
    cluster.isolated.add(cluster.nodes[3].key)
    cluster.propose(b"with-joiner")
    assert cluster.nodes[0].replica.last_committed_seq == EFFECTIVE_SEQ
    cluster.isolated.add(cluster.nodes[4].key)
    cluster.propose(b"stuck")
    assert cluster.nodes[0].replica.last_committed_seq == EFFECTIVE_SEQ


def test_joiner_vote_ignored_before_effective_seq():
    cluster, _ = make_cluster()
    cluster.isolated.update({cluster.nodes[2].key, cluster.nodes[3].key})
    cluster.propose(b"stuck")
    for node in cluster.nodes:
        assert node.replica.last_committed_seq == 0


def test_observer_signs_nothing_before_joining():
    cluster, _ = make_cluster()
    joiner = cluster.nodes[4]
    sent = []
    cluster.drop = lambda s, r, m: s == joiner.key and not sent.append(m)
    cluster.propose(b"one")
    assert sent == []
    assert joiner.payloads() == [b"one"]


def test_update_too_early_is_rejected():
    cluster = Cluster(4, checkpoint_interval=4, window_size=WINDOW, reconfig_delay_blocks=WINDOW)
    for node in cluster.nodes:
        node.validator_updates[1] = (1 + WINDOW - 1, tuple(n.key for n in cluster.nodes[:3]))
    cluster.propose(b"x")
    for node in cluster.nodes:
        assert node.replica.counters == {"reconfig_too_early": 1}
        assert node.replica.validators_at(100) == cluster.config.validators
