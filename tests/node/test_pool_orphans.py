"""Signature-pool workers exit when the node process that started them is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from node.verify_pool import process_alive

REPOSITORY = Path(__file__).resolve().parents[2]
EXIT_WAIT_S = 5.0

# A stand-in for a node: it starts the pool, makes every worker run, prints the worker pids and waits.
PARENT_SCRIPT = """
import json, os, sys, time
from node.verify_pool import LazyProcessPool

pool = LazyProcessPool(max_workers=2)
futures = [pool.submit(time.sleep, 0.2) for _ in range(4)]
for future in futures:
    future.result()
print(json.dumps(sorted(pool._pool._processes)), flush=True)
time.sleep(600)
"""


def _parent_pid_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rfind(b")") + 2 :].split()[1])


def _wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    alive = [pid for pid in pids if process_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if process_alive(pid)]
    return alive


def test_workers_exit_after_parent_sigkill() -> None:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT_SCRIPT], stdout=subprocess.PIPE, env=environment, cwd=REPOSITORY)
    worker_pids: list[int] = []
    try:
        assert parent.stdout is not None
        worker_pids = json.loads(parent.stdout.readline())
        fork_server_pids = sorted({_parent_pid_of(pid) for pid in worker_pids})
        os.kill(parent.pid, signal.SIGKILL)
        # The killed parent stays a zombie until reaped; the workers must treat it as gone.
        still_alive_while_zombie = _wait_gone(worker_pids, EXIT_WAIT_S)
        parent.wait(timeout=5)
        fork_servers_alive = _wait_gone(fork_server_pids, EXIT_WAIT_S)
    finally:
        for pid in worker_pids:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
            parent.wait()

    assert len(worker_pids) == 2
    assert parent.pid not in fork_server_pids
    assert still_alive_while_zombie == []
    assert fork_servers_alive == []


def test_process_alive_own_and_gone() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()

    assert process_alive(os.getpid())
    assert not process_alive(finished.pid)
