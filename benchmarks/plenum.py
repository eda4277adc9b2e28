"""Hyperledger Indy Plenum 1.13.1 as a 4-node pool on 127.0.0.1, measured with a closed-loop client.

This script only calls the peer's scripts (default /work/shared/peers/indy-plenum/):
`setup.sh` once (the build is kept in PLENUM_DIR, default /tmp/indy-plenum-peer),
then per concurrency `start_pool.sh`, `client2.py` for each repeated window, and
`stop_pool.sh`. It stops only the node PIDs that start_pool.sh recorded, and
sends SIGKILL to any of those still alive after stop_pool.sh returns. No Plenum
code is copied into this repository.

The client sends NYM writes signed by a Steward and counts one as committed when
f + 1 = 2 nodes have replied. BLS multi-signatures are off in this build, so a
production Indy pool does some more work per batch than the pool measured here.

Usage: .venv/bin/python benchmarks/plenum.py [--concurrency 1 10 100] [--window-s 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from common import OUT_DIR_DEFAULT, REPEATS_MIN, command_line, machine_info, spread, utc_timestamp, write_result

logger = logging.getLogger("xinlian.bench.plenum")

PEER_SCRIPTS_DEFAULT = Path("/work/shared/peers/indy-plenum")
PLENUM_DIR_DEFAULT = Path("/tmp/indy-plenum-peer")
CONCURRENCY_DEFAULT = (1, 10, 100)
WARMUP_S = 5
SETTLE_AFTER_START_S = 8  # the pool elects a primary and connects before load starts
CLIENT_GRACE_S = 60  # client2.py drains in-flight requests for up to 30 s after its window
SETUP_TIMEOUT_S = 1_800
START_TIMEOUT_S = 120


def is_built(plenum_dir: Path) -> bool:
    return (plenum_dir / "venv" / "bin" / "python").exists() and (plenum_dir / "pool" / "var" / "keys").is_dir()


def run_setup(scripts: Path, plenum_dir: Path) -> None:
    """Build the pool once; a second call finds the venv and keys and does nothing."""
    if is_built(plenum_dir):
        logger.info("Plenum build found in %s, skipping setup", plenum_dir)
        return
    logger.info("building Plenum in %s (apt and pip, several minutes)", plenum_dir)
    subprocess.run(["bash", str(scripts / "setup.sh")], env=_env(plenum_dir), check=True, timeout=SETUP_TIMEOUT_S)


def _env(plenum_dir: Path, batch_wait_s: float | None = None) -> dict[str, str]:
    env = dict(os.environ, PLENUM_DIR=str(plenum_dir))
    env.pop("BATCH_WAIT", None)
    if batch_wait_s is not None:
        env["BATCH_WAIT"] = str(batch_wait_s)
    return env


def _started_pids(plenum_dir: Path) -> list[int]:
    path = plenum_dir / "node_pids.txt"
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split() if line.strip()]


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a live process, from /proc; None if it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of stat
    return ticks / os.sysconf("SC_CLK_TCK")


def start_pool(scripts: Path, plenum_dir: Path, batch_wait_s: float) -> list[int]:
    completed = subprocess.run(
        ["bash", str(scripts / "start_pool.sh")], env=_env(plenum_dir, batch_wait_s), capture_output=True, text=True, timeout=START_TIMEOUT_S
    )
    if completed.returncode != 0 or "PORTS BUSY" in completed.stdout:
        raise RuntimeError(f"start_pool.sh failed (ports 9701-9708 busy?): {completed.stdout.strip()} {completed.stderr.strip()}")
    pids = _started_pids(plenum_dir)
    if len(pids) != 4:
        raise RuntimeError(f"start_pool.sh recorded {len(pids)} node PIDs, expected 4")
    logger.info("Plenum pool started, node PIDs %s", pids)
    return pids


def stop_pool(scripts: Path, plenum_dir: Path, pids: list[int]) -> None:
    """Run stop_pool.sh, then SIGKILL any of our own node PIDs that are still alive."""
    subprocess.run(["bash", str(scripts / "stop_pool.sh")], env=_env(plenum_dir), timeout=60, check=False)
    for pid in pids:
        if cpu_seconds(pid) is not None:
            logger.warning("Plenum node PID %d survived stop_pool.sh, sending SIGKILL", pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_client(scripts: Path, plenum_dir: Path, concurrency: int, window_s: float) -> dict[str, Any]:
    """Run client2.py for one window and return its JSON line."""
    python = plenum_dir / "venv" / "bin" / "python"
    completed = subprocess.run(
        [str(python), str(scripts / "client2.py"), str(concurrency), str(window_s), str(WARMUP_S)],
        cwd=plenum_dir, env=_env(plenum_dir), capture_output=True, text=True, timeout=window_s + WARMUP_S + CLIENT_GRACE_S,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"client2.py failed with exit code {completed.returncode}: {completed.stderr.strip()[-500:]}")
    return json.loads(lines[0])


def master_batches(plenum_dir: Path) -> dict[str, Any]:
    """Count the batches Node1's master instance ordered since the pool started, from its log.

    start_pool.sh deletes the logs, so the count covers one concurrency. With
    the batch timer at 0.1 s a pool under load orders several batches a second.
    With Plenum's default of 3 s it orders about one every 3 s.
    """
    log_path = plenum_dir / "pool" / "var" / "log" / "Node1.log"
    batches, requests = 0, 0
    try:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            for line in log:
                match = _MASTER_BATCH.search(line)
                if match:
                    batches += 1
                    requests += int(match["requests"])
    except OSError:
        return {"batches": None, "requests_per_batch": None}
    return {"batches": batches, "requests_per_batch": round(requests / batches, 1) if batches else None}


_MASTER_BATCH = re.compile(r"Node1:0 ordered batch request.*requests ordered (?P<requests>\d+)")


def measure_concurrency(scripts: Path, plenum_dir: Path, concurrency: int, window_s: float, repeats: int, batch_wait_s: float) -> dict[str, Any]:
    """Start a fresh pool, run the client's windows at one concurrency, and stop the pool.

    Besides the client's figures it records the nodes' CPU seconds over all
    windows, as cores kept busy and CPU ms per committed write. A pool that
    keeps well under `nproc` cores busy at saturation was short of CPU (other
    load on the machine) or waiting on its batch timer.
    """
    load_average_1m = round(os.getloadavg()[0], 2)
    pids = start_pool(scripts, plenum_dir, batch_wait_s)
    try:
        time.sleep(SETTLE_AFTER_START_S)
        before = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
        started = time.perf_counter()
        windows = [run_client(scripts, plenum_dir, concurrency, window_s) for _ in range(max(repeats, REPEATS_MIN))]
        elapsed_s = time.perf_counter() - started
        node_cpu_s = sum((cpu_seconds(pid) or 0.0) - before[pid] for pid in pids)
    finally:
        stop_pool(scripts, plenum_dir, pids)
    batches = master_batches(plenum_dir)
    committed = sum(window["total_done"] for window in windows)
    return {
        "concurrency": concurrency,
        "load_average_1m_at_start": load_average_1m,
        "committed_per_s": spread([window["tps"] for window in windows]),
        "latency_p50_ms": spread([window["lat_f1_median_ms"] for window in windows]),
        "latency_p95_ms": spread([window["lat_f1_p95_ms"] for window in windows]),
        "nodes_cpu_s_all_windows": round(node_cpu_s, 1),
        "nodes_cores_busy": round(node_cpu_s / elapsed_s, 2),
        "nodes_cpu_ms_per_committed": round(1000 * node_cpu_s / max(committed, 1), 1),
        "master_batches": batches["batches"],
        "master_batches_per_s": round(batches["batches"] / elapsed_s, 2) if batches["batches"] is not None else None,
        "requests_per_batch": batches["requests_per_batch"],
        "windows": windows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure a 4-node Indy Plenum pool on 127.0.0.1 with a closed-loop client.")
    parser.add_argument("--scripts", type=Path, default=PEER_SCRIPTS_DEFAULT, help="folder of the peer's setup/start/stop/client scripts")
    parser.add_argument("--plenum-dir", type=Path, default=PLENUM_DIR_DEFAULT, help="where setup.sh builds the pool (kept between runs)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY_DEFAULT), help="in-flight requests of the client")
    parser.add_argument("--window-s", type=float, default=20, help="length of each measured window in seconds, after a 5 s warm-up")
    parser.add_argument("--repeats", type=int, default=REPEATS_MIN, help=f"windows per concurrency (at least {REPEATS_MIN})")
    parser.add_argument("--batch-wait-s", type=float, default=0.1, help="Plenum's Max3PCBatchWait in seconds (Plenum's default is 3)")
    parser.add_argument("--out", type=Path, default=OUT_DIR_DEFAULT, help="directory for plenum.json")
    parser.add_argument("--run-id", default=None, help="id shared by all results of one run_all invocation (default: this run's start time)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    run_setup(args.scripts, args.plenum_dir)
    machine = machine_info()
    measured_at = utc_timestamp()
    runs = [
        measure_concurrency(args.scripts, args.plenum_dir, concurrency, args.window_s, args.repeats, args.batch_wait_s)
        for concurrency in args.concurrency
    ]
    result = {
        "benchmark": "plenum",
        "run_id": args.run_id or measured_at,
        "measured_at": measured_at,
        "command": command_line(),
        "machine": machine,
        "plenum_version": "indy-plenum 1.13.1, BLS off",
        "batch_wait_s": args.batch_wait_s,
        "window_s": args.window_s,
        "warmup_s": WARMUP_S,
        "runs": runs,
    }

    path = write_result(args.out, "plenum", result)
    print(f"wrote {path}")
    for run in runs:
        print(f"concurrency {run['concurrency']}: {run['committed_per_s']['median']} committed/s, p50 {run['latency_p50_ms']['median']} ms")


if __name__ == "__main__":
    main()
