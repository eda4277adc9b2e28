"""Actions of the assigned agency or the creditor on a case (C2-C8, C11, C13, C17).

Contact counters (per local day of the attempt):
  voice_count/<subject_id>/<date>   effective voice interactions with the debtor, across agencies and creditors (C4)
  dial_count/<number_hash>/<date>   dials to one number (C5)
  debt_calls/<loan_id>/<date>       calls about one debt, for the rolling window of the US profile (C15)
  blocked_number/<number_hash>      a contact person who refused (C7)
Counters are dropped by the time step a few days after their day ends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from node.contracts.collection import STAGES, assign_agency, close_case, pick_agency, record_action, release_loan
from node.contracts.context import TxContext, TxRoute, route
from node.contracts.dates import add_days
from node.contracts.disputes import require_no_open_dispute
from node.contracts.errors import fail
from node.contracts.mandates import eligible_agencies, mandate_active
from node.contracts.models import DateText, Hex64, Payload, PositiveFen, RecordId, UnixMs, ReasonCode
from node.contracts.registry import is_active

EFFECTIVE_VOICE_OUTCOMES = frozenset({"reached", "refused", "promise_to_pay"})
UNREACHED_OUTCOMES = frozenset({"no_answer", "busy", "wrong_number"})
COUNTER_KEEP_DAYS = 8


class CasePayload(Payload):
    case_id: RecordId


class CaseContactPayload(Payload):
    case_id: RecordId
    contact_id: RecordId
    at: UnixMs
    channel: Literal["voice", "sms", "visit", "letter", "app"]
    target: Literal["debtor", "guarantor", "contact_person"]
    number_hash: Hex64 | None = None
    guarantor_id: Hex64 | None = None
    collectors: list[RecordId] = Field(min_length=1, max_length=10)
    outcome: Literal["reached", "no_answer", "busy", "refused", "wrong_number", "promise_to_pay", "message_left", "delivered"]
    debt_disclosed: bool = False


class CasePromisePayload(Payload):
    case_id: RecordId
    promise_id: RecordId
    amount: PositiveFen
    due_on: DateText


class CaseRecoveryPayload(Payload):
    case_id: RecordId
    recovery_id: RecordId
    amount: PositiveFen
    recovered_on: DateText


class CaseClosePayload(Payload):
    case_id: RecordId
    outcome: Literal["returned", "recalled"]
    reason: ReasonCode
    note_hash: Hex64 | None = None


class CaseAdvancePayload(Payload):
    case_id: RecordId
    stage: Literal["outsourced", "legal", "written_off"]
    mandate_id: RecordId | None = None
    reason: ReasonCode
    note_hash: Hex64 | None = None


def acting_case(tc: TxContext, case_id: str, need_accepted: bool = True) -> dict[str, Any]:
    """Load an open case the sender may act on (C2): the assigned agency under an active mandate, or the creditor in-house."""
    case = tc.state.get(f"case/{case_id}")
    if case is None:
        fail("not_found", case_id=case_id)
    if case["status"] != "open":
        fail("case_closed", case_id=case_id)
    sender = tc.sender.member_id
    if case["stage"] == "outsourced":
        if sender != case["agency"]:
            fail("not_assigned", case_id=case_id, agency=case["agency"])
        if not is_active(tc.state, sender):
            fail("agency_suspended", agency=sender)
        if not mandate_active(tc.state.get(f"mandate/{case['mandate_id']}"), tc.today):
            fail("mandate_inactive", mandate_id=case["mandate_id"])
        if need_accepted and not case["accepted"]:
            fail("case_not_accepted", case_id=case_id)
    elif sender != case["creditor"]:
        fail("not_assigned", case_id=case_id, stage=case["stage"])
    return case


def _loan_of(tc: TxContext, case: dict[str, Any]) -> dict[str, Any]:
    loan = tc.state.get(f"loan/{case['loan_id']}")
    require_no_open_dispute(tc.state, loan, tc.params)
    return loan


def accept_case(tc: TxContext, payload: CasePayload) -> None:
    case = acting_case(tc, payload.case_id, need_accepted=False)
    if case["stage"] != "outsourced":
        fail("invalid_stage", case_id=payload.case_id, stage=case["stage"])
    if case["accepted"]:
        fail("case_already_accepted", case_id=payload.case_id)
    case["accepted"] = True
    record_action(tc.state, case, {"type": "accepted", "on": tc.today, "by": tc.sender.member_id})
    tc.state.put(f"case/{payload.case_id}", case)
    tc.emit("case.accepted", {"case_id": payload.case_id, "agency": tc.sender.member_id}, (case["creditor"],))


def _bump(tc: TxContext, key: str) -> int:
    """Increment a day counter and schedule its removal; return the new count."""
    count = (tc.state.get(key) or 0) + 1
    if count == 1:
        date = key.rsplit("/", 1)[1]
        tc.state.put(f"deadline/{add_days(date, COUNTER_KEEP_DAYS)}/counter/{key}", 1)
    tc.state.put(key, count)
    return count


def _check_target(tc: TxContext, case: dict[str, Any], loan: dict[str, Any], payload: CaseContactPayload) -> None:
    """C6 and C7: whom a contact may reach."""
    if payload.number_hash is not None and tc.state.get(f"blocked_number/{payload.number_hash}") is not None:
        fail("contact_blocked", number_hash=payload.number_hash)
    if payload.target == "guarantor" and payload.guarantor_id not in loan["guarantors"]:
        fail("target_not_allowed", target="guarantor", guarantor_id=payload.guarantor_id)
    if payload.target == "contact_person":
        if not case["debtor_unreachable"]:
            fail("target_not_allowed", target="contact_person", reason="only to locate an unreachable debtor")
        if payload.debt_disclosed:
            fail("contact_person_debt_data")
        if payload.number_hash is None:
            fail("invalid_payload", errors=[{"loc": "number_hash", "type": "missing", "msg": "required for a contact person"}])


def _check_limits(tc: TxContext, case: dict[str, Any], payload: CaseContactPayload, date: str) -> None:
    """C3, C4, C5, C8 and C15, counted before this attempt is added."""
    params = tc.params
    minute = tc.minute_of(payload.at)
    if not params["contact_start_minute"] <= minute < params["contact_end_minute"]:
        fail("contact_hours", local_minute=minute, start_minute=params["contact_start_minute"], end_minute=params["contact_end_minute"])
    if payload.channel == "visit" and len(set(payload.collectors)) < params["visit_collectors_min"]:
        fail("visit_needs_two", collectors=len(set(payload.collectors)), minimum=params["visit_collectors_min"])
    if payload.channel != "voice":
        return
    if payload.number_hash is None:
        fail("invalid_payload", errors=[{"loc": "number_hash", "type": "missing", "msg": "required for a voice call"}])
    dials = tc.state.get(f"dial_count/{payload.number_hash}/{date}") or 0
    if dials >= params["dials_per_number_per_day_max"]:
        fail("dial_limit", dials=dials, maximum=params["dials_per_number_per_day_max"])
    voice_max = params["voice_per_debtor_per_day_max"]
    if voice_max and payload.outcome in EFFECTIVE_VOICE_OUTCOMES:
        voices = tc.state.get(f"voice_count/{case['subject_id']}/{date}") or 0
        if voices >= voice_max:
            fail("voice_limit", count=voices, maximum=voice_max)
    window_max = params["calls_per_debt_window_max"]
    if window_max:
        days = params["calls_per_debt_window_days"]
        calls = sum(tc.state.get(f"debt_calls/{case['loan_id']}/{add_days(date, -offset)}") or 0 for offset in range(days))
        if calls >= window_max:
            fail("debt_call_limit", calls=calls, maximum=window_max, window_days=days)


def _count_contact(tc: TxContext, case: dict[str, Any], payload: CaseContactPayload, date: str) -> None:
    if payload.channel == "voice":
        _bump(tc, f"dial_count/{payload.number_hash}/{date}")
        if tc.params["calls_per_debt_window_max"]:
            _bump(tc, f"debt_calls/{case['loan_id']}/{date}")
        if payload.outcome in EFFECTIVE_VOICE_OUTCOMES:
            _bump(tc, f"voice_count/{case['subject_id']}/{date}")
    if payload.target == "contact_person" and payload.outcome == "refused":
        tc.state.put(f"blocked_number/{payload.number_hash}", {"blocked_on": date, "case_id": case["case_id"]})
    if payload.target == "debtor":
        if payload.outcome in UNREACHED_OUTCOMES:
            case["debtor_unreachable"] = True
        elif payload.outcome in EFFECTIVE_VOICE_OUTCOMES:
            case["debtor_unreachable"] = False


def record_contact(tc: TxContext, payload: CaseContactPayload) -> None:
    case = acting_case(tc, payload.case_id)
    loan = _loan_of(tc, case)
    if payload.at > tc.block.time_ms or payload.at < tc.block.time_ms - 86_400_000:
        fail("invalid_date", at=payload.at, reason="a contact is recorded within one day after it happens")
    if tc.state.get(f"contact/{payload.case_id}/{payload.contact_id}") is not None:
        fail("duplicate_id", contact_id=payload.contact_id)
    date = tc.date_of(payload.at)
    _check_target(tc, case, loan, payload)
    _check_limits(tc, case, payload, date)
    _count_contact(tc, case, payload, date)
    tc.state.put(f"contact/{payload.case_id}/{payload.contact_id}", 1)
    action = payload.model_dump()
    action.update({"type": "contact", "on": date, "by": tc.sender.member_id})
    record_action(tc.state, case, action)
    tc.state.put(f"case/{payload.case_id}", case)


def record_promise(tc: TxContext, payload: CasePromisePayload) -> None:
    case = acting_case(tc, payload.case_id)
    _loan_of(tc, case)
    if payload.promise_id in case["promises"]:
        fail("duplicate_id", promise_id=payload.promise_id)
    if any(p["status"] == "open" for p in case["promises"].values()):
        fail("promise_open", case_id=payload.case_id)
    if payload.due_on < tc.today:
        fail("invalid_date", due_on=payload.due_on, reason="a promise is due today or later")
    case["promises"][payload.promise_id] = {"amount": payload.amount, "made_on": tc.today, "due_on": payload.due_on, "status": "open", "paid": 0}
    tc.state.put(f"deadline/{add_days(payload.due_on, 1)}/promise/{payload.case_id}:{payload.promise_id}", 1)
    record_action(tc.state, case, {"type": "promise", "on": tc.today, "by": tc.sender.member_id, "promise_id": payload.promise_id, "amount": payload.amount, "due_on": payload.due_on})
    tc.state.put(f"case/{payload.case_id}", case)
    tc.emit("case.promise", {"case_id": payload.case_id, "promise_id": payload.promise_id, "amount": payload.amount}, (case["creditor"],))


def report_recovery(tc: TxContext, payload: CaseRecoveryPayload) -> None:
    """A collector reports money recovered; it counts once the creditor records the repayment (L12)."""
    case = acting_case(tc, payload.case_id)
    if payload.recovery_id in case["recoveries"]:
        fail("duplicate_id", recovery_id=payload.recovery_id)
    if payload.recovered_on > tc.today:
        fail("invalid_date", recovered_on=payload.recovered_on, reason="recovery date is in the future")
    case["recoveries"][payload.recovery_id] = {"amount": payload.amount, "recovered_on": payload.recovered_on, "status": "reported", "payment_id": None}
    record_action(tc.state, case, {"type": "recovery_reported", "on": tc.today, "by": tc.sender.member_id, "recovery_id": payload.recovery_id, "amount": payload.amount})
    tc.state.put(f"case/{payload.case_id}", case)
    tc.emit("case.recovery_reported", {"case_id": payload.case_id, "recovery_id": payload.recovery_id, "amount": payload.amount}, (case["creditor"],))


def close_case_by_sender(tc: TxContext, payload: CaseClosePayload) -> None:
    """The agency returns its case, or the creditor recalls it (C12)."""
    case = tc.state.get(f"case/{payload.case_id}")
    if case is None:
        fail("not_found", case_id=payload.case_id)
    if case["status"] != "open":
        fail("case_closed", case_id=payload.case_id)
    sender = tc.sender.member_id
    if payload.outcome == "recalled" and sender != case["creditor"]:
        fail("not_creditor", case_id=payload.case_id)
    if payload.outcome == "returned":
        acting_case(tc, payload.case_id, need_accepted=False)
        if case["stage"] != "outsourced":
            fail("invalid_stage", case_id=payload.case_id, stage=case["stage"])
    close_case(tc.state, case, tc.today, payload.outcome, sender, tc.events)
    release_loan(tc.state, case, hold_mandate=True)


def advance_case(tc: TxContext, payload: CaseAdvancePayload) -> None:
    """Move a case one or more stages forward by the creditor's decision (C17)."""
    case = tc.state.get(f"case/{payload.case_id}")
    if case is None:
        fail("not_found", case_id=payload.case_id)
    if case["creditor"] != tc.sender.member_id:
        fail("not_creditor", case_id=payload.case_id)
    if case["status"] != "open":
        fail("case_closed", case_id=payload.case_id)
    if STAGES.index(payload.stage) <= STAGES.index(case["stage"]):
        fail("invalid_stage", stage=case["stage"], requested=payload.stage)
    if payload.stage == "outsourced":
        mandate = tc.state.get(f"mandate/{payload.mandate_id or case['mandate_id']}")
        if mandate is None or mandate["creditor"] != case["creditor"] or not mandate_active(mandate, tc.today):
            fail("mandate_inactive", mandate_id=payload.mandate_id or case["mandate_id"])
        agencies = eligible_agencies(tc.state, mandate, tc.today, tc.params)
        if not agencies:
            fail("evaluation_missing", mandate_id=mandate["mandate_id"])
        assign_agency(tc.state, case, mandate, pick_agency(case["case_id"], agencies), tc.today, tc.sender.member_id)
    else:
        if case["mandate_id"] is not None:
            tc.state.delete(f"case_by_mandate/{case['mandate_id']}/{case['case_id']}")
        case["agency"] = None
        case["stage"] = payload.stage
        record_action(tc.state, case, {"type": "stage", "on": tc.today, "by": tc.sender.member_id, "stage": payload.stage, "reason": payload.reason, "note_hash": payload.note_hash})
    tc.state.put(f"case/{payload.case_id}", case)
    concerned = (case["creditor"],) + ((case["agency"],) if case["agency"] else ())
    tc.emit("case.stage_changed", {"case_id": payload.case_id, "stage": case["stage"], "agency": case["agency"]}, concerned)


COLLECTION_ROLES = ("collector", "bank")

ROUTES: dict[str, TxRoute] = {
    "case.accept": route(CasePayload, accept_case, ("collector",)),
    "case.contact": route(CaseContactPayload, record_contact, COLLECTION_ROLES),
    "case.promise": route(CasePromisePayload, record_promise, COLLECTION_ROLES),
    "case.recovery": route(CaseRecoveryPayload, report_recovery, COLLECTION_ROLES),
    "case.close": route(CaseClosePayload, close_case_by_sender, COLLECTION_ROLES),
    "case.advance": route(CaseAdvancePayload, advance_case, ("bank",)),
}
