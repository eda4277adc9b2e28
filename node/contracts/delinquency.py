"""Delinquency: DPD, five-grade classification (L11), the due-date index, and the per-block time step.

State keys:
  due/<YYYY-MM-DD>/<loan_id>       1: the loan's next event date (becomes overdue, changes grade, opens a case)
  overdue/<creditor>/<loan_id>     1: loans now overdue, per creditor (used when a mandate is granted)
  deadline/<YYYY-MM-DD>/<kind>/<id> 1: promise, dispute, complaint, consent, mandate and proposal deadlines

The time step reads only index entries dated today or earlier, so its cost
grows with the loans whose status can change today, not with the book.
"""

from __future__ import annotations

from typing import Any

from node.contracts import collection
from node.contracts.credit import mark_overdue_negative
from node.contracts.dates import add_days, local_date
from node.contracts.loans import days_past_due, oldest_unpaid_due
from node.contracts.params import load_params
from node.execution import BlockContext, Event

GRADES = ("normal", "special_mention", "substandard", "doubtful", "loss")
GRADE_NAMES_ZH = {"normal": "正常", "special_mention": "关注", "substandard": "次级", "doubtful": "可疑", "loss": "损失"}


def classification_bounds(loan: dict[str, Any], params: dict[str, Any]) -> list[int]:
    if loan["terms"]["product"] == "card":
        return params["card_classification_dpd_bounds"]
    return params["classification_dpd_bounds"]


def classify(dpd: int, bounds: list[int]) -> str:
    """Five-grade classification by DPD (L11): "over N days" excludes N (L3)."""
    if dpd <= 0:
        return "normal"
    for grade, bound in zip(GRADES[1:], bounds):
        if dpd <= bound:
            return grade
    return "loss"


def loan_grade(loan: dict[str, Any], dpd: int, params: dict[str, Any]) -> str:
    if loan["status"] == "written_off":
        return "loss"
    return classify(dpd, classification_bounds(loan, params))


def next_event_date(state: Any, loan: dict[str, Any], today: str, params: dict[str, Any]) -> str | None:
    """First date after today on which the loan's DPD status, grade or collection can change."""
    if loan["status"] != "open":
        return None
    due = oldest_unpaid_due(loan)
    if due is None:
        return None
    if due >= today:
        return add_days(due, 1)
    candidates = [add_days(due, bound + 1) for bound in classification_bounds(loan, params)]
    case_date = collection.next_case_open_date(state, loan, due, today)
    if case_date is not None:
        candidates.append(case_date)
    later = [date for date in candidates if date > today]
    return min(later) if later else None


def _reindex(state: Any, loan: dict[str, Any], next_date: str | None) -> None:
    previous = loan.get("next_event_on")
    if previous == next_date:
        return
    if previous is not None:
        state.delete(f"due/{previous}/{loan['loan_id']}")
    if next_date is not None:
        state.put(f"due/{next_date}/{loan['loan_id']}", 1)
    loan["next_event_on"] = next_date


def _update_overdue(state: Any, loan: dict[str, Any], dpd: int, today: str, events: list[Event]) -> None:
    creditor = loan["creditor"]
    overdue_key = f"overdue/{creditor}/{loan['loan_id']}"
    if dpd > 0:
        if loan["overdue_since"] is None:
            events.append(Event("loan.overdue", {"loan_id": loan["loan_id"], "subject_id": loan["subject_id"], "dpd": dpd}, (creditor,)))
            state.put(overdue_key, 1)
            mark_overdue_negative(state, loan, today, dpd, events)
        loan["overdue_since"] = oldest_unpaid_due(loan)
        loan["delinquency_ended_on"] = None
        return
    if loan["overdue_since"] is not None:
        loan["overdue_since"] = None
        loan["delinquency_ended_on"] = today
        state.delete(overdue_key)
        events.append(Event("loan.delinquency_ended", {"loan_id": loan["loan_id"], "status": loan["status"]}, (creditor,)))


def refresh_loan(state: Any, loan: dict[str, Any], today: str, params: dict[str, Any], events: list[Event]) -> None:
    """Recompute DPD, grade, indexes and collection for a loan on `today`, then store it."""
    dpd = days_past_due(loan, today)
    _update_overdue(state, loan, dpd, today, events)
    loan["max_dpd"] = max(loan["max_dpd"], dpd)
    grade = loan_grade(loan, dpd, params)
    if grade != loan["grade"]:
        data = {"loan_id": loan["loan_id"], "from": loan["grade"], "to": grade, "dpd": dpd}
        events.append(Event("loan.classified", data, (loan["creditor"],)))
        loan["grade"] = grade
    if loan["status"] != "open":
        collection.close_case_for_loan(state, loan, today, loan["status"], events)
    elif dpd > 0:
        collection.open_case_if_due(state, loan, dpd, today, params, events)
    _reindex(state, loan, next_event_date(state, loan, today, params))
    state.put(f"loan/{loan['loan_id']}", loan)


def _due_entries(state: Any, prefix: str, today: str) -> list[str]:
    """Index keys under `prefix` dated today or earlier, read before any is changed."""
    keys = []
    for key, _ in state.scan(prefix):
        date = key[len(prefix):len(prefix) + 10]
        if date > today:
            break
        keys.append(key)
    return keys


def run_time_step(state: Any, ctx: BlockContext) -> list[Event]:
    """Run the time-driven step at the start of each block: loans first, then deadlines."""
    from node.contracts import deadlines

    today = local_date(ctx.time_ms, ctx.utc_offset_minutes)
    params = load_params(state)
    events: list[Event] = []
    for key in _due_entries(state, "due/", today):
        loan_id = key[len("due/YYYY-MM-DD/"):]
        loan = state.get(f"loan/{loan_id}")
        state.delete(key)
        loan["next_event_on"] = None
        refresh_loan(state, loan, today, params, events)
    for key in _due_entries(state, "deadline/", today):
        state.delete(key)
        kind, _, record_id = key[len("deadline/YYYY-MM-DD/"):].partition("/")
        events.extend(deadlines.handle(state, kind, record_id, today, params, ctx))
    return events
