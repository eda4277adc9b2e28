import datetime as dt

import pytest

from node.contracts.loans import InstalmentSpec, days_past_due, instalment_record, instalment_unpaid
from node.contracts.repayments import allocate
from node.demo.expected import Instalment, LoanLedger, clearing_days, compute_expected, dpd_on_day, max_dpd
from node.demo.homecredit import INSTALMENTS_FILE, TERMS_FILE, load_book
from node.demo.mapping import date_to_day, map_book

THRESHOLD_DAYS = 90

TERMS_HEADER = (
    "SK_ID_PREV,SK_ID_CURR,NAME_CONTRACT_TYPE,AMT_ANNUITY,AMT_APPLICATION,AMT_CREDIT,AMT_GOODS_PRICE,"
    "NAME_CONTRACT_STATUS,DAYS_DECISION,NAME_PAYMENT_TYPE,NAME_CLIENT_TYPE,NAME_PORTFOLIO,NAME_PRODUCT_TYPE,"
    "CHANNEL_TYPE,CNT_PAYMENT,NAME_YIELD_GROUP,PRODUCT_COMBINATION,DAYS_FIRST_DUE,DAYS_LAST_DUE_1ST_VERSION,"
    "DAYS_LAST_DUE,DAYS_TERMINATION"
)


def terms_line(loan_id, client_id, portfolio, decision_day):
    return (
        f"{loan_id},{client_id},Cash loans,100,1000,1000,1000,Approved,{decision_day},XNA,New,{portfolio},"
        f"XNA,Stone,12,middle,Cash,-300,0,0,0"
    )


@pytest.fixture(scope="module")
def expected():
    return compute_expected(late_threshold_days=THRESHOLD_DAYS, as_of_day=0)


@pytest.fixture(scope="module")
def mapped():
    return map_book(load_book())


def test_expected_counts(expected):
    assert expected.loan_count == 1647
    assert expected.credit_card_loan_count == 125
    assert expected.subject_count == 865
    assert expected.instalment_count == 5379
    assert expected.payment_count == 5480
    assert expected.total_paid_fen == 11_320_710_948
    assert expected.total_due_fen == 11_753_498_902
    assert expected.instalments_late_over_threshold == 187
    assert expected.instalments_never_fully_paid == 481
    assert len(expected.max_dpd_by_loan) == 1647


def test_expected_matches_mapping(expected, mapped):
    assert expected.loan_count == len(mapped.loans)
    assert expected.subject_count == len(mapped.subjects)
    assert expected.instalment_count == sum(len(loan.schedule) for loan in mapped.loans)
    assert expected.payment_count == sum(len(loan.payments) for loan in mapped.loans)
    assert expected.total_paid_fen == sum(payment.amount for loan in mapped.loans for payment in loan.payments)
    assert expected.total_due_fen == sum(loan.principal + loan.interest for loan in mapped.loans)


def _days(earlier, later):
    return (dt.date.fromisoformat(later) - dt.date.fromisoformat(earlier)).days


def _contract_loan(loan):
    """The loan as the loans contract stores it, so the contract's own allocate() and DPD apply."""
    instalments = [
        instalment_record(InstalmentSpec(number=item.number, due_date=item.due_date, principal=item.principal, interest=item.interest))
        for item in loan.schedule
    ]
    return {"status": "open", "terms": {"allocation_order": ["costs", "interest", "principal"]}, "instalments": instalments}


def _late_and_never_with_contract(mapped, threshold_days):
    """Second computation: replay each mapped loan through the contract's allocate()."""
    late = 0
    never = 0
    for loan in mapped.loans:
        state = _contract_loan(loan)
        cleared_on = [None] * len(loan.schedule)
        for payment in loan.payments:
            allocate(state, payment.amount, payment.paid_on)
            for index, instalment in enumerate(state["instalments"]):
                if cleared_on[index] is None and instalment_unpaid(instalment) == 0:
                    cleared_on[index] = payment.paid_on
        for instalment, cleared in zip(loan.schedule, cleared_on):
            if cleared is None:
                never += 1
            elif _days(instalment.due_date, cleared) > threshold_days:
                late += 1
    return late, never


@pytest.mark.parametrize("threshold_days", [0, 30, THRESHOLD_DAYS])
def test_late_counts_match_contract_replay(mapped, threshold_days):
    expected = compute_expected(late_threshold_days=threshold_days)
    late, never = _late_and_never_with_contract(mapped, threshold_days)
    assert expected.instalments_late_over_threshold == late
    assert expected.instalments_never_fully_paid == never


def _max_dpd_day_by_day(loan, as_of):
    """Second computation: walk every day from the loan start to `as_of` with the contract's DPD (L2)."""
    state = _contract_loan(loan)
    day = dt.date.fromisoformat(loan.start_date)
    end = dt.date.fromisoformat(as_of)
    payment_index = 0
    worst = 0
    while day <= end:
        today = day.isoformat()
        # DPD of the day is taken before that day's payments.
        worst = max(worst, days_past_due(state, today))
        while payment_index < len(loan.payments) and loan.payments[payment_index].paid_on == today:
            allocate(state, loan.payments[payment_index].amount, today)
            payment_index += 1
        day += dt.timedelta(days=1)
    return worst


@pytest.mark.parametrize("as_of", ["2018-05-01", "2015-06-30"])
def test_max_dpd_matches_day_by_day(mapped, as_of):
    expected = compute_expected(as_of_day=date_to_day(as_of))
    for loan in mapped.loans[::12]:
        assert expected.max_dpd_by_loan[loan.source_loan_id] == _max_dpd_day_by_day(loan, as_of), loan.loan_id


def test_max_dpd_some_loans_overdue(expected):
    values = list(expected.max_dpd_by_loan.values())
    assert sum(value > 0 for value in values) == 387
    assert sum(value > THRESHOLD_DAYS for value in values) == 267


# Two instalments of 900 principal and 100 interest, due on days -60 and -30.
LEDGER = LoanLedger(
    loan_id=1,
    decision_day=-100,
    instalments=(Instalment(-60, 900, 100), Instalment(-30, 900, 100)),
    payments=((-50, 400), (-20, 600), (-5, 1000)),
)


@pytest.mark.parametrize(
    ("day", "dpd"),
    [
        (-61, 0),
        (-60, 0),  # on the due date itself
        (-59, 1),  # the day after the due date is day 1 (L2)
        (-50, 10),  # the payment of the day is not counted yet
        (-49, 11),  # a partial payment does not stop the count
        (-20, 40),
        # On -20, 600 pays the second instalment's interest (100) before the
        # first one's last 500 of principal, so the first stays 100 short.
        (-19, 41),
        (-5, 55),
        (-4, 0),
    ],
)
def test_dpd_on_day(day, dpd):
    assert dpd_on_day(LEDGER, day) == dpd


def test_max_dpd_hand_ledger():
    assert max_dpd(LEDGER, -30) == 30
    assert max_dpd(LEDGER, -5) == 55  # on -5, before that day's payment
    assert max_dpd(LEDGER, 0) == 55
    assert max_dpd(LEDGER, -70) == 0


def test_clearing_days_hand_ledger():
    assert clearing_days(LEDGER) == [-5, -5]
    short = LoanLedger(2, -100, (Instalment(-60, 900, 100), Instalment(-30, 900, 100)), ((-50, 1500),))
    # Paid before the second instalment was due: the rest goes to it, interest first.
    assert clearing_days(short) == [-50, None]


def _write_book(directory, instalment_lines, terms_lines):
    header = "SK_ID_PREV,SK_ID_CURR,NUM_INSTALMENT_VERSION,NUM_INSTALMENT_NUMBER,DAYS_INSTALMENT,DAYS_ENTRY_PAYMENT,AMT_INSTALMENT,AMT_PAYMENT"
    (directory / INSTALMENTS_FILE).write_bytes(("\ufeff" + "\r\n".join([header, *instalment_lines]) + "\r\n").encode("utf-8"))
    (directory / TERMS_FILE).write_text("\n".join([TERMS_HEADER, *terms_lines]) + "\n", encoding="utf-8")


def test_compute_expected_small_book(tmp_path):
    _write_book(
        tmp_path,
        [
            # Loan 1: instalment 1 paid 90 days late, before instalment 2 was due; instalment 2 paid 91 days late.
            "1,10,1,1,-300,-210,100.005,100.005",
            "1,10,1,2,-200,-109,100,100",
            # Loan 2: instalment 1 rescheduled into two versions, the one payment listed under both.
            "2,10,1,1,-200,-200,30,80",
            "2,10,2,1,-200,-200,50,80",
            # Loan 2: instalment 2 never fully paid; a zero payment is left out.
            "2,10,1,2,-170,-160,50,20",
            "2,10,1,2,-170,-150,50,0",
            # Loan 3: a credit card, left out.
            "3,11,0,1,-100,-100,10,10",
        ],
        [terms_line(1, 10, "Cash", -320), terms_line(2, 10, "POS", -220), terms_line(3, 11, "Cards", -150)],
    )
    expected = compute_expected(tmp_path, late_threshold_days=90, as_of_day=0)
    assert expected.loan_count == 2
    assert expected.credit_card_loan_count == 1
    assert expected.subject_count == 1
    assert expected.instalment_count == 4
    assert expected.payment_count == 4
    assert expected.total_due_fen == 10001 + 10000 + 8000 + 5000
    assert expected.total_paid_fen == 10001 + 10000 + 8000 + 2000
    assert expected.instalments_late_over_threshold == 1
    assert expected.instalments_never_fully_paid == 1
    assert expected.max_dpd_by_loan == {1: 91, 2: 170}

    mapped = map_book(load_book(tmp_path))
    assert [len(loan.payments) for loan in mapped.loans] == [2, 2]
    assert mapped.loans[1].schedule[0].principal + mapped.loans[1].schedule[0].interest == 8000
