"""Quorum sizes that are correct for any number of validators, not only 3f+1."""

from __future__ import annotations


def max_faulty(validator_count: int) -> int:
    """Return f, the number of Byzantine validators the set tolerates."""
    if validator_count < 1:
        raise ValueError(f"validator set must not be empty, got {validator_count} validators")
    return (validator_count - 1) // 3


def quorum_size(validator_count: int) -> int:
    """Return q = ceil((n + f + 1) / 2).

    Two quorums then share at least 2q - n >= f + 1 validators, so at least one
    correct validator is in both, for every n.
    """
    faulty = max_faulty(validator_count)
    return (validator_count + faulty + 2) // 2


def weak_quorum_size(validator_count: int) -> int:
    """Return f + 1, the smallest set that contains a correct validator."""
    return max_faulty(validator_count) + 1
