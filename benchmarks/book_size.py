"""Book-size benchmark: per-block and per-query costs with 10k, 100k and 1M loans in state.

For each book (built by bulk_load.py into LevelDB, cached between runs) it measures,
each on a fresh WorkingState over the committed store so runs do not disturb one another:
- steady_step: `begin_block` on a block where nothing falls due (most blocks of a day);
- rollover_step: `begin_block` on the first block of the next day, where a fixed
  number of loans (1,000 by default) become overdue, the same count in every book;
- rollover_state_root: `StateStore.compute_updates` on the changes of that step;
- loan_register_tx: `deliver_tx` of one `loan.register` plus `compute_updates` of its changes;
- credit_report: `queries.credit_report` of a subject with two loans.

Times are per call, in ms of wall time and of this process's CPU time. If the
largest book's median CPU time is over FLAT_RATIO_MAX times the smallest's, the
cost is called not flat and a cProfile of that case on the largest book is stored.

Usage: .venv/bin/python benchmarks/book_size.py [--loans 10000 100000 1000000] [--out DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import time
from pathlib import Path
from typing import Any, Callable

from bulk_load import BOOK_CACHE_DIR_DEFAULT, CHAIN_ID, UTC_OFFSET_MINUTES, BookLayout, ensure_book, make_transaction, member_key
from common import OUT_DIR_DEFAULT, REPEATS_MIN, command_line, machine_info, spread, utc_timestamp, write_result
from node.contracts import queries
from node.contracts.executor import XinlianExecutor
from node.execution import BlockContext
from node.state import ReadOnlyState, StateStore, WorkingState
from node.storage import LevelDBStore
from workload import loan_register_payload

LOAN_COUNTS_DEFAULT = (10_000, 100_000, 1_000_000)
DUE_TODAY_COUNT = 1_000
FLAT_RATIO_MAX = 1.5
DUE_COUNTS_SCALING = (250, 500, 1_000, 2_000)
REPORT_QUERIES_PER_RUN = 200
STEADY_STEPS_PER_RUN = 200

Case = Callable[[], Callable[[], Any]]  # returns the operation to time, after any untimed setup


def timed_ms(operation: Callable[[], Any]) -> dict[str, float]:
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    operation()
    return {"wall_ms": (time.perf_counter() - wall_started) * 1000, "cpu_ms": (time.process_time() - cpu_started) * 1000}


def per_call(samples: list[dict[str, float]], calls: int) -> dict[str, Any]:
    return {name: spread([sample[name] / calls for sample in samples]) for name in ("wall_ms", "cpu_ms")}


def block_context(layout: BookLayout, time_ms: int, height: int = 2) -> BlockContext:
    return BlockContext(chain_id=CHAIN_ID, height=height, time_ms=time_ms, proposer="bank-1", utc_offset_minutes=UTC_OFFSET_MINUTES)


class BookCases:
    """The timed operations on one loaded book."""

    def __init__(self, state_store: StateStore, layout: BookLayout) -> None:
        self.state_store = state_store
        self.layout = layout
        self.executor = XinlianExecutor()

    def steady_step(self) -> None:
        ctx = block_context(self.layout, self.layout.registration_time_ms + 60_000)
        for _ in range(STEADY_STEPS_PER_RUN):
            self.executor.begin_block(WorkingState(self.state_store), ctx)

    def rollover_step(self) -> tuple[WorkingState, int]:
        working = WorkingState(self.state_store)
        events = self.executor.begin_block(working, block_context(self.layout, self.layout.step_time_ms))
        return working, len(events)

    def loan_register_tx(self, serial: int) -> None:
        working = WorkingState(self.state_store)
        ctx = block_context(self.layout, self.layout.registration_time_ms + 120_000)
        subject_index = serial % self.layout.subject_count
        bank = f"bank-{subject_index % 4 + 1}"
        payload = loan_register_payload(10_000_000 + serial, subject_index, self.layout.registration_date, random.Random(serial))
        tx = make_transaction("loan.register", member_key(bank), f"bench-l{serial}", payload, ctx.time_ms)
        receipt = self.executor.deliver_tx(working, ctx, tx)
        if not receipt.ok:
            raise RuntimeError(f"benchmark loan.register was rejected: {receipt.error_code} {receipt.error_details}")
        self.state_store.compute_updates(working.changes())

    def credit_reports(self, rng: random.Random) -> None:
        state = ReadOnlyState(self.state_store)
        for _ in range(REPORT_QUERIES_PER_RUN):
            subject_id = self.layout.subject_id(rng.randrange(self.layout.subject_count))
            report = queries.credit_report(state, subject_id, self.layout.step_date)
            if report is None or not report["loans"]:
                raise RuntimeError(f"credit report of loaded subject {subject_id} is empty")


def measure_book(cases: BookCases, repeats: int) -> dict[str, Any]:
    count = max(repeats, REPEATS_MIN)
    result: dict[str, Any] = {}
    result["steady_step"] = per_call([timed_ms(cases.steady_step) for _ in range(count)], STEADY_STEPS_PER_RUN)

    step_samples, root_samples, event_counts, changed_keys = [], [], [], []
    for _ in range(count):
        holder: dict[str, Any] = {}
        step_samples.append(timed_ms(lambda: holder.update(zip(("working", "events"), cases.rollover_step()))))
        changes = holder["working"].changes()
        root_samples.append(timed_ms(lambda: cases.state_store.compute_updates(changes)))
        event_counts.append(holder["events"])
        changed_keys.append(len(changes))
    result["rollover_step"] = per_call(step_samples, 1)
    result["rollover_state_root"] = per_call(root_samples, 1)
    result["rollover_events"] = event_counts[0]
    result["rollover_changed_keys"] = changed_keys[0]

    serials = iter(range(1_000_000))
    result["loan_register_tx"] = per_call([timed_ms(lambda: cases.loan_register_tx(next(serials))) for _ in range(count * 10)], 1)
    rng = random.Random(7)
    result["credit_report"] = per_call([timed_ms(lambda: cases.credit_reports(rng)) for _ in range(count)], REPORT_QUERIES_PER_RUN)
    return result


def profile_case(cases: BookCases, name: str) -> str:
    """Return the top of a cProfile of one run of case `name`, sorted by cumulative time."""
    rollover_changes = cases.rollover_step()[0].changes() if name == "rollover_state_root" else {}
    operations = {
        "steady_step": cases.steady_step,
        "rollover_step": cases.rollover_step,
        "rollover_state_root": lambda: cases.state_store.compute_updates(rollover_changes),
        "loan_register_tx": lambda: cases.loan_register_tx(999_999),
        "credit_report": lambda: cases.credit_reports(random.Random(9)),
    }
    profiler = cProfile.Profile()
    profiler.runcall(operations[name])
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(20)
    return text.getvalue()


CASE_NAMES = ("steady_step", "rollover_step", "rollover_state_root", "loan_register_tx", "credit_report")


def flatness(books: dict[str, Any]) -> dict[str, Any]:
    """Ratio of the largest book's median CPU ms to the smallest's, per case."""
    sizes = sorted(books, key=int)
    smallest, largest = books[sizes[0]], books[sizes[-1]]
    verdict = {}
    for name in CASE_NAMES:
        ratio = largest[name]["cpu_ms"]["median"] / max(smallest[name]["cpu_ms"]["median"], 1e-9)
        verdict[name] = {"ratio": round(ratio, 2), "flat": ratio <= FLAT_RATIO_MAX}
    return verdict


def due_scaling(loan_count: int, cache_dir: Path, repeats: int) -> dict[str, Any]:
    """Measure the rollover step as the number of loans falling due grows, on books of `loan_count` loans.

    The book-size table keeps that number fixed, and this table shows how the step grows with it.
    """
    scaling = {}
    for due_count in DUE_COUNTS_SCALING:
        layout, path, _ = ensure_book(cache_dir, loan_count, due_count)
        store = LevelDBStore(path)
        cases = BookCases(StateStore(store), layout)
        samples = [timed_ms(cases.rollover_step) for _ in range(max(repeats, REPEATS_MIN))]
        store.close()
        scaling[str(due_count)] = per_call(samples, 1)
    return {"loan_count": loan_count, "rollover_step": scaling}


def run(loan_counts: list[int], cache_dir: Path, repeats: int) -> dict[str, Any]:
    books: dict[str, Any] = {}
    open_books: dict[int, tuple[LevelDBStore, BookCases]] = {}
    for loan_count in loan_counts:
        layout, path, info = ensure_book(cache_dir, loan_count, DUE_TODAY_COUNT)
        store = LevelDBStore(path)
        cases = BookCases(StateStore(store), layout)
        books[str(loan_count)] = {"book": info, **measure_book(cases, repeats)}
        open_books[loan_count] = (store, cases)
    result: dict[str, Any] = {"books": books}
    if len(books) > 1:
        result["flatness"] = flatness(books)
        largest = open_books[max(open_books)][1]
        result["profiles"] = {name: profile_case(largest, name) for name, verdict in result["flatness"].items() if not verdict["flat"]}
    for store, _ in open_books.values():
        store.close()
    result["due_scaling"] = due_scaling(min(loan_counts), cache_dir, repeats)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure per-block and per-query costs as the loan book grows.")
    parser.add_argument("--loans", type=int, nargs="+", default=list(LOAN_COUNTS_DEFAULT), help="book sizes in loans")
    parser.add_argument("--repeats", type=int, default=REPEATS_MIN, help=f"runs per figure (at least {REPEATS_MIN})")
    parser.add_argument("--cache-dir", type=Path, default=BOOK_CACHE_DIR_DEFAULT, help="where loaded books are kept between runs")
    parser.add_argument("--out", type=Path, default=OUT_DIR_DEFAULT, help="directory for book_size.json")
    parser.add_argument("--run-id", default=None, help="id shared by all results of one run_all invocation (default: this run's start time)")
    args = parser.parse_args()
    machine = machine_info()
    measured_at = utc_timestamp()
    result = {
        "benchmark": "book_size",
        "run_id": args.run_id or measured_at,
        "measured_at": measured_at,
        "command": command_line(),
        "machine": machine,
        "due_today_count": DUE_TODAY_COUNT,
        **run(sorted(args.loans), args.cache_dir, args.repeats),
    }
    path = write_result(args.out, "book_size", result)
    print(f"wrote {path}")
    for size, book in result["books"].items():
        figures = ", ".join(f"{name} {book[name]['cpu_ms']['median']:.3f} ms" for name in CASE_NAMES)
        print(f"{size} loans: {figures}")
    for name, verdict in result.get("flatness", {}).items():
        print(f"{name}: largest/smallest = {verdict['ratio']} ({'flat' if verdict['flat'] else 'NOT flat'})")


if __name__ == "__main__":
    main()
