"""Consent of data subjects (D1, D4, D10, D11): grant, revoke, expiry, and the lookups other contracts use.

State keys:
  consent/<consent_id>                                        the consent record
  consent_by/<subject_id>/<grantee>/<purpose>/<consent_id>    1 (index for lookups)
  deadline/<date>/consent/<consent_id>                        1 (expiry event on that date)

A consent is active on a date when it was granted on or before it, is not
revoked, and `expires_on` is that date or later. Revoking stops future
processing only: records written under the consent stay (D11).
"""

from __future__ import annotations

from typing import Any, Literal

from node.contracts.context import TxContext, TxRoute, route
from node.contracts.dates import add_days
from node.contracts.erasure import require_not_erased
from node.contracts.errors import fail
from node.contracts.models import DateText, Hex64, Payload, RecordId, ReasonCode
from node.contracts.registry import get_member_or_fail, get_subject_or_fail

Purpose = Literal["credit_query", "assessment", "collection", "data_sharing"]


class ConsentGrantPayload(Payload):
    consent_id: RecordId
    subject_id: Hex64
    grantee: RecordId
    purpose: Purpose
    expires_on: DateText
    evidence: Hex64 | None = None
    written: bool = False


class ConsentRevokePayload(Payload):
    consent_id: RecordId
    subject_id: Hex64
    evidence: Hex64 | None = None
    reason: ReasonCode | None = None
    note_hash: Hex64 | None = None


def consent_status(state: Any, subject_id: str, grantee: str, purpose: str, date: str, written: bool = False) -> str:
    """Return "active", "expired", "revoked" or "none" for the best consent matching the arguments."""
    best = "none"
    rank = {"none": 0, "expired": 1, "revoked": 2, "active": 3}
    for _, consent_id in _consent_ids(state, subject_id, grantee, purpose):
        record = state.get(f"consent/{consent_id}")
        if record["granted_on"] > date or (written and not record["written"]):
            continue
        if record["revoked_on"] is not None and record["revoked_on"] <= date:
            status = "revoked"
        elif record["expires_on"] < date:
            status = "expired"
        else:
            status = "active"
        if rank[status] > rank[best]:
            best = status
    return best


def _consent_ids(state: Any, subject_id: str, grantee: str, purpose: str):
    prefix = f"consent_by/{subject_id}/{grantee}/{purpose}/"
    for key, _ in state.scan(prefix):
        yield key, key[len(prefix):]


def require_consent(state: Any, subject_id: str, grantee: str, purpose: str, date: str, written: bool = False) -> None:
    """Raise consent_required (or written_consent_required) unless an active consent covers the processing."""
    status = consent_status(state, subject_id, grantee, purpose, date, written)
    if status == "active":
        return
    if written and consent_status(state, subject_id, grantee, purpose, date) == "active":
        fail("written_consent_required", subject_id=subject_id, grantee=grantee, purpose=purpose)
    fail("consent_required", subject_id=subject_id, grantee=grantee, purpose=purpose, status=status)


def check_subject_or_evidence(tc: TxContext, subject_id: str, evidence: str | None) -> None:
    """The subject's own key may act directly; a member acting for the subject must attach evidence."""
    if tc.sender.is_member:
        if evidence is None:
            fail("evidence_required", subject_id=subject_id)
        return
    if tc.sender.subject_id != subject_id:
        fail("not_authorized", subject_id=subject_id, reason="a subject may act only on its own records")


def grant_consent(tc: TxContext, payload: ConsentGrantPayload) -> None:
    if tc.state.get(f"consent/{payload.consent_id}") is not None:
        fail("duplicate_id", consent_id=payload.consent_id)
    get_subject_or_fail(tc.state, payload.subject_id)
    get_member_or_fail(tc.state, payload.grantee)
    check_subject_or_evidence(tc, payload.subject_id, payload.evidence)
    require_not_erased(tc.state, payload.subject_id)
    if payload.expires_on < tc.today:
        fail("invalid_date", expires_on=payload.expires_on, reason="expires before today")
    record = payload.model_dump()
    record.update({"granted_on": tc.today, "granted_by": tc.sender.member_id or "subject", "revoked_on": None, "revoke_reason": None})
    tc.state.put(f"consent/{payload.consent_id}", record)
    tc.state.put(f"consent_by/{payload.subject_id}/{payload.grantee}/{payload.purpose}/{payload.consent_id}", 1)
    tc.state.put(f"deadline/{add_days(payload.expires_on, 1)}/consent/{payload.consent_id}", 1)
    tc.emit("consent.granted", {"consent_id": payload.consent_id, "subject_id": payload.subject_id, "purpose": payload.purpose}, (payload.grantee,))


def revoke_consent(tc: TxContext, payload: ConsentRevokePayload) -> None:
    record = tc.state.get(f"consent/{payload.consent_id}")
    if record is None or record["subject_id"] != payload.subject_id:
        fail("not_found", consent_id=payload.consent_id)
    check_subject_or_evidence(tc, payload.subject_id, payload.evidence)
    if record["revoked_on"] is not None or record["expires_on"] < tc.today:
        fail("consent_inactive", consent_id=payload.consent_id)
    record["revoked_on"] = tc.today
    record["revoke_reason"] = payload.reason
    record["revoke_note_hash"] = payload.note_hash
    tc.state.put(f"consent/{payload.consent_id}", record)
    tc.emit("consent.revoked", {"consent_id": payload.consent_id, "subject_id": payload.subject_id}, (record["grantee"],))


def expire_consent(state: Any, consent_id: str, today: str) -> list:
    from node.execution import Event

    record = state.get(f"consent/{consent_id}")
    if record is None or record["revoked_on"] is not None:
        return []
    return [Event("consent.expired", {"consent_id": consent_id, "subject_id": record["subject_id"]}, (record["grantee"],))]


SUBJECT_MEMBER_ROLES = ("bank", "credit_agency", "collector", "regulator")

ROUTES: dict[str, TxRoute] = {
    "consent.grant": route(ConsentGrantPayload, grant_consent, SUBJECT_MEMBER_ROLES, subject_allowed=True),
    "consent.revoke": route(ConsentRevokePayload, revoke_consent, SUBJECT_MEMBER_ROLES, subject_allowed=True),
}
