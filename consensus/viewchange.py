"""Choosing the PRE-PREPAREs of a NEW-VIEW from a quorum of VIEW-CHANGEs.

The new primary and every replica that checks its NEW-VIEW run the same
`plan_new_view`, so a NEW-VIEW is valid only if it re-proposes exactly what
the included VIEW-CHANGEs force. For each seq above the highest stable
checkpoint that is the prepared block of the highest view, or a null block
(empty payload) where no VIEW-CHANGE reports a prepared block. Only seqs in
the window above that checkpoint count. The window ends where the validator
set changes, so every re-proposed seq has the NEW-VIEW's primary as its primary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from consensus.messages import Checkpoint, PreparedCertificate, ViewChange

NULL_PAYLOAD = b""


@dataclass(frozen=True)
class Proposal:
    seq: int
    digest: str
    payload: bytes


@dataclass(frozen=True)
class NewViewPlan:
    stable_seq: int  # the highest stable checkpoint among the VIEW-CHANGEs
    checkpoint_proof: tuple[Checkpoint, ...]
    proposals: tuple[Proposal, ...]  # one per seq in stable_seq + 1 .. highest prepared seq

    @property
    def last_seq(self) -> int:
        return self.proposals[-1].seq if self.proposals else self.stable_seq


def plan_new_view(
    view_changes: Sequence[ViewChange], window_end: Callable[[int], int], null_digest: str
) -> NewViewPlan:
    """Compute the re-proposals a NEW-VIEW must carry for these VIEW-CHANGEs.

    `window_end(stable_seq)` returns the last seq of the window above a stable checkpoint.
    """
    if not view_changes:
        raise ValueError("plan_new_view needs at least one VIEW-CHANGE")
    # Highest stable seq wins; ties are broken by sender so every replica picks the same proof.
    base = max(view_changes, key=lambda vc: (vc.stable_seq, vc.sender))
    stable_seq = base.stable_seq
    last_allowed_seq = window_end(stable_seq)
    best: dict[int, PreparedCertificate] = {}
    for view_change in sorted(view_changes, key=lambda vc: vc.sender):
        for certificate in view_change.prepared_certificates:
            if not stable_seq < certificate.seq <= last_allowed_seq:
                continue
            current = best.get(certificate.seq)
            if current is None or certificate.view > current.view:
                best[certificate.seq] = certificate
    last_seq = max(best, default=stable_seq)
    proposals = []
    for seq in range(stable_seq + 1, last_seq + 1):
        certificate = best.get(seq)
        if certificate is None:
            proposals.append(Proposal(seq, null_digest, NULL_PAYLOAD))
        else:
            proposals.append(Proposal(seq, certificate.pre_prepare.digest, certificate.pre_prepare.payload))
    return NewViewPlan(stable_seq, base.checkpoint_proof, tuple(proposals))
