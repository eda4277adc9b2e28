"""`node.localnet` with a relative network directory: the nodes start, report status and stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from node.localnet import InitOptions, init_network, network_down, network_status, network_up, node_dirs, running_pid

STATUS_WAIT_S = 30.0


def wait_for_status(directory: Path) -> list[dict]:
    deadline = time.monotonic() + STATUS_WAIT_S
    while True:
        rows = network_status(directory)
        if all(row["status"] is not None for row in rows):
            return rows
        assert time.monotonic() < deadline, f"nodes did not serve /v1/status: {rows}"
        time.sleep(0.1)


def kill_started(directory: Path) -> None:
    """Stop the node processes this test started if `network_down` could not, by the pids it wrote."""
    for node_dir in sorted((directory / "nodes").iterdir()):
        pid_file = node_dir / "node.pid"
        if pid_file.is_file():
            pid = int(pid_file.read_text())
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def test_relative_directory_up_status_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = Path("net")
    configs = init_network(relative, InitOptions(nodes=2, roles=("bank", "regulator"), validator_count=1))
    assert all(config.data_dir.is_absolute() for config in configs)
    assert all(path.is_absolute() for path in node_dirs(relative))

    try:
        started = network_up(relative)
        rows = wait_for_status(relative)
        pids = {node_dir.name: running_pid(Path("net") / "nodes" / node_dir.name) for node_dir in node_dirs(relative)}
        stopped = network_down(relative)
    finally:
        kill_started(tmp_path / "net")

    assert [member_id for member_id, _ in started] == ["bank-1", "regulator-2"]
    assert pids == dict(started)
    assert [row["status"]["node_id"] for row in rows] == ["bank-1", "regulator-2"]
    assert [row["pid"] for row in rows] == [pid for _, pid in started]
    assert stopped == [("bank-1", True), ("regulator-2", True)]
    assert not any((node_dir / "node.pid").exists() for node_dir in node_dirs(relative))
