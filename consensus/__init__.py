"""PBFT consensus for Xinlian as a pure state machine.

A `Replica` takes inputs (a peer message, a timer tick, a proposal, a block
executed) and returns an `Output`. It never reads a clock, the network or the
disk: the node performs the outputs.

Additions to the agreed interface (nothing was renamed):
- `verify_certified_block` takes an optional `payload_digest` (default sha256
  hex) so the caller can match a custom `ReplicaConfig.payload_digest`.
- `Output.messages` with recipient None go to every validator except this
  replica, which has already applied its own message.
- `propose` raises ValueError when `can_propose()` is False.
- `Output.view_changed` is set when a NEW-VIEW is installed, that is when the
  replica starts working in the new view, not when it sends VIEW-CHANGE.
- A null block that a NEW-VIEW uses to fill a gap has the payload b"".
- `Replica.next_proposal_seq` is the seq that the next `propose()` assigns.
- A PRE-PREPARE for seq s in view v must come from validators_at(s)[v % n].
  `Replica.primary` is that primary for s = last_executed_seq + 1.
- The window above a stable checkpoint ends early where the validator set
  changes, and the last seq of each set is a checkpoint too. No seq of the
  next set is proposed before that checkpoint is stable, so a view change
  and its NEW-VIEW always run under one set. `Replica.high_watermark` is this
  window end, lowered further to last_executed_seq + reconfig_delay_blocks,
  the highest seq whose validator set is certain to be known.
- `deliver_fetched` accepts blocks up to last_executed_seq +
  reconfig_delay_blocks even without a pending FetchRequest, so blocks the
  node fetched on its own are used. Blocks further ahead are still rejected
  as unrequested_block unless the replica requested them.
- A replica outside the validator set in force signs nothing but follows the
  validators' votes and commits, so a validator about to join keeps up.
- `sign_message`, `PreparedCertificate`, `quorum_size`, `max_faulty` and
  `weak_quorum_size` are public as well.
"""

from consensus.certificates import verify_certified_block
from consensus.config import ReplicaConfig
from consensus.crypto import Ed25519Signer, Ed25519Verifier, Signer, Verifier
from consensus.messages import (
    CertifiedBlock,
    Checkpoint,
    Commit,
    CommitCertificate,
    ConsensusDecodeError,
    Message,
    NewView,
    PrePrepare,
    Prepare,
    PreparedCertificate,
    ViewChange,
    decode_message,
    sign_message,
)
from consensus.output import FetchRequest, Output, RestoredState
from consensus.quorum import max_faulty, quorum_size, weak_quorum_size
from consensus.replica import Replica

__all__ = [
    "CertifiedBlock",
    "Checkpoint",
    "Commit",
    "CommitCertificate",
    "ConsensusDecodeError",
    "Ed25519Signer",
    "Ed25519Verifier",
    "FetchRequest",
    "Message",
    "NewView",
    "Output",
    "PrePrepare",
    "Prepare",
    "PreparedCertificate",
    "Replica",
    "ReplicaConfig",
    "RestoredState",
    "Signer",
    "Verifier",
    "ViewChange",
    "decode_message",
    "max_faulty",
    "quorum_size",
    "sign_message",
    "verify_certified_block",
    "weak_quorum_size",
]
