"""Dispatch of dated deadlines from the time step: `deadline/<date>/<kind>/<id>` entries."""

from __future__ import annotations

from typing import Any

from node.contracts import consent, disputes, erasure, governance
from node.contracts.collection import close_cases_of_mandate, open_cases_for_creditor
from node.execution import BlockContext, Event


def _promise(state: Any, record_id: str, today: str) -> list[Event]:
    """C11: a promise is kept only if payments from the day it was made to its due date reach the full amount."""
    case_id, _, promise_id = record_id.partition(":")
    case = state.get(f"case/{case_id}")
    promise = case["promises"][promise_id]
    if promise["status"] != "open":
        return []
    paid = 0
    for _, payment in state.scan(f"payment/{case['loan_id']}/"):
        if payment["reversed_on"] is None and promise["made_on"] <= payment["paid_on"] <= promise["due_on"]:
            paid += payment["amount"]
    promise["paid"] = paid
    promise["status"] = "kept" if paid >= promise["amount"] else "broken"
    state.put(f"case/{case_id}", case)
    concerned = (case["creditor"],) + ((case["agency"],) if case["agency"] else ())
    return [Event(f"promise.{promise['status']}", {"case_id": case_id, "promise_id": promise_id, "paid": paid}, concerned)]


def _mandate_expire(state: Any, mandate_id: str, today: str) -> list[Event]:
    mandate = state.get(f"mandate/{mandate_id}")
    if mandate["status"] != "active":
        return []
    mandate["status"] = "expired"
    mandate["ended_on"] = today
    state.put(f"mandate/{mandate_id}", mandate)
    events: list[Event] = []
    close_cases_of_mandate(state, mandate, today, events)
    events.append(Event("mandate.expired", {"mandate_id": mandate_id}, tuple([mandate["creditor"], *mandate["agencies"]])))
    return events


def handle(state: Any, kind: str, record_id: str, today: str, params: dict[str, Any], ctx: BlockContext) -> list[Event]:
    if kind == "consent":
        return consent.expire_consent(state, record_id, today)
    if kind == "promise":
        return _promise(state, record_id, today)
    if kind == "dispute":
        return disputes.escalate_dispute(state, record_id, today)
    if kind == "complaint":
        return disputes.flag_complaint_overdue(state, record_id)
    if kind == "proposal":
        return governance.expire_proposal(state, record_id, today)
    if kind == "mandate_expire":
        return _mandate_expire(state, record_id, today)
    if kind == "mandate_start":
        events: list[Event] = []
        mandate = state.get(f"mandate/{record_id}")
        if mandate["status"] == "active":
            open_cases_for_creditor(state, mandate["creditor"], today, params, events)
        return events
    if kind == erasure.DEADLINE_KIND:
        return erasure.expire_freeze(state, record_id, today, ctx.time_ms)
    if kind == "counter":
        state.delete(record_id)
        return []
    raise RuntimeError(f"unknown deadline kind {kind!r} for {record_id}")
