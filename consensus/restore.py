"""Rebuilding a replica from the records the node persisted."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from consensus.membership import ValidatorSchedule
from consensus.messages import CertifiedBlock, Checkpoint, PreparedCertificate, decode_message
from consensus.records import (
    CHECKPOINT_KEY,
    COMMITTED_PREFIX,
    PREPARED_PREFIX,
    VALIDATORS_KEY,
    VIEW_KEY,
    VOTE_PREFIX,
)

if TYPE_CHECKING:
    from consensus.output import RestoredState
    from consensus.replica import Replica

logger = logging.getLogger("xinlian.consensus")


def restore_into(replica: Replica, restored: RestoredState) -> None:
    """Load persisted records into a freshly constructed replica.

    Records were written by this replica, so a malformed one is a broken
    invariant and raises. Work that must be reported (committed blocks not yet
    executed, a fetch still needed) goes into the output of the next input.
    """
    records = restored.records
    replica._last_executed_seq = restored.last_executed_seq
    replica._last_committed_seq = restored.last_executed_seq
    replica._last_state_digest = restored.last_state_digest
    pending = replica._pending_on_restore

    if VALIDATORS_KEY in records:
        replica._schedule = ValidatorSchedule.from_record(records[VALIDATORS_KEY])
    if VIEW_KEY in records:
        replica._view = int(records[VIEW_KEY]["view"])
        replica._in_view_change = bool(records[VIEW_KEY]["in_view_change"])
    if CHECKPOINT_KEY in records:
        record = records[CHECKPOINT_KEY]
        replica._low_watermark = int(record["seq"])
        replica._stable_proof = tuple(_decode(wire, Checkpoint) for wire in record["proof"])

    for key in sorted(records):
        value = records[key]
        if key.startswith(VOTE_PREFIX):
            replica._own_votes[(int(value["view"]), int(value["seq"]))] = str(value["digest"])
        elif key.startswith(PREPARED_PREFIX):
            certificate = PreparedCertificate.from_wire(value)
            replica._prepared[certificate.seq] = certificate
        elif key.startswith(COMMITTED_PREFIX):
            block = CertifiedBlock.from_wire(value)
            if block.seq <= restored.last_executed_seq:
                pending.persist.append((key, None))
            else:
                replica._committed[block.seq] = block
                replica._unexecuted_records.add(block.seq)

    own_seqs = [seq for view, seq in replica._own_votes if view == replica._view]
    replica._next_propose_seq = max(own_seqs, default=0) + 1
    executed = restored.last_executed_seq
    if executed > replica._low_watermark and replica._is_checkpoint_seq(executed):
        # Checkpoint votes are not persisted. Re-signing the latest one matters when
        # the window is full, because then no later checkpoint can replace it.
        replica._send_checkpoint(executed, restored.last_state_digest, pending)
    if replica._in_view_change:
        # The VIEW-CHANGE sent before the crash was not persisted; an identical one
        # is rebuilt from the persisted checkpoint and prepared certificates.
        replica._send_own_view_change(pending)
    if replica._low_watermark > restored.last_executed_seq:
        replica._request_fetch(replica._low_watermark, list(replica._schedule.at(replica._low_watermark)), pending)
    logger.info(
        "restored at view %d, low watermark %d, executed %d, %d own votes",
        replica._view,
        replica._low_watermark,
        restored.last_executed_seq,
        len(replica._own_votes),
    )


def _decode(wire: dict, cls: type) -> Checkpoint:
    message = decode_message(wire)
    assert isinstance(message, cls), f"persisted record holds a {type(message).__name__}, expected {cls.__name__}"
    return message
