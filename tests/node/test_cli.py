"""The `xinlian` command line: keygen and network init, run in-process."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from node.cli import main
from node.config import load_config
from node.genesis import load_genesis, validator_node_keys
from node.keys import load_key_file


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

    assert code == 1
    assert "not a JSON object" in capsys.readouterr().err
