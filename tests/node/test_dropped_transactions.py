"""Transactions that leave the mempool uncommitted are reported as rejected with a reason, not as unknown."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from node import mempool as mempool_module
from node.client import TransactionRejected, XinlianClient
from node.daemon import Node
from node.keys import load_key_file
from node.localnet import InitOptions, init_network
from node.mempool import Mempool
from tests.node.helpers import GENESIS_TIME_MS
from tests.node.test_daemon import subject
from tests.node.test_mempool import tx


def test_drop_expired_records_reason():
    pool = Mempool()
    early = tx(1, "a", expires_at=GENESIS_TIME_MS + 10)
    pool.add(early)
    pool.drop_expired(GENESIS_TIME_MS + 10)
    assert pool.dropped[early.tx_id].startswith("expired:")


def test_same_nonce_loser_recorded():
    pool = Mempool()
    loser = tx(1, "a", payload={"v": 1})
    winner = tx(1, "a", payload={"v": 2})
    pool.add(loser)
    assert pool.remove_included([(winner.tx_id, winner.sender, winner.nonce)]) == 1
    assert pool.dropped[loser.tx_id].startswith("duplicate_nonce:")
    assert winner.tx_id in pool.dropped[loser.tx_id]


def test_included_tx_not_recorded():
    pool = Mempool()
    included = tx(1, "a")
    pool.add(included)
    assert pool.remove_included([(included.tx_id, included.sender, included.nonce)]) == 1
    assert included.tx_id not in pool.dropped


def test_proposer_leftover_recorded():
    pool = Mempool()
    left_out = tx(1, "a")
    pool.add(left_out)
    pool.reap(10, 10**9)
    assert pool.remove_committed([(left_out.tx_id, left_out.sender, left_out.nonce)]) == 1
    assert pool.dropped[left_out.tx_id].startswith("expired:")


def test_dropped_record_bounded(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(mempool_module, "DROPPED_REMEMBERED_MAX", 3)
    pool = Mempool()
    vtxs = [tx(1, str(n), expires_at=GENESIS_TIME_MS + n + 1) for n in range(5)]
    for vtx in vtxs:
        pool.add(vtx)
    pool.drop_expired(GENESIS_TIME_MS + 10)
    assert len(pool.dropped) == 3
    assert vtxs[0].tx_id not in pool.dropped


async def test_expired_tx_reported_rejected(tmp_path: Path) -> None:
    # A block interval of a minute keeps the single transaction in the mempool until it expires.
    settings = {"tick_ms": 10, "block_interval_ms": 60_000, "view_timeout_ticks": 50}
    directory = tmp_path / "net"
    configs = init_network(directory, InitOptions(nodes=2, roles=("bank", "regulator"), node_settings=settings, validator_count=1))
    node = Node(configs[0])
    await node.start()
    try:
        seed = load_key_file(directory / "clients" / "bank-1.json").seed
        url = f"http://127.0.0.1:{node.config.api_port}"
        async with XinlianClient(url, seed, chain_id="xinlian-local", language="en", timeout_seconds=10) as client:
            tx_id = await client.submit(client.build_transaction("subject.register", subject(), expires_in_ms=200))
            started_s = time.monotonic()
            with pytest.raises(TransactionRejected) as rejected:
                await client.wait_for_receipt(tx_id, timeout_seconds=10)
            waited_s = time.monotonic() - started_s
            record = await client.get_transaction(tx_id)
    finally:
        await node.stop()

    assert "expired" in str(rejected.value)
    assert waited_s < 3
    assert record["status"] == "rejected"
    assert record["reason"].startswith("expired:")
