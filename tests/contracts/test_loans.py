import pytest

from node.contracts.dates import add_months, local_date, local_minute_of_day
from node.contracts.delinquency import classify
from node.contracts.loans import equal_principal_schedule
from node.contracts.queries import get_loan
from tests.contracts.harness import Chain, SUBJECT, ms_at, register_loan, setup_subject

T0 = ms_at("2024-01-31")


def new_loan(**extra):
    chain = Chain()
    setup_subject(chain, T0)
    register_loan(chain, T0, **extra)
    return chain


@pytest.mark.parametrize(
    "start, months, expected",
    [
        ("2024-01-31", 1, "2024-02-29"),
        ("2024-01-31", 2, "2024-03-31"),
        ("2023-01-31", 1, "2023-02-28"),
        ("2024-01-30", 1, "2024-02-29"),
        ("2024-01-15", 12, "2025-01-15"),
        ("2024-12-31", 2, "2025-02-28"),
    ],
)
def test_month_end_clamping(start, months, expected):
    assert add_months(start, months) == expected


def test_local_date_uses_fixed_offset():
    assert local_date(ms_at("2024-03-01", 0, 0), 480) == "2024-03-01"
    assert local_date(ms_at("2024-03-01", 0, 0) - 1, 480) == "2024-02-29"
    assert local_minute_of_day(ms_at("2024-03-01", 21, 59), 480) == 21 * 60 + 59


@pytest.mark.parametrize(
    "dpd, grade",
    [(0, "normal"), (1, "special_mention"), (90, "special_mention"), (91, "substandard"), (270, "substandard"),
     (271, "doubtful"), (360, "doubtful"), (361, "loss")],
)
def test_classification_bounds(dpd, grade):
    assert classify(dpd, [90, 270, 360]) == grade


@pytest.mark.parametrize("dpd, grade", [(90, "special_mention"), (91, "substandard"), (120, "substandard"), (121, "doubtful"), (180, "doubtful"), (181, "loss")])
def test_card_classification_bounds(dpd, grade):
    assert classify(dpd, [90, 120, 180]) == grade


def test_schedule_rounding_half_up_last_absorbs():
    schedule = equal_principal_schedule(100_001, 1_000, "2024-01-31", 3)
    assert [item["principal"] for item in schedule] == [33_333, 33_333, 33_335]
    assert schedule[0]["interest"] == 833  # 100001 * 0.10 / 12 = 833.34
    assert [item["due_date"] for item in schedule] == ["2024-02-29", "2024-03-31", "2024-04-30"]


def test_register_rejects_schedule_mismatch():
    chain = Chain()
    setup_subject(chain, T0)
    payload = {"loan_id": "L1", "subject_id": SUBJECT, "principal": 1000, "currency": "CNY", "annual_rate_bp": 0,
               "start_date": "2024-01-31", "schedule": [{"number": 1, "due_date": "2024-02-29", "principal": 999, "interest": 0}]}
    assert chain.error(T0, "bank-a", "loan.register", payload) == "schedule_mismatch"
    payload["schedule"][0]["principal"] = 1000
    payload["principal"] = 1000
    payload["currency"] = "USD"
    assert chain.error(T0, "bank-a", "loan.register", payload) == "invalid_payload"
    payload["currency"] = "CNY"
    payload["principal"] = 10.5
    assert chain.error(T0, "bank-a", "loan.register", payload) == "invalid_payload"


def test_register_needs_consent():
    chain = Chain()
    chain.ok(T0, "bank-a", "subject.register", {"subject_id": SUBJECT, "commitment": "01" * 32})
    with pytest.raises(AssertionError, match="consent_required"):
        register_loan(chain, T0)


def test_dpd_counts_from_day_after_due():
    chain = new_loan()
    assert get_loan(chain.state, "L1", "2024-02-29")["dpd"] == 0
    assert get_loan(chain.state, "L1", "2024-03-01")["dpd"] == 1
    chain.block(ms_at("2024-03-01"))
    events = chain.events_of("loan.overdue")
    assert [event.data["dpd"] for event in events] == [1]
    assert events[0].members == ("bank-a",)


def test_dpd_90_and_91_in_begin_block():
    chain = new_loan()
    chain.block(ms_at("2024-05-29"))  # due 2024-02-29 + 90 days
    assert chain.state.get("loan/L1")["grade"] == "special_mention"
    chain.block(ms_at("2024-05-30"))
    assert chain.state.get("loan/L1")["grade"] == "substandard"
    assert [e.data["to"] for e in chain.events_of("loan.classified")] == ["special_mention", "substandard"]


def test_time_step_only_touches_due_loans():
    chain = new_loan()
    assert chain.state.get("loan/L1")["next_event_on"] == "2024-03-01"
    assert list(chain.state.scan("due/")) == [("due/2024-03-01/L1", 1)]
    chain.block(ms_at("2024-03-01"))
    assert list(chain.state.scan("due/")) == [("due/2024-05-30/L1", 1)]


def test_partial_payment_keeps_dpd_counting():
    chain = new_loan()
    chain.ok(ms_at("2024-03-10"), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 50_000, "paid_on": "2024-03-10"})
    assert get_loan(chain.state, "L1", "2024-03-10")["dpd"] == 10


def test_allocation_order_costs_interest_principal_oldest_first():
    chain = new_loan()
    at = ms_at("2024-04-05")
    chain.ok(at, "bank-a", "loan.charge", {"loan_id": "L1", "charge_id": "f1", "number": 2, "kind": "penalty", "amount": 500, "reason": "late_payment"})
    chain.ok(at, "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 2_600, "paid_on": "2024-04-05"})
    payment = chain.state.get("payment/L1/p1")
    assert payment["allocation"] == [
        {"number": 2, "component": "costs", "amount": 500},
        {"number": 1, "component": "interest", "amount": 1_000},
        {"number": 2, "component": "interest", "amount": 1_000},
        {"number": 1, "component": "principal", "amount": 100},
    ]
    assert sum(part["amount"] for part in payment["allocation"]) == 2_600


def test_loan_terms_change_allocation_order():
    chain = new_loan(terms={"allocation_order": ["principal", "interest", "costs"]})
    chain.ok(ms_at("2024-03-05"), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 100_500, "paid_on": "2024-03-05"})
    allocation = chain.state.get("payment/L1/p1")["allocation"]
    assert allocation[0] == {"number": 1, "component": "principal", "amount": 100_000}
    assert allocation[1] == {"number": 1, "component": "interest", "amount": 500}


def test_full_payment_cures_and_overpayment_is_credit():
    chain = new_loan()
    at = ms_at("2024-03-05")
    chain.ok(at, "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 303_000 + 700, "paid_on": "2024-03-05"})
    loan = get_loan(chain.state, "L1", "2024-03-05")
    assert loan["status"] == "repaid"
    assert loan["credit_balance"] == 700
    assert loan["outstanding"] == 0
    assert all(item["paid_principal"] == item["principal"] for item in loan["instalments"])
    assert [e.type for e in chain.events_of("loan.overdue")] == ["loan.overdue"]


def test_reversal_reopens_and_restores_dpd():
    chain = new_loan()
    chain.ok(ms_at("2024-03-05"), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 303_000, "paid_on": "2024-03-05"})
    assert chain.state.get("loan/L1")["status"] == "repaid"
    chain.ok(ms_at("2024-04-10"), "bank-a", "repayment.reverse", {"loan_id": "L1", "payment_id": "p1", "reason": "payment_bounced"})
    loan = get_loan(chain.state, "L1", "2024-04-10")
    assert loan["status"] == "open"
    assert loan["dpd"] == 41  # from 2024-02-29
    assert loan["outstanding"] == 303_000
    assert chain.state.get("payment/L1/p1")["reversed_on"] == "2024-04-10"
    assert chain.error(ms_at("2024-04-10"), "bank-a", "repayment.reverse", {"loan_id": "L1", "payment_id": "p1", "reason": "other"}) == "payment_reversed"


def test_payment_after_write_off_is_recovery():
    chain = new_loan()
    at = ms_at("2024-06-01")
    assert chain.error(at, "bank-a", "loan.write_off", {"loan_id": "L1", "amount": 303_000, "reason": "uncollectable"}) == "notice_required"
    chain.ok(at, "bank-a", "notice.record", {"notice_id": "n1", "loan_id": "L1", "notice_hash": "03" * 32, "sent_on": "2024-05-20"})
    assert chain.error(at, "bank-a", "loan.write_off", {"loan_id": "L1", "amount": 1, "reason": "other"}) == "invalid_amount"
    chain.ok(at, "bank-a", "loan.write_off", {"loan_id": "L1", "amount": 303_000, "reason": "uncollectable"})
    chain.ok(at, "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "r1", "amount": 10_000, "paid_on": "2024-06-01"})
    loan = get_loan(chain.state, "L1", "2024-06-01")
    assert loan["status"] == "written_off"
    assert loan["recovered"] == 10_000
    assert loan["classification"] == "loss"
    assert chain.state.get("payment/L1/r1")["kind"] == "recovery"


def test_settlement_records_waiver():
    chain = new_loan()
    at = ms_at("2024-04-01")
    chain.ok(at, "bank-a", "notice.record", {"notice_id": "n1", "loan_id": "L1", "notice_hash": "03" * 32, "sent_on": "2024-04-01"})
    assert chain.error(at, "bank-a", "loan.settle", {"loan_id": "L1", "settlement_id": "s1", "paid_amount": 200_000, "waived_amount": 1, "reason": "other"}) == "invalid_amount"
    chain.ok(at, "bank-a", "loan.settle", {"loan_id": "L1", "settlement_id": "s1", "paid_amount": 200_000, "waived_amount": 103_000, "reason": "hardship"})
    loan = get_loan(chain.state, "L1", "2024-04-01")
    assert loan["status"] == "settled"
    assert loan["waived"] == 103_000
    assert loan["dpd"] == 0
    assert chain.error(at, "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "x", "amount": 1, "paid_on": "2024-04-01"}) == "loan_closed"


def test_only_creditor_records_repayment():
    chain = new_loan()
    assert chain.error(T0, "bank-b", "repayment.record", {"loan_id": "L1", "payment_id": "p", "amount": 1, "paid_on": "2024-01-31"}) == "not_creditor"
    assert chain.error(T0, "collector-1", "repayment.record", {"loan_id": "L1", "payment_id": "p", "amount": 1, "paid_on": "2024-01-31"}) == "role_not_allowed"


@pytest.mark.parametrize("months, code", [(60, None), (61, "hardship_too_long")])
def test_hardship_plan_limit(months, code):
    chain = new_loan()
    at = ms_at("2024-03-10")
    schedule = [{"number": n, "due_date": add_months("2024-03-10", n), "principal": 0, "interest": 0} for n in range(1, months + 1)]
    schedule[-1]["principal"] = 300_000
    receipt = chain.run(at, "bank-a", "loan.restructure", {"loan_id": "L1", "plan_id": "h1", "schedule": schedule, "reason": "hardship"})
    assert receipt.error_code == code
    if code is None:
        loan = get_loan(chain.state, "L1", "2024-03-10")
        assert loan["dpd"] == 0
        assert loan["outstanding"] == 303_000
