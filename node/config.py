"""The node configuration file: one JSON object per node, validated with pydantic.

Relative paths in the file (data_dir, key files, genesis) are resolved against
the directory that contains the config file, so a network directory can be moved
as a whole. `configs/README.md` documents every field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

HEX_KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MEMBER_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class ConfigError(ValueError):
    """A config file that is missing, not JSON, or fails validation."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PeerConfig(_Strict):
    """Another member's node: its id, node public key and peer websocket URL."""

    member_id: str
    node_key: str
    url: str  # for example ws://127.0.0.1:7101/v1/peer

    @field_validator("node_key")
    @classmethod
    def _check_key(cls, value: str) -> str:
        if not HEX_KEY_PATTERN.match(value):
            raise ValueError("node_key must be 64 lowercase hex characters (an ed25519 public key)")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("peer url must start with ws:// or wss://")
        return value


class ClockConfig(_Strict):
    """The node's clock. An accelerated clock maps real time onto a faster chain time.

    chain_now_ms = chain_epoch_ms + (real_now_ms - real_epoch_ms) * speed, so all
    nodes of a local network that share these three values agree on chain time.
    """

    mode: Literal["system", "accelerated"] = "system"
    real_epoch_ms: int = Field(default=0, ge=0)
    chain_epoch_ms: int = Field(default=0, ge=0)
    speed: int = Field(default=1, ge=1, le=10_000_000)  # chain milliseconds per real millisecond


class LimitsConfig(_Strict):
    mempool_tx_max: int = Field(default=20_000, ge=1)
    message_bytes_max: int = Field(default=8 * 1024 * 1024, ge=1024)  # one peer websocket message
    peer_messages_per_second: int = Field(default=5_000, ge=1)  # token bucket refill rate per peer
    peer_messages_burst: int = Field(default=10_000, ge=1)  # token bucket capacity per peer
    peer_send_queue_max: int = Field(default=4_096, ge=1)  # queued outgoing messages before a peer is dropped
    peer_requests_in_flight_max: int = Field(default=8, ge=1)  # concurrent requests served per peer
    sync_blocks_per_request_max: int = Field(default=64, ge=1)  # blocks in one catch-up response
    api_body_bytes_max: int = Field(default=16 * 1024 * 1024, ge=1024)


class NodeConfig(_Strict):
    member_id: str
    data_dir: Path
    node_key_file: Path
    genesis_file: Path
    privacy_secret_file: Path | None = None
    p2p_host: str = "127.0.0.1"
    p2p_port: int = Field(ge=0, le=65535)
    api_host: str = "127.0.0.1"
    api_port: int = Field(ge=0, le=65535)
    peers: tuple[PeerConfig, ...] = ()
    clock: ClockConfig = ClockConfig()
    language: Literal["zh-CN", "en"] = "zh-CN"
    limits: LimitsConfig = LimitsConfig()
    # Max wait before a partial block is proposed. With 0 the primary proposes as soon as a transaction is
    # ready and the previous block is committed. Transactions that arrive meanwhile make the next block.
    block_interval_ms: int = Field(default=0, ge=0)
    block_tx_max: int = Field(default=500, ge=1)
    # With no transactions pending, the primary proposes an empty block once the head is this much chain
    # time old, or once the local date has changed since the head, so the contracts' time step runs.
    empty_block_interval_ms: int = Field(default=3_600_000, ge=1)
    # Real-time floor between two empty blocks, so an accelerated clock does not produce one per tick.
    empty_block_min_real_interval_ms: int = Field(default=1_000, ge=1)
    tick_ms: int = Field(default=50, ge=1)  # real milliseconds per consensus tick
    view_timeout_ticks: int = Field(default=100, ge=1)
    view_timeout_max_ticks: int = Field(default=1600, ge=1)
    checkpoint_interval: int = Field(default=16, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("member_id")
    @classmethod
    def _check_member_id(cls, value: str) -> str:
        if not MEMBER_ID_PATTERN.match(value):
            raise ValueError("member_id must be 1-64 characters of [A-Za-z0-9._:-]")
        return value

    @field_validator("peers")
    @classmethod
    def _check_unique_peers(cls, value: tuple[PeerConfig, ...]) -> tuple[PeerConfig, ...]:
        keys = [peer.node_key for peer in value]
        if len(set(keys)) != len(keys):
            raise ValueError("two peers have the same node_key")
        return value

    def resolve_paths(self, base_dir: Path) -> "NodeConfig":
        """Return a copy with every relative path made absolute against base_dir."""

        def absolute(path: Path | None) -> Path | None:
            if path is None or path.is_absolute():
                return path
            return (base_dir / path).resolve()

        return self.model_copy(
            update={
                "data_dir": absolute(self.data_dir),
                "node_key_file": absolute(self.node_key_file),
                "genesis_file": absolute(self.genesis_file),
                "privacy_secret_file": absolute(self.privacy_secret_file),
            }
        )


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a node config file; raise ConfigError naming the file and the field."""
    config_path = Path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {config_path}: {exc.strerror}") from None
    try:
        config = NodeConfig.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(f"invalid config file {config_path}: {exc}") from None
    return config.resolve_paths(config_path.resolve().parent)


def dump_config(config: NodeConfig) -> str:
    """Encode a config as indented JSON, the form `load_config` reads."""
    return config.model_dump_json(indent=2, exclude_none=True) + "\n"
