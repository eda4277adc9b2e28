"""Replica configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from consensus.encoding import sha256_hex


def accept_every_payload(seq: int, payload: bytes) -> str | None:
    return None


@dataclass(frozen=True)
class ReplicaConfig:
    """Protocol settings, which must be the same on every validator of a chain."""

    chain_id: str
    validators: tuple[str, ...]  # hex ed25519 public keys in primary-rotation order
    checkpoint_interval: int = 16  # K: a checkpoint every K blocks
    window_size: int = 32  # high watermark = low watermark + window_size
    view_timeout_ticks: int = 100
    view_timeout_max_ticks: int = 1600  # cap of the exponential backoff
    reconfig_delay_blocks: int = 64  # a change decided at seq h takes effect at h + this, or later
    buffer_per_peer_max: int = 256  # messages for future views or seqs kept per peer
    payload_digest: Callable[[bytes], str] = field(default=sha256_hex)
    # Returns a rejection reason for a proposed payload at a seq, or None to accept it.
    validate_payload: Callable[[int, bytes], str | None] = field(default=accept_every_payload)

    def __post_init__(self) -> None:
        if not self.validators:
            raise ValueError("validators must not be empty")
        if len(set(self.validators)) != len(self.validators):
            raise ValueError("validators must be distinct")
        if self.checkpoint_interval < 1:
            raise ValueError(f"checkpoint_interval must be >= 1, got {self.checkpoint_interval}")
        if self.window_size < self.checkpoint_interval:
            raise ValueError(
                f"window_size {self.window_size} must be >= checkpoint_interval {self.checkpoint_interval}, "
                "or the window fills before a checkpoint can move it"
            )
        if self.reconfig_delay_blocks < self.window_size:
            raise ValueError(
                f"reconfig_delay_blocks {self.reconfig_delay_blocks} must be >= window_size {self.window_size}"
            )
        if not 1 <= self.view_timeout_ticks <= self.view_timeout_max_ticks:
            raise ValueError("view_timeout_ticks must be >= 1 and <= view_timeout_max_ticks")
        if self.buffer_per_peer_max < 1:
            raise ValueError(f"buffer_per_peer_max must be >= 1, got {self.buffer_per_peer_max}")
