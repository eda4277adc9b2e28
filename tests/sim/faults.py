"""Per-seed fault plan: which faults a run injects and how often.

The enabled fault classes come from the command line. Their rates and the
Byzantine replicas are drawn from the seed, so every seed explores a different
mix and the same seed always draws the same one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests.sim.network import NetworkConfig

FAULT_NAMES = ("drop", "duplicate", "reorder", "partition", "crash", "byzantine")

BYZANTINE_BEHAVIOURS = (
    "equivocate",  # as primary, send another payload or NEW-VIEW to half of the replicas
    "bogus_view",  # inject signed messages with huge view numbers
    "bad_digest",  # votes and pre-prepares whose digest matches no payload
    "bad_payload",  # as primary, propose transactions no client submitted
    "outsider",  # copies of its votes signed by a key outside the validator set, or forged for another sender
    "withhold_checkpoint",  # never send its own checkpoints
    "replay",  # resend old messages it received, to random replicas
    "selective_silence",  # send each message only to some replicas
    "forge_fetch",  # serve catch-up requests with blocks whose payload was swapped
)


class FaultSpecError(ValueError):
    """An unknown fault name on the command line."""


def parse_faults(text: str) -> frozenset[str]:
    """Parse "drop,crash" or "all" or "none" into a set of fault names."""
    text = text.strip()
    if text in ("", "none"):
        return frozenset()
    if text == "all":
        return frozenset(FAULT_NAMES)
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(names - set(FAULT_NAMES))
    if unknown:
        raise FaultSpecError(f"unknown fault {', '.join(unknown)}: expected a comma-separated list of {', '.join(FAULT_NAMES)}, or all, or none")
    return names


def format_faults(faults: frozenset[str]) -> str:
    if not faults:
        return "none"
    if faults == frozenset(FAULT_NAMES):
        return "all"
    return ",".join(name for name in FAULT_NAMES if name in faults)


@dataclass(frozen=True)
class FaultPlan:
    network: NetworkConfig
    partition_probability: float  # per tick while the network is whole
    partition_ticks_max: int
    crash_probability: float  # per tick
    down_ticks_max: int
    byzantine: dict[int, frozenset[str]]  # node index -> behaviours


def plan_faults(rng: random.Random, node_count: int, faults: frozenset[str]) -> FaultPlan:
    """Draw the rates and the Byzantine replicas of one run."""
    network = NetworkConfig(
        delay_min_ticks=1,
        delay_max_ticks=rng.randint(2, 8),
        drop_probability=rng.uniform(0.0, 0.15) if "drop" in faults else 0.0,
        duplicate_probability=rng.uniform(0.0, 0.1) if "duplicate" in faults else 0.0,
        reorder_probability=rng.uniform(0.0, 0.2) if "reorder" in faults else 0.0,
    )
    byzantine: dict[int, frozenset[str]] = {}
    if "byzantine" in faults:
        faulty_max = (node_count - 1) // 3
        count = rng.randint(0, faulty_max) if rng.random() < 0.3 else faulty_max
        for index in sorted(rng.sample(range(node_count), count)):
            behaviour_count = rng.randint(1, len(BYZANTINE_BEHAVIOURS))
            byzantine[index] = frozenset(rng.sample(BYZANTINE_BEHAVIOURS, behaviour_count))
    return FaultPlan(
        network=network,
        partition_probability=rng.uniform(0.002, 0.02) if "partition" in faults else 0.0,
        partition_ticks_max=rng.randint(20, 200),
        crash_probability=rng.uniform(0.002, 0.02) if "crash" in faults else 0.0,
        down_ticks_max=rng.randint(10, 200),
        byzantine=byzantine,
    )
