"""The result of each replica input, and the state a restarted replica gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consensus.messages import CertifiedBlock, Message


@dataclass(frozen=True)
class FetchRequest:
    """Committed blocks from_seq..to_seq (inclusive) that the replica is missing."""

    from_seq: int
    to_seq: int
    hint_peers: tuple[str, ...]  # validators known to have them, sorted


@dataclass
class Output:
    """The effects of one input, to be performed by the node in this order.

    1. `persist`: write every record durably (value None deletes the key)
       BEFORE sending any of `messages`. The records hold the current view and
       every own vote, so a replica restarted from them never signs a second
       digest for a (view, seq) and never returns to a lower view.
    2. `messages`: send each to its recipient (public key), or to every other
       validator when the recipient is None. The replica has already applied its
       own messages to itself.
    3. `committed`: execute each block exactly once, in this order (ascending
       seq, no gaps), then report each with `Replica.block_executed`. That
       call may release further blocks, which follow the ones already released.
    `fetch`, `stable_checkpoint`, `view_changed` and `rejections` are
    information for the node: what to fetch from peers, the new low watermark,
    the view just entered, and each dropped peer message with its reason.
    Correct peers also cause the reasons duplicate, stale_view,
    below_watermark, stale_checkpoint and own_message (late or resent
    messages), so only the other reasons point to a faulty peer.
    """

    persist: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    messages: list[tuple[str | None, Message]] = field(default_factory=list)
    committed: list[CertifiedBlock] = field(default_factory=list)
    fetch: FetchRequest | None = None
    stable_checkpoint: int | None = None
    view_changed: int | None = None
    rejections: list[tuple[str, str]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.persist
            or self.messages
            or self.committed
            or self.fetch
            or self.stable_checkpoint is not None
            or self.view_changed is not None
            or self.rejections
        )


@dataclass(frozen=True)
class RestoredState:
    """Everything a restarted node hands back to a new Replica."""

    records: dict[str, dict[str, Any]]  # every persisted record that was not deleted
    last_executed_seq: int
    last_state_digest: str
