"""View changes: timeout, VIEW-CHANGE, NEW-VIEW, carried-over prepared blocks."""

from consensus import Commit, NewView, ViewChange
from tests.consensus.harness import Cluster

TIMEOUT = 5


def make_cluster(validator_count=4, **fields):
    return Cluster(validator_count, view_timeout_ticks=TIMEOUT, view_timeout_max_ticks=8 * TIMEOUT, **fields)


def test_idle_network_keeps_view():
    cluster = make_cluster()
    cluster.tick_all(10 * TIMEOUT, pending=False)
    for node in cluster.nodes:
        assert node.replica.view == 0
        assert not node.replica.in_view_change


def test_dead_primary_replaced():
    cluster = make_cluster()
    old_primary = cluster.primary()
    cluster.isolated.add(old_primary.key)
    cluster.tick_all(TIMEOUT)

    live = [n for n in cluster.nodes if n is not old_primary]
    for node in live:
        assert node.replica.view == 1
        assert not node.replica.in_view_change
        assert node.view_changes == [1]
    assert cluster.primary() is live[0]
    cluster.propose(b"after")
    for node in live:
        assert node.payloads() == [b"after"]


def test_prepared_block_survives_view_change():
    cluster = make_cluster()
    old_primary = cluster.primary()
    cluster.propose(b"committed")
    # Everyone prepares seq 2 but no COMMIT gets through.
    cluster.drop = lambda s, r, m: isinstance(m, Commit)
    cluster.propose(b"prepared")
    for node in cluster.nodes:
        assert node.payloads() == [b"committed"]
        assert 2 in node.replica._prepared
    cluster.drop = None
    cluster.isolated.add(old_primary.key)
    cluster.tick_all(TIMEOUT)

    live = [n for n in cluster.nodes if n is not old_primary]
    for node in live:
        assert node.replica.view == 1
        assert node.payloads() == [b"committed", b"prepared"]
        assert node.blocks[2].view == 1
    cluster.propose(b"third")
    for node in live:
        assert node.payloads() == [b"committed", b"prepared", b"third"]


def test_prepared_at_one_replica_survives():
    cluster = make_cluster()
    old_primary = cluster.primary()
    witness = cluster.nodes[1].key
    # Only replica 1 receives the prepares and commits, and it cannot commit alone.
    cluster.drop = lambda s, r, m: not isinstance(m, ViewChange) and r != witness and s != old_primary.key
    cluster.propose(b"only-one-prepared")
    cluster.drop = None
    cluster.queue.clear()
    cluster.isolated.add(old_primary.key)
    cluster.tick_all(TIMEOUT)
    for node in cluster.nodes[1:]:
        assert node.replica.view == 1
    # Replica 1 is the new primary, so its own VIEW-CHANGE with the prepared
    # certificate is in the NEW-VIEW quorum and the block is re-proposed.
    for node in cluster.nodes[1:]:
        assert node.payloads() == [b"only-one-prepared"]


def test_gap_filled_with_null_block():
    cluster = make_cluster()
    old_primary = cluster.primary()
    def drop_commits_and_seq_one(sender, recipient, message):
        return isinstance(message, Commit) or getattr(message, "seq", None) == 1

    cluster.drop = drop_commits_and_seq_one
    cluster.propose(b"lost")
    cluster.propose(b"kept")
    cluster.drop = None
    cluster.isolated.add(old_primary.key)
    cluster.tick_all(TIMEOUT)
    for node in cluster.nodes[1:]:
        assert node.payloads() == [b"", b"kept"]


def test_timeout_backs_off_exponentially():
    cluster = make_cluster(7)
    # The primaries of views 0 and 1 are down, so view 1 fails and view 2 succeeds.
    cluster.isolated.update({cluster.nodes[0].key, cluster.nodes[1].key})
    watcher = cluster.nodes[4]
    views_by_tick = []
    for _ in range(TIMEOUT + 2 * TIMEOUT):
        cluster.tick_all(1)
        views_by_tick.append(watcher.replica.view)
    assert views_by_tick.index(1) == TIMEOUT - 1
    assert views_by_tick.index(2) == 3 * TIMEOUT - 1
    assert not watcher.replica.in_view_change
    cluster.propose(b"view-2")
    assert watcher.payloads() == [b"view-2"]


def test_lonely_replica_waits_for_quorum():
    cluster = make_cluster()
    lonely = cluster.nodes[1]
    cluster.isolated.update(n.key for n in cluster.nodes if n is not lonely)
    for _ in range(20 * TIMEOUT):
        cluster.apply(lonely, lonely.replica.tick(True))
    assert lonely.replica.view == 1
    assert lonely.replica.in_view_change
    # The first VIEW-CHANGE at tick 5, then one resend every 5 ticks, each to 3 peers.
    sent = [m for s, _, m in cluster.queue if s == lonely.key and isinstance(m, ViewChange)]
    assert len(sent) == 20 * 3


def test_timeout_capped():
    cluster = make_cluster()
    lonely = cluster.nodes[1]
    for _ in range(20):
        lonely.replica._start_view_change(lonely.replica.view + 1, type(cluster.nodes[0].replica.tick(False))())
    assert lonely.replica._view_timeout_ticks() == 8 * TIMEOUT


def test_f_plus_one_view_changes_make_replica_join():
    cluster = make_cluster()
    laggard = cluster.nodes[3]
    # Two replicas (f + 1 = 2) time out; the laggard never ticks but joins.
    for node in cluster.nodes[1:3]:
        for _ in range(TIMEOUT):
            cluster.apply(node, node.replica.tick(True))
    cluster.deliver_all()
    assert laggard.replica.view == 1
    assert cluster.nodes[0].replica.view == 1
    for node in cluster.nodes:
        assert not node.replica.in_view_change


def test_single_view_change_does_not_move_others():
    cluster = make_cluster()
    node = cluster.nodes[2]
    for _ in range(TIMEOUT):
        cluster.apply(node, node.replica.tick(True))
    cluster.deliver_all()
    assert node.replica.view == 1
    for other in (cluster.nodes[0], cluster.nodes[1], cluster.nodes[3]):
        assert other.replica.view == 0


def test_replica_missing_new_view_rejoins():
    cluster = make_cluster()
    old_primary = cluster.primary()
    laggard = cluster.nodes[3]
    cluster.isolated.add(old_primary.key)
    cluster.drop = lambda s, r, m: r == laggard.key and isinstance(m, NewView)
    cluster.tick_all(TIMEOUT)
    assert laggard.replica.in_view_change
    cluster.drop = None
    # The first PRE-PREPARE of view 1 makes the laggard resend its VIEW-CHANGE,
    # and the primary replies with the NEW-VIEW it installed.
    cluster.propose(b"x")
    assert laggard.replica.view == 1
    assert not laggard.replica.in_view_change
    assert laggard.payloads() == [b"x"]


def test_new_view_with_five_validators():
    cluster = make_cluster(5)
    old_primary = cluster.primary()
    cluster.propose(b"a")
    cluster.isolated.add(old_primary.key)
    cluster.tick_all(TIMEOUT)
    cluster.propose(b"b")
    for node in cluster.nodes[1:]:
        assert node.payloads() == [b"a", b"b"]
        assert node.replica.view == 1
