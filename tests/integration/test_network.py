"""Four real node processes on 127.0.0.1: agreement, a killed primary, a wiped node, an unknown peer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from node.keys import generate_key
from node.p2p import P2PNetwork
from tests.integration.cluster import REPOSITORY, Cluster, subject_payload, wait_converged, wait_started, wait_until

pytestmark = pytest.mark.integration

# Members that may send subject.register, and so can generate load.
SENDERS = ("bank-1", "credit-agency-2")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    network = Cluster(tmp_path / "net")
    try:
        yield network
    finally:
        await network.close()


async def submit_and_wait(cluster: Cluster, sender: str, node: str) -> dict[str, Any]:
    async with cluster.client(sender, node) as client:
        return await client.submit_and_wait("subject.register", subject_payload(), timeout_seconds=30)


async def test_four_nodes_agree_on_blocks(cluster: Cluster) -> None:
    cluster.start_all()
    await wait_started(cluster, cluster.members)

    # Each transaction goes to another node; gossip brings it to the primary.
    submissions = [submit_and_wait(cluster, SENDERS[index % 2], cluster.members[index % 4]) for index in range(8)]
    records = await asyncio.gather(*submissions)

    assert all(record["status"] == "committed" for record in records)
    assert all(record["receipt"]["ok"] for record in records), [record["receipt"] for record in records]
    highest = max(record["height"] for record in records)
    await wait_converged(cluster, cluster.members, highest)
    for member_id in cluster.members:
        for record in records:
            seen = await cluster.transaction(member_id, record["tx_id"])
            assert seen is not None
            assert (seen["status"], seen["height"], seen["index"]) == ("committed", record["height"], record["index"])


async def test_killed_primary_replaced_and_rejoins(cluster: Cluster) -> None:
    cluster.start_all()
    await wait_started(cluster, cluster.members)
    first = await submit_and_wait(cluster, "bank-1", "collector-3")
    status = await cluster.status("collector-3")
    assert status is not None
    primary = status["primary"]
    survivors = [member_id for member_id in cluster.members if member_id != primary]
    acknowledged = [first]

    async def load(count: int) -> None:
        for index in range(count):
            sender = SENDERS[index % 2]
            node = survivors[index % len(survivors)]
            acknowledged.append(await submit_and_wait(cluster, sender, node))

    load_task = asyncio.create_task(load(6))
    await asyncio.sleep(0)  # let the load start before the crash
    cluster.kill(primary)
    await asyncio.wait_for(load_task, 60)

    statuses = await wait_converged(cluster, survivors, max(record["height"] for record in acknowledged))
    assert all(s["view"] >= 1 for s in statuses.values()), {member: s["view"] for member, s in statuses.items()}
    assert all(s["primary"] != primary for s in statuses.values())

    cluster.start(primary, hash_seed=99)
    await wait_started(cluster, cluster.members)
    after_restart = await submit_and_wait(cluster, "bank-1", survivors[0])
    acknowledged.append(after_restart)
    await wait_converged(cluster, cluster.members, after_restart["height"])

    for member_id in cluster.members:
        for record in acknowledged:
            seen = await cluster.transaction(member_id, record["tx_id"])
            assert seen is not None, f"{member_id} lost committed transaction {record['tx_id']}"
            assert (seen["status"], seen["height"]) == ("committed", record["height"])


async def test_wiped_node_catches_up_from_genesis(cluster: Cluster) -> None:
    cluster.start_all()
    await wait_started(cluster, cluster.members)
    victim = "regulator-4"
    # More blocks than the replica's watermark window (2 x checkpoint_interval = 8).
    records = [await submit_and_wait(cluster, SENDERS[index % 2], cluster.members[index % 4]) for index in range(12)]
    height = max(record["height"] for record in records)
    assert height >= 12

    assert cluster.terminate(victim) == 0
    cluster.wipe(victim)
    cluster.start(victim, hash_seed=7)
    await wait_started(cluster, cluster.members)

    await wait_converged(cluster, cluster.members, height)
    for record in records:
        seen = await cluster.transaction(victim, record["tx_id"])
        assert seen is not None
        assert seen["receipt"] == record["receipt"]


async def test_unknown_peer_key_refused(cluster: Cluster) -> None:
    target = "bank-1"
    cluster.start(target)
    await wait_until(lambda: _has_status(cluster, target), 20, f"{target} to answer /v1/status")
    status = await cluster.status(target)
    assert status is not None

    stranger_key = generate_key()
    stranger = P2PNetwork("xinlian-local", stranger_key, lambda key: True, {})
    await stranger.start()
    try:
        stranger.add_peer(status["node_key"], cluster.p2p_url(target))
        await wait_until(_async(lambda: stranger.counters["dial_unknown_key"] >= 1), 10, "the stranger to be refused")
        assert not stranger.is_connected(status["node_key"])
    finally:
        await stranger.stop()

    metrics = await cluster.metrics(target)
    assert 'xinlian_p2p_events_total{kind="accept_unknown_key"}' in metrics
    status = await cluster.status(target)
    assert status is not None
    assert stranger_key.public_key not in {peer["node_key"] for peer in status["peers"] if peer["connected"]}


async def _has_status(cluster: Cluster, member_id: str) -> bool:
    return await cluster.status(member_id) is not None


def _async(predicate: Any) -> Any:
    async def check() -> bool:
        return bool(predicate())

    return check


def test_cli_network_up_status_down(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    init = _run_cli("--lang", "en", "network", "init", "--nodes", "4", "--dir", str(directory))
    assert init.returncode == 0, init.stderr

    up = _run_cli("--lang", "en", "network", "up", "--dir", str(directory))
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.count("started") == 4
        pid_files = sorted(directory.glob("nodes/*/node.pid"))
        assert len(pid_files) == 4

        deadline = time.monotonic() + 20
        rows: list[str] = []
        while time.monotonic() < deadline:
            status = _run_cli("--lang", "en", "network", "status", "--dir", str(directory))
            rows = [line for line in status.stdout.splitlines()[1:] if line.strip()]
            # Columns: member, pid, api, height, view, primary, peers, syncing.
            if len(rows) == 4 and all(line.split()[6] == "3/3" for line in rows if "no answer" not in line) and not any("no answer" in line for line in rows):
                break
            time.sleep(0.2)
        assert len(rows) == 4
        assert all(line.split()[6] == "3/3" for line in rows), rows
    finally:
        down = _run_cli("--lang", "en", "network", "down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("stopped") == 4
    assert list(directory.glob("nodes/*/node.pid")) == []
    for log_file in directory.glob("nodes/*/node.log"):
        assert '"message": "node stopped"' in log_file.read_text()


def _run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli", *arguments], capture_output=True, text=True, timeout=60, cwd=REPOSITORY)
