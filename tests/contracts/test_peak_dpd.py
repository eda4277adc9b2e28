"""The stored max_dpd keeps the DPD reached on the day a transaction lowers it."""

import pytest

from node.contracts.dates import add_months
from node.contracts.queries import get_loan
from tests.contracts.harness import Chain, ms_at, register_loan, setup_subject

T0 = ms_at("2024-01-31")
CHANGE_DAY = "2024-03-20"  # the first instalment fell due on 2024-02-29, so DPD is 20 here
NOTICE = {"notice_id": "n1", "loan_id": "L1", "notice_hash": "03" * 32, "sent_on": "2024-03-01"}


def overdue_loan() -> Chain:
    chain = Chain()
    setup_subject(chain, T0)
    register_loan(chain, T0)
    chain.block(ms_at("2024-03-01"))  # the time step stores DPD 1 and schedules the next event for day 91
    assert chain.state.get("loan/L1")["max_dpd"] == 1
    return chain


def plan_schedule() -> list[dict]:
    schedule = [{"number": n, "due_date": add_months(CHANGE_DAY, n), "principal": 0, "interest": 0} for n in range(1, 13)]
    schedule[-1]["principal"] = 300_000
    return schedule


CHANGES = {
    "repayment.record": {"loan_id": "L1", "payment_id": "p1", "amount": 303_000, "paid_on": CHANGE_DAY},
    "loan.settle": {"loan_id": "L1", "settlement_id": "s1", "paid_amount": 200_000, "waived_amount": 103_000, "reason": "hardship"},
    "loan.write_off": {"loan_id": "L1", "amount": 303_000, "reason": "uncollectable"},
    "loan.restructure": {"loan_id": "L1", "plan_id": "h1", "schedule": plan_schedule(), "reason": "hardship"},
}


@pytest.mark.parametrize("tx_type", sorted(CHANGES))
def test_peak_dpd_kept_on_change_day(tx_type):
    chain = overdue_loan()
    at = ms_at(CHANGE_DAY)
    chain.ok(at, "bank-a", "notice.record", NOTICE)
    chain.ok(at, "bank-a", tx_type, CHANGES[tx_type])
    stored = chain.state.get("loan/L1")
    assert stored["max_dpd"] == 20
    assert get_loan(chain.state, "L1", "2024-03-21")["max_dpd"] == 20


def test_peak_dpd_partial_payments_same_day():
    chain = overdue_loan()
    at = ms_at(CHANGE_DAY)
    chain.ok(at, "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 101_000, "paid_on": CHANGE_DAY})
    chain.ok(at, "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p2", "amount": 1_000, "paid_on": CHANGE_DAY})
    stored = chain.state.get("loan/L1")
    assert stored["max_dpd"] == 20
    assert get_loan(chain.state, "L1", CHANGE_DAY)["dpd"] == 0


def test_peak_dpd_rejected_payment_changes_nothing():
    chain = overdue_loan()
    receipt = chain.run(ms_at(CHANGE_DAY), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 1, "paid_on": "2024-03-21"})
    assert receipt.error_code == "invalid_date"
    assert chain.state.get("loan/L1")["max_dpd"] == 1
