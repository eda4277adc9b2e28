import random

import pytest

from node.canonical import canonical_bytes
from node.merkle import (
    BUCKET_COUNT,
    EMPTY_HASHES,
    EMPTY_ROOT,
    TREE_DEPTH,
    MerkleProof,
    bucket_hash,
    bucket_of,
    node_hash,
    value_hash,
    verify_proof,
)
from node.state import ReadOnlyState, StateError, StateStore, WorkingState
from node.storage import LevelDBStore, MemoryStore


def apply(state_store: StateStore, kv_store, changes: dict) -> str:
    encoded = {key: (canonical_bytes(value) if value is not None else None) for key, value in changes.items()}
    ops, root = state_store.compute_updates(encoded)
    kv_store.write(ops)
    assert state_store.root() == root
    return root


def reference_root(entries: dict) -> str:
    """Recompute the root from scratch, following the construction in node.merkle's docstring."""
    buckets: dict[int, list] = {}
    for key, value in entries.items():
        buckets.setdefault(bucket_of(key), []).append((key.encode("utf-8"), value_hash(canonical_bytes(value))))
    level = [bucket_hash(sorted(buckets.get(index, []))) for index in range(BUCKET_COUNT)]
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0].hex()


def test_empty_root():
    store = StateStore(MemoryStore())
    assert store.root() == EMPTY_ROOT
    assert reference_root({}) == EMPTY_ROOT


def test_root_matches_reference_construction():
    kv = MemoryStore()
    store = StateStore(kv)
    entries = {f"loan/{i}": {"principal": i * 100, "名": "贷款"} for i in range(50)}
    apply(store, kv, entries)
    assert store.root() == reference_root(entries)
    apply(store, kv, {"loan/3": None, "loan/4": {"principal": 1}})
    del entries["loan/3"]
    entries["loan/4"] = {"principal": 1}
    assert store.root() == reference_root(entries)


def test_root_independent_of_insertion_order():
    entries = {f"k{i:03d}": [i, "v"] for i in range(200)}
    roots = set()
    for seed in range(3):
        kv = MemoryStore()
        store = StateStore(kv)
        keys = sorted(entries)
        random.Random(seed).shuffle(keys)
        batch_size = [1, 7, 200][seed]
        for start in range(0, len(keys), batch_size):
            apply(store, kv, {key: entries[key] for key in keys[start : start + batch_size]})
        roots.add(store.root())
    assert len(roots) == 1


def test_delete_all_returns_to_empty():
    kv = MemoryStore()
    store = StateStore(kv)
    apply(store, kv, {f"x{i}": i for i in range(20)})
    assert store.root() != EMPTY_ROOT
    apply(store, kv, {f"x{i}": None for i in range(20)})
    assert store.root() == EMPTY_ROOT
    assert list(kv.iterate(b"st/")) == []


def test_update_touches_only_changed_paths():
    kv = MemoryStore()
    store = StateStore(kv)
    apply(store, kv, {f"x{i}": i for i in range(1000)})
    ops, _ = store.compute_updates({"x5": canonical_bytes(99)})
    # value, leaf, and one node per level 16..0
    assert len(ops) == 2 + TREE_DEPTH + 1


def test_proof_of_value_and_absence():
    kv = MemoryStore()
    store = StateStore(kv)
    root = apply(store, kv, {f"case/{i}": {"n": i} for i in range(100)})
    value, proof = store.prove("case/42")
    assert value == {"n": 42}
    assert verify_proof(root, "case/42", {"n": 42}, proof)
    assert not verify_proof(root, "case/42", {"n": 43}, proof)
    assert not verify_proof(root, "case/42", None, proof)
    missing_value, missing_proof = store.prove("case/none")
    assert missing_value is None
    assert verify_proof(root, "case/none", None, missing_proof)
    assert not verify_proof(root, "case/none", {"n": 1}, missing_proof)


def test_proof_round_trips_through_json():
    kv = MemoryStore()
    store = StateStore(kv)
    root = apply(store, kv, {"a": 1, "b": 2})
    _, proof = store.prove("a")
    assert verify_proof(root, "a", 1, MerkleProof.from_dict(proof.to_dict()))


def test_tampered_proofs_fail():
    kv = MemoryStore()
    store = StateStore(kv)
    root = apply(store, kv, {f"k{i}": i for i in range(300)})
    _, proof = store.prove("k7")
    assert verify_proof(root, "k7", 7, proof)
    siblings = list(proof.siblings)
    siblings[3] = "00" * 32
    assert not verify_proof(root, "k7", 7, MerkleProof(proof.bucket, proof.leaves, tuple(siblings)))
    forged_leaves = tuple((key, value_hash(canonical_bytes(8)).hex()) if key == "k7" else (key, h) for key, h in proof.leaves)
    assert not verify_proof(root, "k7", 8, MerkleProof(proof.bucket, forged_leaves, proof.siblings))
    without_key = tuple(leaf for leaf in proof.leaves if leaf[0] != "k7")
    assert not verify_proof(root, "k7", None, MerkleProof(proof.bucket, without_key, proof.siblings))
    assert not verify_proof(root, "k7", 7, MerkleProof((proof.bucket + 1) % BUCKET_COUNT, proof.leaves, proof.siblings))
    assert not verify_proof(root, "k7", 7, MerkleProof(proof.bucket, proof.leaves, proof.siblings[:-1]))
    assert not verify_proof(EMPTY_ROOT, "k7", 7, proof)
    _, other_proof = store.prove("k8")
    assert not verify_proof(root, "k7", 7, other_proof)


def test_malformed_proof_dict():
    with pytest.raises(ValueError):
        MerkleProof.from_dict({"bucket": 1})


def test_empty_hashes_chain():
    assert EMPTY_HASHES[TREE_DEPTH] == bucket_hash([])
    assert EMPTY_HASHES[0].hex() == EMPTY_ROOT


def test_state_store_on_leveldb(tmp_path):
    kv = LevelDBStore(tmp_path / "db")
    store = StateStore(kv)
    entries = {f"m/{i}": {"i": i} for i in range(30)}
    root = apply(store, kv, entries)
    kv.close()
    reopened = StateStore(LevelDBStore(tmp_path / "db"))
    assert reopened.root() == root == reference_root(entries)
    assert [key for key, _ in ReadOnlyState(reopened).scan("m/", "m/10", "m/2")] == ["m/10", "m/11", "m/12", "m/13", "m/14", "m/15", "m/16", "m/17", "m/18", "m/19"]


def make_working() -> tuple[MemoryStore, StateStore, WorkingState]:
    kv = MemoryStore()
    store = StateStore(kv)
    apply(store, kv, {"a/1": 1, "a/3": 3, "a/5": 5, "b/1": "b"})
    return kv, store, WorkingState(store)


def test_working_state_overlay_reads():
    _, _, working = make_working()
    working.put("a/2", 2)
    working.put("a/3", 33)
    working.delete("a/5")
    assert working.get("a/3") == 33
    assert working.get("a/5") is None
    assert working.get("zzz") is None
    assert list(working.scan("a/")) == [("a/1", 1), ("a/2", 2), ("a/3", 33)]
    assert list(working.scan("a/", start="a/2", end="a/3")) == [("a/2", 2)]
    assert list(working.scan("")) == [("a/1", 1), ("a/2", 2), ("a/3", 33), ("b/1", "b")]


def test_working_state_returns_copies():
    _, _, working = make_working()
    working.put("obj", {"list": [1]})
    value = working.get("obj")
    value["list"].append(2)
    assert working.get("obj") == {"list": [1]}


def test_child_merge_and_discard():
    _, store, working = make_working()
    child = working.child()
    child.put("a/9", 9)
    child.delete("a/1")
    assert working.get("a/9") is None
    assert child.get("a/1") is None
    assert list(key for key, _ in child.scan("a/")) == ["a/3", "a/5", "a/9"]
    child.merge()
    assert working.get("a/9") == 9
    dropped = working.child()
    dropped.put("a/10", 10)
    grandchild = dropped.child()
    grandchild.put("a/11", 11)
    grandchild.merge()
    assert dropped.get("a/11") == 11
    del dropped
    assert working.get("a/10") is None
    assert working.get("a/11") is None
    assert list(working.changes()) == ["a/1", "a/9"]
    assert store.get_bytes("a/9") is None


def test_changes_commit_to_store():
    kv, store, working = make_working()
    working.put("c", [1, 2])
    working.delete("a/1")
    root = apply_changes(store, kv, working)
    expected = {"a/3": 3, "a/5": 5, "b/1": "b", "c": [1, 2]}
    assert root == reference_root(expected)


def apply_changes(store: StateStore, kv, working: WorkingState) -> str:
    ops, root = store.compute_updates(working.changes())
    kv.write(ops)
    return root


@pytest.mark.parametrize("key", ["", 5, None, "x" * 1025])
def test_invalid_keys_rejected(key):
    _, _, working = make_working()
    with pytest.raises(StateError):
        working.put(key, 1)


def test_invalid_values_rejected():
    _, _, working = make_working()
    with pytest.raises(StateError):
        working.put("k", None)
    with pytest.raises(ValueError):
        working.put("k", 1.5)


def test_read_only_state():
    _, store, _ = make_working()
    state = ReadOnlyState(store)
    assert state.get("a/1") == 1
    with pytest.raises(StateError):
        state.put("a/1", 2)
    with pytest.raises(StateError):
        state.delete("a/1")
    scratch = state.child()
    scratch.put("a/1", 2)
    assert scratch.get("a/1") == 2
    assert state.get("a/1") == 1


def test_top_level_merge_rejected():
    _, _, working = make_working()
    with pytest.raises(StateError):
        working.merge()


def test_working_state_matches_dict_model():
    """Random puts, deletes and savepoints on nested overlays give the same view as a plain dict."""
    for seed in range(20):
        rng = random.Random(seed)
        kv = MemoryStore()
        store = StateStore(kv)
        base = {f"k{rng.randrange(30):02d}": rng.randrange(100) for _ in range(15)}
        apply(store, kv, base)
        working = WorkingState(store)
        model = dict(base)
        for _ in range(10):
            child = working.child()
            child_model = dict(model)
            for _ in range(20):
                key = f"k{rng.randrange(30):02d}"
                if rng.random() < 0.3:
                    child.delete(key)
                    child_model.pop(key, None)
                else:
                    child.put(key, rng.randrange(100))
                    child_model[key] = child.get(key)
            start, end = sorted([f"k{rng.randrange(30):02d}", f"k{rng.randrange(30):02d}"])
            expected_range = [(k, child_model[k]) for k in sorted(child_model) if start <= k < end]
            assert list(child.scan("k", start, end)) == expected_range, seed
            if rng.random() < 0.5:
                child.merge()
                model = child_model
            assert list(working.scan("")) == sorted(model.items()), seed
        root = apply_changes(store, kv, working)
        fresh_kv = MemoryStore()
        assert root == apply(StateStore(fresh_kv), fresh_kv, model), seed
