"""Loans: registration with a repayment schedule, charges, hardship plans, and the arithmetic on them.

State keys:
  loan/<loan_id>                        the loan, its instalments with paid amounts, status and balances
  loan_by_subject/<subject_id>/<loan_id> creditor member id (for credit reports)

An instalment is {number, due_date, principal, interest, costs, paid_principal,
paid_interest, paid_costs}. All amounts are integer fen.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from node.contracts.consent import require_consent
from node.contracts.context import TxContext, TxRoute, route
from node.contracts.dates import add_months, days_between, parse_date
from node.contracts.erasure import require_not_erased
from node.contracts.errors import fail
from node.contracts.models import DateText, Fen, Hex64, Payload, PositiveFen, RecordId, BasisPoints, ReasonCode
from node.contracts.registry import get_subject_or_fail

COMPONENTS = ("costs", "interest", "principal")
INSTALMENTS_MAX = 600


class InstalmentSpec(Payload):
    number: int = Field(ge=1, le=INSTALMENTS_MAX)
    due_date: DateText
    principal: Fen
    interest: Fen


class LoanTerms(Payload):
    product: Literal["loan", "card"] = "loan"
    allocation_order: list[Literal["costs", "interest", "principal"]] = Field(default_factory=lambda: list(COMPONENTS))


class LoanRegisterPayload(Payload):
    loan_id: RecordId
    subject_id: Hex64
    principal: PositiveFen
    currency: Literal["CNY"]
    annual_rate_bp: BasisPoints
    start_date: DateText
    schedule: list[InstalmentSpec] = Field(min_length=1, max_length=INSTALMENTS_MAX)
    guarantors: list[Hex64] = Field(default_factory=list, max_length=10)
    terms: LoanTerms = Field(default_factory=LoanTerms)


class LoanChargePayload(Payload):
    loan_id: RecordId
    charge_id: RecordId
    number: int = Field(ge=1, le=INSTALMENTS_MAX)
    kind: Literal["penalty", "cost"]
    amount: PositiveFen
    reason: ReasonCode
    note_hash: Hex64 | None = None


class LoanRestructurePayload(Payload):
    loan_id: RecordId
    plan_id: RecordId
    schedule: list[InstalmentSpec] = Field(min_length=1, max_length=INSTALMENTS_MAX)
    reason: ReasonCode
    note_hash: Hex64 | None = None


def half_up_div(numerator: int, denominator: int) -> int:
    """Divide non-negative integers rounding half up."""
    return (2 * numerator + denominator) // (2 * denominator)


def equal_principal_schedule(principal: int, annual_rate_bp: int, start_date: str, months: int) -> list[dict[str, int | str]]:
    """Build a monthly schedule (L1, L4): equal principal, monthly interest on the balance, half-up rounding.

    The last instalment absorbs the rounding remainder of principal, and due
    dates keep the start date's day, clamped to month end.
    """
    anchor = parse_date(start_date).day
    base = principal // months
    schedule = []
    balance = principal
    for number in range(1, months + 1):
        part = balance if number == months else base
        interest = half_up_div(balance * annual_rate_bp, 12 * 10_000)
        schedule.append(
            {"number": number, "due_date": add_months(start_date, number, anchor), "principal": part, "interest": interest}
        )
        balance -= part
    return schedule


def check_schedule(schedule: list[InstalmentSpec], after_date: str) -> None:
    numbers = [item.number for item in schedule]
    if numbers != list(range(1, len(schedule) + 1)):
        fail("invalid_schedule", reason="numbers must run 1..n", numbers=numbers[:20])
    previous = after_date
    for item in schedule:
        if item.due_date <= previous:
            fail("invalid_schedule", reason="due dates must increase and follow the start", due_date=item.due_date)
        previous = item.due_date


def instalment_record(item: InstalmentSpec) -> dict[str, Any]:
    return {
        "number": item.number,
        "due_date": item.due_date,
        "principal": item.principal,
        "interest": item.interest,
        "costs": 0,
        "paid_principal": 0,
        "paid_interest": 0,
        "paid_costs": 0,
    }


def unpaid(instalment: dict[str, Any], component: str) -> int:
    return instalment[component] - instalment[f"paid_{component}"]


def instalment_unpaid(instalment: dict[str, Any]) -> int:
    return sum(unpaid(instalment, component) for component in COMPONENTS)


def outstanding(loan: dict[str, Any]) -> int:
    return sum(instalment_unpaid(item) for item in loan["instalments"])


def oldest_unpaid_due(loan: dict[str, Any]) -> str | None:
    """Due date of the oldest instalment with unpaid principal or interest (DPD counts from it, L2)."""
    for item in loan["instalments"]:
        if unpaid(item, "principal") + unpaid(item, "interest") > 0:
            return item["due_date"]
    return None


def days_past_due(loan: dict[str, Any], date: str) -> int:
    """DPD on `date` (L2): the day after a due date is day 1; 0 when nothing is overdue or the loan is closed."""
    if loan["status"] != "open":
        return 0
    due = oldest_unpaid_due(loan)
    if due is None or due >= date:
        return 0
    return days_between(due, date)


def get_loan_or_fail(state: Any, loan_id: str) -> dict[str, Any]:
    loan = state.get(f"loan/{loan_id}")
    if loan is None:
        fail("not_found", loan_id=loan_id)
    return loan


def creditor_loan(tc: TxContext, loan_id: str) -> dict[str, Any]:
    """Load a loan that the sender must own as creditor (L12)."""
    loan = get_loan_or_fail(tc.state, loan_id)
    if loan["creditor"] != tc.sender.member_id:
        fail("not_creditor", loan_id=loan_id, creditor=loan["creditor"])
    return loan


def record_peak_dpd(tc: TxContext, loan: dict[str, Any]) -> None:
    """Raise the loan's max_dpd to its DPD at the block date, before a transaction changes what is due.

    A repayment, settlement, write-off or new plan can lower DPD at once, and the
    time step refreshes a loan only on its event dates, so without this the peak
    reached on the day of the change would be lost.
    """
    loan["max_dpd"] = max(loan["max_dpd"], days_past_due(loan, tc.today))


def save_loan(tc: TxContext, loan: dict[str, Any]) -> None:
    """Store a changed loan and bring its delinquency status and indexes up to date."""
    from node.contracts.delinquency import refresh_loan

    refresh_loan(tc.state, loan, tc.today, tc.params, tc.events)


def register_loan(tc: TxContext, payload: LoanRegisterPayload) -> None:
    if tc.state.get(f"loan/{payload.loan_id}") is not None:
        fail("duplicate_id", loan_id=payload.loan_id)
    get_subject_or_fail(tc.state, payload.subject_id)
    require_not_erased(tc.state, payload.subject_id)
    for guarantor in payload.guarantors:
        get_subject_or_fail(tc.state, guarantor)
    require_consent(tc.state, payload.subject_id, tc.sender.member_id, "data_sharing", tc.today)
    check_schedule(payload.schedule, payload.start_date)
    total_principal = sum(item.principal for item in payload.schedule)
    if total_principal != payload.principal:
        fail("schedule_mismatch", principal=payload.principal, schedule_principal=total_principal)
    loan = {
        "loan_id": payload.loan_id,
        "creditor": tc.sender.member_id,
        "subject_id": payload.subject_id,
        "principal": payload.principal,
        "currency": payload.currency,
        "annual_rate_bp": payload.annual_rate_bp,
        "start_date": payload.start_date,
        "guarantors": sorted(set(payload.guarantors)),
        "terms": payload.terms.model_dump(),
        "instalments": [instalment_record(item) for item in payload.schedule],
        "status": "open",
        "registered_on": tc.today,
        "credit_balance": 0,
        "recovered": 0,
        "waived": 0,
        "written_off_amount": 0,
        "closed_on": None,
        "grade": "normal",
        "max_dpd": 0,
        "overdue_since": None,
        "delinquency_ended_on": None,
        "negative_on": None,
        "negative_pending_on": None,
        "next_event_on": None,
        "case_id": None,
        "charges": [],
        "plans": [],
    }
    if len(set(loan["terms"]["allocation_order"])) != len(COMPONENTS):
        fail("invalid_payload", errors=[{"loc": "terms.allocation_order", "type": "permutation", "msg": "list each component once"}])
    tc.state.put(f"loan_by_subject/{payload.subject_id}/{payload.loan_id}", tc.sender.member_id)
    save_loan(tc, loan)
    tc.emit("loan.registered", {"loan_id": payload.loan_id, "subject_id": payload.subject_id}, (tc.sender.member_id,))


def charge_loan(tc: TxContext, payload: LoanChargePayload) -> None:
    loan = creditor_loan(tc, payload.loan_id)
    if loan["status"] != "open":
        fail("loan_closed", loan_id=payload.loan_id, status=loan["status"])
    if any(charge["charge_id"] == payload.charge_id for charge in loan["charges"]):
        fail("duplicate_id", charge_id=payload.charge_id)
    if payload.number > len(loan["instalments"]):
        fail("not_found", loan_id=payload.loan_id, number=payload.number)
    record_peak_dpd(tc, loan)
    loan["instalments"][payload.number - 1]["costs"] += payload.amount
    loan["charges"].append({"charge_id": payload.charge_id, "number": payload.number, "kind": payload.kind, "amount": payload.amount, "charged_on": tc.today})
    save_loan(tc, loan)
    tc.emit("loan.charged", {"loan_id": payload.loan_id, "amount": payload.amount}, (tc.sender.member_id,))


def restructure_loan(tc: TxContext, payload: LoanRestructurePayload) -> None:
    """Replace the unpaid part of the schedule with a hardship plan of at most N months (L10)."""
    loan = creditor_loan(tc, payload.loan_id)
    if loan["status"] != "open":
        fail("loan_closed", loan_id=payload.loan_id, status=loan["status"])
    check_schedule(payload.schedule, tc.today)
    last_due = payload.schedule[-1].due_date
    if last_due > add_months(tc.today, tc.params["hardship_months_max"]):
        fail("hardship_too_long", last_due_date=last_due, months_max=tc.params["hardship_months_max"])
    remaining = sum(unpaid(item, "principal") for item in loan["instalments"])
    planned = sum(item.principal for item in payload.schedule)
    if planned != remaining:
        fail("schedule_mismatch", outstanding_principal=remaining, schedule_principal=planned)
    record_peak_dpd(tc, loan)
    # Close out every unpaid instalment at what was paid on it. Its unpaid interest and
    # costs move into the plan's first instalment, and its unpaid principal into the plan.
    carried_interest = sum(unpaid(item, "interest") for item in loan["instalments"])
    carried_costs = sum(unpaid(item, "costs") for item in loan["instalments"])
    kept = []
    for item in loan["instalments"]:
        if instalment_unpaid(item) > 0:
            for component in COMPONENTS:
                item[component] = item[f"paid_{component}"]
            if sum(item[component] for component in COMPONENTS) == 0:
                continue
        item["number"] = len(kept) + 1
        kept.append(item)
    for index, spec in enumerate(payload.schedule):
        record = instalment_record(spec)
        record["number"] = len(kept) + 1
        if index == 0:
            record["interest"] += carried_interest
            record["costs"] = carried_costs
        kept.append(record)
    loan["instalments"] = kept
    loan["plans"].append({"plan_id": payload.plan_id, "agreed_on": tc.today, "reason": payload.reason, "note_hash": payload.note_hash, "months": len(payload.schedule)})
    save_loan(tc, loan)
    tc.emit("loan.restructured", {"loan_id": payload.loan_id, "plan_id": payload.plan_id}, (tc.sender.member_id,))


ROUTES: dict[str, TxRoute] = {
    "loan.register": route(LoanRegisterPayload, register_loan, ("bank",)),
    "loan.charge": route(LoanChargePayload, charge_loan, ("bank",)),
    "loan.restructure": route(LoanRestructurePayload, restructure_loan, ("bank",)),
}
