"""Node config files and the clocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.clock import AcceleratedClock, SystemClock, make_clock
from node.config import ClockConfig, ConfigError, load_config

KEY = "ab" * 32


def write_config(path: Path, **overrides: object) -> Path:
    data: dict[str, object] = {
        "member_id": "bank-1",
        "data_dir": "data",
        "node_key_file": "node_key.json",
        "genesis_file": "../genesis.json",
        "p2p_port": 7101,
        "api_port": 7001,
        "peers": [{"member_id": "bank-2", "node_key": KEY, "url": "ws://127.0.0.1:7102/v1/peer"}],
    }
    data.update(overrides)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_config_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "node").mkdir()
    config = load_config(write_config(tmp_path / "node" / "config.json"))

    assert config.data_dir == tmp_path / "node" / "data"
    assert config.genesis_file == tmp_path / "genesis.json"
    assert config.language == "zh-CN"
    assert config.clock.mode == "system"
    assert config.peers[0].node_key == KEY


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"member_id": "bad id"}, "member_id"),
        ({"p2p_port": 70000}, "p2p_port"),
        ({"language": "fr"}, "language"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"peers": [{"member_id": "x", "node_key": "XYZ", "url": "ws://h/v1/peer"}]}, "node_key"),
        ({"peers": [{"member_id": "x", "node_key": KEY, "url": "http://h/v1/peer"}]}, "url"),
        ({"clock": {"mode": "accelerated", "speed": 0}}, "speed"),
    ],
)
def test_config_rejects_invalid_field(tmp_path: Path, override: dict[str, object], field: str) -> None:
    path = write_config(tmp_path / "config.json", **override)

    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert field in str(raised.value)
    assert str(path) in str(raised.value)


def test_config_rejects_missing_and_non_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="invalid config"):
        load_config(tmp_path / "broken.json")


def test_accelerated_clock_maps_real_to_chain_time() -> None:
    real_now = [1_000_000]
    clock = AcceleratedClock(real_epoch_ms=1_000_000, chain_epoch_ms=1_451_577_600_000, speed=86_400, real_now_ms=lambda: real_now[0])

    assert clock.now_ms() == 1_451_577_600_000
    real_now[0] += 1_000  # one real second is one chain day
    assert clock.now_ms() == 1_451_577_600_000 + 86_400_000


def test_make_clock_by_mode() -> None:
    assert isinstance(make_clock(ClockConfig()), SystemClock)
    accelerated = make_clock(ClockConfig(mode="accelerated", real_epoch_ms=5, chain_epoch_ms=7, speed=3))
    assert isinstance(accelerated, AcceleratedClock)
    assert accelerated.speed == 3
