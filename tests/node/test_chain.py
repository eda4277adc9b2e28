import logging

import pytest

from node.canonical import parse_json
from node.block import NULL_PAYLOAD, encode_proposal, payload_digest
from node.chain import CRASH_POINTS, Chain, ChainError, SimulatedCrash
from node.contracts import XinlianExecutor
from node.genesis import parse_genesis
from node.merkle import verify_proof
from node.storage import LevelDBStore, MemoryStore
from node.tx import TxVerifier

from tests.node.helpers import CHAIN_ID, GENESIS_TIME_MS, HOUR_MS, make_genesis, make_verified
from tests.node.kv_executor import KeyValueTestExecutor

VERIFIER = TxVerifier(CHAIN_ID)
SECOND_MS = 1000


def put_tx(nonce: str, key: str = "k", value=1, seed_number: int = 1, expires_at: int | None = None):
    expires = expires_at if expires_at is not None else GENESIS_TIME_MS + HOUR_MS
    return make_verified(VERIFIER, seed_number=seed_number, nonce=nonce, payload={"key": key, "value": value}, expires_at=expires)


def typed_tx(nonce: str, tx_type: str, payload=None):
    return make_verified(VERIFIER, nonce=nonce, tx_type=tx_type, payload=payload or {"key": "p"})


def commit(chain: Chain, txs, timestamp_ms: int | None = None, view: int = 0):
    height = chain.height + 1
    timestamp = timestamp_ms if timestamp_ms is not None else GENESIS_TIME_MS + height * SECOND_MS
    payload = encode_proposal(height, timestamp, "m0", txs)
    certificate = {"view": view, "seq": height, "commits": []}
    return chain.commit(height, view, payload_digest(payload), payload, certificate)


def commit_null(chain: Chain):
    height = chain.height + 1
    return chain.commit(height, 1, payload_digest(NULL_PAYLOAD), NULL_PAYLOAD, {"view": 1, "seq": height, "commits": []})


def new_chain(store=None, executor=None, **kwargs) -> Chain:
    return Chain(store or MemoryStore(), make_genesis(), executor or KeyValueTestExecutor(), **kwargs)


def test_genesis_initialized():
    chain = new_chain()
    head = chain.head()
    assert head.height == 0
    assert head.timestamp_ms == GENESIS_TIME_MS
    assert chain.state().get("member/m0") == {"role": "bank"}
    assert head.state_root == chain.state_root()
    assert chain.get_header(0) == head
    assert chain.get_block(0) is None


def test_reopen_keeps_head(tmp_path):
    store = LevelDBStore(tmp_path / "db")
    chain = new_chain(store)
    commit(chain, [put_tx("1")])
    head = chain.head()
    store.close()
    reopened = new_chain(LevelDBStore(tmp_path / "db"))
    assert reopened.head() == head
    assert reopened.state().get("kv/k") == 1


def test_other_genesis_rejected():
    store = MemoryStore()
    new_chain(store)
    data = make_genesis().to_dict()
    data["genesis_time_ms"] += 1
    with pytest.raises(ChainError, match="genesis hash"):
        Chain(store, parse_genesis(data), KeyValueTestExecutor())


def test_commit_block_and_reads():
    chain = new_chain()
    txs = [put_tx("1", "a", 1), put_tx("2", "b", {"x": [1, 2]}, seed_number=2)]
    genesis_hash_value = chain.head().block_hash()
    result = commit(chain, txs)
    header = result.header
    assert header.height == 1
    assert header.prev_hash == genesis_hash_value
    assert header.timestamp_ms == GENESIS_TIME_MS + SECOND_MS
    assert header.proposer == "m0"
    assert chain.head() == header
    assert [r.ok for r in result.receipts] == [True, True]

    assert chain.state().get("kv/b") == {"x": [1, 2]}
    assert chain.state().get("clock") == GENESIS_TIME_MS + SECOND_MS
    assert [(e.tx_id, e.event.type) for e in result.events] == [
        (None, "block.begin"),
        (txs[0].tx_id, "kv.put"),
        (txs[1].tx_id, "kv.put"),
        (None, "block.end"),
    ]
    assert [e["type"] for e in chain.get_events(1)] == ["block.begin", "kv.put", "kv.put", "block.end"]

    location = chain.get_tx(txs[1].tx_id)
    assert (location.height, location.index, location.receipt["ok"]) == (1, 1, True)
    assert chain.get_tx("00" * 32) is None
    block = chain.get_block(1)
    assert block.seq == 1
    assert block.digest == header.payload_digest
    assert chain.get_certificate(1) == {"view": 0, "seq": 1, "commits": []}
    assert [e["body"]["nonce"] for e in chain.get_block_txs(1)] == ["1", "2"]
    assert chain.get_header(2) is None

    value, proof, root = chain.prove("kv/a")
    assert value == 1
    assert root == header.state_root
    assert verify_proof(root, "kv/a", 1, proof)


def test_blocks_range():
    chain = new_chain()
    for n in range(5):
        commit(chain, [put_tx(str(n))])
    assert [b.seq for b in chain.blocks_range(2, 4)] == [2, 3, 4]
    assert [b.seq for b in chain.blocks_range(0, 99)] == [1, 2, 3, 4, 5]
    assert [b.seq for b in chain.blocks_range(1, 5, count_max=2)] == [1, 2]
    assert chain.blocks_range(6, 9) == []


def test_contract_failures_become_receipts(caplog):
    chain = new_chain()
    txs = [
        typed_tx("1", "test.fail"),
        typed_tx("2", "test.partial", {"key": "p"}),
        typed_tx("3", "test.crash"),
        typed_tx("4", "test.reject"),
        put_tx("5", "ok", 5),
    ]
    with caplog.at_level(logging.ERROR, logger="xinlian.chain"):
        result = commit(chain, txs)
    receipts = result.receipts
    assert (receipts[0].ok, receipts[0].error_code, receipts[0].error_details) == (False, "test_rule_broken", {"limit": 3, "rule": "T1"})
    assert (receipts[1].ok, receipts[1].error_code) == (False, "test_rule_broken")
    assert (receipts[2].ok, receipts[2].error_code) == (False, "internal_contract_error")
    assert (receipts[3].ok, receipts[3].error_code) == (False, "test_rejected")
    assert receipts[4].ok
    assert chain.state().get("kv/p") is None
    assert chain.state().get("kv/crash") is None
    assert chain.state().get("kv/ok") == 5
    assert "contract raised" in caplog.text
    assert chain.get_tx(txs[0].tx_id).receipt["error_code"] == "test_rule_broken"


def test_duplicate_nonce_across_blocks():
    chain = new_chain()
    first = put_tx("1", "a", 1)
    commit(chain, [first])
    assert chain.nonce_committed(first.sender, "1")
    again = put_tx("1", "a", 2)
    result = commit(chain, [again, first])
    assert [r.error_code for r in result.receipts] == ["duplicate_nonce", "duplicate_nonce"]
    assert chain.state().get("kv/a") == 1
    assert chain.get_tx(first.tx_id).height == 1


def test_duplicate_nonce_within_block():
    chain = new_chain()
    result = commit(chain, [put_tx("1", "a", 1), put_tx("1", "a", 2)])
    assert [r.ok for r in result.receipts] == [True, False]
    assert result.receipts[1].error_code == "duplicate_nonce"
    assert chain.state().get("kv/a") == 1


def test_expired_and_far_expiry_receipts():
    chain = new_chain()
    block_ms = GENESIS_TIME_MS + SECOND_MS
    txs = [
        put_tx("1", expires_at=block_ms),
        put_tx("2", expires_at=block_ms + HOUR_MS + 1),
        put_tx("3", expires_at=block_ms + HOUR_MS),
    ]
    result = commit(chain, txs, timestamp_ms=block_ms)
    assert [r.error_code for r in result.receipts] == ["expired", "expiry_too_far", None]


def test_replay_entries_pruned_after_expiry():
    chain = new_chain()
    tx = put_tx("1", expires_at=GENESIS_TIME_MS + 5 * SECOND_MS)
    commit(chain, [tx], timestamp_ms=GENESIS_TIME_MS + SECOND_MS)
    assert chain.nonce_committed(tx.sender, "1")
    assert list(chain.state().scan("sys/replay_expiry/"))
    commit(chain, [], timestamp_ms=GENESIS_TIME_MS + 5 * SECOND_MS)
    assert not chain.nonce_committed(tx.sender, "1")
    assert list(chain.state().scan("sys/")) == []
    # The same transaction again is now simply expired, never applied twice.
    result = commit(chain, [tx], timestamp_ms=GENESIS_TIME_MS + 6 * SECOND_MS)
    assert result.receipts[0].error_code == "expired"
    assert chain.get_tx(tx.tx_id).height == 1


def test_null_block_and_effective_time():
    chain = new_chain()
    commit(chain, [], timestamp_ms=GENESIS_TIME_MS + 10 * SECOND_MS)
    result = commit_null(chain)
    assert result.header.timestamp_ms == GENESIS_TIME_MS + 10 * SECOND_MS + 1
    assert result.header.proposer == ""
    assert result.receipts == []
    stale = commit(chain, [], timestamp_ms=GENESIS_TIME_MS)
    assert stale.header.timestamp_ms == GENESIS_TIME_MS + 10 * SECOND_MS + 2
    assert chain.get_block_txs(2) == []


def test_invalid_certified_payload_executes_as_null(caplog):
    chain = new_chain()
    payload = b'{"height":1}'
    with caplog.at_level(logging.ERROR, logger="xinlian.chain"):
        result = chain.commit(1, 0, payload_digest(payload), payload, {})
    assert result.receipts == []
    assert result.header.timestamp_ms == GENESIS_TIME_MS + 1
    assert "null block" in caplog.text


def test_commit_misuse_raises():
    chain = new_chain()
    payload = encode_proposal(2, GENESIS_TIME_MS + 1, "m0", [])
    with pytest.raises(ChainError, match="head is at 0"):
        chain.commit(2, 0, payload_digest(payload), payload, {})
    payload = encode_proposal(1, GENESIS_TIME_MS + 1, "m0", [])
    with pytest.raises(ChainError, match="digest"):
        chain.commit(1, 0, "00" * 32, payload, {})


def test_consensus_records(tmp_path):
    store = LevelDBStore(tmp_path / "db")
    chain = new_chain(store)
    chain.save_consensus([("view", {"view": 3}), ("vote/1", {"digest": "ab"}), ("vote/0", {"digest": "cd"})])
    chain.save_consensus([("vote/0", None)])
    store.close()
    reopened = new_chain(LevelDBStore(tmp_path / "db"))
    assert reopened.load_consensus() == {"view": {"view": 3}, "vote/1": {"digest": "ab"}}


def test_same_blocks_same_roots_on_both_stores(tmp_path):
    blocks = [[put_tx(f"{b}-{i}", f"k{(b * 7 + i) % 5}", b * 10 + i, seed_number=i + 1) for i in range(4)] for b in range(4)]
    chains = [new_chain(MemoryStore()), new_chain(LevelDBStore(tmp_path / "db"))]
    for txs in blocks:
        headers = [commit(chain, txs).header for chain in chains]
        assert headers[0] == headers[1]


def build_reference(block_count: int):
    chain = new_chain()
    blocks = [[put_tx(f"{h}-{i}", f"k{i}", h * 100 + i) for i in range(3)] for h in range(block_count)]
    headers = [commit(chain, txs).header for txs in blocks]
    return blocks, headers


# crash point -> (head height, state height, receipts of block 2 stored) left on disk
PARTIAL_WRITES = {"block": (1, 1, False), "state": (1, 2, False), "head": (2, 2, False)}


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
def test_crash_point_recovers(tmp_path, caplog, crash_point):
    blocks, reference_headers = build_reference(3)
    path = tmp_path / "db"
    store = LevelDBStore(path)
    chain = new_chain(store)
    commit(chain, blocks[0])
    crashing = new_chain(store, crash_after=crash_point)
    with pytest.raises(SimulatedCrash):
        commit(crashing, blocks[1])
    head_height = parse_json(store.get(b"c/head"))["height"]
    state_height = parse_json(store.get(b"c/state_height"))
    receipts_stored = store.get(b"b/r/0000000000000002") is not None
    assert (head_height, state_height, receipts_stored) == PARTIAL_WRITES[crash_point]
    store.close()

    with caplog.at_level(logging.WARNING, logger="xinlian.chain"):
        recovered = new_chain(LevelDBStore(path))
    assert "block 2" in caplog.text
    assert recovered.head() == reference_headers[1]
    assert recovered.state_root() == reference_headers[1].state_root
    assert len(recovered.get_receipts(2)) == 3
    assert recovered.get_tx(blocks[1][0].tx_id).height == 2
    assert commit(recovered, blocks[2]).header == reference_headers[2]


def test_recovery_is_idempotent_across_reopens(tmp_path):
    blocks, reference_headers = build_reference(2)
    path = tmp_path / "db"
    store = LevelDBStore(path)
    commit(new_chain(store), blocks[0])
    with pytest.raises(SimulatedCrash):
        commit(new_chain(store, crash_after="state"), blocks[1])
    store.close()
    for _ in range(2):
        store = LevelDBStore(path)
        assert new_chain(store).head() == reference_headers[1]
        store.close()


def test_damaged_state_refuses_to_open(tmp_path):
    path = tmp_path / "db"
    store = LevelDBStore(path)
    chain = new_chain(store)
    commit(chain, [put_tx("1", "a", 1)])
    store.write([(b"st/n/\x00\x00\x00", b"\x00" * 32)])  # the stored root node
    store.close()
    with pytest.raises(ChainError, match="state root"):
        new_chain(LevelDBStore(path))


def test_invalid_crash_point():
    with pytest.raises(ValueError):
        new_chain(crash_after="index")


def test_with_real_contracts(tmp_path):
    store = LevelDBStore(tmp_path / "db")
    chain = Chain(store, make_genesis(), XinlianExecutor())
    assert chain.state().get("member/m2")["status"] == "active"
    regulator_tx = make_verified(VERIFIER, seed_number=4, nonce="s1", tx_type="member.suspend", payload={"member_id": "m2", "reason": "complaint_upheld"})
    stranger_tx = make_verified(VERIFIER, seed_number=50, nonce="s2", tx_type="member.suspend", payload={"member_id": "m1", "reason": "other"})
    result = commit(chain, [regulator_tx, stranger_tx])
    assert result.receipts[0].ok, result.receipts[0]
    assert result.receipts[1].error_code == "unknown_sender"
    assert chain.state().get("member/m2")["status"] == "suspended"
    assert "member.suspended" in [e.event.type for e in result.events]
    head = chain.head()
    store.close()
    reopened = Chain(LevelDBStore(tmp_path / "db"), make_genesis(), XinlianExecutor())
    assert reopened.head() == head


def test_consensus_certified_block_round_trip():
    from consensus.messages import CertifiedBlock, CommitCertificate

    chain = new_chain()
    payload = encode_proposal(1, GENESIS_TIME_MS + SECOND_MS, "m0", [put_tx("1")])
    digest = payload_digest(payload)
    block = CertifiedBlock(1, 0, digest, payload, CommitCertificate(0, 1, digest, ()))
    result = chain.commit_certified(block)
    assert result.header.payload_digest == digest
    stored = chain.get_block(1)
    assert CertifiedBlock.from_wire(stored.to_wire()) == block


def test_damaged_head_refuses_to_open(tmp_path):
    path = tmp_path / "db"
    store = LevelDBStore(path)
    chain = new_chain(store)
    commit(chain, [put_tx("1")])
    store.write([(b"b/h/0000000000000001", None)])
    store.close()
    with pytest.raises(ChainError, match="head record"):
        new_chain(LevelDBStore(path))


def test_genesis_rejected_by_contracts():
    data = make_genesis().to_dict()
    data["members"] = [m for m in data["members"] if m["role"] != "regulator"]
    data["validators"] = [m["member_id"] for m in data["members"]]
    with pytest.raises(ChainError, match="rejected the genesis"):
        Chain(MemoryStore(), parse_genesis(data), XinlianExecutor())


class SyncRecordingStore(MemoryStore):
    """A MemoryStore that records the sync flag of every write."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[bool] = []

    def write(self, ops, sync: bool = True) -> None:
        self.syncs.append(sync)
        super().write(ops, sync)


def test_commit_unsynced_then_flush_syncs_once():
    store = SyncRecordingStore()
    chain = new_chain(store)
    store.syncs.clear()
    for number in range(3):
        height = chain.height + 1
        payload = encode_proposal(height, GENESIS_TIME_MS + height * SECOND_MS, "m0", [put_tx(f"u{number}", value=number)])
        chain.commit(height, 0, payload_digest(payload), payload, {"view": 0, "seq": height, "commits": []}, sync=False)
    assert store.syncs == [False, False, False]
    chain.flush()
    assert store.syncs == [False, False, False, True]
    reopened = Chain(store, make_genesis(), KeyValueTestExecutor())
    assert reopened.height == 3
    assert reopened.state().get("kv/k") == 2
