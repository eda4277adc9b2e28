"""Restart from persisted records: no double-signing, no lower view."""

from dataclasses import replace

from consensus import PrePrepare, Prepare
from consensus.records import VIEW_KEY
from tests.consensus.harness import SIGNERS, Cluster, resign


def test_restarted_replica_keeps_committing():
    cluster = Cluster(4, checkpoint_interval=4, window_size=8, reconfig_delay_blocks=8)
    for index in range(6):
        cluster.propose(b"%d" % index)
    restarted = cluster.restart(cluster.nodes[2])
    assert restarted.replica.low_watermark == 4
    assert restarted.replica.last_executed_seq == 6
    for index in range(6, 12):
        cluster.propose(b"%d" % index)
    assert restarted.payloads() == cluster.nodes[0].payloads()
    assert len(restarted.payloads()) == 12


def test_restarted_replica_refuses_second_digest():
    cluster = Cluster(4)
    primary = cluster.primary()
    target = cluster.nodes[2]
    cluster.apply(primary, primary.replica.propose(b"first"))
    first = next(m for _, r, m in cluster.queue if r == target.key)
    cluster.queue.clear()
    out = target.replica.step(first)
    cluster.apply(target, out)
    assert [type(m) for _, m in out.messages] == [Prepare]
    cluster.queue.clear()

    cluster.restart(target)
    conflicting = resign(replace(first, digest=cluster.config.payload_digest(b"second"), payload=b"second"), SIGNERS[0])
    out = target.replica.step(conflicting)
    assert out.messages == []
    assert out.rejections == [(primary.key, "conflicts_own_vote")]
    # The original PRE-PREPARE is still acceptable and gets the same PREPARE.
    out = target.replica.step(first)
    assert [m.digest for _, m in out.messages] == [first.digest]


def test_restart_never_returns_to_lower_view():
    cluster = Cluster(4, view_timeout_ticks=3)
    old_primary = cluster.primary()
    cluster.isolated.add(old_primary.key)
    cluster.tick_all(3)
    node = cluster.nodes[1]
    assert node.records[VIEW_KEY] == {"view": 1, "in_view_change": False}
    cluster.restart(node)
    assert node.replica.view == 1
    stale = resign(Prepare(0, 1, "d", "", b""), SIGNERS[2])
    out = node.replica.step(stale)
    assert out.rejections == [(SIGNERS[2].public_key, "stale_view")]


def test_restarted_primary_skips_used_seqs():
    cluster = Cluster(4)
    primary = cluster.primary()
    cluster.isolated.update(n.key for n in cluster.nodes[1:])
    cluster.apply(primary, primary.replica.propose(b"in-flight"))
    cluster.restart(primary)
    cluster.isolated.clear()
    cluster.queue.clear()
    out = primary.replica.propose(b"next")
    pre_prepare = next(m for _, m in out.messages if isinstance(m, PrePrepare))
    assert pre_prepare.seq == 2


def test_unexecuted_committed_block_released_after_restart():
    cluster = Cluster(4)
    node = cluster.nodes[3]
    primary = cluster.primary()
    cluster.apply(primary, primary.replica.propose(b"x"))
    # Deliver everything, but node 3 "crashes" before executing what it committed.
    released = []
    while cluster.queue:
        sender, recipient, message = cluster.queue.popleft()
        if recipient == node.key:
            out = node.replica.step(message)
            for key, value in out.persist:
                if value is None:
                    node.records.pop(key, None)
                else:
                    node.records[key] = value
            released.extend(out.committed)
            continue
        cluster.apply(cluster.node(recipient), cluster.node(recipient).replica.step(message))
    assert [b.payload for b in released] == [b"x"]
    assert node.blocks == {}
    cluster.restart(node)
    cluster.apply(node, node.replica.tick(False))
    assert node.payloads() == [b"x"]
    assert node.replica.last_executed_seq == 1


def test_restart_during_view_change_resends_view_change():
    cluster = Cluster(4, view_timeout_ticks=3)
    cluster.isolated.update({cluster.nodes[0].key, cluster.nodes[2].key, cluster.nodes[3].key})
    node = cluster.nodes[1]
    for _ in range(3):
        cluster.apply(node, node.replica.tick(True))
    assert node.replica.in_view_change
    cluster.queue.clear()
    cluster.restart(node)
    cluster.isolated = {cluster.nodes[0].key}
    cluster.apply(node, node.replica.tick(False))
    cluster.tick_all(3)
    for other in cluster.nodes[1:]:
        assert other.replica.view == 1
        assert not other.replica.in_view_change


def test_prepared_certificate_survives_restart():
    cluster = Cluster(4, view_timeout_ticks=3)
    old_primary = cluster.primary()
    cluster.drop = lambda s, r, m: type(m).__name__ == "Commit"
    cluster.propose(b"prepared")
    cluster.drop = None
    for node in cluster.nodes[1:]:
        cluster.restart(node)
        assert 1 in node.replica._prepared
    cluster.isolated.add(old_primary.key)
    cluster.tick_all(3)
    for node in cluster.nodes[1:]:
        assert node.replica.view == 1
        assert node.payloads() == [b"prepared"]


def test_restart_resends_checkpoint_at_window_end():
    cluster = Cluster(4, checkpoint_interval=2, window_size=2, reconfig_delay_blocks=2)
    cluster.drop = lambda s, r, m: type(m).__name__ == "Checkpoint"
    cluster.propose(b"1")
    cluster.propose(b"2")
    cluster.drop = None
    primary = cluster.primary()
    assert not primary.replica.can_propose()
    for node in cluster.nodes:
        cluster.restart(node)
        cluster.apply(node, node.replica.tick(False))
    cluster.deliver_all()
    for node in cluster.nodes:
        assert node.replica.low_watermark == 2
    assert primary.replica.can_propose()
