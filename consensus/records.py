"""Keys of the records that a replica hands to the node to persist.

Seqs and views are zero-padded so the keys sort in numeric order.
"""

from __future__ import annotations

VIEW_KEY = "consensus/view"
CHECKPOINT_KEY = "consensus/checkpoint"
VALIDATORS_KEY = "consensus/validators"
VOTE_PREFIX = "consensus/vote/"
PREPARED_PREFIX = "consensus/prepared/"
COMMITTED_PREFIX = "consensus/committed/"


def vote_key(view: int, seq: int) -> str:
    return f"{VOTE_PREFIX}{seq:020d}/{view:020d}"


def prepared_key(seq: int) -> str:
    return f"{PREPARED_PREFIX}{seq:020d}"


def committed_key(seq: int) -> str:
    return f"{COMMITTED_PREFIX}{seq:020d}"
