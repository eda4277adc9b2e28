"""`network up` and `down` with nodes started outside `up`, and with a node that dies right after it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.localnet import InitOptions, init_network, network_down, network_up_checked, running_pid
from node.storage import LevelDBStore

REPOSITORY = Path(__file__).resolve().parents[2]
STARTUP_WAIT_S = 30.0


def _start_node_run(directory: Path, member_id: str) -> subprocess.Popen[bytes]:
    """Run `xinlian node run` with a relative config path, the way a user would, with no pid file."""
    command = [sys.executable, "-m", "node.cli", "node", "run", "--config", f"nodes/{member_id}/config.json"]
    log = open(directory / "nodes" / member_id / "node.log", "ab")
    try:
        return subprocess.Popen(command, cwd=directory, env={**os.environ, "PYTHONPATH": str(REPOSITORY)}, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def _kill_by_pid(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _pid_file_pids(directory: Path) -> list[int]:
    pids = []
    for pid_file in sorted((directory / "nodes").glob("*/node.pid")):
        try:
            pids.append(int(pid_file.read_text()))
        except ValueError:
            continue
    return pids


@pytest.mark.integration
def test_up_down_node_started_directly(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    init_network(directory, InitOptions(nodes=2, roles=("bank", "regulator"), validator_count=1))
    direct = _start_node_run(directory, "bank-1")
    try:
        deadline = time.monotonic() + STARTUP_WAIT_S
        while running_pid(directory / "nodes" / "bank-1") is None:
            assert time.monotonic() < deadline, "the directly started node was not found by its command line"
            time.sleep(0.05)
        found_pid = running_pid(directory / "nodes" / "bank-1")
        results = network_up_checked(directory)
        stopped = network_down(directory)
        direct_exit = direct.wait(timeout=15)
    finally:
        _kill_by_pid([direct.pid, *_pid_file_pids(directory)])

    assert found_pid == direct.pid
    outcomes = {result.member_id: (result.outcome, result.pid) for result in results}
    assert outcomes["bank-1"] == ("already_running", direct.pid)
    assert outcomes["regulator-2"][0] == "started"
    assert stopped == [("bank-1", True), ("regulator-2", True)]
    assert direct_exit == 0


@pytest.mark.integration
def test_up_reports_node_that_exits(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    configs = init_network(directory, InitOptions(nodes=2, roles=("bank", "regulator"), validator_count=1))
    # Holding the chain's LevelDB lock makes the started node exit at once, like a duplicate of a running node.
    lock_holder = LevelDBStore(configs[0].data_dir / "chain")
    try:
        results = network_up_checked(directory, grace_s=5.0)
        network_down(directory)
    finally:
        lock_holder.close()
        _kill_by_pid(_pid_file_pids(directory))

    outcomes = {result.member_id: result for result in results}
    assert outcomes["bank-1"].outcome == "failed"
    assert "LOCK" in outcomes["bank-1"].log_tail
    assert not (directory / "nodes" / "bank-1" / "node.pid").exists()
    assert outcomes["regulator-2"].outcome == "started"
