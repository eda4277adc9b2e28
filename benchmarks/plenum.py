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


def measure_concurrency(scripts: Path, plenum_dir: Path, concurrency: int, window_s: float, repeats: int, batch_wait_s: float) -> dict[str, Any]:
    pids = start_pool(scripts, plenum_dir, batch_wait_s)
    try:
        time.sleep(SETTLE_AFTER_START_S)
        before = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
        windows = [run_client(scripts, plenum_dir, concurrency, window_s) for _ in range(max(repeats, REPEATS_MIN))]
        node_cpu_s = sum((cpu_seconds(pid) or 0.0) - before[pid] for pid in pids)
    finally:
        stop_pool(scripts, plenum_dir, pids)
    return {
        "concurrency": concurrency,
        "committed_per_s": spread([window["tps"] for window in windows]),
        "latency_p50_ms": spread([window["lat_f1_median_ms"] for window in windows]),
        "latency_p95_ms": spread([window["lat_f1_p95_ms"] for window in windows]),
        "nodes_cpu_s_all_windows": round(node_cpu_s, 1),
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    run_setup(args.scripts, args.plenum_dir)
    machine = machine_info()
    runs = [
        measure_concurrency(args.scripts, args.plenum_dir, concurrency, args.window_s, args.repeats, args.batch_wait_s)
        for concurrency in args.concurrency
    ]
    result = {
        "benchmark": "plenum",
        "measured_at": utc_timestamp(),
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
