"""CHECKPOINT votes per seq above the low watermark."""

from __future__ import annotations

from consensus.messages import Checkpoint


class CheckpointVotes:
    """Checkpoint votes, the first per sender per seq, at most `per_sender_max` seqs per sender.

    A sender's lowest seq is dropped when it exceeds the bound. Correct
    replicas send one checkpoint per K blocks, so a sender only exceeds it when
    far ahead of this replica or Byzantine.
    """

    def __init__(self, per_sender_max: int) -> None:
        self._per_sender_max = per_sender_max
        self._votes: dict[int, dict[str, Checkpoint]] = {}

    def add(self, checkpoint: Checkpoint) -> str | None:
        votes = self._votes.setdefault(checkpoint.seq, {})
        existing = votes.get(checkpoint.sender)
        if existing is not None:
            return "duplicate" if existing.state_digest == checkpoint.state_digest else "equivocation"
        votes[checkpoint.sender] = checkpoint
        self._enforce_bound(checkpoint.sender)
        return None

    def _enforce_bound(self, sender: str) -> None:
        seqs = sorted(seq for seq, votes in self._votes.items() if sender in votes)
        for seq in seqs[: max(0, len(seqs) - self._per_sender_max)]:
            del self._votes[seq][sender]
            if not self._votes[seq]:
                del self._votes[seq]

    def by_digest(self, seq: int) -> list[tuple[str, list[Checkpoint]]]:
        """Return (state_digest, votes sorted by sender) pairs at `seq`, sorted by digest."""
        groups: dict[str, list[Checkpoint]] = {}
        votes = self._votes.get(seq, {})
        for sender in sorted(votes):
            groups.setdefault(votes[sender].state_digest, []).append(votes[sender])
        return sorted(groups.items())

    def own_digest(self, seq: int, public_key: str) -> str | None:
        vote = self._votes.get(seq, {}).get(public_key)
        return vote.state_digest if vote is not None else None

    def latest_own(self, public_key: str) -> Checkpoint | None:
        """Return this replica's checkpoint with the highest seq still held."""
        for seq in sorted(self._votes, reverse=True):
            vote = self._votes[seq].get(public_key)
            if vote is not None:
                return vote
        return None

    def seqs(self) -> list[int]:
        return sorted(self._votes)

    def forget_below(self, seq: int) -> None:
        for old in [s for s in self._votes if s < seq]:
            del self._votes[old]
