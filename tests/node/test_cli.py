"""The `xinlian` command line: keygen and network init in-process, and the README's network flow with real processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from node.cli import main
from node.config import load_config
from node.genesis import load_genesis, validator_node_keys
from node.keys import load_key_file
from node.localnet import fetch_status, running_pid

REPOSITORY = Path(__file__).resolve().parents[2]


def test_keygen_writes_private_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys" / "me.json"

    assert main(["--lang", "en", "keygen", "--out", str(path)]) == 0

    key = load_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.public_key in capsys.readouterr().out


def test_keygen_refuses_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "me.json"
    path.write_text("{}")

    assert main(["--lang", "zh-CN", "keygen", "--out", str(path)]) == 1
    assert "错误" in capsys.readouterr().err
    assert path.read_text() == "{}"


def test_network_init_writes_consistent_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "net"

    assert main(["--lang", "en", "network", "init", "--nodes", "5", "--dir", str(directory)]) == 0

    genesis = load_genesis(directory / "genesis.json")
    roles = [member.role for member in genesis.members]
    assert roles == ["bank", "credit_agency", "collector", "regulator", "bank"]
    assert genesis.validators == tuple(member.member_id for member in genesis.members)
    node_dirs = sorted((directory / "nodes").iterdir())
    assert [path.name for path in node_dirs] == sorted(member.member_id for member in genesis.members)

    ports = set()
    for member in genesis.members:
        config = load_config(directory / "nodes" / member.member_id / "config.json")
        node_key = load_key_file(config.node_key_file)
        client_key = load_key_file(directory / "clients" / f"{member.member_id}.json")
        assert node_key.public_key == member.node_key
        assert member.client_keys == (client_key.public_key,)
        assert config.genesis_file == (directory / "genesis.json").resolve()
        assert sorted(peer.node_key for peer in config.peers) == sorted(set(validator_node_keys(genesis)) - {member.node_key})
        ports.update({config.p2p_port, config.api_port})
    assert len(ports) == 10
    assert "xinlian network up" in capsys.readouterr().out


def test_network_init_accelerated_clock(tmp_path: Path) -> None:
    directory = tmp_path / "net"

    assert main(["network", "init", "--nodes", "2", "--dir", str(directory), "--roles", "bank,regulator", "--accelerated", "--speed", "3600", "--start", "2016-01-01"]) == 0

    genesis = load_genesis(directory / "genesis.json")
    config = load_config(directory / "nodes" / "bank-1" / "config.json")
    assert genesis.genesis_time_ms == 1451577600000  # 2016-01-01T00:00:00+08:00
    assert config.clock.mode == "accelerated"
    assert config.clock.chain_epoch_ms == genesis.genesis_time_ms
    assert config.clock.speed == 3600


@pytest.mark.parametrize(
    "arguments",
    [
        ["--nodes", "2", "--roles", "bank"],
        ["--nodes", "1", "--roles", "astronaut"],
        ["--nodes", "0"],
        ["--nodes", "2", "--roles", "bank,bank"],
    ],
)
def test_network_init_rejects_bad_arguments(tmp_path: Path, arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--lang", "en", "network", "init", "--dir", str(tmp_path / "net"), *arguments]) == 1
    assert "error:" in capsys.readouterr().err


def test_network_init_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "existing.txt").write_text("keep me")

    assert main(["network", "init", "--nodes", "1", "--dir", str(tmp_path)]) == 1
    assert (tmp_path / "existing.txt").read_text() == "keep me"


def test_tx_submit_rejects_non_object_payload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--lang", "en", "tx", "submit", "--key", str(tmp_path / "k.json"), "--node", "http://127.0.0.1:1", "--type", "loan.register", "--payload", json.dumps([1])])

    assert code == 2
    assert "expected a JSON object, got list" in capsys.readouterr().err


EXPIRY_WINDOW_MS = 300_000  # shorter than the client's default expiry of 10 minutes
STARTUP_TIMEOUT_S = 60.0


def _xinlian(directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the `xinlian` command line as its own process in `directory`, with English output."""
    command = [sys.executable, "-m", "node.cli", "--lang", "en", *arguments]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run(command, cwd=directory, env=environment, capture_output=True, text=True, timeout=120)


def _wait_all_connected(api_urls: list[str]) -> None:
    """Poll /v1/status of every node until each answers with all its peers connected."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        statuses = [fetch_status(url) for url in api_urls]
        if all(status is not None and all(peer["connected"] for peer in status["peers"]) for status in statuses):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes did not connect within {STARTUP_TIMEOUT_S} s: {statuses}")
        time.sleep(0.2)


@pytest.mark.integration
def test_readme_network_flow(tmp_path: Path) -> None:
    """The README's first commands, with a relative --dir and a genesis expiry window shorter than the client default."""
    init = _xinlian(tmp_path, "network", "init", "--nodes", "5", "--dir", "net")
    assert init.returncode == 0, init.stderr
    genesis_path = tmp_path / "net" / "genesis.json"
    genesis = json.loads(genesis_path.read_text())
    genesis["limits"]["tx_expiry_window_ms"] = EXPIRY_WINDOW_MS
    genesis_path.write_text(json.dumps(genesis, indent=2))
    configs = {path.name: load_config(path / "config.json") for path in sorted((tmp_path / "net" / "nodes").iterdir())}
    api_urls = {member_id: f"http://127.0.0.1:{config.api_port}" for member_id, config in configs.items()}

    try:
        up = _xinlian(tmp_path, "network", "up", "--dir", "net")
        assert up.returncode == 0, up.stderr
        _wait_all_connected(list(api_urls.values()))

        status = _xinlian(tmp_path, "network", "status", "--dir", "net")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].split() == ["member", "pid", "api", "height", "view", "primary", "peers", "syncing"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert sorted(rows) == sorted(configs)
        for member_id, row in rows.items():
            assert row[1].isdigit(), row  # the pid of a running node
            assert row[2] == api_urls[member_id], row
            assert row[3].isdigit(), row  # height
            assert row[4].isdigit(), row  # view
            assert row[6] == "4/4", row
            assert row[7] in ("no", "yes"), row

        payload = json.dumps({"member_id": "collector-3", "reason": "complaint_upheld"})
        node_url = api_urls["bank-1"]
        submit = _xinlian(tmp_path, "tx", "submit", "--key", "net/clients/regulator-4.json", "--node", node_url, "--type", "member.suspend", "--payload", payload)
        assert submit.returncode == 0, submit.stdout + submit.stderr
        assert ": ok" in submit.stdout
        member = json.loads(urllib.request.urlopen(f"{node_url}/v1/members/collector-3", timeout=5).read())
        assert member["status"] == "suspended"
    finally:
        down = _xinlian(tmp_path, "network", "down", "--dir", "net")
    assert down.returncode == 0, down.stderr
    assert sorted(line.split()[1] for line in down.stdout.splitlines()) == sorted(configs)
    assert all(line.startswith("stopped ") for line in down.stdout.splitlines()), down.stdout
    assert all(running_pid(tmp_path / "net" / "nodes" / member_id) is None for member_id in configs)
