"""Erasure across nodes: apply the chain's `subject.erased` and `subject.frozen` events to this node's store.

A `subject.erase` transaction (node.contracts.erasure) records on chain that a
subject's off-chain data is erased or frozen. Every node executes the same
block, so every node sees the same event. Each node then calls
`apply_erasure_event` with its own off-chain store:

- `subject.erased`: destroy the local data key, then delete the ciphertext
  (crypto-shredding, see OffchainStore.erase);
- `subject.frozen`: keep the data but serve none of it until `retain_until`.

Applying an event is idempotent and needs nothing but the event and the store,
so a node may apply it again after a crash. A node that holds nothing for the
subject still records the status, so a copy stored later is not served.
`reconcile_erasures` applies the chain's current markers on start, for events
that a crash cut off between the block commit and their application.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from node.contracts.erasure import EVENT_ERASED, EVENT_FROZEN, STATE_ERASED, erasure_marker, event_data, event_type_of
from node.privacy.offchain import STATE_FROZEN, OffchainStore

logger = logging.getLogger("xinlian.privacy.erasure")

ERASURE_EVENT_TYPES = (EVENT_ERASED, EVENT_FROZEN)
Outcome = Literal["erased", "frozen", "unchanged", "ignored"]

_SUBJECT_ID = re.compile(r"[0-9a-f]{64}")
_RECORD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _event_fields(event: Any) -> tuple[str, dict[str, Any]]:
    """Return (type, data) of a node.execution.Event, a committed event, or its dict form."""
    if isinstance(event, dict):
        return event.get("type"), event.get("data")
    return event.type, event.data


def _check_data(event_type: str, data: Any) -> None:
    """Raise ValueError when an erasure event's data is malformed, which means a bug, because the contracts emit only well-formed data."""
    if not isinstance(data, dict):
        raise ValueError(f"{event_type} event data must be an object")
    if not isinstance(data.get("subject_id"), str) or not _SUBJECT_ID.fullmatch(data["subject_id"]):
        raise ValueError(f"{event_type} event has an invalid subject_id")
    if not isinstance(data.get("erasure_id"), str) or not _RECORD_ID.fullmatch(data["erasure_id"]):
        raise ValueError(f"{event_type} event has an invalid erasure_id")
    if type(data.get("at_ms")) is not int or data["at_ms"] < 0:
        raise ValueError(f"{event_type} event has an invalid at_ms")
    if event_type == EVENT_FROZEN:
        retain_until = data.get("retain_until")
        if not isinstance(retain_until, str) or not _DATE.fullmatch(retain_until):
            raise ValueError(f"{event_type} event has an invalid retain_until")


def apply_erasure_event(event: Any, store: OffchainStore) -> Outcome:
    """Apply one committed event to this node's off-chain store and return what changed.

    Returns "ignored" for every event type other than `subject.erased` and
    `subject.frozen`, and "unchanged" when the store already reflects the event.
    Raises ValueError for an erasure event with malformed data.
    """
    event_type, data = _event_fields(event)
    if event_type not in ERASURE_EVENT_TYPES:
        return "ignored"
    _check_data(event_type, data)
    subject_id = data["subject_id"]
    erasure_id = data["erasure_id"]
    reason = f"{event_type} {erasure_id}: {data.get('reason')}"
    status = store.status(subject_id) or {}

    if event_type == EVENT_ERASED:
        if status.get("state") == STATE_ERASED and status.get("erasure_id") == erasure_id:
            return "unchanged"
        store.erase(subject_id, data["at_ms"], reason=reason, erasure_id=erasure_id)
        logger.info("applied %s to subject %s (erasure %s)", event_type, subject_id, erasure_id)
        return "erased"

    if status.get("state") == STATE_ERASED:
        # The data is already gone on this node (erased locally or by an earlier event): nothing is left to keep.
        logger.warning("subject %s is already erased on this node: freeze %s has nothing to keep", subject_id, erasure_id)
        return "unchanged"
    retain_until = data["retain_until"]
    if status.get("state") == STATE_FROZEN and status.get("erasure_id") == erasure_id and status.get("retain_until") == retain_until:
        return "unchanged"
    store.freeze(subject_id, data["at_ms"], retain_until, reason=reason, erasure_id=erasure_id, missing_ok=True)
    logger.info("applied %s to subject %s until %s (erasure %s)", event_type, subject_id, retain_until, erasure_id)
    return "frozen"


def reconcile_erasures(state: Any, store: OffchainStore) -> dict[str, Outcome]:
    """Apply every erasure marker of the chain `state` to `store`; return the outcome per subject id, sorted.

    Call it on start, before serving reads, so an event lost to a crash between
    the block commit and its application still reaches this node's store.
    """
    outcomes: dict[str, Outcome] = {}
    for key, _ in state.scan("subject_erasure/"):
        subject_id = key[len("subject_erasure/"):]
        marker = erasure_marker(state, subject_id)
        event = {"type": event_type_of(marker), "data": event_data(subject_id, marker)}
        outcomes[subject_id] = apply_erasure_event(event, store)
    return outcomes
