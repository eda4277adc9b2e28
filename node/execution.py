"""The boundary between the node and the built-in contracts.

The node drives execution; contracts see only what is defined here. A block is
executed as: `begin_block` (the time-driven step at the block time), then
`deliver_tx` for each transaction in block order, then `end_block`. Contracts
read and write state only through `State`, never the clock, network or disk,
so every node computes the same state root from the same blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol


@dataclass(frozen=True)
class Transaction:
    """A transaction whose encoding and signature the node has already verified."""

    tx_id: str
    type: str
    sender: str  # 64 hex chars: the ed25519 public key that signed the body
    nonce: str
    expires_at: int  # unix ms
    payload: dict[str, Any]


@dataclass(frozen=True)
class BlockContext:
    chain_id: str
    height: int
    time_ms: int  # the block timestamp; the only "now" a contract may use
    proposer: str  # member id of the proposing validator
    utc_offset_minutes: int  # the consortium's fixed offset, +08:00 = 480


@dataclass(frozen=True)
class Event:
    type: str  # for example "case.opened", "loan.overdue"
    data: dict[str, Any]
    members: tuple[str, ...] = ()  # member ids this event concerns; empty means everyone


@dataclass
class Receipt:
    tx_id: str
    ok: bool
    error_code: str | None = None
    error_details: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class ValidatorUpdate:
    """A validator-set change decided by a block, in force from `effective_height` on."""

    effective_height: int
    validators: tuple[str, ...]  # node public keys (hex), in primary-rotation order


@dataclass
class BlockResult:
    events: list[Event] = field(default_factory=list)  # from begin_block and end_block
    validator_update: ValidatorUpdate | None = None


class ContractError(Exception):
    """A rule rejected a transaction. The transaction is still committed, with `ok: false`.

    `code` is the stable identifier clients match on; `rule` names the rule in
    the rules catalogue (for example "C3"); `details` carries the values that
    broke it. Localized messages are looked up by code at the API edge.
    """

    def __init__(self, code: str, rule: str | None = None, **details: Any) -> None:
        super().__init__(code)
        self.code = code
        self.rule = rule
        self.details = details


class State(Protocol):
    """Key-value state. Keys are strings; values are canonical-JSON-compatible."""

    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...

    def scan(self, prefix: str, start: str | None = None, end: str | None = None) -> Iterator[tuple[str, Any]]:
        """Yield (key, value) for keys with `prefix`, in ascending key order, within [start, end)."""
        ...

    def child(self) -> "ChildState":
        """Open a savepoint: writes go to the child until `merge()`; dropping it discards them."""
        ...


class ChildState(State, Protocol):
    def merge(self) -> None: ...


class Executor(Protocol):
    """What the node calls; `node.contracts` provides the implementation."""

    def init_genesis(self, state: State, genesis: dict[str, Any]) -> None: ...

    def check_tx(self, state: State, tx: Transaction, time_ms: int) -> None:
        """Cheap admission check for the mempool (sender known, role allowed). Raises ContractError."""
        ...

    def begin_block(self, state: State, ctx: BlockContext) -> list[Event]: ...

    def deliver_tx(self, state: State, ctx: BlockContext, tx: Transaction) -> Receipt:
        """Apply one transaction. A rejected one leaves state unchanged and returns ok=False."""
        ...

    def end_block(self, state: State, ctx: BlockContext) -> BlockResult: ...
