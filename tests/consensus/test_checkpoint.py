"""Checkpoints, garbage collection and state transfer."""

from consensus import Checkpoint, Commit, PrePrepare, Prepare
from consensus.records import PREPARED_PREFIX, VOTE_PREFIX, CHECKPOINT_KEY
from tests.consensus.harness import Cluster

INTERVAL = 4
WINDOW = 8


def make_cluster(validator_count=4, **fields):
    return Cluster(
        validator_count,
        checkpoint_interval=INTERVAL,
        window_size=WINDOW,
        reconfig_delay_blocks=WINDOW,
        view_timeout_ticks=5,
        **fields,
    )


def test_checkpoint_becomes_stable():
    cluster = make_cluster()
    for index in range(INTERVAL):
        cluster.propose(b"%d" % index)
    for node in cluster.nodes:
        assert node.replica.low_watermark == INTERVAL
        assert node.records[CHECKPOINT_KEY]["seq"] == INTERVAL
        assert len(node.records[CHECKPOINT_KEY]["proof"]) == 3


def test_stable_checkpoint_collects_garbage():
    cluster = make_cluster()
    for index in range(INTERVAL + 1):
        cluster.propose(b"%d" % index)
    for node in cluster.nodes:
        replica = node.replica
        assert all(seq > INTERVAL for _, seq in replica._log.pre_prepares)
        assert all(seq > INTERVAL for seq in replica._prepared)
        assert all(seq > INTERVAL for _, seq in replica._own_votes)
        vote_keys = [k for k in node.records if k.startswith(VOTE_PREFIX)]
        prepared_keys = [k for k in node.records if k.startswith(PREPARED_PREFIX)]
        assert len(vote_keys) == 1
        assert len(prepared_keys) == 1


def test_window_moves_with_checkpoints():
    cluster = make_cluster()
    for index in range(3 * WINDOW):
        cluster.propose(b"%d" % index)
    for node in cluster.nodes:
        assert node.replica.last_executed_seq == 3 * WINDOW
        assert node.replica.low_watermark == 3 * WINDOW
        assert len(node.records) <= 4


def test_no_stable_checkpoint_on_divergent_digests():
    cluster = make_cluster()
    for index in range(INTERVAL - 1):
        cluster.propose(b"%d" % index)
    # Two replicas report a different state digest at the checkpoint seq.
    for node in cluster.nodes[2:]:
        node.state_digest = "corrupted"
    cluster.propose(b"last")
    for node in cluster.nodes:
        assert node.replica.low_watermark == 0


def test_lagging_replica_fetches_past_window():
    cluster = make_cluster()
    lagging = cluster.nodes[3]
    cluster.isolated.add(lagging.key)
    for index in range(2 * WINDOW + 2):
        cluster.propose(b"%d" % index)
    assert lagging.payloads() == []
    cluster.isolated.discard(lagging.key)
    # Checkpoints at the next multiple of K show the lagging replica it is behind.
    for index in range(INTERVAL):
        cluster.propose(b"late-%d" % index)

    expected = cluster.nodes[0].payloads()
    assert lagging.fetches, "lagging replica never asked to fetch"
    assert lagging.payloads() == expected
    assert lagging.replica.low_watermark == cluster.nodes[0].replica.low_watermark
    cluster.propose(b"after")
    assert lagging.payloads() == expected + [b"after"]


def test_fetched_block_with_bad_certificate_rejected():
    cluster = make_cluster()
    lagging = cluster.nodes[3]
    cluster.isolated.add(lagging.key)
    for index in range(2 * WINDOW):
        cluster.propose(b"%d" % index)
    cluster.isolated.discard(lagging.key)
    cluster.auto_fetch = False
    for index in range(INTERVAL):
        cluster.propose(b"late-%d" % index)
    request = lagging.fetches[-1]
    good = [cluster.nodes[0].blocks[s] for s in range(request.from_seq, request.to_seq + 1)]
    forged = good[0].__class__(good[0].seq, good[0].view, good[0].digest, b"forged", good[0].certificate)
    out = lagging.replica.deliver_fetched([forged] + good[1:])
    assert out.committed == []
    assert lagging.replica.counters["invalid_certificate:digest_mismatch"] == 1
    cluster.apply(lagging, lagging.replica.deliver_fetched(good))
    assert lagging.replica.last_committed_seq == request.to_seq


def test_f_plus_one_checkpoints_trigger_fetch():
    cluster = make_cluster()
    behind = cluster.nodes[3]
    cluster.drop = lambda s, r, m: r == behind.key and isinstance(m, (PrePrepare, Prepare, Commit, Checkpoint))
    for index in range(INTERVAL):
        cluster.propose(b"%d" % index)
    cluster.drop = None
    cluster.auto_fetch = False
    checkpoints = [c for c in (n.replica._stable_proof for n in cluster.nodes[:3])][0]
    cluster.apply(behind, behind.replica.step(checkpoints[0]))
    assert behind.fetches == []
    cluster.apply(behind, behind.replica.step(checkpoints[1]))
    assert behind.fetches[-1].from_seq == 1
    assert behind.fetches[-1].to_seq == INTERVAL


def test_unfinished_fetch_is_repeated():
    cluster = make_cluster()
    lagging = cluster.nodes[3]
    cluster.isolated.add(lagging.key)
    for index in range(2 * WINDOW):
        cluster.propose(b"%d" % index)
    cluster.isolated.discard(lagging.key)
    cluster.auto_fetch = False
    for index in range(INTERVAL):
        cluster.propose(b"late-%d" % index)
    first = lagging.fetches[-1]
    count = len(lagging.fetches)
    for _ in range(5):
        cluster.apply(lagging, lagging.replica.tick(False))
    assert len(lagging.fetches) == count + 1
    assert lagging.fetches[-1] == first
    cluster.auto_fetch = True
    for _ in range(5):
        cluster.apply(lagging, lagging.replica.tick(False))
    assert lagging.payloads() == cluster.nodes[0].payloads()


def test_replica_alone_in_view_change_fetches():
    cluster = make_cluster()
    alone = cluster.nodes[3]
    cluster.isolated.add(alone.key)
    for index in range(3):
        cluster.propose(b"%d" % index)
    for _ in range(5):
        cluster.apply(alone, alone.replica.tick(True))
    assert alone.replica.in_view_change
    cluster.isolated.clear()
    cluster.queue.clear()
    # The others are idle in view 0; only the lone replica's timer runs.
    for _ in range(5):
        cluster.apply(alone, alone.replica.tick(True))
    cluster.deliver_all()
    assert alone.fetches[-1].from_seq == 1
    assert alone.payloads() == [b"0", b"1", b"2"]
    assert alone.replica.view == 1
    assert cluster.nodes[0].replica.view == 0


def test_resent_stable_checkpoint_reaches_laggard():
    cluster = make_cluster()
    lagging = cluster.nodes[3]
    cluster.isolated.add(lagging.key)
    for index in range(INTERVAL):
        cluster.propose(b"%d" % index)
    assert cluster.nodes[0].replica.low_watermark == INTERVAL
    cluster.isolated.clear()
    # No new blocks: only the checkpoints resent by ticking replicas reach the laggard.
    cluster.tick_all(5, pending=True)
    assert lagging.replica.low_watermark == INTERVAL
    assert lagging.payloads() == cluster.nodes[0].payloads()
