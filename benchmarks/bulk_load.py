"""Bulk loader: a loan book of N loans in a LevelDB state store, written by the contracts themselves.

Every subject, consent and loan goes through `XinlianExecutor.deliver_tx` on a
`WorkingState`, so the records and indexes are exactly the contracts' own. What
is skipped is consensus, blocks and the incremental Merkle update: each chunk's
changes are written straight to the store as values plus Merkle leaves, and the
tree nodes above the 65,536 buckets are built once at the end. The resulting
state root equals the one `StateStore.compute_updates` gives for the same changes
(tests/bench checks this on a small book).

The book, for a registration day R (the block date of every registration) and the
next day D = R + 1:
- two loans per subject, both from one of four banks, under one data_sharing consent;
- `due_today_count` loans whose first instalment falls due on R, so the time
  step at D marks exactly those overdue, whatever the size of the book;
- all other loans start within the 25 days before R, so nothing else changes on D.

Usage: .venv/bin/python benchmarks/bulk_load.py --loans 10000 --path /tmp/book-10k
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from common import REPO_ROOT  # noqa: F401  (puts the repository on sys.path)
from node.contracts.dates import add_days, add_months, parse_date
from node.contracts.executor import XinlianExecutor
from node.execution import BlockContext, Transaction
from node.merkle import BUCKET_COUNT, EMPTY_HASHES, TREE_DEPTH, bucket_hash, bucket_of, node_hash, value_hash
from node.state import STATE_PREFIX, StateStore, WorkingState
from node.storage import KeyValueStore, LevelDBStore
from workload import consent_grant_payload, hex_id, loan_register_payload, subject_register_payload

logger = logging.getLogger("xinlian.bench.bulk_load")

CHAIN_ID = "xinlian-bench"
UTC_OFFSET_MINUTES = 480
REGISTRATION_DATE = "2026-03-02"
BANK_COUNT = 4
LOANS_PER_SUBJECT = 2
SPREAD_DAYS = 25
CHUNK_LOANS = 200  # small chunks: a WorkingState scan sorts all of its pending writes

_VALUES = STATE_PREFIX + b"v/"
_LEAVES = STATE_PREFIX + b"l/"
_NODES = STATE_PREFIX + b"n/"


@dataclass(frozen=True)
class BookLayout:
    """Sizes and dates of a loaded book, from which benchmarks pick subjects and block times."""

    loan_count: int
    due_today_count: int
    registration_date: str
    registration_time_ms: int
    step_date: str
    step_time_ms: int
    subject_count: int

    def subject_id(self, subject_index: int) -> str:
        return hex_id("subject", subject_index)


def local_time_ms(date_text: str, minute_of_day: int) -> int:
    """Unix ms of a local date and minute in the consortium's fixed offset."""
    day = parse_date(date_text).toordinal() - parse_date("1970-01-01").toordinal()
    return (day * 1440 + minute_of_day - UTC_OFFSET_MINUTES) * 60_000


def member_key(name: str) -> str:
    return hashlib.sha256(f"bench-key/{name}".encode("utf-8")).hexdigest()


def genesis(registration_time_ms: int) -> dict[str, Any]:
    members = [
        {"member_id": f"bank-{index}", "role": "bank", "node_key": member_key(f"bank-{index}/node"), "client_keys": [member_key(f"bank-{index}")]}
        for index in range(1, BANK_COUNT + 1)
    ]
    members.append({"member_id": "regulator", "role": "regulator", "node_key": member_key("regulator/node"), "client_keys": [member_key("regulator")]})
    return {
        "chain_id": CHAIN_ID,
        "genesis_time_ms": registration_time_ms - 86_400_000,
        "utc_offset_minutes": UTC_OFFSET_MINUTES,
        "members": members,
        "validators": [member["member_id"] for member in members[:BANK_COUNT]],
    }


def layout_for(loan_count: int, due_today_count: int) -> BookLayout:
    registration_time_ms = local_time_ms(REGISTRATION_DATE, 10 * 60)
    step_date = add_days(REGISTRATION_DATE, 1)
    return BookLayout(
        loan_count=loan_count,
        due_today_count=min(due_today_count, loan_count),
        registration_date=REGISTRATION_DATE,
        registration_time_ms=registration_time_ms,
        step_date=step_date,
        step_time_ms=local_time_ms(step_date, 9 * 60),
        subject_count=(loan_count + LOANS_PER_SUBJECT - 1) // LOANS_PER_SUBJECT,
    )


def make_transaction(tx_type: str, sender: str, nonce: str, payload: dict[str, Any], time_ms: int) -> Transaction:
    return Transaction(tx_id=hex_id("tx", tx_type, nonce), type=tx_type, sender=sender, nonce=nonce, expires_at=time_ms + 3_600_000, payload=payload)


def subject_transactions(layout: BookLayout, subject_index: int, rng: random.Random) -> Iterator[Transaction]:
    """Yield a subject's registration, its consent and its loans, in the order a bank would send them."""
    bank = f"bank-{subject_index % BANK_COUNT + 1}"
    sender = member_key(bank)
    time_ms = layout.registration_time_ms
    expires_on = add_months(layout.registration_date, 60)
    yield make_transaction("subject.register", sender, f"s{subject_index}", subject_register_payload(subject_index), time_ms)
    yield make_transaction("consent.grant", sender, f"c{subject_index}", consent_grant_payload(subject_index, bank, expires_on), time_ms)
    first_loan = subject_index * LOANS_PER_SUBJECT
    for loan_index in range(first_loan, min(first_loan + LOANS_PER_SUBJECT, layout.loan_count)):
        if loan_index < layout.due_today_count:
            # First instalment due on the registration day: overdue at the step date.
            start_date = add_months(layout.registration_date, -1)
        else:
            start_date = add_days(layout.registration_date, -(loan_index % SPREAD_DAYS))
        payload = loan_register_payload(loan_index, subject_index, start_date, rng)
        yield make_transaction("loan.register", sender, f"l{loan_index}", payload, time_ms)


def _leaf_key(key: str) -> bytes:
    return _LEAVES + bucket_of(key).to_bytes(2, "big") + key.encode("utf-8")


def write_changes(store: KeyValueStore, changes: dict[str, bytes | None]) -> None:
    """Write values and Merkle leaves of `changes`, leaving the tree nodes for `build_tree`."""
    ops: list[tuple[bytes, bytes | None]] = []
    for key, value in changes.items():
        ops.append((_VALUES + key.encode("utf-8"), value))
        ops.append((_leaf_key(key), None if value is None else value_hash(value)))
    store.write(ops, sync=False)


def build_tree(store: KeyValueStore) -> str:
    """Hash every bucket from its stored leaves, write all tree nodes, and return the state root."""
    level_hashes = [EMPTY_HASHES[TREE_DEPTH]] * BUCKET_COUNT
    current_bucket = -1
    leaves: list[tuple[bytes, bytes]] = []
    for store_key, leaf_hash in store.iterate(_LEAVES):
        bucket = int.from_bytes(store_key[len(_LEAVES):len(_LEAVES) + 2], "big")
        if bucket != current_bucket:
            if leaves:
                level_hashes[current_bucket] = bucket_hash(leaves)
            current_bucket, leaves = bucket, []
        leaves.append((store_key[len(_LEAVES) + 2:], leaf_hash))
    if leaves:
        level_hashes[current_bucket] = bucket_hash(leaves)
    ops: list[tuple[bytes, bytes | None]] = []
    for level in range(TREE_DEPTH, -1, -1):
        for index, node in enumerate(level_hashes):
            key = _NODES + bytes([level]) + index.to_bytes(2, "big")
            ops.append((key, None if node == EMPTY_HASHES[level] else node))
        if level > 0:
            level_hashes = [node_hash(level_hashes[i], level_hashes[i + 1]) for i in range(0, len(level_hashes), 2)]
    store.write(ops, sync=True)
    return level_hashes[0].hex()


def _deliver_all(executor: XinlianExecutor, working: WorkingState, ctx: BlockContext, transactions: list[Transaction]) -> None:
    for tx in transactions:
        receipt = executor.deliver_tx(working, ctx, tx)
        if not receipt.ok:
            raise RuntimeError(f"bulk load: {tx.type} {tx.nonce} was rejected: {receipt.error_code} {receipt.error_details}")


def load_book(store: KeyValueStore, loan_count: int, due_today_count: int = 1_000, seed: int = 1) -> tuple[BookLayout, str]:
    """Load genesis and a book of `loan_count` loans into an empty `store`; return the layout and the state root."""
    layout = layout_for(loan_count, due_today_count)
    executor = XinlianExecutor()
    state_store = StateStore(store)
    ctx = BlockContext(chain_id=CHAIN_ID, height=1, time_ms=layout.registration_time_ms, proposer="bank-1", utc_offset_minutes=UTC_OFFSET_MINUTES)
    working = WorkingState(state_store)
    executor.init_genesis(working, genesis(layout.registration_time_ms))
    write_changes(store, working.changes())
    rng = random.Random(seed)
    subjects_per_chunk = max(1, CHUNK_LOANS // LOANS_PER_SUBJECT)
    for first_subject in range(0, layout.subject_count, subjects_per_chunk):
        working = WorkingState(state_store)
        last_subject = min(first_subject + subjects_per_chunk, layout.subject_count)
        transactions = [tx for index in range(first_subject, last_subject) for tx in subject_transactions(layout, index, rng)]
        _deliver_all(executor, working, ctx, transactions)
        write_changes(store, working.changes())
        logger.info("loaded subjects %d..%d of %d", first_subject, last_subject - 1, layout.subject_count)
    return layout, build_tree(store)


BOOK_CACHE_DIR_DEFAULT = Path("/tmp/xinlian-bench-books")
BOOK_FORMAT_VERSION = 1  # bump when the book's content changes, so old cached books are not reused


def ensure_book(cache_dir: Path, loan_count: int, due_today_count: int) -> tuple[BookLayout, Path, dict[str, Any]]:
    """Return a loaded book from `cache_dir`, loading it first if no complete copy is there.

    A book counts as complete only when its `book.json` exists, which is written
    after the last synced write, so an interrupted load is redone from scratch.
    """
    directory = cache_dir / f"book-v{BOOK_FORMAT_VERSION}-{loan_count}-{due_today_count}"
    marker = directory / "book.json"
    layout = layout_for(loan_count, due_today_count)
    if marker.exists():
        return layout, directory / "db", json.loads(marker.read_text(encoding="utf-8"))
    shutil.rmtree(directory, ignore_errors=True)
    store = LevelDBStore(directory / "db")
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    layout, root = load_book(store, loan_count, due_today_count)
    store.close()
    info = {
        "loan_count": loan_count,
        "due_today_count": layout.due_today_count,
        "state_root": root,
        "load_wall_s": round(time.perf_counter() - wall_started, 1),
        "load_cpu_s": round(time.process_time() - cpu_started, 1),
        "store_bytes": sum(path.stat().st_size for path in (directory / "db").iterdir()),
    }
    marker.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return layout, directory / "db", info


def main() -> None:
    parser = argparse.ArgumentParser(description="Load a loan book of N loans into a new LevelDB state store.")
    parser.add_argument("--loans", type=int, required=True, help="number of loans in the book")
    parser.add_argument("--due-today", type=int, default=1_000, help="loans that become overdue at the step date")
    parser.add_argument("--path", type=Path, help="directory of a new LevelDB store (must not exist)")
    parser.add_argument("--cache-dir", type=Path, help=f"load into the benchmarks' book cache instead (e.g. {BOOK_CACHE_DIR_DEFAULT})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.cache_dir is not None:
        _, path, info = ensure_book(args.cache_dir, args.loans, args.due_today)
        print(f"book ready at {path}: {json.dumps(info)}")
        return
    if args.path is None:
        parser.error("give --path or --cache-dir")
    if args.path.exists():
        parser.error(f"--path {args.path} already exists; choose a new directory")
    store = LevelDBStore(args.path)
    started = time.perf_counter()
    layout, root = load_book(store, args.loans, args.due_today)
    store.close()
    print(f"loaded {layout.loan_count} loans in {time.perf_counter() - started:.1f} s, state root {root}")


if __name__ == "__main__":
    main()
