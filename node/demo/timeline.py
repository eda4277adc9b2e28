"""The replay timeline: every demo transaction, dated and ordered, as plain dicts ready to sign.

Each event is `{"date", "sender", "type", "nonce", "payload"}`. `sender` is a
creditor label (`bank-a`, `bank-b`) or the member id it is mapped to through
`members`. The demo driver signs with that member's client key and submits the
event in a block on `date`. Events sort by date, then by kind (subject
registration, consent, loan registration, repayment), then by record, so a
subject exists and has consented before its first loan, and a loan exists
before its first repayment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from node.canonical import canonical_bytes, sha256_hex
from node.demo.mapping import MappedBook, MappedLoan, Subject
from node.privacy.commitment import commit

CURRENCY = "CNY"
# Consents expire this many years after the reference date. Every day offset in
# the data is negative, so consents outlive the whole replay.
CONSENT_YEARS = 5
CONSENT_PURPOSES = ("credit_query", "data_sharing")
DEMO_SALT_SEED = b"xinlian/demo/home-credit/salt/v1"

_PHASE_SUBJECT = 0
_PHASE_CONSENT = 1
_PHASE_LOAN = 2
_PHASE_REPAYMENT = 3


@dataclass(frozen=True)
class Timeline:
    events: tuple[dict[str, Any], ...]
    dates: tuple[str, ...]  # distinct event dates, ascending

    def digest(self) -> str:
        """Return the SHA-256 of the canonical encoding of all events, for comparing two builds."""
        return sha256_hex(canonical_bytes(list(self.events)))


def subject_record(subject: Subject) -> dict[str, Any]:
    """Build the off-chain personal-data record of a subject, in the shape the off-chain store accepts.

    The data has no personal details, so the phone number and address are
    synthetic, derived from the client id: they give the chain-database scan
    something realistic to look for.
    """
    return {
        "name": f"Home Credit client {subject.client_id}",
        "phones": [synthetic_phone(subject.client_id)],
        "address": f"示例市演示路{subject.client_id}号",
        "details": {"id_number": subject.id_number, "source": "home-credit", "source_client_id": subject.client_id},
    }


def synthetic_phone(client_id: int) -> str:
    """Return an 11-digit mainland mobile number in the 199 range, made from the client id."""
    return f"199{client_id % 10**8:08d}"


def demo_salt(subject_id: str, salt_seed: bytes = DEMO_SALT_SEED) -> bytes:
    """Derive the 32-byte commitment salt of a subject, so that the timeline is reproducible.

    NOTE: the default seed is public, so anyone can open these commitments. That
    is harmless for stand-in identities only. A driver that stores real records
    passes the commitment the off-chain store returned instead.
    """
    return hmac.new(salt_seed, subject_id.encode("ascii"), hashlib.sha256).digest()


def demo_commitment(subject: Subject, subject_id: str) -> str:
    """Commit to `subject_record(subject)` under `demo_salt(subject_id)`."""
    return commit(subject_record(subject), demo_salt(subject_id))


def consent_evidence(consent_id: str, subject_id: str) -> str:
    """Return the hash used in place of the signed paper consent a bank would keep."""
    return sha256_hex(canonical_bytes({"consent_id": consent_id, "kind": "demo-consent-form", "subject_id": subject_id}))


def consent_expiry(reference_date: str) -> str:
    """Return the date CONSENT_YEARS after the reference date (29 February becomes 28 February)."""
    start = dt.date.fromisoformat(reference_date)
    return dt.date(start.year + CONSENT_YEARS, start.month, min(start.day, 28) if start.month == 2 else start.day).isoformat()


def build_timeline(
    mapped: MappedBook,
    subject_id_of: Callable[[str], str],
    members: Mapping[str, str] | None = None,
    commitment_of: Callable[[Subject, str], str] = demo_commitment,
) -> Timeline:
    """Build the timeline of `mapped`.

    `subject_id_of` turns a stand-in ID number into a subject_id, normally
    `SubjectIdHasher(secret).subject_id`. `members` maps creditor labels to
    member ids; a label without an entry is used as the member id.
    `commitment_of(subject, subject_id)` returns the commitment that
    subject.register carries.
    """
    member_of = dict(members or {})
    expires_on = consent_expiry(mapped.reference_date)
    subject_ids = {subject.client_id: subject_id_of(subject.id_number) for subject in mapped.subjects}
    subjects = {subject.client_id: subject for subject in mapped.subjects}

    keyed: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    first_loan_by_client: dict[int, MappedLoan] = {}
    first_loan_by_pair: dict[tuple[int, str], MappedLoan] = {}
    for loan in sorted(mapped.loans, key=lambda item: (item.start_date, item.source_loan_id)):
        first_loan_by_client.setdefault(loan.client_id, loan)
        first_loan_by_pair.setdefault((loan.client_id, loan.creditor), loan)

    for client_id, loan in sorted(first_loan_by_client.items()):
        sender = member_of.get(loan.creditor, loan.creditor)
        commitment = commitment_of(subjects[client_id], subject_ids[client_id])
        payload = {"subject_id": subject_ids[client_id], "commitment": commitment}
        event = _event(loan.start_date, sender, "subject.register", f"subject.register:hc-{client_id}", payload)
        keyed.append(((loan.start_date, _PHASE_SUBJECT, client_id, ""), event))

    for (client_id, creditor), loan in sorted(first_loan_by_pair.items()):
        grantee = member_of.get(creditor, creditor)
        for purpose in CONSENT_PURPOSES:
            consent_id = f"hc-{client_id}-{creditor}-{purpose}"
            payload = {
                "consent_id": consent_id,
                "subject_id": subject_ids[client_id],
                "grantee": grantee,
                "purpose": purpose,
                "expires_on": expires_on,
                "evidence": consent_evidence(consent_id, subject_ids[client_id]),
            }
            event = _event(loan.start_date, grantee, "consent.grant", f"consent.grant:{consent_id}", payload)
            keyed.append(((loan.start_date, _PHASE_CONSENT, client_id, consent_id), event))

    for loan in mapped.loans:
        keyed.append(_loan_event(loan, subject_ids[loan.client_id], member_of))
        keyed.extend(_repayment_events(loan, member_of))

    keyed.sort(key=lambda item: item[0])
    events = tuple(event for _, event in keyed)
    dates = tuple(sorted({event["date"] for event in events}))
    return Timeline(events=events, dates=dates)


def loan_register_payload(loan: MappedLoan, subject_id: str) -> dict[str, Any]:
    return {
        "loan_id": loan.loan_id,
        "subject_id": subject_id,
        "principal": loan.principal,
        "currency": CURRENCY,
        "annual_rate_bp": loan.annual_rate_bp,
        "start_date": loan.start_date,
        "schedule": [
            {
                "number": instalment.number,
                "due_date": instalment.due_date,
                "principal": instalment.principal,
                "interest": instalment.interest,
            }
            for instalment in loan.schedule
        ],
    }


def _event(date: str, sender: str, tx_type: str, nonce: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"date": date, "sender": sender, "type": tx_type, "nonce": nonce, "payload": payload}


def _loan_event(loan: MappedLoan, subject_id: str, member_of: dict[str, str]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    sender = member_of.get(loan.creditor, loan.creditor)
    payload = loan_register_payload(loan, subject_id)
    event = _event(loan.start_date, sender, "loan.register", f"loan.register:{loan.loan_id}", payload)
    return (loan.start_date, _PHASE_LOAN, loan.source_loan_id, ""), event


def _repayment_events(loan: MappedLoan, member_of: dict[str, str]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    sender = member_of.get(loan.creditor, loan.creditor)
    result = []
    for order, payment in enumerate(loan.payments):
        payload = {"loan_id": loan.loan_id, "payment_id": payment.payment_id, "amount": payment.amount, "paid_on": payment.paid_on}
        event = _event(payment.paid_on, sender, "repayment.record", f"repayment.record:{payment.payment_id}", payload)
        result.append(((payment.paid_on, _PHASE_REPAYMENT, loan.source_loan_id, f"{order:06d}"), event))
    return result
