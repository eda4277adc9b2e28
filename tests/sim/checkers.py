"""Safety and liveness checks over everything the correct replicas do.

Every check raises SimulationFailure at the first violation. The cluster adds
the seed and the command that reproduces the run before the failure leaves
the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from tests.sim.workload import PayloadError, decode_batch, payload_summary


class SimulationFailure(AssertionError):
    """A safety or liveness property did not hold in one simulated run."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = message
        self.reproduce_command = ""
        self.seed: int | None = None

    def __str__(self) -> str:
        if not self.reproduce_command:
            return self.reason
        return f"seed {self.seed}: {self.reason}\nreproduce with: {self.reproduce_command}"


@dataclass(frozen=True)
class SignedVote:
    kind: str
    digest: str
    tick: int


VOTE_KINDS = ("PrePrepare", "Prepare", "Commit")
CONTENT_REJECTIONS = frozenset({"digest_mismatch", "invalid_payload", "not_primary", "prepare_from_primary"})
CONTENT_REJECTION_PREFIXES = ("invalid_view_change:", "invalid_new_view:")


class SafetyChecker:
    """Watches commits and outgoing votes of the replicas that are not Byzantine."""

    def __init__(
        self,
        submitted: dict[str, int],
        payload_digest: Callable[[bytes], str],
        verify_block: Callable[[Any], str | None],
    ) -> None:
        self._submitted = submitted
        self._payload_digest = payload_digest
        self._verify_block = verify_block
        # seq -> (digest, node id, tick) of the first commit seen at that seq.
        self.first_commit: dict[int, tuple[str, str, int]] = {}
        self.first_state_digest: dict[int, tuple[str, str]] = {}
        # (node id, view, seq) -> the first digest that node signed there.
        self.signed_votes: dict[tuple[str, int, int], SignedVote] = {}
        self.highest_view: dict[str, int] = {}
        self.commits_checked = 0
        self.votes_checked = 0

    def check_commit(self, node_id: str, block: Any, last_executed_seq: int, now: int) -> None:
        """Check one committed block before the node executes it."""
        if block.seq != last_executed_seq + 1:
            raise SimulationFailure(
                f"{node_id} was given seq {block.seq} to execute after seq {last_executed_seq}: "
                "commits must come in order, once each, with no gap"
            )
        if self._payload_digest(block.payload) != block.digest:
            raise SimulationFailure(f"{node_id} committed seq {block.seq} whose digest does not match its payload")
        reason = self._verify_block(block)
        if reason is not None:
            raise SimulationFailure(f"{node_id} committed seq {block.seq} with an invalid certificate: {reason}")
        self._check_payload_origin(node_id, block)
        first = self.first_commit.get(block.seq)
        if first is None:
            self.first_commit[block.seq] = (block.digest, node_id, now)
        elif first[0] != block.digest:
            raise SimulationFailure(
                f"conflicting commits at seq {block.seq}: {first[1]} committed {first[0][:16]} at tick {first[2]}, "
                f"{node_id} committed {block.digest[:16]} at tick {now}"
            )
        self.commits_checked += 1

    def _check_payload_origin(self, node_id: str, block: Any) -> None:
        try:
            transaction_ids = decode_batch(block.payload)
        except PayloadError as exc:
            raise SimulationFailure(
                f"{node_id} committed seq {block.seq} with a payload nobody proposed "
                f"({exc}): {payload_summary(block.payload)}"
            ) from None
        for transaction_id in transaction_ids:
            if transaction_id not in self._submitted:
                raise SimulationFailure(f"{node_id} committed seq {block.seq} with unsubmitted {transaction_id!r}")

    def check_state_digest(self, node_id: str, seq: int, state_digest: str) -> None:
        first = self.first_state_digest.get(seq)
        if first is None:
            self.first_state_digest[seq] = (state_digest, node_id)
        elif first[0] != state_digest:
            raise SimulationFailure(
                f"state digest after seq {seq} differs: {first[1]} has {first[0][:16]}, {node_id} has {state_digest[:16]}"
            )

    def check_rejection(self, receiver_id: str, sender_id: str, reason: str, now: int) -> None:
        """Check that a replica never rejects a correct replica's message as malformed or forged.

        Replays and duplicates of a correct message are legitimately rejected as
        stale or duplicate, so only reasons that question the content count.
        A bad signature is not among them, because a Byzantine replica may forge
        a vote in a correct replica's name.
        """
        if reason in CONTENT_REJECTIONS or reason.startswith(CONTENT_REJECTION_PREFIXES):
            raise SimulationFailure(
                f"{receiver_id[:12]} rejected a message of correct replica {sender_id[:12]} as {reason} at tick {now}"
            )

    def check_view(self, node_id: str, view: int, now: int) -> None:
        """Check that a correct replica's view never goes down, also across restarts."""
        highest = self.highest_view.get(node_id, 0)
        if view < highest:
            raise SimulationFailure(f"{node_id[:12]} went back from view {highest} to view {view} at tick {now}")
        self.highest_view[node_id] = view

    def check_emitted(self, node_id: str, message: Any, now: int) -> None:
        """Check that a correct replica never signs two digests for one (view, seq), across restarts."""
        kind = type(message).__name__
        if kind in VOTE_KINDS:
            self._check_vote(node_id, kind, message.view, message.seq, message.digest, now)
        elif kind == "NewView":
            for pre_prepare in message.pre_prepares:
                if pre_prepare.sender == node_id:
                    self._check_vote(node_id, "NewView.PrePrepare", pre_prepare.view, pre_prepare.seq,
                                     pre_prepare.digest, now)

    def _check_vote(self, node_id: str, kind: str, view: int, seq: int, digest: str, now: int) -> None:
        self.votes_checked += 1
        key = (node_id, view, seq)
        first = self.signed_votes.get(key)
        if first is None:
            self.signed_votes[key] = SignedVote(kind, digest, now)
        elif first.digest != digest:
            raise SimulationFailure(
                f"correct replica {node_id[:12]} signed two digests at view {view} seq {seq}: "
                f"{first.kind} {first.digest[:16]} at tick {first.tick}, {kind} {digest[:16]} at tick {now}"
            )
