"""XinlianExecutor: routes each transaction type to its contract and runs the per-block time step."""

from __future__ import annotations

import logging
from typing import Any

from node.contracts import cases, consent, credit, delinquency, disputes, erasure, governance, loans, mandates, members, repayments
from node.contracts.context import TxContext, TxRoute
from node.contracts.errors import fail
from node.contracts.models import parse_payload
from node.contracts.params import load_params
from node.contracts.personal_data import find_in_transaction
from node.contracts.registry import Sender, init_genesis, resolve_sender
from node.execution import BlockContext, BlockResult, ContractError, Event, Receipt, State, Transaction

logger = logging.getLogger("xinlian.contracts")


def _collect_routes() -> dict[str, TxRoute]:
    routes: dict[str, TxRoute] = {}
    for module in (members, consent, loans, repayments, mandates, cases, disputes, credit, governance, erasure):
        for tx_type, entry in module.ROUTES.items():
            if tx_type in routes:
                raise RuntimeError(f"transaction type {tx_type} is routed twice")
            routes[tx_type] = entry
    return routes


ROUTES = _collect_routes()


def reject_personal_data(tx: Transaction) -> None:
    """Raise personal_data_in_payload when the nonce or a payload string looks like a personal number.

    The details name the field and the kind of number, never the value.
    """
    finding = find_in_transaction(tx.nonce, tx.payload)
    if finding is None:
        return
    details = {"field": finding.field, "kind": finding.kind}
    if finding.in_key:
        details["in_key"] = True
    fail("personal_data_in_payload", **details)


def authorize(state: State, tx: Transaction) -> tuple[TxRoute, Sender]:
    """Check the type, the sender's membership and status, and its role for this type."""
    entry = ROUTES.get(tx.type)
    if entry is None:
        fail("unknown_tx_type", type=tx.type)
    sender = resolve_sender(state, tx.sender)
    if sender.is_member and sender.role not in entry.roles:
        fail("role_not_allowed", type=tx.type, role=sender.role, allowed=sorted(entry.roles))
    if not sender.is_member and not entry.subject_allowed:
        fail("role_not_allowed", type=tx.type, role="subject", allowed=sorted(entry.roles))
    return entry, sender


class XinlianExecutor:
    """The node.execution.Executor of the built-in contracts."""

    def init_genesis(self, state: State, genesis: dict[str, Any]) -> None:
        init_genesis(state, genesis)

    def check_tx(self, state: State, tx: Transaction, time_ms: int) -> None:
        reject_personal_data(tx)
        entry, _ = authorize(state, tx)
        parse_payload(entry.model, tx.payload)

    def begin_block(self, state: State, ctx: BlockContext) -> list[Event]:
        events: list[Event] = []
        for step in BEGIN_BLOCK_STEPS:
            events.extend(step(state, ctx))
        return events

    def deliver_tx(self, state: State, ctx: BlockContext, tx: Transaction) -> Receipt:
        savepoint = state.child()
        try:
            reject_personal_data(tx)
            entry, sender = authorize(savepoint, tx)
            payload = parse_payload(entry.model, tx.payload)
            tc = TxContext(state=savepoint, block=ctx, tx=tx, sender=sender, params=load_params(savepoint))
            entry.handler(tc, payload)
        except ContractError as exc:
            logger.debug("tx %s rejected: %s (%s)", tx.tx_id, exc.code, exc.rule)
            details = dict(exc.details)
            if exc.rule:
                details["rule"] = exc.rule
            return Receipt(tx_id=tx.tx_id, ok=False, error_code=exc.code, error_details=details)
        savepoint.merge()
        return Receipt(tx_id=tx.tx_id, ok=True, events=tc.events)

    def end_block(self, state: State, ctx: BlockContext) -> BlockResult:
        events: list[Event] = []
        update = None
        for step in END_BLOCK_STEPS:
            step_events, step_update = step(state, ctx)
            events.extend(step_events)
            update = step_update or update
        return BlockResult(events=events, validator_update=update)


BEGIN_BLOCK_STEPS: list[Any] = [governance.activate_validators, delinquency.run_time_step]
END_BLOCK_STEPS: list[Any] = [governance.validator_update]
