"""View changes: the timer, VIEW-CHANGE, NEW-VIEW and rejoining.

- The timer runs only while there is pending work. When it expires the replica
  moves to view v + 1 and sends VIEW-CHANGE with its stable checkpoint proof
  and its prepared certificates above it. The timeout doubles with every view
  change that brings no committed block, up to view_timeout_max_ticks.
- A replica that has received VIEW-CHANGEs from f + 1 validators for views
  above its own joins the highest view that f + 1 of them reached. One correct
  replica is then not left behind, and f faulty ones cannot force a change.
- A replica waiting for NEW-VIEW starts its timer for the next view only after
  a quorum sent VIEW-CHANGE for this view or a later one, so one replica cannot
  race ahead alone. (PBFT waits for a quorum for exactly this view.) Meanwhile
  it resends its VIEW-CHANGE and asks the node to fetch blocks that the others
  commit without it.
- The primary of view v collects a quorum of VIEW-CHANGEs for v and sends
  NEW-VIEW with the re-proposals `plan_new_view` computes. Every replica checks
  a NEW-VIEW by recomputing that plan from the included VIEW-CHANGEs.
- A replica that missed the NEW-VIEW rejoins: when a peer's message for the
  view it is changing to arrives, it sends that peer its VIEW-CHANGE again, and
  a peer that receives a VIEW-CHANGE for a view it has already installed replies
  with the NEW-VIEW it installed. Each happens once per peer and view.
- A replica that slept through a view change (a restart, a lost NEW-VIEW)
  while the network is idle has no running timer. When f + 1 validators send
  it signed PRE-PREPARE, PREPARE or COMMIT messages of views above its own, at
  least one correct replica has installed such a view. It then starts a view
  change to the highest view that f + 1 of them reached, and the peers answer
  its VIEW-CHANGE with the NEW-VIEW they installed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from consensus.certificates import verify_checkpoint_proof, verify_prepared_certificate
from consensus.messages import Checkpoint, Message, NewView, PrePrepare, ViewChange
from consensus.quorum import quorum_size, weak_quorum_size
from consensus.viewchange import NULL_PAYLOAD, NewViewPlan, plan_new_view

if TYPE_CHECKING:
    from consensus.output import Output
    from consensus.replica import Replica

logger = logging.getLogger("xinlian.consensus")

VIEW_CHANGES_PER_SENDER_MAX = 4  # the highest views kept per sender


class ViewChangeMixin:
    def _init_view_change_state(self: Replica) -> None:
        self._timer_ticks = 0
        self._retransmit_ticks = 0
        self._failed_view_changes = 0  # view changes since the last committed block
        self._view_changes: dict[int, dict[str, ViewChange]] = {}  # new view -> sender -> message
        self._installed_new_view: NewView | None = None
        self._new_view_resent: set[tuple[str, int]] = set()
        self._view_change_resent: set[tuple[str, int]] = set()
        self._new_view_sent = False
        self._higher_view_by_sender: dict[str, int] = {}  # highest normal-case view above this replica's own

    def _view_timeout_ticks(self: Replica) -> int:
        backoff = self.config.view_timeout_ticks << min(self._failed_view_changes, 32)
        return min(backoff, self.config.view_timeout_max_ticks)

    def _advance_timer(self: Replica, out: Output) -> None:
        self._retransmit_ticks += 1
        if self._retransmit_ticks >= self.config.view_timeout_ticks:
            self._retransmit_ticks = 0
            self._retransmit(out)
        # Without a quorum for this view the next timeout would leave the others behind.
        if self._in_view_change and not self._has_view_change_quorum():
            return
        self._timer_ticks += 1
        if self._timer_ticks >= self._view_timeout_ticks():
            logger.info("view %d timed out after %d ticks", self._view, self._timer_ticks)
            self._start_view_change(self._view + 1, out)

    def _has_view_change_quorum(self: Replica) -> bool:
        """Return True when a quorum has sent VIEW-CHANGE for this view or a later one.

        Later views count too: a peer that already moved past this view may
        never resend its VIEW-CHANGE for it.
        """
        members = set(self._schedule.at(self._low_watermark + 1))
        senders: set[str] = set()
        for view, by_sender in self._view_changes.items():
            if view >= self._view:
                senders.update(sender for sender in by_sender if sender in members)
        return len(senders) >= quorum_size(len(members))

    def _retransmit(self: Replica, out: Output) -> None:
        """Resend the own VIEW-CHANGE and latest checkpoint, which lossy links may have dropped."""
        if self._in_view_change:
            own = self._view_changes.get(self._view, {}).get(self.public_key)
            if own is not None:
                out.messages.append((None, own))
            else:
                # A replica that became a validator during this view change has not sent one yet.
                self._send_own_view_change(out)
            if not self._has_view_change_quorum():
                self._probe_fetch(out)
        checkpoint = self._checkpoints.latest_own(self.public_key)
        if checkpoint is not None:
            out.messages.append((None, checkpoint))

    def _on_progress(self: Replica) -> None:
        self._timer_ticks = 0
        self._failed_view_changes = 0

    # ---- sending VIEW-CHANGE ----------------------------------------------------

    def _start_view_change(self: Replica, new_view: int, out: Output) -> None:
        assert new_view > self._view or (new_view == self._view and not self._in_view_change)
        self._view = new_view
        self._in_view_change = True
        self._timer_ticks = 0
        self._failed_view_changes += 1
        self._new_view_sent = False
        self._persist_view(out)
        self._log.forget_views_below(new_view)
        self._send_own_view_change(out)

    def _send_own_view_change(self: Replica, out: Output) -> None:
        """Sign and send VIEW-CHANGE for the current view; also used after a restart."""
        if not self._is_member(self._low_watermark + 1):
            return
        # NOTE: each certificate carries its block's payload, and a NEW-VIEW carries a quorum of these
        # messages. With many large prepared blocks above the watermark they can exceed a node's peer
        # message limit, and the view change then fails. Sending digests and fetching payloads would fix it.
        certificates = tuple(self._prepared[seq] for seq in sorted(self._prepared) if seq > self._low_watermark)
        view_change = self._sign(
            ViewChange(self._view, self._low_watermark, self._stable_proof, certificates, "", b"")
        )
        self._store_view_change(view_change)
        out.messages.append((None, view_change))
        logger.info("sent view change to view %d", self._view)
        self._try_new_view(out)

    def _store_view_change(self: Replica, view_change: ViewChange) -> str | None:
        by_sender = self._view_changes.setdefault(view_change.new_view, {})
        existing = by_sender.get(view_change.sender)
        if existing is not None:
            return "duplicate" if existing == view_change else "equivocation"
        by_sender[view_change.sender] = view_change
        views = sorted(v for v, senders in self._view_changes.items() if view_change.sender in senders)
        for old_view in views[: max(0, len(views) - VIEW_CHANGES_PER_SENDER_MAX)]:
            del self._view_changes[old_view][view_change.sender]
        return None

    # ---- receiving VIEW-CHANGE -------------------------------------------------

    def _on_view_change(self: Replica, view_change: ViewChange, out: Output) -> None:
        sender = view_change.sender
        if view_change.new_view < self._view or (view_change.new_view == self._view and not self._in_view_change):
            self._resend_new_view(sender, view_change.new_view, out)
            self._reject(out, sender, "stale_view", f"view change to {view_change.new_view}")
            return
        if self._view_changes.get(view_change.new_view, {}).get(sender) == view_change:
            self._reject(out, sender, "duplicate", f"view change to {view_change.new_view}")
            return
        reason = self._check_view_change(view_change)
        if reason is not None:
            self._reject(out, sender, f"invalid_view_change:{reason}", f"to view {view_change.new_view}")
            return
        reason = self._store_view_change(view_change)
        if reason is not None:
            self._reject(out, sender, reason, f"view change to {view_change.new_view}")
            return
        if view_change.stable_seq > self._low_watermark:
            # The checked proof is as good as a quorum of CHECKPOINTs. A replica
            # that missed them would otherwise stay in the previous window, and
            # after a validator change it could not even take part in this view change.
            self._adopt_checkpoint_proof(view_change.stable_seq, view_change.checkpoint_proof, out)
        self._join_if_behind(out)
        self._try_new_view(out)

    def _check_view_change(self: Replica, view_change: ViewChange) -> str | None:
        """Check the checkpoint proof and prepared certificates a VIEW-CHANGE carries."""
        stable_seq = view_change.stable_seq
        validators = self._schedule.at(stable_seq)
        reason = verify_checkpoint_proof(
            stable_seq,
            view_change.checkpoint_proof,
            validators,
            quorum_size(len(validators)),
            self._verifier,
            self.config.chain_id,
        )
        if reason is not None:
            return f"checkpoint_proof_{reason}"
        seen: set[int] = set()
        for certificate in view_change.prepared_certificates:
            seq = certificate.seq
            # A correct sender prepares nothing past the window of its stable
            # checkpoint, which ends where the validator set changes.
            if seq in seen or not stable_seq < seq <= self._window_end(stable_seq):
                return "certificate_seq_out_of_range"
            if certificate.view >= view_change.new_view:
                return "certificate_view_too_high"
            seen.add(seq)
            validators = self._schedule.at(seq)
            reason = verify_prepared_certificate(
                certificate,
                self._primary_for(certificate.view, seq),
                validators,
                quorum_size(len(validators)),
                self._verifier,
                self.config.chain_id,
                self.config.payload_digest,
            )
            if reason is not None:
                return f"prepared_certificate_{reason}"
        return None

    def _join_if_behind(self: Replica, out: Output) -> None:
        highest_by_sender: dict[str, int] = {}
        for view in sorted(self._view_changes):
            if view > self._view:
                for sender in self._view_changes[view]:
                    highest_by_sender[sender] = view
        members = self._schedule.at(self._low_watermark + 1)
        weak = weak_quorum_size(len(members))
        views = sorted((v for s, v in highest_by_sender.items() if s in members), reverse=True)
        if len(views) >= weak:
            self._start_view_change(views[weak - 1], out)

    def _resend_new_view(self: Replica, sender: str, view: int, out: Output) -> None:
        installed = self._installed_new_view
        if installed is None or installed.view < view or (sender, installed.view) in self._new_view_resent:
            return
        self._new_view_resent.add((sender, installed.view))
        out.messages.append((sender, installed))

    def _ask_for_new_view(self: Replica, message: Message, out: Output) -> None:
        """Send our VIEW-CHANGE again to a peer that is already working in our new view."""
        if not self._in_view_change or isinstance(message, (ViewChange, NewView, Checkpoint)):
            return
        if message.view != self._view or (message.sender, self._view) in self._view_change_resent:
            return
        own = self._view_changes.get(self._view, {}).get(self.public_key)
        if own is not None:
            self._view_change_resent.add((message.sender, self._view))
            out.messages.append((message.sender, own))

    def _follow_higher_view(self: Replica, message: Message, out: Output) -> None:
        """Start a view change to a view that f + 1 validators already work in.

        `message` is a PRE-PREPARE, PREPARE or COMMIT whose signature and
        sender were checked. Only the highest view per sender is kept, so the
        table has at most one entry per validator.
        """
        if isinstance(message, (ViewChange, NewView, Checkpoint)) or message.view <= self._view:
            return
        if message.view > self._higher_view_by_sender.get(message.sender, -1):
            self._higher_view_by_sender[message.sender] = message.view
        members = self._schedule.at(self._low_watermark + 1)
        for sender in [s for s, v in self._higher_view_by_sender.items() if v <= self._view or s not in members]:
            del self._higher_view_by_sender[sender]
        weak = weak_quorum_size(len(members))
        views = sorted(self._higher_view_by_sender.values(), reverse=True)
        # NOTE: a replica outside the current set cannot send VIEW-CHANGE, so this rule does not move it.
        if len(views) < weak or not self._is_member(self._low_watermark + 1):
            return
        target = views[weak - 1]
        logger.info("leaving view %d: %d validators work in views up to %d", self._view, len(views), views[0])
        self._start_view_change(target, out)

    # ---- sending NEW-VIEW ---------------------------------------------------------

    def _try_new_view(self: Replica, out: Output) -> None:
        if not self._in_view_change or self._new_view_sent:
            return
        voters = self._choose_new_view_voters()
        if voters is None:
            return
        plan = plan_new_view(voters, self._window_end, self._null_digest())
        pre_prepares = tuple(
            self._sign(PrePrepare(self._view, p.seq, p.digest, p.payload, "", b"")) for p in plan.proposals
        )
        new_view = self._sign(NewView(self._view, tuple(voters), pre_prepares, "", b""))
        self._new_view_sent = True
        logger.info("sending new view %d with %d re-proposals", self._view, len(pre_prepares))
        out.messages.append((None, new_view))
        self._install_new_view(new_view, plan, out)

    def _choose_new_view_voters(self: Replica) -> list[ViewChange] | None:
        """Return the VIEW-CHANGEs for a NEW-VIEW from this replica, or None if it cannot send one yet.

        The highest stable checkpoint among the chosen VIEW-CHANGEs fixes the
        validator set of the NEW-VIEW, the set in force just above it. So the
        candidates are tried from the highest checkpoint down: the first one
        whose set makes this replica the primary of the view, and whose
        members sent a quorum of VIEW-CHANGEs at or below that checkpoint,
        wins. Those VIEW-CHANGEs are the ones included.
        """
        candidates = sorted(self._view_changes.get(self._view, {}).values(), key=lambda vc: (-vc.stable_seq, vc.sender))
        tried: set[int] = set()
        for base in candidates:
            if base.stable_seq in tried:
                continue
            tried.add(base.stable_seq)
            members = self._schedule.at(base.stable_seq + 1)
            if members[self._view % len(members)] != self.public_key:
                continue
            quorum = quorum_size(len(members))
            voters = [vc for vc in candidates if vc.sender in members and vc.stable_seq <= base.stable_seq]
            if len(voters) >= quorum and voters[0].stable_seq == base.stable_seq:
                return sorted(voters[:quorum], key=lambda vc: vc.sender)
        return None

    def _null_digest(self: Replica) -> str:
        return self.config.payload_digest(NULL_PAYLOAD)

    # ---- receiving NEW-VIEW -------------------------------------------------------

    def _on_new_view(self: Replica, new_view: NewView, out: Output) -> None:
        sender = new_view.sender
        if new_view.view < self._view or (new_view.view == self._view and not self._in_view_change):
            self._reject(out, sender, "stale_view", f"new view {new_view.view}")
            return
        plan, reason = self._check_new_view(new_view)
        if reason is not None:
            self._reject(out, sender, f"invalid_new_view:{reason}", f"view {new_view.view}")
            return
        self._install_new_view(new_view, plan, out)

    def _check_new_view(self: Replica, new_view: NewView) -> tuple[NewViewPlan | None, str | None]:
        """Check a NEW-VIEW by recomputing its re-proposals from its VIEW-CHANGEs."""
        view_changes = new_view.view_changes
        if not view_changes:
            return None, "too_few_view_changes"
        if len({vc.sender for vc in view_changes}) != len(view_changes):
            return None, "duplicate_view_change_sender"

        plan = plan_new_view(view_changes, self._window_end, self._null_digest())
        members = self._schedule.at(plan.stable_seq + 1)
        if new_view.sender != members[new_view.view % len(members)]:
            return None, "not_primary"
        if len(view_changes) < quorum_size(len(members)):
            return None, "too_few_view_changes"

        chain_id = self.config.chain_id
        for view_change in view_changes:
            if view_change.new_view != new_view.view or view_change.sender not in members:
                return None, "view_change_mismatch"
            if not self._verifier.verify(view_change.sender, view_change.signing_bytes(chain_id), view_change.signature):
                return None, "bad_signature"
            reason = self._check_view_change(view_change)
            if reason is not None:
                return None, reason

        if len(new_view.pre_prepares) != len(plan.proposals):
            return None, "pre_prepares_mismatch"
        for pre_prepare, proposal in zip(new_view.pre_prepares, plan.proposals):
            expected = (new_view.view, proposal.seq, proposal.digest, proposal.payload, new_view.sender)
            actual = (pre_prepare.view, pre_prepare.seq, pre_prepare.digest, pre_prepare.payload, pre_prepare.sender)
            if actual != expected:
                return None, "pre_prepares_mismatch"
            if not self._verifier.verify(pre_prepare.sender, pre_prepare.signing_bytes(chain_id), pre_prepare.signature):
                return None, "bad_signature"
        return plan, None

    def _install_new_view(self: Replica, new_view: NewView, plan: NewViewPlan, out: Output) -> None:
        """Enter the view of a checked NEW-VIEW and vote for its re-proposals."""
        if plan.stable_seq > self._low_watermark:
            self._adopt_checkpoint_proof(plan.stable_seq, plan.checkpoint_proof, out)
        self._view = new_view.view
        self._in_view_change = False
        self._timer_ticks = 0
        self._installed_new_view = new_view
        self._new_view_resent = set()
        self._view_change_resent = set()
        self._persist_view(out)
        out.view_changed = new_view.view
        self._log.forget_views_below(new_view.view)
        for view in [v for v in self._view_changes if v <= new_view.view]:
            del self._view_changes[view]
        logger.info("entered view %d, primary %s", new_view.view, new_view.sender[:16])
        # Re-proposals skip validate_payload: a quorum, so at least one correct
        # replica, prepared each of them, and null blocks carry no transactions.
        for pre_prepare in new_view.pre_prepares:
            if pre_prepare.seq > self._low_watermark:
                self._accept_pre_prepare(pre_prepare, out)
        self._next_propose_seq = plan.last_seq + 1
        self._replay_buffered(out)
