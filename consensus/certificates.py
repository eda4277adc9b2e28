"""Checks of signed evidence: commit, prepared and checkpoint certificates.

Each function returns a rejection reason, or None when the evidence is valid.
They are pure so the node's catch-up can check fetched blocks with the same
rules as the replica.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from consensus.crypto import Verifier
from consensus.encoding import sha256_hex
from consensus.messages import CertifiedBlock, Checkpoint, Commit, Prepare, PreparedCertificate


def check_signed_votes(
    votes: Sequence[Commit | Prepare | Checkpoint],
    validators: Sequence[str],
    verifier: Verifier,
    chain_id: str,
) -> str | None:
    """Check that every vote is signed by a distinct member of `validators`."""
    members = set(validators)
    seen: set[str] = set()
    for vote in votes:
        if vote.sender in seen:
            return "duplicate_signer"
        seen.add(vote.sender)
        if vote.sender not in members:
            return "signer_not_validator"
        if not verifier.verify(vote.sender, vote.signing_bytes(chain_id), vote.signature):
            return "bad_signature"
    return None


def verify_certified_block(
    block: CertifiedBlock,
    validators: Sequence[str],
    quorum: int,
    verifier: Verifier,
    chain_id: str,
    payload_digest: Callable[[bytes], str] = sha256_hex,
) -> str | None:
    """Check a committed block against the validator set in force at its seq."""
    certificate = block.certificate
    if (certificate.view, certificate.seq, certificate.digest) != (block.view, block.seq, block.digest):
        return "certificate_mismatch"
    if payload_digest(block.payload) != block.digest:
        return "digest_mismatch"
    if len(certificate.commits) < quorum:
        return "too_few_signatures"
    for commit in certificate.commits:
        if (commit.view, commit.seq, commit.digest) != (block.view, block.seq, block.digest):
            return "certificate_mismatch"
    return check_signed_votes(certificate.commits, validators, verifier, chain_id)


def verify_prepared_certificate(
    certificate: PreparedCertificate,
    primary: str,
    validators: Sequence[str],
    quorum: int,
    verifier: Verifier,
    chain_id: str,
    payload_digest: Callable[[bytes], str],
) -> str | None:
    """Check a PRE-PREPARE from `primary` plus quorum - 1 matching PREPAREs from others."""
    pre_prepare = certificate.pre_prepare
    if pre_prepare.sender != primary:
        return "not_primary"
    if payload_digest(pre_prepare.payload) != pre_prepare.digest:
        return "digest_mismatch"
    if not verifier.verify(primary, pre_prepare.signing_bytes(chain_id), pre_prepare.signature):
        return "bad_signature"
    key = (pre_prepare.view, pre_prepare.seq, pre_prepare.digest)
    for prepare in certificate.prepares:
        if (prepare.view, prepare.seq, prepare.digest) != key:
            return "certificate_mismatch"
        if prepare.sender == primary:
            return "prepare_from_primary"
    if len(certificate.prepares) + 1 < quorum:
        return "too_few_signatures"
    return check_signed_votes(certificate.prepares, validators, verifier, chain_id)


def verify_checkpoint_proof(
    seq: int,
    proof: Iterable[Checkpoint],
    validators: Sequence[str],
    quorum: int,
    verifier: Verifier,
    chain_id: str,
) -> str | None:
    """Check a quorum of CHECKPOINTs that agree on one state digest at `seq`.

    Seq 0 is the genesis state and needs no proof.
    """
    checkpoints = list(proof)
    if seq == 0:
        return None if not checkpoints else "unexpected_proof"
    if len(checkpoints) < quorum:
        return "too_few_signatures"
    if len({(c.seq, c.state_digest) for c in checkpoints}) != 1 or checkpoints[0].seq != seq:
        return "certificate_mismatch"
    return check_signed_votes(checkpoints, validators, verifier, chain_id)
