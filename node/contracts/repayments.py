"""Repayments, reversals, settlements and write-offs (L5-L9, L12).

State keys:
  payment/<loan_id>/<payment_id>   the payment, its allocation per instalment and component, and any reversal

A repayment pays what is due first, penalties/costs -> interest -> principal
(or the loan's own order), each component oldest instalment first (L5); money
left over pays instalments not yet due, oldest first; anything beyond the
whole loan becomes a credit balance (L6).
"""

from __future__ import annotations

from typing import Any

from node.contracts import collection
from node.contracts.context import TxContext, TxRoute, route
from node.contracts.disputes import require_no_open_dispute
from node.contracts.errors import fail
from node.contracts.credit import require_notice
from node.contracts.loans import creditor_loan, outstanding, record_peak_dpd, save_loan, unpaid
from node.contracts.models import DateText, Fen, Payload, PositiveFen, RecordId, ReasonCode, Hex64


class RepaymentRecordPayload(Payload):
    loan_id: RecordId
    payment_id: RecordId
    amount: PositiveFen
    paid_on: DateText
    case_id: RecordId | None = None
    recovery_id: RecordId | None = None


class RepaymentReversePayload(Payload):
    loan_id: RecordId
    payment_id: RecordId
    reason: ReasonCode
    note_hash: Hex64 | None = None


class LoanSettlePayload(Payload):
    loan_id: RecordId
    settlement_id: RecordId
    paid_amount: Fen
    waived_amount: Fen
    reason: ReasonCode
    note_hash: Hex64 | None = None


class LoanWriteOffPayload(Payload):
    loan_id: RecordId
    amount: PositiveFen
    reason: ReasonCode
    note_hash: Hex64 | None = None


def _take(instalment: dict[str, Any], component: str, available: int, allocation: list[dict[str, Any]]) -> int:
    amount = min(available, unpaid(instalment, component))
    if amount > 0:
        instalment[f"paid_{component}"] += amount
        allocation.append({"number": instalment["number"], "component": component, "amount": amount})
    return available - amount


def allocate(loan: dict[str, Any], amount: int, paid_on: str) -> tuple[list[dict[str, Any]], int]:
    """Apply `amount` to the loan's instalments in place; return (allocation, credit balance part)."""
    order = loan["terms"]["allocation_order"]
    allocation: list[dict[str, Any]] = []
    available = amount
    due = [item for item in loan["instalments"] if item["due_date"] <= paid_on]
    for component in order:
        for instalment in due:
            available = _take(instalment, component, available, allocation)
    for instalment in loan["instalments"]:
        for component in order:
            available = _take(instalment, component, available, allocation)
    return allocation, available


def _release(loan: dict[str, Any], allocation: list[dict[str, Any]]) -> None:
    for part in allocation:
        loan["instalments"][part["number"] - 1][f"paid_{part['component']}"] -= part["amount"]


def _mark_repaid(loan: dict[str, Any], today: str) -> None:
    if loan["status"] == "open" and outstanding(loan) == 0:
        loan["status"] = "repaid"
        loan["closed_on"] = today


def record_repayment(tc: TxContext, payload: RepaymentRecordPayload) -> None:
    loan = creditor_loan(tc, payload.loan_id)
    key = f"payment/{payload.loan_id}/{payload.payment_id}"
    if tc.state.get(key) is not None:
        fail("duplicate_id", payment_id=payload.payment_id)
    if payload.paid_on > tc.today:
        fail("invalid_date", paid_on=payload.paid_on, reason="payment date is in the future")
    if loan["status"] == "settled":
        fail("loan_closed", loan_id=payload.loan_id, status="settled")
    payment = {
        "loan_id": payload.loan_id,
        "payment_id": payload.payment_id,
        "amount": payload.amount,
        "paid_on": payload.paid_on,
        "booked_on": tc.today,
        "case_id": payload.case_id,
        "allocation": [],
        "credit": 0,
        "kind": "repayment",
        "plan_count": len(loan["plans"]),
        "reversed_on": None,
        "reverse_reason": None,
        "commission": None,
    }
    record_peak_dpd(tc, loan)
    if loan["status"] == "written_off":
        payment["kind"] = "recovery"  # L7: the loan stays written off
        loan["recovered"] += payload.amount
    elif loan["status"] == "repaid":
        payment["credit"] = payload.amount
        loan["credit_balance"] += payload.amount
    else:
        payment["allocation"], payment["credit"] = allocate(loan, payload.amount, payload.paid_on)
        loan["credit_balance"] += payment["credit"]
        _mark_repaid(loan, tc.today)
    if payload.case_id is not None:
        payment["commission"] = collection.confirm_recovery(tc, loan, payload.case_id, payload.recovery_id, payload.amount, payload.payment_id)
    tc.state.put(key, payment)
    save_loan(tc, loan)
    tc.emit("repayment.recorded", {"loan_id": payload.loan_id, "payment_id": payload.payment_id, "amount": payload.amount, "kind": payment["kind"]}, (loan["creditor"],))


def reverse_repayment(tc: TxContext, payload: RepaymentReversePayload) -> None:
    """Undo a payment's allocation (L8): its instalments reopen and DPD counts again from their due dates."""
    loan = creditor_loan(tc, payload.loan_id)
    key = f"payment/{payload.loan_id}/{payload.payment_id}"
    payment = tc.state.get(key)
    if payment is None:
        fail("not_found", payment_id=payload.payment_id)
    if payment["reversed_on"] is not None:
        fail("payment_reversed", payment_id=payload.payment_id)
    if loan["status"] == "settled":
        fail("loan_closed", loan_id=payload.loan_id, status="settled")
    if payment["plan_count"] != len(loan["plans"]):
        fail("reversal_before_plan", payment_id=payload.payment_id)
    record_peak_dpd(tc, loan)
    if payment["kind"] == "recovery":
        loan["recovered"] -= payment["amount"]
    else:
        _release(loan, payment["allocation"])
        loan["credit_balance"] -= payment["credit"]
        if loan["status"] == "repaid" and outstanding(loan) > 0:
            loan["status"] = "open"
            loan["closed_on"] = None
    if payment["commission"] is not None:
        collection.reverse_commission(tc.state, payment["commission"])
    payment["reversed_on"] = tc.today
    payment["reverse_reason"] = payload.reason
    payment["reverse_note_hash"] = payload.note_hash
    tc.state.put(key, payment)
    save_loan(tc, loan)
    tc.emit("repayment.reversed", {"loan_id": payload.loan_id, "payment_id": payload.payment_id}, (loan["creditor"],))


def _require_open(loan: dict[str, Any]) -> None:
    if loan["status"] == "written_off":
        fail("loan_written_off", loan_id=loan["loan_id"])
    if loan["status"] != "open":
        fail("loan_closed", loan_id=loan["loan_id"], status=loan["status"])


def settle_loan(tc: TxContext, payload: LoanSettlePayload) -> None:
    """Close a loan as settled (L9): the final payment is allocated, the rest is a recorded creditor waiver."""
    loan = creditor_loan(tc, payload.loan_id)
    _require_open(loan)
    balance = outstanding(loan)
    if payload.paid_amount + payload.waived_amount != balance:
        fail("invalid_amount", outstanding=balance, paid_amount=payload.paid_amount, waived_amount=payload.waived_amount)
    if payload.waived_amount > 0:
        require_no_open_dispute(tc.state, loan, tc.params)
        require_notice(tc.state, loan, tc.today)
    record_peak_dpd(tc, loan)
    allocation, _ = allocate(loan, payload.paid_amount, tc.today)
    loan["waived"] = payload.waived_amount
    loan["status"] = "settled"
    loan["closed_on"] = tc.today
    loan["settlement"] = {"settlement_id": payload.settlement_id, "paid_amount": payload.paid_amount, "waived_amount": payload.waived_amount, "reason": payload.reason, "note_hash": payload.note_hash, "allocation": allocation}
    if payload.waived_amount > 0 and loan["negative_on"] is None:
        loan["negative_on"] = tc.today
    save_loan(tc, loan)
    tc.emit("loan.settled", {"loan_id": payload.loan_id, "waived_amount": payload.waived_amount}, (loan["creditor"],))


def write_off_loan(tc: TxContext, payload: LoanWriteOffPayload) -> None:
    loan = creditor_loan(tc, payload.loan_id)
    _require_open(loan)
    balance = outstanding(loan)
    if payload.amount != balance:
        fail("invalid_amount", outstanding=balance, amount=payload.amount)
    require_no_open_dispute(tc.state, loan, tc.params)
    require_notice(tc.state, loan, tc.today)
    record_peak_dpd(tc, loan)
    loan["status"] = "written_off"
    loan["written_off_amount"] = balance
    loan["closed_on"] = tc.today
    loan["write_off_reason"] = payload.reason
    loan["write_off_note_hash"] = payload.note_hash
    if loan["negative_on"] is None:
        loan["negative_on"] = tc.today
    save_loan(tc, loan)
    tc.emit("loan.written_off", {"loan_id": payload.loan_id, "amount": balance}, (loan["creditor"],))


ROUTES: dict[str, TxRoute] = {
    "repayment.record": route(RepaymentRecordPayload, record_repayment, ("bank",)),
    "repayment.reverse": route(RepaymentReversePayload, reverse_repayment, ("bank",)),
    "loan.settle": route(LoanSettlePayload, settle_loan, ("bank",)),
    "loan.write_off": route(LoanWriteOffPayload, write_off_loan, ("bank",)),
}
