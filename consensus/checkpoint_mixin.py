"""Checkpoints, garbage collection, state-transfer triggers and reconfiguration.

A checkpoint at seq s is stable once a quorum of validators in force at s
signed CHECKPOINTs with the same state digest. The low watermark then moves to
s and everything at or below s is forgotten. A replica that receives f + 1
matching checkpoints above its last committed block is behind, because at
least one correct replica executed that far. It then emits a FetchRequest
for the missing blocks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from consensus.messages import Checkpoint
from consensus.quorum import quorum_size, weak_quorum_size
from consensus.records import CHECKPOINT_KEY, VALIDATORS_KEY, prepared_key, vote_key

if TYPE_CHECKING:
    from consensus.output import Output
    from consensus.replica import Replica

logger = logging.getLogger("xinlian.consensus")


class CheckpointMixin:
    def _send_checkpoint(self: Replica, seq: int, state_digest: str, out: Output) -> None:
        # A checkpoint already stable through others' proof is still signed, so
        # the timer can resend it to replicas that missed the proof.
        if seq < self._low_watermark or not self._is_member(seq):
            return
        checkpoint = self._sign(Checkpoint(seq, state_digest, "", b""))
        self._checkpoints.add(checkpoint)
        out.messages.append((None, checkpoint))
        self._check_checkpoint(seq, out)

    def _on_checkpoint(self: Replica, checkpoint: Checkpoint, out: Output) -> None:
        reason = self._checkpoints.add(checkpoint)
        if reason is not None:
            self._reject(out, checkpoint.sender, reason, f"checkpoint seq {checkpoint.seq}")
            return
        self._check_checkpoint(checkpoint.seq, out)

    def _check_checkpoint(self: Replica, seq: int, out: Output) -> None:
        if seq <= self._low_watermark:
            return
        validator_count = len(self._schedule.at(seq))
        for state_digest, votes in self._checkpoints.by_digest(seq):
            if len(votes) >= quorum_size(validator_count):
                self._on_quorum_checkpoint(seq, state_digest, votes[: quorum_size(validator_count)], out)
                return
            if len(votes) >= weak_quorum_size(validator_count) and seq > self._last_committed_seq:
                self._request_fetch(seq, [vote.sender for vote in votes], out)

    def _on_quorum_checkpoint(self: Replica, seq: int, state_digest: str, proof: list[Checkpoint], out: Output) -> None:
        self._adopt_checkpoint_proof(seq, tuple(proof), out)

    def _adopt_checkpoint_proof(self: Replica, seq: int, proof: tuple[Checkpoint, ...], out: Output) -> None:
        """Make a checked quorum proof at `seq` the stable checkpoint, and fetch the blocks up to it if behind."""
        state_digest = proof[0].state_digest
        own_digest = self._checkpoints.own_digest(seq, self.public_key)
        if own_digest is not None and own_digest != state_digest:
            # NOTE: this replica's own execution disagrees with a quorum. It keeps
            # its window and stops taking checkpoints from here; recovery needs an operator.
            self._count("state_diverged")
            logger.error("state digest at seq %d is %s but a quorum signed %s", seq, own_digest, state_digest)
            return
        self._make_stable(seq, proof, out)
        if self._last_committed_seq < seq:
            self._request_fetch(seq, [vote.sender for vote in proof], out)

    def _make_stable(self: Replica, seq: int, proof: tuple[Checkpoint, ...], out: Output) -> None:
        """Move the low watermark to `seq` and forget everything at or below it."""
        assert seq > self._low_watermark, "stable checkpoint must move forward"
        self._low_watermark = seq
        self._stable_proof = proof
        out.persist.append(
            (CHECKPOINT_KEY, {"seq": seq, "state_digest": proof[0].state_digest, "proof": [c.to_wire() for c in proof]})
        )
        out.stable_checkpoint = seq
        self._log.forget_through(seq)
        # The votes at `seq` stay so the own one can be resent to replicas that are behind.
        self._checkpoints.forget_below(seq)
        self._commit_sent = {slot for slot in self._commit_sent if slot[1] > seq}
        for old_seq in sorted(s for s in self._prepared if s <= seq):
            del self._prepared[old_seq]
            out.persist.append((prepared_key(old_seq), None))
        for view, old_seq in sorted(slot for slot in self._own_votes if slot[1] <= seq):
            del self._own_votes[(view, old_seq)]
            out.persist.append((vote_key(view, old_seq), None))
        logger.info("stable checkpoint at seq %d, view %d", seq, self._view)
        self._replay_buffered(out)

    def _schedule_validators(
        self: Replica, decided_seq: int, update: tuple[int, tuple[str, ...]], out: Output
    ) -> None:
        effective_seq, validators = update
        earliest = decided_seq + self.config.reconfig_delay_blocks
        if effective_seq < earliest:
            self._reject(out, "", "reconfig_too_early", f"effective seq {effective_seq} < {earliest}")
            return
        if not validators or len(set(validators)) != len(validators):
            self._reject(out, "", "invalid_validator_set", f"decided at seq {decided_seq}")
            return
        self._schedule.add(effective_seq, tuple(validators))
        out.persist.append((VALIDATORS_KEY, self._schedule.to_record()))
        logger.info("validator set of %d takes effect at seq %d", len(validators), effective_seq)
