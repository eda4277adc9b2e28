"""Field types shared by the payload models.

Payload models are strict (no type coercion) and reject unknown fields, so a
client learns of a misspelt field instead of having it ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from node.contracts.errors import fail

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
HEX64_PATTERN = r"^[0-9a-f]{64}$"
MONEY_MAX_FEN = 10**15  # ten trillion yuan: far above any single loan, far below int64


def _check_date(text: str) -> str:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid calendar date") from None
    return text


RecordId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Hex64 = Annotated[str, StringConstraints(pattern=HEX64_PATTERN)]
DateText = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_check_date)]
Fen = Annotated[int, Field(ge=0, le=MONEY_MAX_FEN)]
PositiveFen = Annotated[int, Field(ge=1, le=MONEY_MAX_FEN)]
# Why an action was taken. Free text could carry names, phone numbers or
# addresses onto every node, so the chain takes one of these codes and, where
# the sender keeps a written explanation off chain, its hash in `note_hash`.
REASON_CODES = (
    # General.
    "other",
    "data_error",
    "duplicate_record",
    "subject_request",
    "regulator_order",
    "court_order",
    # Members.
    "complaint_upheld",
    "audit_finding",
    "licence_withdrawn",
    "rule_violation",
    "issue_resolved",
    # Loans and repayments.
    "payment_bounced",
    "booking_error",
    "late_payment",
    "collection_cost",
    "hardship",
    "uncollectable",
    "bankruptcy",
    "settlement_agreed",
    # Cases and mandates.
    "contract_ended",
    "agency_performance",
    "legal_action",
    "case_returned",
    "debt_recalled",
    # Disputes and reviews.
    "amount_wrong",
    "not_my_loan",
    "already_paid",
    "identity_theft",
    "data_missing",
    "score_unexplained",
    # Consent and governance.
    "consent_withdrawn",
    "purpose_achieved",
    "policy_change",
    "membership_change",
    "validator_change",
)
ReasonCode = Literal[REASON_CODES]  # type: ignore[valid-type]
BasisPoints = Annotated[int, Field(ge=0, le=100_000)]
UnixMs = Annotated[int, Field(ge=0, le=2**62)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def parse_payload(model: type[Payload], payload: Any) -> Payload:
    """Validate a payload dict; raise invalid_payload with the field errors (location, type, message)."""
    if not isinstance(payload, dict):
        fail("invalid_payload", errors=[{"loc": "", "type": "dict_type", "msg": "payload must be an object"}])
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(part) for part in error["loc"]), "type": error["type"], "msg": error["msg"]}
            for error in exc.errors(include_url=False)[:20]
        ]
        fail("invalid_payload", errors=errors)
