"""The validator set in force at each seq."""

from __future__ import annotations

import bisect
from typing import Any


class ValidatorSchedule:
    """Validator sets keyed by the first seq at which each is in force.

    The whole history is kept, one entry per reconfiguration, so
    `at(seq)` stays correct for old seqs that a lagging replica fetches.
    """

    def __init__(self, genesis_validators: tuple[str, ...]) -> None:
        self._effective_seqs: list[int] = [0]
        self._sets: list[tuple[str, ...]] = [tuple(genesis_validators)]

    def at(self, seq: int) -> tuple[str, ...]:
        index = bisect.bisect_right(self._effective_seqs, seq) - 1
        return self._sets[max(index, 0)]

    def next_change_after(self, seq: int) -> int | None:
        """Return the first seq after `seq` whose set differs from the set at `seq`, or None if none is scheduled.

        A scheduled set equal to the one before it (same keys in the same
        order) changes nothing, so it is skipped.
        """
        current = self.at(seq)
        index = bisect.bisect_right(self._effective_seqs, seq)
        for effective_seq, validators in zip(self._effective_seqs[index:], self._sets[index:]):
            if validators != current:
                return effective_seq
        return None

    def add(self, effective_seq: int, validators: tuple[str, ...]) -> None:
        """Schedule `validators` from `effective_seq` on, replacing any later scheduled set."""
        cut = bisect.bisect_left(self._effective_seqs, effective_seq)
        del self._effective_seqs[cut:]
        del self._sets[cut:]
        self._effective_seqs.append(effective_seq)
        self._sets.append(tuple(validators))

    def to_record(self) -> dict[str, Any]:
        return {"schedule": [[seq, list(keys)] for seq, keys in zip(self._effective_seqs, self._sets)]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ValidatorSchedule:
        entries = record["schedule"]
        schedule = cls(tuple(entries[0][1]))
        schedule._effective_seqs = [int(seq) for seq, _ in entries]
        schedule._sets = [tuple(keys) for _, keys in entries]
        return schedule
