"""The PBFT replica: inputs in, an Output out, no I/O.

Theory of operation (Castro and Liskov, "Practical Byzantine Fault Tolerance",
OSDI 1999, with quorums generalised to any n):

- Normal case: the primary of view v assigns seq s to a payload with a
  PRE-PREPARE, and each backup checks it and sends PREPARE. A replica that
  has the PRE-PREPARE and quorum - 1 matching PREPAREs from other validators
  has *prepared* (v, s, digest) and sends COMMIT. A quorum of matching COMMITs
  is the commit certificate. Several seqs may be in flight inside the
  watermark window, but blocks are released to the node strictly in seq order.
- Checkpoints: after executing every K-th block a replica sends CHECKPOINT with
  its state digest; a quorum of matching ones makes the checkpoint stable, moves
  the low watermark and lets the replica forget everything at or below it.
- View change: see viewchange_mixin.py.

Membership: the primary of (view v, seq s) is always validators_at(s)[v % n].
A replica outside the set in force at a seq signs nothing for it: it follows
the PRE-PREPAREs and COMMITs of the validators and commits on their quorum, so
a validator that is about to join can keep up.

One validator set per window: see `_window_end`. Because of it, a view change
and its NEW-VIEW run under one set, the set in force just above the NEW-VIEW's
stable checkpoint, and the NEW-VIEW's sender is the primary of every seq it
re-proposes.
"""

from __future__ import annotations

import logging
from typing import Any

from consensus.buffer import FutureBuffer
from consensus.certificates import verify_certified_block
from consensus.checkpoint import CheckpointVotes
from consensus.checkpoint_mixin import CheckpointMixin
from consensus.config import ReplicaConfig
from consensus.crypto import Signer, Verifier
from consensus.log import MessageLog
from consensus.membership import ValidatorSchedule
from consensus.messages import (
    CertifiedBlock,
    Checkpoint,
    Commit,
    CommitCertificate,
    Message,
    NewView,
    PrePrepare,
    Prepare,
    PreparedCertificate,
    ViewChange,
    sign_message,
)
from consensus.output import FetchRequest, Output, RestoredState
from consensus.quorum import quorum_size
from consensus.records import VIEW_KEY, committed_key, prepared_key, vote_key
from consensus.restore import restore_into
from consensus.viewchange_mixin import ViewChangeMixin

logger = logging.getLogger("xinlian.consensus")


class Replica(CheckpointMixin, ViewChangeMixin):
    """One validator's PBFT state machine."""

    def __init__(
        self,
        config: ReplicaConfig,
        signer: Signer,
        verifier: Verifier,
        restored: RestoredState | None = None,
    ) -> None:
        self.config = config
        self.public_key = signer.public_key
        self._signer = signer
        self._verifier = verifier
        self.counters: dict[str, int] = {}

        self._view = 0
        self._in_view_change = False
        self._low_watermark = 0
        self._stable_proof: tuple[Checkpoint, ...] = ()
        self._last_committed_seq = 0
        self._last_executed_seq = 0
        self._last_state_digest = ""
        self._next_propose_seq = 1
        self._schedule = ValidatorSchedule(config.validators)

        self._log = MessageLog()
        self._own_votes: dict[tuple[int, int], str] = {}  # (view, seq) -> digest this replica signed
        self._commit_sent: set[tuple[int, int]] = set()
        self._prepared: dict[int, PreparedCertificate] = {}  # seq -> highest-view prepared certificate
        self._committed: dict[int, CertifiedBlock] = {}  # committed, not yet released to the node
        self._fetched: dict[int, CertifiedBlock] = {}  # fetched, certificate not yet checked
        self._unexecuted_records: set[int] = set()  # seqs with a persisted committed block
        self._fetch_target_seq = 0
        self._fetch_hint_peers: tuple[str, ...] = ()
        self._fetch_wait_ticks = 0
        self._fetch_probe_seq = 0
        # A window contains window_size // K checkpoints, and one more where a validator set ends.
        self._checkpoints = CheckpointVotes(per_sender_max=config.window_size // config.checkpoint_interval + 3)
        self._buffer = FutureBuffer(config.buffer_per_peer_max)
        self._init_view_change_state()
        self._pending_on_restore = Output()

        if restored is not None:
            restore_into(self, restored)

    # ---- read-only state ------------------------------------------------------

    @property
    def view(self) -> int:
        return self._view

    @property
    def in_view_change(self) -> bool:
        return self._in_view_change

    @property
    def primary(self) -> str:
        return self._primary_for(self._view, self._last_executed_seq + 1)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.public_key

    @property
    def low_watermark(self) -> int:
        return self._low_watermark

    @property
    def high_watermark(self) -> int:
        """The highest seq this replica proposes or accepts votes for now.

        It is the end of the window above the stable checkpoint, and no seq
        whose validator set may still be unknown: a set decided by a block not
        yet executed takes effect after last_executed_seq + reconfig_delay_blocks.
        """
        known_seq = self._last_executed_seq + self.config.reconfig_delay_blocks
        return min(self._window_end(self._low_watermark), known_seq)

    def _window_end(self, stable_seq: int) -> int:
        """Return the last seq of the window above a stable checkpoint at `stable_seq`.

        The window ends at stable_seq + window_size, or earlier, at the last
        seq of the validator set in force at stable_seq + 1. Every seq that
        can be proposed, prepared or carried in a VIEW-CHANGE between two
        stable checkpoints therefore uses one set. Without this rule the
        primary of an old-set NEW-VIEW would re-propose seqs of the new set,
        whose primary for that view is another validator, and replicas would
        disagree about whose PRE-PREPARE and PREPAREs count. The last seq of
        a set is also a checkpoint (see `_is_checkpoint_seq`), so the window
        can move past the boundary. Seqs of the next set wait until that
        checkpoint is stable.
        """
        end = stable_seq + self.config.window_size
        change_seq = self._schedule.next_change_after(stable_seq + 1)
        if change_seq is not None:
            end = min(end, change_seq - 1)
        return end

    def _is_checkpoint_seq(self, seq: int) -> bool:
        """Return True for every K-th seq and for the last seq of a validator set."""
        return seq % self.config.checkpoint_interval == 0 or self._schedule.next_change_after(seq) == seq + 1

    @property
    def last_committed_seq(self) -> int:
        return self._last_committed_seq

    @property
    def last_executed_seq(self) -> int:
        return self._last_executed_seq

    @property
    def next_proposal_seq(self) -> int:
        """The seq that the next `propose()` call assigns."""
        return self._proposal_seq()

    def validators_at(self, seq: int) -> tuple[str, ...]:
        return self._schedule.at(seq)

    def _primary_for(self, view: int, seq: int) -> str:
        validators = self._schedule.at(seq)
        return validators[view % len(validators)]

    def _is_member(self, seq: int) -> bool:
        """Return True when this replica is a validator at `seq`.

        A replica outside the set signs nothing for that seq and only follows the votes of others.
        """
        return self.public_key in self._schedule.at(seq)

    def _quorum_at(self, seq: int) -> int:
        return quorum_size(len(self._schedule.at(seq)))

    # ---- inputs ---------------------------------------------------------------

    def step(self, message: Message) -> Output:
        """Handle one peer message whose transport identity the node has checked."""
        out = self._new_output()
        self._step(message, out)
        self._finish(out)
        return out

    def tick(self, has_pending_work: bool) -> Output:
        """Advance the view-change timer by one tick.

        The timer runs only while there is work: the node has transactions
        waiting, a proposal is accepted but not committed, or a view change is
        in progress. An idle network therefore never changes view. While the
        timer runs, the replica also resends its latest checkpoint and its
        VIEW-CHANGE every view_timeout_ticks ticks, because peers may have lost them.
        """
        out = self._new_output()
        # A view change runs under the set in force above the stable checkpoint. A
        # replica outside that set cannot send VIEW-CHANGE, so it must not move views alone.
        is_member = self._is_member(self._low_watermark + 1)
        if is_member and (has_pending_work or self._in_view_change or self._has_uncommitted_proposal()):
            self._advance_timer(out)
        else:
            self._timer_ticks = 0
            self._retransmit_ticks = 0
        self._retry_fetch(out)
        self._finish(out)
        return out

    def can_propose(self) -> bool:
        seq = self._proposal_seq()
        return (
            not self._in_view_change
            and seq <= self.high_watermark
            and self._primary_for(self._view, seq) == self.public_key
        )

    def propose(self, payload: bytes) -> Output:
        """Send a PRE-PREPARE for `payload` at the next free seq.

        Raises ValueError when `can_propose()` is False: only the primary
        proposes, and only inside the watermark window.
        """
        if not self.can_propose():
            raise ValueError(
                f"cannot propose seq {self._proposal_seq()} in view {self._view}: this replica is not its primary, "
                "a view change is in progress, or the window is full; check can_propose() first"
            )
        out = self._new_output()
        seq = self._proposal_seq()
        digest = self.config.payload_digest(payload)
        pre_prepare = self._sign(PrePrepare(self._view, seq, digest, payload, "", b""))
        self._next_propose_seq = seq + 1
        self._accept_pre_prepare(pre_prepare, out)
        out.messages.append((None, pre_prepare))
        self._finish(out)
        return out

    def block_executed(
        self,
        seq: int,
        state_digest: str,
        validator_update: tuple[int, tuple[str, ...]] | None = None,
    ) -> Output:
        """Record that the node executed committed block `seq`.

        Raises ValueError when `seq` is not the next committed block to execute.
        """
        if seq != self._last_executed_seq + 1 or seq > self._last_committed_seq:
            raise ValueError(
                f"block {seq} executed out of order: last executed {self._last_executed_seq}, "
                f"last committed {self._last_committed_seq}"
            )
        out = self._new_output()
        high_before = self.high_watermark
        self._last_executed_seq = seq
        self._last_state_digest = state_digest
        if seq in self._unexecuted_records:
            self._unexecuted_records.discard(seq)
            out.persist.append((committed_key(seq), None))
        if validator_update is not None:
            self._schedule_validators(seq, validator_update, out)
        if self._is_checkpoint_seq(seq):
            self._send_checkpoint(seq, state_digest, out)
        if self.high_watermark > high_before:
            # The window was cut short by a validator set not yet known; messages buffered for it may now fit.
            self._replay_buffered(out)
        self._finish(out)
        return out

    def deliver_fetched(self, blocks: list[CertifiedBlock]) -> Output:
        """Accept committed blocks fetched from peers by state transfer.

        Certificates are checked against the validator set in force at each
        block's seq when the block is next in line, so a set changed by an
        earlier fetched block is applied first. Blocks are accepted up to the
        highest seq this replica asked for, and in any case up to
        last_executed_seq + reconfig_delay_blocks, so blocks that the node
        fetched on its own initiative are used too. That bound also limits
        the blocks held before their certificates can be checked.
        """
        out = self._new_output()
        limit = max(
            self._fetch_target_seq,
            self._fetch_probe_seq,
            self._low_watermark + self.config.window_size,
            self._last_executed_seq + self.config.reconfig_delay_blocks,
        )
        for block in sorted(blocks, key=lambda b: b.seq):
            if block.seq <= self._last_committed_seq or block.seq in self._committed or block.seq in self._fetched:
                continue
            if block.seq > limit:
                self._reject(out, "", "unrequested_block", f"fetched block {block.seq} beyond seq {limit}")
                continue
            self._fetched[block.seq] = block
        self._finish(out)
        return out

    # ---- dispatch -------------------------------------------------------------

    def _step(self, message: Message, out: Output) -> None:
        handler = self._HANDLERS.get(type(message))
        if handler is None:
            self._reject(out, "", "unknown_message", f"unsupported message type {type(message).__name__}")
            return
        reason = self._check_sender(message)
        if reason is not None:
            self._reject(out, message.sender, reason, "")
            return
        admission = self._admit(message)
        if admission == "later":
            if self._buffer.add(message):
                self._count("buffer_overflow")
            self._ask_for_new_view(message, out)
            self._follow_higher_view(message, out)
            return
        if admission is not None:
            self._reject(out, message.sender, admission, "")
            return
        handler(self, message, out)

    def _check_sender(self, message: Message) -> str | None:
        if message.sender not in self._sender_validators(message):
            return "sender_not_validator"
        if message.sender == self.public_key:
            return "own_message"
        if not self._verifier.verify(message.sender, message.signing_bytes(self.config.chain_id), message.signature):
            return "bad_signature"
        return None

    def _sender_validators(self, message: Message) -> tuple[str, ...]:
        """Return the validators that may send `message`.

        A VIEW-CHANGE or NEW-VIEW belongs to the window above a stable
        checkpoint. Its sender may be a validator of the window above this
        replica's checkpoint or of the window above the message's own, which
        is later when this replica lags. The membership checks of
        `_check_view_change` and `_check_new_view` are the exact ones.
        """
        if isinstance(message, ViewChange):
            stable_seq = message.stable_seq
        elif isinstance(message, NewView):
            stable_seq = max((vc.stable_seq for vc in message.view_changes), default=self._low_watermark)
        else:
            return self._schedule.at(message.seq)
        own_window = self._schedule.at(self._low_watermark + 1)
        if stable_seq <= self._low_watermark:
            return own_window
        return own_window + self._schedule.at(stable_seq + 1)

    def _admit(self, message: Message) -> str | None:
        """Return None to handle now, "later" to buffer, or a rejection reason."""
        if isinstance(message, (ViewChange, NewView)):
            return None
        if isinstance(message, Checkpoint):
            return "stale_checkpoint" if message.seq <= self._low_watermark else None
        if message.view < self._view:
            return "stale_view"
        if message.seq <= self._low_watermark:
            return "below_watermark"
        if message.view > self._view or self._in_view_change or message.seq > self.high_watermark:
            return "later"
        return None

    # ---- normal case ------------------------------------------------------------

    def _on_pre_prepare(self, pre_prepare: PrePrepare, out: Output) -> None:
        sender = pre_prepare.sender
        if sender != self._primary_for(pre_prepare.view, pre_prepare.seq):
            self._reject(out, sender, "not_primary", f"seq {pre_prepare.seq}")
            return
        if self.config.payload_digest(pre_prepare.payload) != pre_prepare.digest:
            self._reject(out, sender, "digest_mismatch", f"seq {pre_prepare.seq}")
            return
        existing = self._log.pre_prepares.get((pre_prepare.view, pre_prepare.seq))
        if existing is not None:
            reason = "duplicate" if existing.digest == pre_prepare.digest else "equivocation"
            self._reject(out, sender, reason, f"pre-prepare view {pre_prepare.view} seq {pre_prepare.seq}")
            return
        invalid = self.config.validate_payload(pre_prepare.seq, pre_prepare.payload)
        if invalid is not None:
            self._reject(out, sender, "invalid_payload", f"seq {pre_prepare.seq}: {invalid}")
            return
        self._accept_pre_prepare(pre_prepare, out)

    def _accept_pre_prepare(self, pre_prepare: PrePrepare, out: Output) -> None:
        """Store a checked PRE-PREPARE and vote for it (PREPARE, unless this replica sent it)."""
        view, seq, digest = pre_prepare.view, pre_prepare.seq, pre_prepare.digest
        if not self._record_vote(view, seq, digest, out):
            self._reject(out, pre_prepare.sender, "conflicts_own_vote", f"view {view} seq {seq}")
            return
        self._log.add_pre_prepare(pre_prepare)
        if pre_prepare.sender != self.public_key and self._is_member(seq):
            prepare = self._sign(Prepare(view, seq, digest, "", b""))
            self._log.add_vote(prepare)
            out.messages.append((None, prepare))
        self._check_prepared(view, seq, out)

    def _on_prepare(self, prepare: Prepare, out: Output) -> None:
        if prepare.sender == self._primary_for(prepare.view, prepare.seq):
            self._reject(out, prepare.sender, "prepare_from_primary", f"seq {prepare.seq}")
            return
        reason = self._log.add_vote(prepare)
        if reason is not None:
            self._reject(out, prepare.sender, reason, f"prepare view {prepare.view} seq {prepare.seq}")
            return
        self._check_prepared(prepare.view, prepare.seq, out)

    def _on_commit(self, commit: Commit, out: Output) -> None:
        reason = self._log.add_vote(commit)
        if reason is not None:
            self._reject(out, commit.sender, reason, f"commit view {commit.view} seq {commit.seq}")
            return
        self._check_committed(commit.view, commit.seq, out)

    def _check_prepared(self, view: int, seq: int, out: Output) -> None:
        pre_prepare = self._log.pre_prepares.get((view, seq))
        if pre_prepare is None or (view, seq) in self._commit_sent:
            return
        quorum = self._quorum_at(seq)
        prepares = self._log.matching_prepares(view, seq, pre_prepare.digest, pre_prepare.sender)
        if len(prepares) + 1 < quorum:
            return
        certificate = PreparedCertificate(pre_prepare, tuple(prepares[: quorum - 1]))
        current = self._prepared.get(seq)
        if current is None or current.view <= view:
            self._prepared[seq] = certificate
            out.persist.append((prepared_key(seq), certificate.to_wire()))
        self._commit_sent.add((view, seq))
        if self._is_member(seq):
            assert self._record_vote(view, seq, pre_prepare.digest, out), "commit would contradict own vote"
            commit = self._sign(Commit(view, seq, pre_prepare.digest, "", b""))
            self._log.add_vote(commit)
            out.messages.append((None, commit))
        self._check_committed(view, seq, out)

    def _check_committed(self, view: int, seq: int, out: Output) -> None:
        if (view, seq) not in self._commit_sent or seq <= self._last_committed_seq or seq in self._committed:
            return
        pre_prepare = self._log.pre_prepares[(view, seq)]
        quorum = self._quorum_at(seq)
        commits = self._log.matching_commits(view, seq, pre_prepare.digest)
        if len(commits) < quorum:
            return
        certificate = CommitCertificate(view, seq, pre_prepare.digest, tuple(commits[:quorum]))
        block = CertifiedBlock(seq, view, pre_prepare.digest, pre_prepare.payload, certificate)
        self._committed[seq] = block
        self._unexecuted_records.add(seq)
        out.persist.append((committed_key(seq), block.to_wire()))

    def _record_vote(self, view: int, seq: int, digest: str, out: Output) -> bool:
        """Record a digest this replica is about to sign, or return False if it signed another for (view, seq)."""
        existing = self._own_votes.get((view, seq))
        if existing is not None:
            return existing == digest
        self._own_votes[(view, seq)] = digest
        out.persist.append((vote_key(view, seq), {"view": view, "seq": seq, "digest": digest}))
        return True

    def _proposal_seq(self) -> int:
        return max(self._next_propose_seq, self._last_committed_seq + 1, self._low_watermark + 1)

    def _has_uncommitted_proposal(self) -> bool:
        seqs = self._log.accepted_seqs(self._view)
        return bool(seqs) and seqs[-1] > self._last_committed_seq

    # ---- releasing committed blocks ------------------------------------------------

    def _finish(self, out: Output) -> None:
        """Release every committed block that is next in seq order."""
        released = False
        while True:
            seq = self._last_committed_seq + 1
            block = self._committed.pop(seq, None)
            if block is None:
                block = self._take_fetched(seq, out)
            if block is None:
                break
            out.committed.append(block)
            self._last_committed_seq = seq
            released = True
        if released:
            self._on_progress()

    def _take_fetched(self, seq: int, out: Output) -> CertifiedBlock | None:
        block = self._fetched.get(seq)
        # A set decided by a block not yet executed takes effect reconfig_delay_blocks
        # later at the earliest, so sets up to this seq are already known.
        if block is None or seq > self._last_executed_seq + self.config.reconfig_delay_blocks:
            return None
        del self._fetched[seq]
        validators = self._schedule.at(seq)
        reason = verify_certified_block(
            block, validators, quorum_size(len(validators)), self._verifier, self.config.chain_id, self.config.payload_digest
        )
        if reason is not None:
            self._reject(out, "", f"invalid_certificate:{reason}", f"fetched block {seq}")
            return None
        return block

    def _request_fetch(self, to_seq: int, hint_peers: list[str], out: Output) -> None:
        from_seq = self._last_committed_seq + 1
        if to_seq < from_seq or to_seq <= self._fetch_target_seq:
            return
        self._fetch_target_seq = to_seq
        self._fetch_hint_peers = tuple(sorted(set(hint_peers)))
        self._fetch_wait_ticks = 0
        out.fetch = FetchRequest(from_seq, to_seq, self._fetch_hint_peers)
        logger.info("behind: fetching blocks %d..%d from %d peers", from_seq, to_seq, len(self._fetch_hint_peers))

    def _probe_fetch(self, out: Output) -> None:
        """Ask for any blocks the others committed after this replica's last one.

        A replica waiting alone in a view change takes no part in the view the
        others still work in, so fetching is its only way to learn their blocks.
        """
        if out.fetch is not None:
            return
        from_seq = self._last_committed_seq + 1
        self._fetch_probe_seq = self._last_committed_seq + self.config.window_size
        peers = tuple(key for key in self._schedule.at(from_seq) if key != self.public_key)
        out.fetch = FetchRequest(from_seq, self._fetch_probe_seq, peers)

    def _retry_fetch(self, out: Output) -> None:
        """Repeat an unfinished fetch every view_timeout_ticks ticks, in case the node's attempt failed."""
        if self._fetch_target_seq <= self._last_committed_seq:
            return
        self._fetch_wait_ticks += 1
        if self._fetch_wait_ticks >= self.config.view_timeout_ticks:
            self._fetch_wait_ticks = 0
            from_seq = self._last_committed_seq + 1
            out.fetch = FetchRequest(from_seq, self._fetch_target_seq, self._fetch_hint_peers)
            logger.info("fetch of blocks %d..%d not done yet, asking again", from_seq, self._fetch_target_seq)

    # ---- helpers ------------------------------------------------------------------

    def _sign(self, message: Any) -> Any:
        return sign_message(message, self._signer, self.config.chain_id)

    def _new_output(self) -> Output:
        out = self._pending_on_restore
        self._pending_on_restore = Output()
        return out

    def _persist_view(self, out: Output) -> None:
        out.persist.append((VIEW_KEY, {"view": self._view, "in_view_change": self._in_view_change}))

    def _count(self, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def _reject(self, out: Output, sender: str, reason: str, detail: str) -> None:
        self._count(reason)
        out.rejections.append((sender, reason))
        logger.debug("rejected message from %s: %s %s", sender[:16] or "-", reason, detail)

    def _replay_buffered(self, out: Output) -> None:
        for message in self._buffer.take_all():
            self._step(message, out)

    _HANDLERS: dict[type, Any] = {
        PrePrepare: _on_pre_prepare,
        Prepare: _on_prepare,
        Commit: _on_commit,
        Checkpoint: CheckpointMixin._on_checkpoint,
        ViewChange: ViewChangeMixin._on_view_change,
        NewView: ViewChangeMixin._on_new_view,
    }
