"""Map the Home Credit book onto Xinlian loans, schedules and repayments.

The choices below are assumptions about data that has no calendar, no rates and
partial histories. docs/demo-data.md gives the reason for each one:

- Day 0 of every client is `REFERENCE_DATE`, and a DAYS_* offset is that many
  days from it.
- POS loans go to bank A, cash loans and the one car loan to bank B.
- NAME_YIELD_GROUP becomes an annual rate through `RATE_BP_BY_YIELD_GROUP`.
- The schedule holds only the instalments present in the file, in due-date
  order, numbered 1..n. Its principal is the sum of their principal parts, so
  the chain never carries debt that the data does not show.
- Credit cards (NUM_INSTALMENT_VERSION 0, portfolio Cards) are not mapped, and
  neither are zero payments. Both are counted in `MappedBook.skipped`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from node.demo.homecredit import DAYS_PLACEHOLDER, Book, InstalmentRow, LoanTerms
from node.demo.identity import stand_in_id_number

logger = logging.getLogger("xinlian.demo.mapping")

REFERENCE_DATE = "2018-05-01"

BANK_A = "bank-a"
BANK_B = "bank-b"
CREDITOR_BY_PORTFOLIO = {"POS": BANK_A, "Cash": BANK_B, "Cars": BANK_B}

# Median annual rates implied by AMT_CREDIT, AMT_ANNUITY and CNT_PAYMENT in this
# subset, rounded to whole percent. An assumption: Home Credit publishes no rates.
RATE_BP_BY_YIELD_GROUP = {"low_action": 1100, "low_normal": 2400, "middle": 4000, "high": 6800}

LOAN_ID_PREFIX = "hc-"

# Reasons counted in MappedBook.skipped (rows) and MappedBook.skipped_loans (loans).
SKIP_CREDIT_CARD = "credit_card"
SKIP_NOT_APPROVED = "not_approved"
SKIP_UNKNOWN_PORTFOLIO = "unknown_portfolio"
SKIP_UNKNOWN_YIELD_GROUP = "unknown_yield_group"
SKIP_PLACEHOLDER_DAY = "placeholder_day"
SKIP_ZERO_PAYMENT = "zero_payment"
SKIP_DUPLICATE_VERSION_ROW = "duplicate_version_row"

# Counted in MappedBook.adjustments.
ADJUST_MERGED_VERSIONS = "instalments_with_merged_versions"
ADJUST_PAYMENT_MOVED = "payments_moved_to_start_date"


@dataclass(frozen=True)
class Subject:
    client_id: int  # SK_ID_CURR
    id_number: str  # stand-in ID-card number, see node.demo.identity


@dataclass(frozen=True)
class ScheduledInstalment:
    number: int  # 1..n in due-date order, as the chain numbers them
    source_number: int  # NUM_INSTALMENT_NUMBER
    due_date: str
    principal: int  # fen
    interest: int  # fen


@dataclass(frozen=True)
class Payment:
    payment_id: str
    paid_on: str
    amount: int  # fen
    source_number: int  # NUM_INSTALMENT_NUMBER the file books it against


@dataclass(frozen=True)
class MappedLoan:
    loan_id: str
    source_loan_id: int  # SK_ID_PREV
    client_id: int
    creditor: str  # creditor label, BANK_A or BANK_B
    annual_rate_bp: int
    start_date: str
    schedule: tuple[ScheduledInstalment, ...]
    payments: tuple[Payment, ...]  # in paid_on order, then payment id

    @property
    def principal(self) -> int:
        return sum(instalment.principal for instalment in self.schedule)

    @property
    def interest(self) -> int:
        return sum(instalment.interest for instalment in self.schedule)


@dataclass(frozen=True)
class MappedBook:
    reference_date: str
    subjects: tuple[Subject, ...]  # clients with at least one mapped loan, by client id
    loans: tuple[MappedLoan, ...]  # by source loan id
    skipped: dict[str, int] = field(default_factory=dict)  # instalment rows not mapped, by reason
    skipped_loans: dict[str, int] = field(default_factory=dict)  # loans not mapped, by reason
    adjustments: dict[str, int] = field(default_factory=dict)  # rows or instalments changed, by kind


def day_to_date(day_offset: int, reference_date: str = REFERENCE_DATE) -> str:
    """Return the YYYY-MM-DD date `day_offset` days from the reference date."""
    if day_offset == DAYS_PLACEHOLDER:
        raise ValueError(f"day offset {DAYS_PLACEHOLDER} is Home Credit's placeholder, not a day")
    return (dt.date.fromisoformat(reference_date) + dt.timedelta(days=day_offset)).isoformat()


def date_to_day(date: str, reference_date: str = REFERENCE_DATE) -> int:
    """Return the day offset of a YYYY-MM-DD date from the reference date (the inverse of day_to_date)."""
    return (dt.date.fromisoformat(date) - dt.date.fromisoformat(reference_date)).days


def round_half_up(value: Fraction) -> int:
    """Round a non-negative fraction to the nearest integer, halves up."""
    return (value.numerator * 2 + value.denominator) // (value.denominator * 2)


@lru_cache(maxsize=4096)
def interest_share(annual_rate_bp: int, remaining_count: int) -> Fraction:
    """Return the interest share of an annuity instalment with `remaining_count` payments left, itself included.

    With monthly rate r, the instalment repays principal worth (1 + r)^-m of it,
    and the rest is interest.
    """
    monthly_rate = Fraction(annual_rate_bp, 12 * 10_000)
    return 1 - (1 + monthly_rate) ** -max(1, remaining_count)


def split_instalment(amount: int, annual_rate_bp: int, remaining_count: int) -> tuple[int, int]:
    """Split an instalment of `amount` fen into (principal, interest); interest is rounded half-up."""
    interest = round_half_up(amount * interest_share(annual_rate_bp, remaining_count))
    return amount - interest, interest


def map_book(book: Book, reference_date: str = REFERENCE_DATE) -> MappedBook:
    """Map every mappable loan of `book`; count what is skipped or adjusted."""
    skipped: Counter[str] = Counter()
    skipped_loans: Counter[str] = Counter()
    adjustments: Counter[str] = Counter()

    rows_by_loan: dict[int, list[InstalmentRow]] = defaultdict(list)
    for row in book.rows:
        rows_by_loan[row.loan_id].append(row)

    loans = []
    for loan_id in sorted(rows_by_loan):
        rows = rows_by_loan[loan_id]
        terms = book.terms[loan_id]
        reason = _loan_skip_reason(terms, rows)
        if reason is not None:
            skipped_loans[reason] += 1
            skipped[reason] += len(rows)
            continue
        loan = _map_loan(terms, rows, reference_date, skipped, adjustments)
        if loan is not None:
            loans.append(loan)

    client_ids = sorted({loan.client_id for loan in loans})
    subjects = tuple(Subject(client_id, stand_in_id_number(client_id)) for client_id in client_ids)
    logger.info("mapped %d loans of %d subjects; skipped rows %s", len(loans), len(subjects), dict(sorted(skipped.items())))
    return MappedBook(
        reference_date=reference_date,
        subjects=subjects,
        loans=tuple(loans),
        skipped=dict(sorted(skipped.items())),
        skipped_loans=dict(sorted(skipped_loans.items())),
        adjustments=dict(sorted(adjustments.items())),
    )


def _loan_skip_reason(terms: LoanTerms, rows: list[InstalmentRow]) -> str | None:
    if terms.portfolio == "Cards" or any(row.version == 0 for row in rows):
        return SKIP_CREDIT_CARD
    if terms.status != "Approved":
        return SKIP_NOT_APPROVED
    if terms.portfolio not in CREDITOR_BY_PORTFOLIO:
        return SKIP_UNKNOWN_PORTFOLIO
    if terms.yield_group not in RATE_BP_BY_YIELD_GROUP:
        return SKIP_UNKNOWN_YIELD_GROUP
    return None


def _map_loan(
    terms: LoanTerms,
    rows: list[InstalmentRow],
    reference_date: str,
    skipped: Counter[str],
    adjustments: Counter[str],
) -> MappedLoan | None:
    usable = []
    for row in rows:
        if DAYS_PLACEHOLDER in (row.due_day, row.paid_day):
            skipped[SKIP_PLACEHOLDER_DAY] += 1
        else:
            usable.append(row)

    rows_by_number: dict[int, list[InstalmentRow]] = defaultdict(list)
    for row in usable:
        rows_by_number[row.number].append(row)
    if not rows_by_number:
        return None

    annual_rate_bp = RATE_BP_BY_YIELD_GROUP[terms.yield_group]
    loan_id = f"{LOAN_ID_PREFIX}{terms.loan_id}"
    start_date = day_to_date(terms.decision_day, reference_date)

    # Due day, then the file's instalment number, because the loans contract requires increasing due dates.
    ordered_numbers = sorted(rows_by_number, key=lambda number: (rows_by_number[number][0].due_day, number))
    schedule = []
    payments = []
    for position, source_number in enumerate(ordered_numbers, start=1):
        number_rows = rows_by_number[source_number]
        amount = _merged_due_fen(number_rows, adjustments)
        remaining_count = terms.payment_count - source_number + 1
        principal, interest = split_instalment(amount, annual_rate_bp, remaining_count)
        due_date = day_to_date(number_rows[0].due_day, reference_date)
        schedule.append(ScheduledInstalment(position, source_number, due_date, principal, interest))
        payments.extend(_instalment_payments(loan_id, source_number, number_rows, start_date, reference_date, skipped, adjustments))

    payments.sort(key=lambda payment: (payment.paid_on, payment.source_number, payment.payment_id))
    return MappedLoan(
        loan_id=loan_id,
        source_loan_id=terms.loan_id,
        client_id=terms.client_id,
        creditor=CREDITOR_BY_PORTFOLIO[terms.portfolio],
        annual_rate_bp=annual_rate_bp,
        start_date=start_date,
        schedule=tuple(schedule),
        payments=tuple(payments),
    )


def _merged_due_fen(number_rows: list[InstalmentRow], adjustments: Counter[str]) -> int:
    """Return the amount due of one instalment number: the sum over its calendar versions.

    When a schedule changes mid-instalment, the file lists the instalment once per
    version, each with its own AMT_INSTALMENT, and repeats the same payment rows
    under every version. In this subset the payments always equal the sum.
    """
    due_by_version = {row.version: row.due_fen for row in number_rows}
    if len(due_by_version) > 1:
        adjustments[ADJUST_MERGED_VERSIONS] += 1
    return sum(due_by_version.values())


def _instalment_payments(
    loan_id: str,
    source_number: int,
    number_rows: list[InstalmentRow],
    start_date: str,
    reference_date: str,
    skipped: Counter[str],
    adjustments: Counter[str],
) -> list[Payment]:
    """Map the payment rows of one instalment number to repayments, once per distinct payment.

    A payment repeated under several versions is one payment: for each (day,
    amount) the count kept is the largest count found in any single version.
    """
    counts_by_version: dict[int, Counter[tuple[int, int]]] = defaultdict(Counter)
    for row in number_rows:
        counts_by_version[row.version][(row.paid_day, row.paid_fen)] += 1
    # Counter union keeps the larger count of each key.
    distinct_counts: Counter[tuple[int, int]] = Counter()
    for counts in counts_by_version.values():
        distinct_counts |= counts
    skipped[SKIP_DUPLICATE_VERSION_ROW] += len(number_rows) - sum(distinct_counts.values())

    payments = []
    sequence = 0
    for (paid_day, paid_fen), count in sorted(distinct_counts.items()):
        if paid_fen == 0:
            skipped[SKIP_ZERO_PAYMENT] += count
            continue
        paid_on = day_to_date(paid_day, reference_date)
        if paid_on < start_date:
            # The chain cannot book a repayment before the loan exists, and
            # dropping the money would leave debt the client did not owe.
            adjustments[ADJUST_PAYMENT_MOVED] += count
            paid_on = start_date
        for _ in range(count):
            sequence += 1
            payment_id = f"{loan_id}-{source_number}-{sequence}"
            payments.append(Payment(payment_id, paid_on, paid_fen, source_number))
    return payments
