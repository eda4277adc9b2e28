"""What a transaction handler receives, and the table entry that routes a type to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from node.contracts.dates import local_date, local_minute_of_day
from node.contracts.models import Payload
from node.contracts.registry import Sender
from node.execution import BlockContext, Event, State, Transaction


@dataclass
class TxContext:
    state: State
    block: BlockContext
    tx: Transaction
    sender: Sender
    params: dict[str, Any]
    events: list[Event] = field(default_factory=list)

    @property
    def today(self) -> str:
        return local_date(self.block.time_ms, self.block.utc_offset_minutes)

    def date_of(self, time_ms: int) -> str:
        return local_date(time_ms, self.block.utc_offset_minutes)

    def minute_of(self, time_ms: int) -> int:
        return local_minute_of_day(time_ms, self.block.utc_offset_minutes)

    def emit(self, event_type: str, data: dict[str, Any], members: list[str] | tuple[str, ...] = ()) -> None:
        self.events.append(Event(type=event_type, data=data, members=tuple(sorted(set(members)))))


Handler = Callable[[TxContext, Any], None]


@dataclass(frozen=True)
class TxRoute:
    """How one transaction type is checked and applied.

    `roles` may send it as members; `subject_allowed` lets a registered subject's
    own key send it.
    """

    model: type[Payload]
    handler: Handler
    roles: frozenset[str]
    subject_allowed: bool = False


def route(model: type[Payload], handler: Handler, roles: tuple[str, ...], subject_allowed: bool = False) -> TxRoute:
    return TxRoute(model=model, handler=handler, roles=frozenset(roles), subject_allowed=subject_allowed)
