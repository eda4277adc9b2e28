"""WorkingState: scans over pending writes and nested savepoints stay sorted and exact."""

import random

from node.state import StateStore, WorkingState
from node.storage import MemoryStore
from tests.node.test_state import apply, reference_root


def dict_scan(model: dict, prefix: str, start, end) -> list:
    return [
        (key, model[key])
        for key in sorted(model)
        if key.startswith(prefix) and (start is None or key >= start) and (end is None or key < end)
    ]


PREFIXES = ["", "a", "a/", "a/1", "b", "é", chr(0x10FFFF), "a" + chr(0x10FFFF)]
KEY_POOL = ["a", "a/", "a/0", "a/1", "a/10", "a/1x", "a/2", "ab", "b", "b/1", "é", "é/中", "中文", chr(0x10FFFF), chr(0x10FFFF) * 2, "a" + chr(0x10FFFF), "a" + chr(0x10FFFF) + "z"]


def test_scan_with_interleaved_savepoints():
    """Scans over nested savepoints with interleaved puts and deletes equal a sorted dict filter."""
    for seed in range(30):
        rng = random.Random(seed)
        kv = MemoryStore()
        store = StateStore(kv)
        base = {key: rng.randrange(50) for key in rng.sample(KEY_POOL, 8)}
        apply(store, kv, base)
        top = WorkingState(store)
        stack = [(top, dict(base))]
        for _ in range(60):
            state, model = stack[-1]
            action = rng.random()
            key = rng.choice(KEY_POOL)
            if action < 0.35:
                state.put(key, rng.randrange(50))
                model[key] = state.get(key)
            elif action < 0.55:
                state.delete(key)
                model.pop(key, None)
            elif action < 0.7:
                stack.append((state.child(), dict(model)))
            elif action < 0.85 and len(stack) > 1:
                child, child_model = stack.pop()
                child.merge()
                stack[-1] = (stack[-1][0], child_model)
            elif len(stack) > 1:
                stack.pop()
            state, model = stack[-1]
            prefix = rng.choice(PREFIXES)
            start, end = rng.choice([(None, None), (rng.choice(KEY_POOL), None), (None, rng.choice(KEY_POOL)), tuple(sorted(rng.sample(KEY_POOL, 2)))])
            assert list(state.scan(prefix, start, end)) == dict_scan(model, prefix, start, end), (seed, prefix, start, end)
        while len(stack) > 1:
            child, child_model = stack.pop()
            child.merge()
            stack[-1] = (stack[-1][0], child_model)
        top_model = stack[0][1]
        assert list(top.scan("")) == sorted(top_model.items()), seed
        assert list(top.changes()) == sorted(top.changes()), seed
        ops, root = store.compute_updates(top.changes())
        kv.write(ops)
        assert root == reference_root(top_model), seed


def test_large_merge_keeps_order():
    """A merge that brings many new keys into the parent keeps scans and changes sorted."""
    store = StateStore(MemoryStore())
    parent = WorkingState(store)
    for i in range(0, 300, 3):
        parent.put(f"k/{i:04d}", i)
    child = parent.child()
    for i in range(300):
        if i % 7 == 0:
            child.delete(f"k/{i:04d}")
        else:
            child.put(f"k/{i:04d}", -i)
    child.merge()
    expected = [(f"k/{i:04d}", -i) for i in range(300) if i % 7 != 0]
    assert list(parent.scan("k/")) == expected
    assert list(parent.changes()) == [f"k/{i:04d}" for i in range(300)]
    assert list(parent.scan("k/", "k/0100", "k/0110")) == [item for item in expected if "k/0100" <= item[0] < "k/0110"]


def test_scan_sees_snapshot_of_keys_at_start():
    """Keys written while a scan runs do not join it, but a rewritten key shows its latest value."""
    store = StateStore(MemoryStore())
    working = WorkingState(store)
    for i in range(5):
        working.put(f"s/{i}", i)
    seen = []
    for key, value in working.scan("s/"):
        seen.append((key, value))
        working.put("s/9", 9)
        working.put("s/4", 40)
    assert seen == [("s/0", 0), ("s/1", 1), ("s/2", 2), ("s/3", 3), ("s/4", 40)]
    assert working.get("s/9") == 9
