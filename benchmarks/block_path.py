"""CPU per transaction on one node's block path, measured in one process without the network.

A 4-member network directory is written with `xinlian network init` code, and
the network benchmark's workload (subject, consent, loan with 12-36
instalments, repayment) is signed up front. Then three phases run on one
node's objects, each timed by the CPU time of the calling thread:

- admission: API-sized batches of 100 parsed from JSON bytes, verified
  (ed25519 and fields) and checked by the contracts' check_tx, as
  node/admission.py does;
- proposal check: each block's payload decoded and checked as a backup does
  on a PRE-PREPARE, with the transactions already verified at admission;
- execution: Chain.commit of each block into LevelDB in a temporary directory.
  LevelDB's own threads (compaction) are reported apart, as the process CPU
  beyond the calling thread.

Every backup runs these phases for every transaction, so their sum bounds
what one node can do. The throughput target, half the verification ceiling
(cores x verifications/s / 2 / nodes), leaves each node a CPU budget per
transaction, which the report compares with the sum. A cProfile of the execution
phase, grouped by module, shows where that time goes.

Usage: .venv/bin/python benchmarks/block_path.py [--subjects 3000] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from common import OUT_DIR_DEFAULT, REPEATS_MIN, command_line, machine_info, spread, utc_timestamp, write_result
from node import localnet
from node.block import check_proposal, encode_proposal, payload_digest
from node.canonical import parse_json
from node.chain import Chain
from node.contracts import XinlianExecutor
from node.genesis import load_genesis
from node.keys import load_key_file
from node.storage import LevelDBStore
from node.tx import TxError, TxVerifier, VerifiedTransaction, sign_transaction
from workload import consent_grant_payload, loan_register_payload, repayment_payload, subject_register_payload

API_BATCH_SIZE = 100
BLOCK_TX_COUNT = 400  # about the block size of the network benchmark at concurrency 1000
NODE_COUNT = 4
CHINA_UTC_OFFSET = dt.timezone(dt.timedelta(hours=8))
# Module groups for the execution profile, matched in order against the function's file path.
PROFILE_GROUPS = (
    ("merkle tree and state", ("node/state.py", "node/merkle.py")),
    ("canonical encoding and checks", ("node/canonical.py", "orjson")),
    ("personal-data detector", ("node/contracts/personal_data.py",)),
    ("contracts", ("node/contracts/",)),
    ("LevelDB calls", ("node/storage.py", "plyvel")),
    ("transaction decoding", ("node/tx.py", "node/block.py", "pydantic")),
    ("chain bookkeeping", ("node/chain.py",)),
)


class Fixture:
    """One node's chain, verifier and executor over a fresh 4-member genesis, and the signed workload."""

    def __init__(self, directory: Path, subject_count: int) -> None:
        roles = tuple(["bank"] * (NODE_COUNT - 1) + ["regulator"])
        configs = localnet.init_network(directory / "net", localnet.InitOptions(nodes=NODE_COUNT, roles=roles))
        self.genesis = load_genesis(configs[0].genesis_file)
        limits = self.genesis.limits
        bank_ids = [member.member_id for member in self.genesis.members if member.role == "bank"]
        bank_keys = [load_key_file(directory / "net" / "clients" / f"{member_id}.json") for member_id in bank_ids]
        self.now_ms = int(time.time() * 1000)
        self.envelopes = _signed_workload(self.genesis.chain_id, bank_ids, bank_keys, subject_count, self.now_ms)
        self.verifier = TxVerifier(self.genesis.chain_id, limits.tx_size_max_bytes, expiry_window_ms=limits.tx_expiry_window_ms)
        self.executor = XinlianExecutor()
        self.chain = Chain(LevelDBStore(directory / "chain"), self.genesis, self.executor, self.verifier)


def _signed_workload(chain_id: str, bank_ids: list[str], bank_keys: list[Any], subject_count: int, now_ms: int) -> list[dict[str, Any]]:
    today = dt.datetime.now(CHINA_UTC_OFFSET).date()
    start_date = (today - dt.timedelta(days=10)).isoformat()
    expires_at = now_ms + 50 * 60 * 1000
    rng = random.Random(7)
    envelopes = []
    for index in range(subject_count):
        bank = index % len(bank_keys)
        loan = loan_register_payload(index, index, start_date, rng)
        bodies = [
            ("subject.register", subject_register_payload(index)),
            ("consent.grant", consent_grant_payload(index, bank_ids[bank], (today + dt.timedelta(days=365)).isoformat())),
            ("loan.register", loan),
            ("repayment.record", repayment_payload(index, 1, loan["schedule"][0]["interest"] + 100, today.isoformat())),
        ]
        for number, (tx_type, payload) in enumerate(bodies):
            body = {"chain_id": chain_id, "type": tx_type, "nonce": f"p{index}-{number}", "expires_at": expires_at, "payload": payload}
            envelopes.append(sign_transaction(bank_keys[bank].signing_key, body))
    return envelopes


def _thread_cpu(operation: Any) -> tuple[float, float, Any]:
    """Run `operation`; return (calling-thread CPU s, whole-process CPU s, its result)."""
    thread_started, process_started = time.thread_time(), time.process_time()
    result = operation()
    return time.thread_time() - thread_started, time.process_time() - process_started, result


def admit(fixture: Fixture) -> list[VerifiedTransaction]:
    """Parse, verify and check_tx every envelope in API-sized batches; return the admitted transactions in order."""
    admitted = []
    state = fixture.chain.state()
    for start in range(0, len(fixture.envelopes), API_BATCH_SIZE):
        body = orjson.dumps({"transactions": fixture.envelopes[start : start + API_BATCH_SIZE]})
        envelopes = parse_json(body)["transactions"]
        for result in fixture.verifier.verify_many(envelopes, now_ms=fixture.now_ms, parsed_strictly=True):
            if isinstance(result, TxError):
                raise RuntimeError(f"workload transaction rejected at admission: {result.code}: {result}")
            fixture.executor.check_tx(state, result.tx, fixture.now_ms)
            admitted.append(result)
    return admitted


def proposals(fixture: Fixture, admitted: list[VerifiedTransaction]) -> list[tuple[int, bytes]]:
    blocks = []
    height = fixture.chain.height
    for start in range(0, len(admitted), BLOCK_TX_COUNT):
        height += 1
        blocks.append((height, encode_proposal(height, fixture.now_ms + height, "bank-1", admitted[start : start + BLOCK_TX_COUNT])))
    return blocks


def check_proposal_of(fixture: Fixture, height: int, payload: bytes) -> None:
    limits = fixture.genesis.limits
    reason = check_proposal(
        payload,
        height=height,
        parent_time_ms=fixture.now_ms,
        now_ms=fixture.now_ms + height,
        drift_ms=limits.block_time_drift_ms,
        verifier=fixture.verifier,
        nonce_committed=fixture.chain.nonce_committed,
        block_tx_max=limits.block_tx_max,
        block_size_max_bytes=limits.block_size_max_bytes,
        expiry_window_ms=limits.tx_expiry_window_ms,
    )
    if reason is not None:
        raise RuntimeError(f"block {height} rejected: {reason}")


def execute(fixture: Fixture, height: int, payload: bytes) -> None:
    result = fixture.chain.commit(height, 0, payload_digest(payload), payload, {"view": 0, "seq": height, "commits": []})
    failed = [receipt.error_code for receipt in result.receipts if not receipt.ok]
    if failed:
        raise RuntimeError(f"block {height}: {len(failed)} transactions failed, first {failed[0]}")


def profile_groups(profile: cProfile.Profile) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Return the share of own (not cumulative) time per module group, and the 15 functions with the most own time."""
    stats = pstats.Stats(profile)
    own: Counter[str] = Counter()
    functions = []
    total = 0.0
    for (filename, line, name), (_, _, own_s, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += own_s
        group = next((label for label, parts in PROFILE_GROUPS if any(part in filename for part in parts)), "other (Python runtime, hashlib)")
        own[group] += own_s
        functions.append({"function": f"{Path(filename).name}:{line}({name})", "own_s": own_s})
    shares = {group: round(seconds / total, 3) for group, seconds in own.most_common()} if total else {}
    top = sorted(functions, key=lambda item: -item["own_s"])[:15]
    return shares, [{"function": item["function"], "share": round(item["own_s"] / total, 3)} for item in top]


def measure_once(subject_count: int, with_profile: bool) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="xinlian-bench-blockpath-"))
    try:
        fixture = Fixture(directory, subject_count)
        tx_count = len(fixture.envelopes)
        admission_s, _, admitted = _thread_cpu(lambda: admit(fixture))
        blocks = proposals(fixture, admitted)
        profile = cProfile.Profile() if with_profile else None
        check_s = execution_s = execution_process_s = 0.0
        # Each block is checked and then executed, as on a backup, so execution finds the decoded proposal cached.
        for height, payload in blocks:
            seconds, _, _ = _thread_cpu(lambda: check_proposal_of(fixture, height, payload))
            check_s += seconds
            if profile is not None:
                profile.enable()
            seconds, process_seconds, _ = _thread_cpu(lambda: execute(fixture, height, payload))
            if profile is not None:
                profile.disable()
            execution_s += seconds
            execution_process_s += process_seconds
        result: dict[str, Any] = {
            "transactions": tx_count,
            "blocks": len(blocks),
            "admission_us_per_tx": admission_s / tx_count * 1e6,
            "proposal_check_us_per_tx": check_s / tx_count * 1e6,
            "execution_us_per_tx": execution_s / tx_count * 1e6,
            "leveldb_threads_us_per_tx": max(execution_process_s - execution_s, 0.0) / tx_count * 1e6,
        }
        if profile is not None:
            result["execution_profile_groups"], result["execution_profile_top"] = profile_groups(profile)
        return result
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3000, help="subjects of the workload, four transactions each")
    parser.add_argument("--repeats", type=int, default=REPEATS_MIN, help=f"timed runs (at least {REPEATS_MIN}); one more runs under cProfile")
    parser.add_argument("--out", type=Path, default=OUT_DIR_DEFAULT, help="directory for block_path.json")
    parser.add_argument("--run-id", default=None, help="id shared by all results of one run_all invocation (default: this run's start time)")
    args = parser.parse_args()
    measured_at = utc_timestamp()
    runs = [measure_once(args.subjects, with_profile=False) for _ in range(max(args.repeats, REPEATS_MIN))]
    profiled = measure_once(args.subjects, with_profile=True)
    phases = ("admission_us_per_tx", "proposal_check_us_per_tx", "execution_us_per_tx", "leveldb_threads_us_per_tx")
    result = {
        "benchmark": "block_path",
        "run_id": args.run_id or measured_at,
        "measured_at": measured_at,
        "command": command_line(),
        "machine": machine_info(),
        "subjects": args.subjects,
        "block_tx_count": BLOCK_TX_COUNT,
        **{phase: spread([run[phase] for run in runs]) for phase in phases},
        "total_us_per_tx": spread([sum(run[phase] for phase in phases) for run in runs]),
        "execution_profile_groups": profiled["execution_profile_groups"],
        "execution_profile_top": profiled["execution_profile_top"],
        "runs": runs,
        "cpu_count": os.cpu_count(),
    }
    path = write_result(args.out, "block_path", result)
    print(f"wrote {path}")
    for phase in (*phases, "total_us_per_tx"):
        print(f"{phase}: {result[phase]['median']:.0f}")


if __name__ == "__main__":
    main()
