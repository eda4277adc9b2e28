"""Collection cases: automatic opening and deterministic assignment (C1), stages (C17), closing (C12).

State keys:
  case/<case_id>                        the case: loan, creditor, stage, agency, mandate, promises, recoveries
  case_action/<case_id>/<seq:06d>       every recorded action, in order (the case history)
  case_by_mandate/<mandate_id>/<case_id> 1 while the case is open
  case_by_subject/<subject_id>/<case_id> 1 while the case is open

A case id is derived from the loan id and the loan's case count, and the
agency is chosen by the case id's SHA-256 over the sorted eligible agencies,
so every node opens the same case with the same agency in the same block.
"""

from __future__ import annotations

import hashlib
from typing import Any

from node.contracts.dates import add_days
from node.contracts.mandates import accrue_commission, creditor_mandates, covers_loan, eligible_agencies, mandate_active
from node.execution import Event

STAGES = ("in_house", "outsourced", "legal", "written_off")


def make_case_id(loan_id: str, number: int) -> str:
    return "case-" + hashlib.sha256(f"{loan_id}/{number}".encode()).hexdigest()[:32]


def pick_agency(case_id: str, agencies: list[str]) -> str:
    index = int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % len(agencies)
    return sorted(agencies)[index]


def record_action(state: Any, case: dict[str, Any], action: dict[str, Any]) -> None:
    case["action_count"] += 1
    action = dict(action, seq=case["action_count"])
    state.put(f"case_action/{case['case_id']}/{case['action_count']:06d}", action)


def _applicable_mandates(state: Any, loan: dict[str, Any], date: str) -> list[dict[str, Any]]:
    return [m for m in creditor_mandates(state, loan["creditor"]) if mandate_active(m, date) and covers_loan(m, loan)]


def next_case_open_date(state: Any, loan: dict[str, Any], overdue_since: str, today: str) -> str | None:
    """Return the date the loan's DPD reaches the lowest start threshold of its mandates, if later than today."""
    if loan["case_id"] is not None:
        return None
    dates = [add_days(overdue_since, m["start_dpd"]) for m in _applicable_mandates(state, loan, today)]
    later = [date for date in dates if date > today]
    return min(later) if later else None


def open_case_if_due(state: Any, loan: dict[str, Any], dpd: int, today: str, params: dict[str, Any], events: list[Event]) -> None:
    """C1: open a case once DPD reaches a mandate's start threshold, unless a dispute pauses collection (C13)."""
    from node.contracts.disputes import collection_paused

    if loan["case_id"] is not None or collection_paused(state, loan, params):
        return
    ready = [m for m in _applicable_mandates(state, loan, today) if dpd >= m["start_dpd"]]
    if not ready:
        return
    mandate = ready[0]
    number = loan.get("case_count", 0) + 1
    loan["case_count"] = number
    case_id = make_case_id(loan["loan_id"], number)
    case = {
        "case_id": case_id,
        "loan_id": loan["loan_id"],
        "subject_id": loan["subject_id"],
        "creditor": loan["creditor"],
        "mandate_id": mandate["mandate_id"],
        "agency": None,
        "stage": "in_house",
        "status": "open",
        "accepted": False,
        "opened_on": today,
        "closed_on": None,
        "outcome": None,
        "recovered": 0,
        "action_count": 0,
        "debtor_unreachable": False,
        "promises": {},
        "recoveries": {},
    }
    record_action(state, case, {"type": "opened", "on": today, "by": "time_rule", "dpd": dpd, "stage": "in_house"})
    agencies = eligible_agencies(state, mandate, today, params)
    if agencies:
        assign_agency(state, case, mandate, pick_agency(case_id, agencies), today, "time_rule")
    loan["case_id"] = case_id
    state.put(f"case_by_subject/{loan['subject_id']}/{case_id}", 1)
    state.put(f"case/{case_id}", case)
    concerned = (loan["creditor"],) + ((case["agency"],) if case["agency"] else ())
    events.append(Event("case.opened", {"case_id": case_id, "loan_id": loan["loan_id"], "stage": case["stage"], "agency": case["agency"], "dpd": dpd}, concerned))


def assign_agency(state: Any, case: dict[str, Any], mandate: dict[str, Any], agency: str, today: str, by: str) -> None:
    """Move a case to the outsourced stage with `agency` (C17) and index it under its mandate."""
    case["agency"] = agency
    case["mandate_id"] = mandate["mandate_id"]
    case["stage"] = "outsourced"
    case["accepted"] = False
    state.put(f"case_by_mandate/{mandate['mandate_id']}/{case['case_id']}", 1)
    record_action(state, case, {"type": "stage", "on": today, "by": by, "stage": "outsourced", "agency": agency})


def close_case(state: Any, case: dict[str, Any], today: str, outcome: str, by: str, events: list[Event]) -> None:
    """Close a case with its outcome and recovered amount (C12); the agency's access ends with it (C10)."""
    case["status"] = "closed"
    case["closed_on"] = today
    case["outcome"] = outcome
    record_action(state, case, {"type": "closed", "on": today, "by": by, "outcome": outcome, "recovered": case["recovered"]})
    state.delete(f"case_by_subject/{case['subject_id']}/{case['case_id']}")
    if case["mandate_id"] is not None:
        state.delete(f"case_by_mandate/{case['mandate_id']}/{case['case_id']}")
    state.put(f"case/{case['case_id']}", case)
    concerned = (case["creditor"],) + ((case["agency"],) if case["agency"] else ())
    events.append(Event("case.closed", {"case_id": case["case_id"], "outcome": outcome, "recovered": case["recovered"]}, concerned))


def close_case_for_loan(state: Any, loan: dict[str, Any], today: str, outcome: str, events: list[Event]) -> None:
    if loan["case_id"] is None:
        return
    case = state.get(f"case/{loan['case_id']}")
    if outcome == "written_off":
        case["stage"] = "written_off"
        record_action(state, case, {"type": "stage", "on": today, "by": loan["creditor"], "stage": "written_off"})
    close_case(state, case, today, outcome, "loan_status", events)
    loan["case_id"] = None


def release_loan(state: Any, case: dict[str, Any], hold_mandate: bool) -> None:
    """Detach a closed case from its loan; with `hold_mandate` that mandate opens no new case for the loan."""
    loan = state.get(f"loan/{case['loan_id']}")
    if loan["case_id"] == case["case_id"]:
        loan["case_id"] = None
    if hold_mandate and case["mandate_id"] is not None:
        loan.setdefault("ended_mandates", [])
        if case["mandate_id"] not in loan["ended_mandates"]:
            loan["ended_mandates"].append(case["mandate_id"])
    state.put(f"loan/{loan['loan_id']}", loan)


def close_cases_of_mandate(state: Any, mandate: dict[str, Any], today: str, events: list[Event]) -> None:
    prefix = f"case_by_mandate/{mandate['mandate_id']}/"
    case_ids = [key[len(prefix):] for key, _ in state.scan(prefix)]
    for case_id in case_ids:
        case = state.get(f"case/{case_id}")
        close_case(state, case, today, "mandate_ended", "mandate", events)
        release_loan(state, case, hold_mandate=True)


def open_cases_for_creditor(state: Any, creditor: str, today: str, params: dict[str, Any], events: list[Event]) -> None:
    """Open cases for the creditor's loans already overdue when a mandate starts."""
    from node.contracts.delinquency import refresh_loan

    prefix = f"overdue/{creditor}/"
    loan_ids = [key[len(prefix):] for key, _ in state.scan(prefix)]
    for loan_id in loan_ids:
        refresh_loan(state, state.get(f"loan/{loan_id}"), today, params, events)


def confirm_recovery(tc: Any, loan: dict[str, Any], case_id: str, recovery_id: str | None, amount: int, payment_id: str) -> dict[str, Any] | None:
    """Link a creditor's repayment to a case (L12); on an outsourced case it accrues commission (C16)."""
    from node.contracts.errors import fail

    case = tc.state.get(f"case/{case_id}")
    if case is None or case["loan_id"] != loan["loan_id"]:
        fail("not_found", case_id=case_id, loan_id=loan["loan_id"])
    if recovery_id is not None:
        report = case["recoveries"].get(recovery_id)
        if report is None:
            fail("not_found", case_id=case_id, recovery_id=recovery_id)
        if report["status"] != "reported" or report["amount"] != amount:
            fail("invalid_amount", recovery_id=recovery_id, reported=report["amount"], amount=amount, status=report["status"])
        report["status"] = "confirmed"
        report["payment_id"] = payment_id
    case["recovered"] += amount
    commission = None
    if case["stage"] == "outsourced" and case["agency"] is not None:
        mandate = tc.state.get(f"mandate/{case['mandate_id']}")
        commission = accrue_commission(tc.state, case["agency"], mandate, amount, payment_id)
    record_action(tc.state, case, {"type": "recovery_confirmed", "on": tc.today, "by": tc.sender.member_id, "amount": amount, "payment_id": payment_id})
    tc.state.put(f"case/{case_id}", case)
    return commission


def reverse_commission(state: Any, entry: dict[str, Any]) -> None:
    from node.contracts.mandates import reverse_commission as reverse

    reverse(state, entry)


def collector_mandate_active(state: Any, member_id: str, subject_id: str, date: str) -> bool:
    """C10: whether `member_id` holds an open case on the subject under a mandate active on `date`."""
    prefix = f"case_by_subject/{subject_id}/"
    for key, _ in state.scan(prefix):
        case = state.get(f"case/{key[len(prefix):]}")
        if case["status"] != "open" or case["agency"] != member_id:
            continue
        mandate = state.get(f"mandate/{case['mandate_id']}")
        if mandate is not None and mandate_active(mandate, date):
            return True
    return False
