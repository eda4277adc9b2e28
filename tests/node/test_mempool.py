import pytest

from node.mempool import Mempool, MempoolError, MempoolLimits
from node.tx import TxVerifier

from tests.node.helpers import CHAIN_ID, GENESIS_TIME_MS, make_verified

VERIFIER = TxVerifier(CHAIN_ID)


def tx(sender: int, nonce: str, **kwargs):
    return make_verified(VERIFIER, seed_number=sender, nonce=nonce, **kwargs)


def add_error(pool: Mempool, vtx) -> str:
    with pytest.raises(MempoolError) as info:
        pool.add(vtx)
    return info.value.code


def test_add_and_size():
    pool = Mempool()
    first = tx(1, "a")
    pool.add(first)
    assert len(pool) == 1
    assert pool.size_bytes == first.size_bytes
    assert first.tx_id in pool
    assert pool.get(first.tx_id) is first
    assert pool.has_nonce(first.sender, "a")


def test_duplicate_tx_rejected():
    pool = Mempool()
    pool.add(tx(1, "a"))
    assert add_error(pool, tx(1, "a")) == "duplicate_tx"


def test_duplicate_nonce_rejected():
    pool = Mempool()
    pool.add(tx(1, "a", payload={"v": 1}))
    assert add_error(pool, tx(1, "a", payload={"v": 2})) == "duplicate_nonce"
    pool.add(tx(2, "a"))  # same nonce, other sender


def test_count_bound():
    pool = Mempool(MempoolLimits(tx_count_max=3))
    for nonce in "abc":
        pool.add(tx(1, nonce))
    assert add_error(pool, tx(2, "d")) == "mempool_full"
    assert len(pool) == 3


def test_bytes_bound():
    one = tx(1, "a")
    pool = Mempool(MempoolLimits(size_max_bytes=2 * one.size_bytes))
    pool.add(one)
    pool.add(tx(1, "b"))
    assert add_error(pool, tx(1, "c")) == "mempool_full"


def test_sender_quota():
    pool = Mempool(MempoolLimits(sender_tx_max=2))
    pool.add(tx(1, "a"))
    pool.add(tx(1, "b"))
    assert add_error(pool, tx(1, "c")) == "sender_quota"
    pool.add(tx(2, "a"))


def test_reap_round_robin_across_senders():
    pool = Mempool()
    for nonce in ["a1", "a2", "a3", "a4"]:
        pool.add(tx(1, nonce))
    pool.add(tx(2, "b1"))
    pool.add(tx(2, "b2"))
    pool.add(tx(3, "c1"))
    reaped = pool.reap(tx_max=5, size_max_bytes=10**9)
    assert [v.nonce for v in reaped] == ["a1", "b1", "c1", "a2", "b2"]
    assert [v.nonce for v in pool.reap(tx_max=10, size_max_bytes=10**9)] == ["a3", "a4"]
    assert pool.reap(tx_max=10, size_max_bytes=10**9) == []
    assert len(pool) == 7
    assert pool.in_flight_count == 7


def test_reap_rotates_between_calls():
    pool = Mempool()
    for nonce in ["a1", "a2"]:
        pool.add(tx(1, nonce))
    for nonce in ["b1", "b2"]:
        pool.add(tx(2, nonce))
    assert [v.nonce for v in pool.reap(1, 10**9)] == ["a1"]
    assert [v.nonce for v in pool.reap(1, 10**9)] == ["b1"]
    assert [v.nonce for v in pool.reap(1, 10**9)] == ["a2"]


def test_reap_respects_bytes():
    pool = Mempool()
    first = tx(1, "a")
    pool.add(first)
    pool.add(tx(2, "b"))
    reaped = pool.reap(tx_max=10, size_max_bytes=first.size_bytes + 1)
    assert len(reaped) == 1
    assert pool.ready_count() == 1


def test_remove_committed():
    pool = Mempool()
    first, second = tx(1, "a"), tx(1, "b")
    pool.add(first)
    pool.add(second)
    pool.reap(1, 10**9)
    assert pool.remove_committed([(first.tx_id, first.sender, first.nonce)]) == 1
    assert len(pool) == 1
    assert pool.in_flight_count == 0
    assert pool.size_bytes == second.size_bytes
    assert pool.remove_committed([(first.tx_id, first.sender, first.nonce)]) == 0


def test_remove_committed_drops_same_nonce_conflict():
    pool = Mempool()
    pending = tx(1, "a", payload={"v": 1})
    committed = tx(1, "a", payload={"v": 2})
    pool.add(pending)
    assert pool.remove_committed([(committed.tx_id, committed.sender, committed.nonce)]) == 1
    assert len(pool) == 0
    assert not pool.has_nonce(pending.sender, "a")


def test_drop_expired():
    pool = Mempool()
    early = tx(1, "a", expires_at=GENESIS_TIME_MS + 10)
    late = tx(1, "b", expires_at=GENESIS_TIME_MS + 20)
    pool.add(late)
    pool.add(early)
    assert pool.drop_expired(GENESIS_TIME_MS + 9) == []
    assert pool.drop_expired(GENESIS_TIME_MS + 10) == [early.tx_id]
    assert pool.drop_expired(GENESIS_TIME_MS + 30) == [late.tx_id]
    assert len(pool) == 0
    assert pool.size_bytes == 0


def test_requeue_restores_arrival_order():
    pool = Mempool()
    for nonce in ["a1", "a2", "a3"]:
        pool.add(tx(1, nonce))
    assert [v.nonce for v in pool.reap(2, 10**9)] == ["a1", "a2"]
    assert pool.requeue_in_flight() == 2
    assert [v.nonce for v in pool.reap(10, 10**9)] == ["a1", "a2", "a3"]


def test_no_growth_under_churn():
    pool = Mempool(MempoolLimits(tx_count_max=5))
    vtxs = [tx(n % 4 + 1, str(n)) for n in range(3000)]
    for vtx in vtxs:
        pool.add(vtx)
        pool.reap(1, 10**9)
        pool.remove_committed([(vtx.tx_id, vtx.sender, vtx.nonce)])
    assert len(pool) == 0
    assert len(pool._expiry_heap) <= 1024 + 1
    assert not pool._ready
    assert not pool._in_flight
    assert not pool._sender_counts
    assert not pool._arrival
