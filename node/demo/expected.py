"""Figures the chain should report after the replay, computed straight from the CSV files.

This module reads the files itself and shares with the mapping code only
`to_fen`, the rate table and `split_instalment`: the chain allocates interest
before principal, so the interest part of each instalment decides when an
instalment counts as paid. Everything else is computed again here, so a
mapping bug shows up as a difference between the two.

It applies the mapping's data rules (credit cards and zero payments left out, a
payment repeated under several calendar versions counted once, an instalment
due the sum over its versions, a payment dated before the loan decision moved
to the decision day) and the chain's allocation rule (L5): a payment pays the
interest of all instalments due by its date, oldest first, then their
principal, then instalments not yet due, oldest first. The data has no
penalties or costs.

All days are the files' day offsets. With one reference date for all clients a
day offset and a calendar date are interchangeable.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from node.demo.homecredit import INSTALMENTS_FILE, TERMS_FILE, default_data_dir, to_fen
from node.demo.mapping import RATE_BP_BY_YIELD_GROUP, split_instalment


@dataclass(frozen=True)
class Instalment:
    due_day: int
    principal: int  # fen
    interest: int  # fen


@dataclass(frozen=True)
class LoanLedger:
    """One loan as the chain should see it: instalments and payments in day offsets and fen."""

    loan_id: int  # SK_ID_PREV
    decision_day: int
    instalments: tuple[Instalment, ...]  # by due day, then the file's instalment number
    payments: tuple[tuple[int, int], ...]  # (paid day, amount fen), by day


@dataclass(frozen=True)
class Expected:
    loan_count: int
    credit_card_loan_count: int
    subject_count: int
    instalment_count: int
    payment_count: int
    total_due_fen: int
    total_paid_fen: int
    late_threshold_days: int
    instalments_late_over_threshold: int  # fully paid, but more than the threshold after the due day
    instalments_never_fully_paid: int
    max_dpd_by_loan: dict[int, int] = field(default_factory=dict)  # SK_ID_PREV -> max DPD up to as_of_day
    as_of_day: int = 0


def read_ledgers(data_dir: str | Path | None = None) -> dict[int, LoanLedger]:
    """Read both files and return the ledger of every non-card loan, by SK_ID_PREV."""
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    with (directory / TERMS_FILE).open(encoding="utf-8-sig", newline="") as handle:
        terms = {int(row["SK_ID_PREV"]): row for row in csv.DictReader(handle)}
    with (directory / INSTALMENTS_FILE).open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))

    card_loans = {int(row["SK_ID_PREV"]) for row in rows if row["NUM_INSTALMENT_VERSION"] == "0"}
    # (loan, number) -> version -> rows
    grouped: dict[tuple[int, int], dict[str, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        loan_id = int(row["SK_ID_PREV"])
        if loan_id not in card_loans:
            grouped[(loan_id, int(row["NUM_INSTALMENT_NUMBER"]))][row["NUM_INSTALMENT_VERSION"]].append(row)

    instalments: dict[int, list[tuple[int, int, Instalment]]] = defaultdict(list)
    payments: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (loan_id, number), versions in sorted(grouped.items()):
        loan_terms = terms[loan_id]
        decision_day = int(loan_terms["DAYS_DECISION"])
        due_day = int(next(iter(versions.values()))[0]["DAYS_INSTALMENT"])
        due_fen = sum(to_fen(version_rows[0]["AMT_INSTALMENT"]) for version_rows in versions.values())
        rate_bp = RATE_BP_BY_YIELD_GROUP[loan_terms["NAME_YIELD_GROUP"]]
        principal, interest = split_instalment(due_fen, rate_bp, int(loan_terms["CNT_PAYMENT"]) - number + 1)
        instalments[loan_id].append((due_day, number, Instalment(due_day, principal, interest)))
        for paid_day, paid_fen in _distinct_payments(versions.values()):
            if paid_fen > 0:
                payments[loan_id].append((max(paid_day, decision_day), paid_fen))

    return {
        loan_id: LoanLedger(
            loan_id=loan_id,
            decision_day=int(terms[loan_id]["DAYS_DECISION"]),
            instalments=tuple(item for _, _, item in sorted(instalments[loan_id], key=lambda entry: entry[:2])),
            payments=tuple(sorted(payments[loan_id])),
        )
        for loan_id in sorted(instalments)
    }


def _distinct_payments(versions) -> list[tuple[int, int]]:
    """Return each (day, fen) payment as often as the version listing it most often does."""
    max_count: dict[tuple[int, int], int] = {}
    for version_rows in versions:
        counts = Counter((int(row["DAYS_ENTRY_PAYMENT"]), to_fen(row["AMT_PAYMENT"])) for row in version_rows)
        for key, count in counts.items():
            max_count[key] = max(max_count.get(key, 0), count)
    return [key for key, count in sorted(max_count.items()) for _ in range(count)]


class LoanReplay:
    """The unpaid parts of one loan's instalments while its payments are applied in date order."""

    def __init__(self, ledger: LoanLedger) -> None:
        self.instalments = ledger.instalments
        self.unpaid_interest = [item.interest for item in ledger.instalments]
        self.unpaid_principal = [item.principal for item in ledger.instalments]

    def apply(self, paid_day: int, amount: int) -> None:
        """Allocate a payment: interest then principal of the due instalments, then the rest oldest first."""
        due = [index for index, item in enumerate(self.instalments) if item.due_day <= paid_day]
        for parts in (self.unpaid_interest, self.unpaid_principal):
            for index in due:
                amount = self._take(parts, index, amount)
        for index in range(len(self.instalments)):
            for parts in (self.unpaid_interest, self.unpaid_principal):
                amount = self._take(parts, index, amount)

    @staticmethod
    def _take(parts: list[int], index: int, amount: int) -> int:
        allocated = min(amount, parts[index])
        parts[index] -= allocated
        return amount - allocated

    def is_paid(self, index: int) -> bool:
        return self.unpaid_interest[index] == 0 and self.unpaid_principal[index] == 0

    def dpd_on(self, day: int) -> int:
        """Return the days past due on `day` (L2), counted from the oldest instalment not fully paid."""
        for index, item in enumerate(self.instalments):
            if not self.is_paid(index):
                return max(0, day - item.due_day)
        return 0


def _payments_by_day(ledger: LoanLedger) -> list[tuple[int, list[int]]]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for paid_day, amount in ledger.payments:
        grouped[paid_day].append(amount)
    return sorted(grouped.items())


def clearing_days(ledger: LoanLedger) -> list[int | None]:
    """Return, per instalment, the day on which it became fully paid, or None if it never did."""
    replay = LoanReplay(ledger)
    cleared: list[int | None] = [None] * len(ledger.instalments)
    for paid_day, amounts in _payments_by_day(ledger):
        for amount in amounts:
            replay.apply(paid_day, amount)
        for index in range(len(cleared)):
            if cleared[index] is None and replay.is_paid(index):
                cleared[index] = paid_day
    return cleared


def dpd_on_day(ledger: LoanLedger, day: int) -> int:
    """Return the days past due on `day` before that day's payments, as the chain's time step computes it.

    So an instalment due on day d and paid on day p > d reaches DPD p - d, the
    same number of days it was paid late.
    """
    replay = LoanReplay(ledger)
    for paid_day, amount in ledger.payments:
        if paid_day < day:
            replay.apply(paid_day, amount)
    return replay.dpd_on(day)


def max_dpd(ledger: LoanLedger, as_of_day: int) -> int:
    """Return the largest DPD on any day up to `as_of_day`.

    DPD only grows until a payment day, so the maximum is reached on a payment
    day (before its payments) or on `as_of_day` itself.
    """
    replay = LoanReplay(ledger)
    worst = 0
    for paid_day, amounts in _payments_by_day(ledger):
        if paid_day >= as_of_day:
            break
        worst = max(worst, replay.dpd_on(paid_day))
        for amount in amounts:
            replay.apply(paid_day, amount)
    return max(worst, replay.dpd_on(as_of_day))


def compute_expected(data_dir: str | Path | None = None, late_threshold_days: int = 90, as_of_day: int = 0) -> Expected:
    """Compute the expected figures; `as_of_day` is a day offset (0 = the reference date)."""
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    ledgers = read_ledgers(directory)
    with (directory / INSTALMENTS_FILE).open(encoding="utf-8-sig", newline="") as handle:
        card_rows = [row for row in csv.DictReader(handle) if row["NUM_INSTALMENT_VERSION"] == "0"]
    with (directory / TERMS_FILE).open(encoding="utf-8-sig", newline="") as handle:
        client_of = {int(row["SK_ID_PREV"]): row["SK_ID_CURR"] for row in csv.DictReader(handle)}

    late = 0
    never = 0
    for ledger in ledgers.values():
        for instalment, cleared_day in zip(ledger.instalments, clearing_days(ledger), strict=True):
            if cleared_day is None:
                never += 1
            elif cleared_day - instalment.due_day > late_threshold_days:
                late += 1

    return Expected(
        loan_count=len(ledgers),
        credit_card_loan_count=len({row["SK_ID_PREV"] for row in card_rows}),
        subject_count=len({client_of[loan_id] for loan_id in ledgers}),
        instalment_count=sum(len(ledger.instalments) for ledger in ledgers.values()),
        payment_count=sum(len(ledger.payments) for ledger in ledgers.values()),
        total_due_fen=sum(item.principal + item.interest for ledger in ledgers.values() for item in ledger.instalments),
        total_paid_fen=sum(amount for ledger in ledgers.values() for _, amount in ledger.payments),
        late_threshold_days=late_threshold_days,
        instalments_late_over_threshold=late,
        instalments_never_fully_paid=never,
        max_dpd_by_loan={loan_id: max_dpd(ledger, as_of_day) for loan_id, ledger in ledgers.items()},
        as_of_day=as_of_day,
    )
