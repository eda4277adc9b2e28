"""Seeded random schedules on the scripted exchange: safety under faults, then liveness."""

import random

import pytest

from tests.consensus.harness import Cluster


def agree_on_prefix(cluster):
    histories = [node.payloads() for node in cluster.nodes]
    longest = max(histories, key=len)
    return all(history == longest[: len(history)] for history in histories)


def run_schedule(seed, validator_count):
    rng = random.Random(seed)
    cluster = Cluster(
        validator_count,
        checkpoint_interval=4,
        window_size=8,
        reconfig_delay_blocks=8,
        view_timeout_ticks=4,
        view_timeout_max_ticks=32,
    )
    faulty_max = (validator_count - 1) // 3
    cluster.drop = lambda s, r, m: rng.random() < 0.15
    counter = 0
    for _ in range(60):
        action = rng.random()
        if action < 0.5:
            primary = cluster.primary()
            if primary.key not in cluster.isolated and primary.replica.can_propose():
                counter += 1
                cluster.apply(primary, primary.replica.propose(b"tx-%d" % counter))
        elif action < 0.6:
            cluster.isolated = set(rng.sample([n.key for n in cluster.nodes], rng.randint(0, faulty_max)))
        # Deliver a random part of the queue in a shuffled order.
        pending = list(cluster.queue)
        rng.shuffle(pending)
        cluster.queue.clear()
        cluster.queue.extend(pending)
        cluster.deliver_all()
        for node in cluster.nodes:
            if node.key not in cluster.isolated:
                cluster.apply(node, node.replica.tick(True))
        cluster.deliver_all()
        assert agree_on_prefix(cluster), f"seed {seed}: replicas committed different blocks"

    # Heal: no drops, no isolation, and keep proposing until everyone catches up.
    cluster.drop = None
    cluster.isolated = set()
    before = max(len(node.payloads()) for node in cluster.nodes)
    for _ in range(200):
        cluster.tick_all(1)
        primary = cluster.primary()
        if primary.replica.can_propose():
            counter += 1
            cluster.propose(b"tx-%d" % counter)
        lengths = {len(node.payloads()) for node in cluster.nodes}
        if len(lengths) == 1 and lengths.pop() > before:
            break
    assert agree_on_prefix(cluster), f"seed {seed}: replicas committed different blocks after healing"
    lengths = [len(node.payloads()) for node in cluster.nodes]
    assert min(lengths) > before, f"seed {seed}: no progress after healing, lengths {lengths}"


@pytest.mark.parametrize("seed", range(12))
def test_random_schedule_four(seed):
    run_schedule(seed, 4)


@pytest.mark.parametrize("seed", range(100, 106))
def test_random_schedule_seven(seed):
    run_schedule(seed, 7)
