"""Single-core ceilings of this machine: ed25519 verification, synced LevelDB block writes, tx encoding.

Each figure is a rate on one core, repeated (median, min, max). The verification
ceiling of an n-validator network on this one machine is
nproc x verifications/s / n, because every node verifies every transaction once
and all n nodes share the machine's cores.

Usage: .venv/bin/python benchmarks/ceilings.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import nacl.signing

from common import OUT_DIR_DEFAULT, command_line, machine_info, rates_per_second, repeat, repeat_many, utc_timestamp, write_result
from node.canonical import canonical_bytes
from node.storage import LevelDBStore
from node.tx import compute_tx_id, sign_transaction, signing_bytes
from workload import sample_loan_register_body

BLOCK_TX_COUNT = 100
STATE_VALUE_BYTES = 1_500  # a loan record with its instalments is 1-5 KB of canonical JSON
RECEIPT_BYTES = 200
VALIDATOR_COUNTS = (4, 7, 10)


def sample_envelope() -> tuple[dict[str, Any], nacl.signing.SigningKey]:
    key = nacl.signing.SigningKey(hashlib.sha256(b"bench-sender").digest())
    body = sample_loan_register_body("xinlian-bench", key.verify_key.encode().hex(), int(time.time() * 1000))
    return sign_transaction(key, body), key


def verify_rate(envelope: dict[str, Any], key: nacl.signing.SigningKey, iterations: int) -> dict[str, float]:
    message = signing_bytes(envelope["body"])
    signature = bytes.fromhex(envelope["signature"])
    verify_key = nacl.signing.VerifyKey(key.verify_key.encode())
    return rates_per_second(lambda: verify_key.verify(message, signature), iterations)


def sign_rate(envelope: dict[str, Any], key: nacl.signing.SigningKey, iterations: int) -> dict[str, float]:
    message = signing_bytes(envelope["body"])
    return rates_per_second(lambda: key.sign(message), iterations)


def encode_hash_rate(envelope: dict[str, Any], iterations: int) -> dict[str, float]:
    """Rate of compute_tx_id: canonical encoding (with its value checks) plus SHA-256."""
    return rates_per_second(lambda: compute_tx_id(envelope), iterations)


def block_write_ops(block_index: int, tx_bytes: bytes) -> list[tuple[bytes, bytes]]:
    """Operations of one block's commit: the block, each tx, its receipt, three state values and their leaves."""
    prefix = b"%012d" % block_index
    ops = [(b"b/" + prefix, os.urandom(256))]
    value = os.urandom(STATE_VALUE_BYTES)
    receipt = os.urandom(RECEIPT_BYTES)
    for tx_index in range(BLOCK_TX_COUNT):
        key = prefix + b"%06d" % tx_index
        ops.append((b"t/" + key, tx_bytes))
        ops.append((b"r/" + key, receipt))
        for slot in range(3):
            ops.append((b"st/v/" + key + b"%d" % slot, value))
            ops.append((b"st/l/" + key + b"%d" % slot, os.urandom(32)))
    return ops


def synced_batch_rate(tx_bytes: bytes, batches: int) -> float:
    """Synced write batches per second through LevelDBStore, in a fresh database each run."""
    directory = tempfile.mkdtemp(prefix="xinlian-bench-ldb-")
    try:
        store = LevelDBStore(Path(directory) / "db")
        prepared = [block_write_ops(index, tx_bytes) for index in range(batches)]
        started = time.perf_counter()
        for ops in prepared:
            store.write(ops, sync=True)
        elapsed = time.perf_counter() - started
        store.close()
        return batches / elapsed
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def measure(quick: bool, run_id: str | None = None) -> dict[str, Any]:
    envelope, key = sample_envelope()
    tx_bytes = canonical_bytes(envelope)
    repeats = 3 if quick else 5
    scale = 1 if quick else 4
    verify = repeat_many(lambda: verify_rate(envelope, key, 5_000 * scale), repeats)
    measured_at = utc_timestamp()
    result = {
        "benchmark": "ceilings",
        "run_id": run_id or measured_at,
        "measured_at": measured_at,
        "command": command_line(),
        "machine": machine_info(),
        "sample_tx": {"type": "loan.register", "instalments": 24, "envelope_bytes": len(tx_bytes)},
        "block_batch": {
            "tx_count": BLOCK_TX_COUNT,
            "ops": len(block_write_ops(0, tx_bytes)),
            "bytes": sum(len(k) + len(v) for k, v in block_write_ops(0, tx_bytes)),
        },
        "ed25519_verify_per_s": verify,
        "ed25519_sign_per_s": repeat_many(lambda: sign_rate(envelope, key, 5_000 * scale), repeats),
        "tx_id_encode_sha256_per_s": repeat_many(lambda: encode_hash_rate(envelope, 2_000 * scale), repeats),
        "leveldb_synced_block_batches_per_s": repeat(lambda: synced_batch_rate(tx_bytes, 50 * scale), repeats),
    }
    cores = os.cpu_count() or 1
    # The ceiling uses the CPU-time rate: what a core does when it is not shared.
    per_core = verify["per_cpu_s"]["median"]
    result["verification_ceiling_tx_per_s"] = {str(count): round(cores * per_core / count, 1) for count in VALIDATOR_COUNTS}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations and 3 repeats instead of 5")
    parser.add_argument("--out", type=Path, default=OUT_DIR_DEFAULT, help="directory for ceilings.json")
    parser.add_argument("--run-id", default=None, help="id shared by all results of one run_all invocation (default: this run's start time)")
    args = parser.parse_args()
    result = measure(args.quick, args.run_id)
    path = write_result(args.out, "ceilings", result)
    print(f"wrote {path}")
    print(f"ed25519 verify per CPU second (median): {result['ed25519_verify_per_s']['per_cpu_s']['median']:.0f}")
    print(f"verification ceiling, 4 validators: {result['verification_ceiling_tx_per_s']['4']} tx/s")


if __name__ == "__main__":
    main()
