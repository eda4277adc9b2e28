from collections import defaultdict
from fractions import Fraction

import pytest

from node.contracts.loans import InstalmentSpec, check_schedule
from node.demo.homecredit import load_book
from node.demo.mapping import (
    ADJUST_MERGED_VERSIONS,
    ADJUST_PAYMENT_MOVED,
    BANK_A,
    BANK_B,
    RATE_BP_BY_YIELD_GROUP,
    SKIP_CREDIT_CARD,
    SKIP_DUPLICATE_VERSION_ROW,
    date_to_day,
    day_to_date,
    interest_share,
    map_book,
    round_half_up,
    split_instalment,
)


@pytest.fixture(scope="module")
def book():
    return load_book()


@pytest.fixture(scope="module")
def mapped(book):
    return map_book(book)


def test_day_to_date_reference():
    assert day_to_date(0) == "2018-05-01"
    assert day_to_date(-1) == "2018-04-30"
    assert day_to_date(-2918) == "2010-05-05"
    assert day_to_date(-60, "2016-03-01") == "2016-01-01"  # across 29 Feb


def test_date_to_day_inverts_day_to_date():
    for offset in (-2918, -366, -1, 0, 31):
        assert date_to_day(day_to_date(offset)) == offset


def test_day_to_date_rejects_placeholder():
    with pytest.raises(ValueError):
        day_to_date(365243)


@pytest.mark.parametrize(
    ("value", "rounded"),
    [(Fraction(0), 0), (Fraction(1, 2), 1), (Fraction(3, 2), 2), (Fraction(5, 2), 3), (Fraction(49, 100), 0), (Fraction(7, 3), 2)],
)
def test_round_half_up(value, rounded):
    assert round_half_up(value) == rounded


def test_interest_share_last_instalment():
    rate_bp = 1200  # 1% a month
    assert interest_share(rate_bp, 1) == Fraction(1, 101)
    assert interest_share(rate_bp, 0) == Fraction(1, 101)  # past the term: treated as the last one
    assert interest_share(rate_bp, 2) == 1 - Fraction(100, 101) ** 2


def test_split_instalment_parts():
    assert split_instalment(10_100, 1200, 1) == (10_000, 100)
    assert split_instalment(12_345, 0, 12) == (12_345, 0)
    # 202 * 1/101 = 2 exactly; 101 * 1/101 = 1; 50 * 1/101 = 0.495 rounds to 0
    assert split_instalment(202, 1200, 1) == (200, 2)
    assert split_instalment(50, 1200, 1) == (50, 0)


def test_split_instalment_later_instalments_carry_less_interest():
    first = split_instalment(100_000, 4000, 24)
    last = split_instalment(100_000, 4000, 1)
    assert first[1] > last[1] > 0


def test_mapped_counts(mapped):
    assert len(mapped.loans) == 1647
    assert len(mapped.subjects) == 865
    assert mapped.skipped_loans == {SKIP_CREDIT_CARD: 125}
    assert mapped.skipped[SKIP_CREDIT_CARD] == 1806
    assert mapped.skipped[SKIP_DUPLICATE_VERSION_ROW] == 61
    assert mapped.adjustments == {ADJUST_MERGED_VERSIONS: 61, ADJUST_PAYMENT_MOVED: 1}


def test_every_row_accounted_for(book, mapped):
    payments = sum(len(loan.payments) for loan in mapped.loans)
    assert payments + sum(mapped.skipped.values()) == len(book.rows)


def test_schedules_sum_exactly(book, mapped):
    due_by_version = defaultdict(dict)
    for row in book.rows:
        due_by_version[(row.loan_id, row.number)][row.version] = row.due_fen
    for loan in mapped.loans:
        assert loan.principal == sum(item.principal for item in loan.schedule)
        assert loan.principal > 0
        for item in loan.schedule:
            assert item.principal >= 0
            assert item.interest >= 0
            expected = sum(due_by_version[(loan.source_loan_id, item.source_number)].values())
            assert item.principal + item.interest == expected, (loan.loan_id, item.source_number)


def test_schedules_pass_contract_check(mapped):
    for loan in mapped.loans:
        specs = [
            InstalmentSpec(number=item.number, due_date=item.due_date, principal=item.principal, interest=item.interest)
            for item in loan.schedule
        ]
        check_schedule(specs, loan.start_date)


def test_schedule_order_fixes_out_of_order_numbers(mapped):
    loan = next(loan for loan in mapped.loans if loan.source_loan_id == 1509130)
    assert [item.source_number for item in loan.schedule] == [101, 6, 9]
    assert [item.number for item in loan.schedule] == [1, 2, 3]


def test_merged_versions_due_sum(mapped):
    loan = next(loan for loan in mapped.loans if loan.source_loan_id == 2439377)
    instalment = next(item for item in loan.schedule if item.source_number == 19)
    assert instalment.principal + instalment.interest == 2434500 + 11065500
    repeated = [payment for payment in loan.payments if payment.source_number == 19]
    assert [payment.amount for payment in repeated] == [13500000]


def test_payment_before_start_moved(mapped):
    loan = next(loan for loan in mapped.loans if loan.source_loan_id == 2044690)
    payment = next(payment for payment in loan.payments if payment.source_number == 3)
    assert payment.paid_on == loan.start_date == day_to_date(-1167)


def test_several_rows_stay_several_payments(mapped):
    loan = next(loan for loan in mapped.loans if loan.source_loan_id == 1676876)
    eighth = [payment for payment in loan.payments if payment.source_number == 8]
    assert sorted(payment.amount for payment in eighth) == [1010439, 1679976]
    assert len({payment.payment_id for payment in eighth}) == 2


def test_creditors_by_portfolio(book, mapped):
    for loan in mapped.loans:
        portfolio = book.terms[loan.source_loan_id].portfolio
        assert loan.creditor == (BANK_A if portfolio == "POS" else BANK_B)
    creditors_by_client = defaultdict(set)
    for loan in mapped.loans:
        creditors_by_client[loan.client_id].add(loan.creditor)
    assert sum(len(creditors) == 2 for creditors in creditors_by_client.values()) == 231


def test_rates_from_yield_group(book, mapped):
    for loan in mapped.loans:
        assert loan.annual_rate_bp == RATE_BP_BY_YIELD_GROUP[book.terms[loan.source_loan_id].yield_group]


def test_ids_unique_and_valid(mapped):
    payment_ids = [payment.payment_id for loan in mapped.loans for payment in loan.payments]
    assert len(payment_ids) == len(set(payment_ids))
    loan_ids = [loan.loan_id for loan in mapped.loans]
    assert len(loan_ids) == len(set(loan_ids))
    for record_id in payment_ids + loan_ids:
        assert 1 <= len(record_id) <= 64


def test_payments_ordered_and_positive(mapped):
    for loan in mapped.loans:
        dates = [payment.paid_on for payment in loan.payments]
        assert dates == sorted(dates)
        assert all(payment.amount > 0 for payment in loan.payments)
        assert all(payment.paid_on >= loan.start_date for payment in loan.payments)
