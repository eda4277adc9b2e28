"""Smoke tests of the benchmark harness: the bulk loader's state, the book cases and the report. No timing checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS_DIR))

import block_path  # noqa: E402
import book_size  # noqa: E402
import bulk_load  # noqa: E402
import common  # noqa: E402
import report  # noqa: E402
from node.contracts.executor import XinlianExecutor  # noqa: E402
from node.execution import BlockContext  # noqa: E402
from node.state import StateStore, WorkingState  # noqa: E402
from node.storage import LevelDBStore, MemoryStore  # noqa: E402

LOAN_COUNT = 30
DUE_TODAY = 6


def replay_root(loan_count: int, due_today: int) -> str:
    """State root of the same book built in one WorkingState and hashed by StateStore.compute_updates."""
    layout = bulk_load.layout_for(loan_count, due_today)
    state_store = StateStore(MemoryStore())
    working = WorkingState(state_store)
    executor = XinlianExecutor()
    executor.init_genesis(working, bulk_load.genesis(layout.registration_time_ms))
    ctx = BlockContext(bulk_load.CHAIN_ID, 1, layout.registration_time_ms, "bank-1", bulk_load.UTC_OFFSET_MINUTES)
    rng = bulk_load.random.Random(1)
    for index in range(layout.subject_count):
        for tx in bulk_load.subject_transactions(layout, index, rng):
            assert executor.deliver_tx(working, ctx, tx).ok
    _, root = state_store.compute_updates(working.changes())
    return root


@pytest.fixture
def loaded_book(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk_load, "CHUNK_LOANS", 8)  # several chunks even for a small book
    store = LevelDBStore(tmp_path / "book")
    layout, root = bulk_load.load_book(store, LOAN_COUNT, DUE_TODAY)
    yield store, layout, root
    store.close()


def test_bulk_load_root_matches_incremental(loaded_book):
    _, _, root = loaded_book
    assert root == replay_root(LOAN_COUNT, DUE_TODAY)


def test_bulk_load_tree_matches_state_store(loaded_book):
    store, _, root = loaded_book
    assert StateStore(store).root() == root


def test_rollover_marks_due_loans_overdue(loaded_book):
    store, layout, _ = loaded_book
    cases = book_size.BookCases(StateStore(store), layout)
    working, _ = cases.rollover_step()
    overdue_keys = [key for key, _ in working.scan("overdue/")]
    assert len(overdue_keys) == DUE_TODAY


def test_steady_step_changes_nothing(loaded_book):
    store, layout, _ = loaded_book
    working = WorkingState(StateStore(store))
    XinlianExecutor().begin_block(working, book_size.block_context(layout, layout.registration_time_ms + 60_000))
    assert working.changes() == {}


def test_book_cases_run(loaded_book):
    store, layout, _ = loaded_book
    cases = book_size.BookCases(StateStore(store), layout)
    cases.loan_register_tx(1)
    cases.credit_reports(bulk_load.random.Random(3))


def test_spread_median_min_max():
    figure = common.spread([3.0, 1.0, 2.0])
    assert (figure["median"], figure["min"], figure["max"], figure["runs"]) == (2.0, 1.0, 3.0, 3)


def test_report_without_results_says_not_measured():
    empty = {name: None for name in ("ceilings", "book_size", "plenum", "network")}
    assert "not measured" in report.render(empty, "en")
    assert "未测量" in report.render(empty, "zh-CN")


def test_report_shows_book_ratio():
    def figure(value: float) -> dict:
        return {"cpu_ms": common.spread([value] * 3), "wall_ms": common.spread([value] * 3)}

    books = {
        size: {"book": {"load_cpu_s": 1.0}, **{name: figure(value) for name in book_size.CASE_NAMES}}
        for size, value in (("10000", 1.0), ("1000000", 3.0))
    }
    result = {
        "command": "python benchmarks/book_size.py",
        "measured_at": "2026-12-04T00:00:00Z",
        "machine": common.machine_info(),
        "due_today_count": 1000,
        "books": books,
        "flatness": book_size.flatness(books),
    }
    text = report.render({"ceilings": None, "book_size": result, "plenum": None, "network": None}, "en")
    assert "3.0 (not flat)" in text


def test_block_path_measures_every_phase():
    result = block_path.measure_once(subject_count=30, with_profile=True)
    assert result["transactions"] == 120
    assert result["blocks"] == 1
    for phase in ("admission_us_per_tx", "proposal_check_us_per_tx", "execution_us_per_tx"):
        assert result[phase] > 0
    assert abs(sum(result["execution_profile_groups"].values()) - 1) < 0.01
    assert result["execution_profile_top"][0]["share"] > 0


def test_report_shows_block_path_budget():
    result = {
        "benchmark": "block_path",
        "command": "python benchmarks/block_path.py",
        "measured_at": "2026-01-01T00:00:00Z",
        "run_id": "r1",
        "machine": {"load_average_1m_at_start": 0.1, "nproc": 2},
        "subjects": 30,
        "block_tx_count": 400,
        "cpu_count": 2,
        **{name: common.spread([100.0]) for name in ("admission_us_per_tx", "proposal_check_us_per_tx", "execution_us_per_tx", "leveldb_threads_us_per_tx")},
        "total_us_per_tx": common.spread([400.0]),
        "execution_profile_groups": {"contracts": 0.5, "merkle tree and state": 0.5},
        "execution_profile_top": [{"function": "state.py:1(f)", "share": 0.2}],
    }
    ceilings = {"verification_ceiling_tx_per_s": {"4": 8000.0}}
    lines = "\n".join(report.section_block_path(result, ceilings, None, report.TEXT["en"]))
    # The budget is 2 cores x 1e6 us / (4 nodes x 4,000 tx/s) = 125 us, and the path takes 400 us.
    assert "125 µs" in lines
    assert "3.2 times the budget" in lines
