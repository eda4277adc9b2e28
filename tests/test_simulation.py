"""Seeded whole-cluster simulation of the PBFT replica, and tests of the simulator itself.

Each seed runs a safety phase under drops, duplicates, reordering, partitions,
crashes and Byzantine replicas, then a liveness phase on a healed network. A
failing seed prints the command that reproduces it with scripts/simulate.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest

from consensus import CertifiedBlock, Commit, CommitCertificate, Ed25519Signer, Prepare, sign_message
from tests.sim.checkers import SafetyChecker, SimulationFailure
from tests.sim.cluster import CHAIN_ID, Cluster, SimulationConfig, run_simulation
from tests.sim.faults import FAULT_NAMES, FaultSpecError, format_faults, parse_faults
from tests.sim.network import NetworkConfig, SimNetwork
from tests.sim.store import DurableStore
from tests.sim.workload import Workload, encode_batch

ALL_FAULTS = frozenset(FAULT_NAMES)

# Seed counts and tick budgets keep this file near 66 s of CPU time (user + system,
# measured with /usr/bin/time on a 2-core machine). scripts/simulate.py runs
# thousands of seeds with the default, longer budgets.
SEEDS_N4 = range(1, 161)
SEEDS_N7 = range(1001, 1061)
SEEDS_N5 = range(2001, 2013)
SEEDS_RECONFIG = range(3001, 3013)
SAFETY_TICKS = 300
LIVENESS_TICKS = 3000

# Runs with --faults drop --reconfig and the default 600 safety ticks in which a
# view change crossed the seq where the new validator set takes effect. Before
# the window was cut at the last seq of the old set, the old set's NEW-VIEW
# re-proposed seqs of the new set there, and replicas rejected the PREPAREs or
# prepared certificates of correct validators (prepare_from_primary,
# invalid_view_change:prepared_certificate_not_primary).
SEEDS_RECONFIG_BOUNDARY = (14, 17, 23, 26, 32, 50, 51, 53, 55, 81, 83, 89)
BOUNDARY_FAULTS = frozenset({"drop"})
BOUNDARY_SAFETY_TICKS = 600


def _run_seed(
    seed: int,
    node_count: int,
    reconfig: bool = False,
    faults: frozenset[str] = ALL_FAULTS,
    safety_ticks: int = SAFETY_TICKS,
) -> None:
    config = SimulationConfig(
        seed=seed,
        node_count=node_count,
        faults=faults,
        safety_ticks=safety_ticks,
        liveness_ticks=LIVENESS_TICKS,
        reconfig=reconfig,
    )
    failure_message = None
    try:
        run_simulation(config)
    except SimulationFailure as failure:
        failure_message = str(failure)
    if failure_message is not None:
        pytest.fail(failure_message, pytrace=False)


@pytest.mark.parametrize("seed", SEEDS_N4)
def test_seed_n4(seed: int) -> None:
    _run_seed(seed, 4)


@pytest.mark.parametrize("seed", SEEDS_N7)
def test_seed_n7(seed: int) -> None:
    _run_seed(seed, 7)


@pytest.mark.parametrize("seed", SEEDS_N5)
def test_seed_n5(seed: int) -> None:
    _run_seed(seed, 5)


@pytest.mark.parametrize("seed", SEEDS_RECONFIG)
def test_seed_reconfig_n4(seed: int) -> None:
    _run_seed(seed, 4, reconfig=True)


@pytest.mark.parametrize("seed", SEEDS_RECONFIG_BOUNDARY)
def test_seed_reconfig_boundary(seed: int) -> None:
    _run_seed(seed, 4, reconfig=True, faults=BOUNDARY_FAULTS, safety_ticks=BOUNDARY_SAFETY_TICKS)


# The simulator itself


def _drain(network: SimNetwork, ticks: int) -> list[tuple[str, str, object]]:
    delivered = []
    for now in range(ticks):
        delivered.extend((e.source, e.destination, e.payload) for e in network.pop_due(now))
    return delivered


def test_partition_isolates_node() -> None:
    network = SimNetwork(random.Random(1), NetworkConfig(delay_min_ticks=1, delay_max_ticks=3))
    network.isolate("a")
    network.send(0, "a", "b", "a-to-b")
    network.send(0, "b", "a", "b-to-a")
    network.send(0, "b", "c", "b-to-c")
    assert _drain(network, 10) == [("b", "c", "b-to-c")]
    assert network.counters["dropped_partition"] == 2


def test_partition_drops_in_flight_messages() -> None:
    network = SimNetwork(random.Random(2), NetworkConfig(delay_min_ticks=5, delay_max_ticks=5))
    network.send(0, "a", "b", "sent-before-cut")
    network.partition([["a"], ["b", "c"]])
    assert _drain(network, 10) == []
    network.heal()
    network.send(10, "a", "b", "sent-after-heal")
    assert _drain(network, 20) == [("a", "b", "sent-after-heal")]


def test_crash_drops_last_tick_messages() -> None:
    network = SimNetwork(random.Random(3), NetworkConfig(delay_min_ticks=2, delay_max_ticks=2))
    network.send(4, "a", "b", "older")
    network.send(5, "a", "b", "last-tick")
    network.send(5, "c", "b", "other-sender")
    assert network.drop_sent_by("a", 5) == 1
    assert [payload for _, _, payload in _drain(network, 10)] == ["older", "other-sender"]


def test_network_same_seed_same_order() -> None:
    config = NetworkConfig(delay_max_ticks=8, drop_probability=0.2, duplicate_probability=0.2, reorder_probability=0.3)
    runs = []
    for _ in range(2):
        network = SimNetwork(random.Random(7), config)
        for index in range(50):
            network.send(index % 5, "a", "b", index)
        runs.append(_drain(network, 100))
    assert runs[0] == runs[1]
    assert [payload for _, _, payload in runs[0]] != sorted(payload for _, _, payload in runs[0])


def test_store_keeps_persisted_records_only() -> None:
    store = DurableStore()
    value = {"view": 3}
    store.apply([("view", value), ("vote/1", {"digest": "aa"}), ("vote/1", None)])
    value["view"] = 99
    assert store.records == {"view": {"view": 3}}
    with pytest.raises(TypeError):
        store.apply([("bad", {"payload": b"raw bytes"})])


def test_parse_faults_names() -> None:
    assert parse_faults("all") == ALL_FAULTS
    assert parse_faults("none") == frozenset()
    assert parse_faults("drop,crash") == frozenset({"drop", "crash"})
    assert format_faults(frozenset({"crash", "drop"})) == "drop,crash"
    with pytest.raises(FaultSpecError):
        parse_faults("drop,meteor")


def _healthy_cluster(seed: int, node_count: int = 4) -> Cluster:
    return Cluster(SimulationConfig(seed=seed, node_count=node_count, faults=frozenset()))


def _run_until(cluster: Cluster, condition, ticks_max: int) -> None:
    for _ in range(ticks_max):
        if condition():
            return
        cluster.run_tick(faults_on=False)
    assert condition(), f"condition not reached within {ticks_max} ticks"


def _submit(cluster: Cluster) -> str:
    transaction_id = cluster.workload.submit(cluster.now)
    cluster.submit_to_nodes(transaction_id)
    return transaction_id


def test_healthy_cluster_commits_everywhere() -> None:
    cluster = _healthy_cluster(11)
    transactions = [_submit(cluster) for _ in range(10)]
    _run_until(cluster, lambda: not cluster.missing_transactions(), 500)
    for node in cluster.nodes:
        assert set(transactions) <= node.executed_transactions
    assert cluster.checker.commits_checked >= 4 * 3


def test_crashed_replica_restarts_with_persisted_view() -> None:
    cluster = _healthy_cluster(12)
    primary = cluster.nodes[0]
    cluster.network.isolate(primary.node_id)
    _submit(cluster)
    backup = cluster.nodes[1]
    _run_until(cluster, lambda: backup.replica.view >= 1 and not backup.replica.in_view_change, 2000)
    view_before_crash = backup.replica.view

    cluster.crash(backup)
    assert not backup.is_up
    cluster.restart(backup)

    assert backup.replica.view == view_before_crash
    assert backup.restarts == 1


def test_restarted_replica_catches_up() -> None:
    cluster = _healthy_cluster(13)
    lagging = cluster.nodes[3]
    cluster.crash(lagging)
    for _ in range(12):
        _submit(cluster)
    others = [node for node in cluster.nodes if node is not lagging]
    _run_until(cluster, lambda: all(not node.mempool for node in others), 1000)

    cluster.restart(lagging)
    _run_until(cluster, lambda: not cluster.missing_transactions(), 1000)
    assert lagging.store.last_executed_seq == others[0].store.last_executed_seq


def _certified_block(signers: list[Ed25519Signer], seq: int, payload: bytes) -> CertifiedBlock:
    digest = hashlib.sha256(payload).hexdigest()
    commits = tuple(sign_message(Commit(0, seq, digest, ""), signer, CHAIN_ID) for signer in signers)
    return CertifiedBlock(seq, 0, digest, payload, CommitCertificate(0, seq, digest, commits))


def _checker_with_cluster_keys() -> tuple[SafetyChecker, list[Ed25519Signer], Workload]:
    cluster = _healthy_cluster(14)
    signers = [node.signer for node in cluster.nodes]
    workload = cluster.workload
    checker = SafetyChecker(workload.submitted, lambda data: hashlib.sha256(data).hexdigest(), cluster._verify_block)
    return checker, signers, workload


def test_checker_catches_double_commit() -> None:
    checker, signers, workload = _checker_with_cluster_keys()
    first = workload.submit(0)
    second = workload.submit(0)
    # Both blocks carry a full quorum certificate, as if the validators had been Byzantine.
    block_a = _certified_block(signers, 1, encode_batch([first]))
    block_b = _certified_block(signers, 1, encode_batch([second]))

    checker.check_commit("node-a", block_a, 0, now=5)
    with pytest.raises(SimulationFailure, match="conflicting commits at seq 1"):
        checker.check_commit("node-b", block_b, 0, now=6)


def test_checker_catches_gap_and_repeat() -> None:
    checker, signers, workload = _checker_with_cluster_keys()
    block = _certified_block(signers, 2, encode_batch([workload.submit(0)]))
    with pytest.raises(SimulationFailure, match="in order, once each"):
        checker.check_commit("node-a", block, 0, now=1)
    with pytest.raises(SimulationFailure, match="in order, once each"):
        checker.check_commit("node-a", block, 2, now=1)


def test_checker_catches_weak_certificate() -> None:
    checker, signers, workload = _checker_with_cluster_keys()
    block = _certified_block(signers[:2], 1, encode_batch([workload.submit(0)]))
    with pytest.raises(SimulationFailure, match="invalid certificate"):
        checker.check_commit("node-a", block, 0, now=1)


def test_checker_catches_unsubmitted_payload() -> None:
    checker, signers, _ = _checker_with_cluster_keys()
    block = _certified_block(signers, 1, encode_batch(["tx-never-submitted"]))
    with pytest.raises(SimulationFailure, match="unsubmitted"):
        checker.check_commit("node-a", block, 0, now=1)


def test_checker_catches_equivocating_vote() -> None:
    checker, signers, _ = _checker_with_cluster_keys()
    signer = signers[0]
    vote = sign_message(Prepare(3, 7, "aa" * 32, ""), signer, CHAIN_ID)
    checker.check_emitted(signer.public_key, vote, now=1)
    checker.check_emitted(signer.public_key, vote, now=2)
    conflicting = sign_message(Commit(3, 7, "bb" * 32, ""), signer, CHAIN_ID)
    with pytest.raises(SimulationFailure, match="signed two digests at view 3 seq 7"):
        checker.check_emitted(signer.public_key, conflicting, now=3)


def test_failure_carries_reproduce_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_on_commit(self, node_id, block, last_executed_seq, now):
        raise SimulationFailure("injected failure")

    monkeypatch.setattr(SafetyChecker, "check_commit", fail_on_commit)
    config = SimulationConfig(seed=77, node_count=4, faults=frozenset({"drop"}), safety_ticks=200)
    with pytest.raises(SimulationFailure) as raised:
        run_simulation(config)
    message = str(raised.value)
    assert "seed 77: injected failure" in message
    assert "python scripts/simulate.py --seed 77 --n 4 --faults drop --safety-ticks 200" in message


def test_same_seed_same_report() -> None:
    config = SimulationConfig(seed=5, node_count=4, faults=ALL_FAULTS, safety_ticks=200)
    assert dataclasses.asdict(run_simulation(config)) == dataclasses.asdict(run_simulation(config))

