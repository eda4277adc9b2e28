"""A replica that missed a view change rejoins from normal-case traffic of the higher view."""

from consensus import Commit, PrePrepare, Prepare, ViewChange
from consensus.records import VIEW_KEY
from tests.consensus.harness import SIGNERS, Cluster, resign

TIMEOUT = 5
VOTE_TYPES = (PrePrepare, Prepare, Commit)


def make_cluster():
    return Cluster(
        4,
        view_timeout_ticks=TIMEOUT,
        view_timeout_max_ticks=8 * TIMEOUT,
        checkpoint_interval=2,
        window_size=8,
        reconfig_delay_blocks=8,
    )


def record_signed_votes(cluster, signed):
    """Record every PRE-PREPARE, PREPARE and COMMIT put on the wire, by (sender, type, view, seq)."""

    def drop(sender, recipient, message):
        if isinstance(message, VOTE_TYPES):
            signed.setdefault((sender, type(message).__name__, message.view, message.seq), set()).add(message.digest)
        return False

    cluster.drop = drop


def test_restarted_old_primary_joins_view_one():
    cluster = make_cluster()
    signed: dict = {}
    record_signed_votes(cluster, signed)
    old_primary = cluster.nodes[0]
    cluster.propose(b"view-0")

    # The old primary is down while the others change view and commit in view 1.
    cluster.isolated.add(old_primary.key)
    cluster.tick_all(TIMEOUT)
    for node in cluster.nodes[1:]:
        assert node.replica.view == 1
    cluster.propose(b"view-1-a")
    cluster.propose(b"view-1-b")

    cluster.restart(old_primary)
    assert VIEW_KEY not in old_primary.records  # view 0 was never left, so never persisted
    assert old_primary.replica.view == 0
    assert old_primary.replica.is_primary
    cluster.isolated.clear()

    # The network is idle, so no tick runs. Only normal-case traffic of view 1 arrives.
    cluster.propose(b"view-1-c")
    assert old_primary.replica.view == 1
    assert not old_primary.replica.in_view_change
    assert not old_primary.replica.is_primary
    assert old_primary.view_changes == [1]

    cluster.propose(b"view-1-d")
    own_view_1_votes = [slot for slot in signed if slot[0] == old_primary.key and slot[2] == 1]
    assert ("Prepare", 5) in [(kind, seq) for _, kind, _, seq in own_view_1_votes]
    assert ("Commit", 5) in [(kind, seq) for _, kind, _, seq in own_view_1_votes]
    expected = [b"view-0", b"view-1-a", b"view-1-b", b"view-1-c", b"view-1-d"]
    for node in cluster.nodes:
        assert node.payloads() == expected
    double_signed = {slot: digests for slot, digests in signed.items() if len(digests) > 1}
    assert double_signed == {}


def test_single_higher_view_sender_ignored():
    cluster = make_cluster()
    node = cluster.nodes[1]
    for seq in (1, 2, 3):
        out = node.replica.step(resign(Prepare(3, seq, "a" * 64, "", b""), SIGNERS[2]))
        assert out.messages == []
    assert node.replica.view == 0
    assert not node.replica.in_view_change


def test_f_plus_one_senders_pick_lower_view():
    cluster = make_cluster()
    node = cluster.nodes[1]
    node.replica.step(resign(Prepare(5, 1, "a" * 64, "", b""), SIGNERS[2]))
    out = node.replica.step(resign(Commit(2, 1, "a" * 64, "", b""), SIGNERS[3]))
    # f + 1 = 2 senders: one correct replica works in view 2 or higher.
    assert node.replica.view == 2
    assert node.replica.in_view_change
    sent = [m for _, m in out.messages if isinstance(m, ViewChange)]
    assert [m.new_view for m in sent] == [2]


def propose_by(cluster, node, payload):
    cluster.apply(node, node.replica.propose(payload))
    cluster.deliver_all()


def test_lone_view_change_rejoins_later_view():
    cluster = make_cluster()
    primary, lone = cluster.nodes[0], cluster.nodes[3]
    propose_by(cluster, primary, b"view-0")

    # The lone replica times out alone and waits in a view change to view 1.
    for _ in range(TIMEOUT):
        cluster.apply(lone, lone.replica.tick(True))
    cluster.queue.clear()
    assert lone.replica.view == 1
    assert lone.replica.in_view_change

    # The others keep working in view 0, and the lone replica follows their blocks by fetching.
    propose_by(cluster, primary, b"view-0-b")
    propose_by(cluster, primary, b"view-0-c")
    cluster.tick_all(TIMEOUT, pending=False)
    assert lone.payloads() == [b"view-0", b"view-0-b", b"view-0-c"]
    assert lone.replica.view == 1
    assert lone.replica.in_view_change

    # The others move to view 2 while the lone replica hears none of it.
    cluster.isolated.add(lone.key)
    for _ in range(10 * TIMEOUT):
        cluster.tick_all(1)
        if all(n.replica.view == 2 and not n.replica.in_view_change for n in cluster.nodes[:3]):
            break
    assert [n.replica.view for n in cluster.nodes[:3]] == [2, 2, 2]
    cluster.isolated.clear()

    # Normal-case traffic of view 2 from f + 1 validators brings it into view 2.
    propose_by(cluster, cluster.nodes[2], b"view-2")
    assert lone.replica.view == 2
    assert not lone.replica.in_view_change
    assert lone.view_changes == [2]
    assert lone.payloads()[-1] == b"view-2"
