"""Wall-clock time for the daemon: the system clock or an accelerated chain clock.

Only the daemon reads a clock (block timestamps, expiry checks). Consensus gets
integer ticks and contracts get the block timestamp, so neither reads time.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

from node.config import ClockConfig


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current chain time in unix milliseconds."""
        ...


def system_now_ms() -> int:
    return time.time_ns() // 1_000_000


class SystemClock:
    def now_ms(self) -> int:
        return system_now_ms()


class AcceleratedClock:
    """Chain time that runs `speed` times faster than real time from a shared epoch.

    All nodes of a local network get the same (real_epoch_ms, chain_epoch_ms,
    speed), so they agree on chain time up to their real clocks' skew times speed.
    """

    def __init__(self, real_epoch_ms: int, chain_epoch_ms: int, speed: int, real_now_ms: Callable[[], int] = system_now_ms) -> None:
        if speed < 1:
            raise ValueError(f"clock speed must be >= 1, got {speed}")
        self.real_epoch_ms = real_epoch_ms
        self.chain_epoch_ms = chain_epoch_ms
        self.speed = speed
        self._real_now_ms = real_now_ms

    def now_ms(self) -> int:
        return self.chain_epoch_ms + (self._real_now_ms() - self.real_epoch_ms) * self.speed


def make_clock(config: ClockConfig) -> Clock:
    if config.mode == "accelerated":
        return AcceleratedClock(config.real_epoch_ms, config.chain_epoch_ms, config.speed)
    return SystemClock()
