"""Four real node processes: a recorded report query read through another node, and an erasure that
reaches the off-chain copy held by a third node."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from node.client import XinlianApiError
from node.privacy.errors import PrivacyError
from node.privacy.setup import open_node_privacy
from tests.integration.cluster import Cluster, random_hex, wait_converged, wait_started

pytestmark = pytest.mark.integration

HOLDER = "credit-agency-2"
RECORD = {"name": "王五", "phones": ["13900000000"], "address": "上海", "details": {}}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    network = Cluster(tmp_path / "net")
    try:
        yield network
    finally:
        await network.close()


def store_copy(cluster: Cluster, subject_id: str) -> str:
    """Store the subject's record in the holder's off-chain store before its process starts, and return the commitment."""
    config = cluster.configs[HOLDER]
    privacy = open_node_privacy(config.data_dir, config.privacy_secret_file)
    try:
        return privacy.store.put(subject_id, RECORD, 0).commitment
    finally:
        privacy.close()


def holder_store_state(cluster: Cluster, subject_id: str) -> tuple[str | None, str]:
    """Return the holder's store state and the error code of reading the record. The holder must be stopped."""
    config = cluster.configs[HOLDER]
    privacy = open_node_privacy(config.data_dir, config.privacy_secret_file)
    try:
        try:
            privacy.store.get(subject_id)
            read = "readable"
        except PrivacyError as exc:
            read = exc.code
        return privacy.store.state(subject_id), read
    finally:
        privacy.close()


async def test_report_and_erasure_across_processes(cluster: Cluster) -> None:
    subject_id = random_hex()
    commitment = store_copy(cluster, subject_id)
    cluster.start_all()
    await wait_started(cluster, cluster.members)

    async with cluster.client("bank-1", "bank-1") as bank:
        registered = await bank.submit_and_wait("subject.register", {"subject_id": subject_id, "commitment": commitment})
    # The regulator queries through another member's node: the query is gossiped, committed, then checked there.
    async with cluster.client("regulator-4", "collector-3") as regulator:
        with pytest.raises(XinlianApiError) as unrecorded:
            await regulator.subject_report(subject_id)
        answer = await regulator.query_report(subject_id, query_id="q-regulator")
    async with cluster.client("bank-1", "bank-1") as bank:
        erase = await bank.submit_and_wait("subject.erase", {"erasure_id": "e-proc", "subject_id": subject_id, "mode": "erase", "reason": "subject_request"})
    await wait_converged(cluster, cluster.members, erase["height"])
    assert cluster.terminate(HOLDER) == 0
    state, read = holder_store_state(cluster, subject_id)

    assert registered["receipt"]["ok"], registered["receipt"]
    assert unrecorded.value.code == "query_not_recorded"
    assert answer["basis"] == "regulator"
    assert [entry["query_id"] for entry in answer["report"]["queries"]] == ["q-regulator"]
    assert erase["receipt"]["ok"], erase["receipt"]
    assert state == "erased"
    assert read == "erased"
