"""The message log: PRE-PREPAREs, PREPAREs and COMMITs per (view, seq)."""

from __future__ import annotations

from consensus.messages import Commit, PrePrepare, Prepare

Slot = tuple[int, int]  # (view, seq)


class MessageLog:
    """Votes inside the watermark window, at most one per sender per (view, seq)."""

    def __init__(self) -> None:
        self.pre_prepares: dict[Slot, PrePrepare] = {}
        self._prepares: dict[Slot, dict[str, Prepare]] = {}
        self._commits: dict[Slot, dict[str, Commit]] = {}

    def add_pre_prepare(self, pre_prepare: PrePrepare) -> str | None:
        """Store a PRE-PREPARE, or return why it is not stored."""
        slot = (pre_prepare.view, pre_prepare.seq)
        existing = self.pre_prepares.get(slot)
        if existing is not None:
            return "duplicate" if existing.digest == pre_prepare.digest else "equivocation"
        self.pre_prepares[slot] = pre_prepare
        return None

    def add_vote(self, vote: Prepare | Commit) -> str | None:
        """Store a PREPARE or COMMIT; the first vote of a sender for a slot wins."""
        table = self._prepares if isinstance(vote, Prepare) else self._commits
        votes = table.setdefault((vote.view, vote.seq), {})
        existing = votes.get(vote.sender)
        if existing is not None:
            return "duplicate" if existing.digest == vote.digest else "equivocation"
        votes[vote.sender] = vote
        return None

    def matching_prepares(self, view: int, seq: int, digest: str, primary: str) -> list[Prepare]:
        votes = self._prepares.get((view, seq), {})
        return [votes[s] for s in sorted(votes) if votes[s].digest == digest and s != primary]

    def matching_commits(self, view: int, seq: int, digest: str) -> list[Commit]:
        votes = self._commits.get((view, seq), {})
        return [votes[s] for s in sorted(votes) if votes[s].digest == digest]

    def forget_through(self, seq: int) -> None:
        """Drop every entry with a seq at or below `seq` (a stable checkpoint)."""
        for table in (self.pre_prepares, self._prepares, self._commits):
            for slot in [slot for slot in table if slot[1] <= seq]:
                del table[slot]

    def forget_views_below(self, view: int) -> None:
        for table in (self.pre_prepares, self._prepares, self._commits):
            for slot in [slot for slot in table if slot[0] < view]:
                del table[slot]

    def accepted_seqs(self, view: int) -> list[int]:
        return sorted(seq for v, seq in self.pre_prepares if v == view)
