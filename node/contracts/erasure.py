"""Erasure requests (D13, PIPL 47): `subject.erase` records on chain that a subject's off-chain data is
erased or frozen, so that every node destroys or freezes its own copy when it executes the event.

State keys:
  erasure/<erasure_id>                          the request: subject, mode, retention date, reason code, sender, date
  subject_erasure/<subject_id>                  the subject's current marker: state ("erased" or "frozen"),
                                                erasure_id, since, retain_until, reason, at_ms
  deadline/<date>/erasure_expire/<subject_id>   1 (a frozen subject is erased on the day after `retain_until`)

No key written here contains personal data. `reason` is a code from a fixed list,
not free text, because free text on chain could carry a name or a phone number.

Who may send it, and why:
- the subject's own key, for itself: the person exercises the right to deletion;
- the regulator, for any subject: it enforces deletion and orders retention holds;
- a member that registered the subject or is the creditor of one of its loans:
  it is a handler of the subject's data and must delete it when the purpose
  ends or the subject asks at its counter.

While the subject has an open loan, the creditor's retention duty applies, so
`erase` is rejected with `retention_applies` and the sender must `freeze` with
a `retain_until` date. Only the regulator may erase over an open loan or before
a freeze ends, for example after a court lifts a hold.
"""

from __future__ import annotations

from typing import Any, Literal

from node.contracts.context import TxContext, TxRoute, route
from node.contracts.dates import add_days
from node.contracts.errors import fail
from node.contracts.models import DateText, Hex64, Payload, RecordId
from node.contracts.registry import get_subject_or_fail
from node.execution import Event

STATE_ERASED = "erased"
STATE_FROZEN = "frozen"
EVENT_ERASED = "subject.erased"
EVENT_FROZEN = "subject.frozen"
DEADLINE_KIND = "erasure_expire"
MEMBER_ROLES = ("bank", "credit_agency", "collector", "regulator")

# PIPL 47 grounds for deletion, plus the retention hold that makes a freeze.
ErasureReason = Literal[
    "subject_request",
    "purpose_achieved",
    "consent_withdrawn",
    "service_ended",
    "retention_ended",
    "unlawful_processing",
    "regulator_order",
    "retention_hold",
]


class SubjectErasePayload(Payload):
    erasure_id: RecordId
    subject_id: Hex64
    mode: Literal["erase", "freeze"]
    retain_until: DateText | None = None
    reason: ErasureReason


def erasure_marker(state: Any, subject_id: str) -> dict[str, Any] | None:
    """Return the subject's erasure marker, or None when no erasure or freeze was recorded."""
    return state.get(f"subject_erasure/{subject_id}")


def require_not_erased(state: Any, subject_id: str) -> None:
    """Reject new processing of an erased (`subject_erased`) or frozen (`subject_frozen`) subject."""
    marker = erasure_marker(state, subject_id)
    if marker is None:
        return
    if marker["state"] == STATE_ERASED:
        fail("subject_erased", subject_id=subject_id, erasure_id=marker["erasure_id"])
    fail("subject_frozen", subject_id=subject_id, erasure_id=marker["erasure_id"], retain_until=marker["retain_until"])


def _holds_loan_with(state: Any, subject_id: str, member_id: str) -> bool:
    for _, creditor in state.scan(f"loan_by_subject/{subject_id}/"):
        if creditor == member_id:
            return True
    return False


def _open_loans(state: Any, subject_id: str) -> list[str]:
    open_ids = []
    for key, _ in state.scan(f"loan_by_subject/{subject_id}/"):
        loan_id = key.rsplit("/", 1)[1]
        loan = state.get(f"loan/{loan_id}")
        if loan is not None and loan["status"] == "open":
            open_ids.append(loan_id)
    return open_ids


def _check_sender(tc: TxContext, subject: dict[str, Any]) -> None:
    subject_id = subject["subject_id"]
    if not tc.sender.is_member:
        if tc.sender.subject_id != subject_id:
            fail("not_authorized", subject_id=subject_id, reason="a subject may request erasure only of its own data")
        return
    if tc.sender.role == "regulator":
        return
    member_id = tc.sender.member_id
    if subject["registered_by"] != member_id and not _holds_loan_with(tc.state, subject_id, member_id):
        fail("not_authorized", subject_id=subject_id, reason="the member neither registered the subject nor holds a loan with it")


def _check_transition(tc: TxContext, payload: SubjectErasePayload, marker: dict[str, Any] | None) -> None:
    """Check the mode and date against the subject's current marker and loans."""
    regulator = tc.sender.role == "regulator"
    if payload.mode == "freeze":
        if payload.retain_until is None or payload.retain_until <= tc.today:
            fail("invalid_date", retain_until=payload.retain_until, reason="a freeze needs retain_until after today")
    elif payload.retain_until is not None:
        fail("invalid_payload", errors=[{"loc": "retain_until", "type": "extra", "msg": "only a freeze has retain_until"}])

    if marker is not None and marker["state"] == STATE_ERASED:
        fail("subject_erased", subject_id=payload.subject_id, erasure_id=marker["erasure_id"])
    if marker is not None and marker["state"] == STATE_FROZEN:
        # A later freeze extends the hold. Only the regulator's erasure ends it early.
        extends = payload.mode == "freeze" and payload.retain_until > marker["retain_until"]
        if not extends and not (payload.mode == "erase" and regulator):
            fail("subject_frozen", subject_id=payload.subject_id, erasure_id=marker["erasure_id"], retain_until=marker["retain_until"])
    if payload.mode == "erase" and not regulator:
        open_loans = _open_loans(tc.state, payload.subject_id)
        if open_loans:
            fail("retention_applies", subject_id=payload.subject_id, open_loans=open_loans)


def erase_subject(tc: TxContext, payload: SubjectErasePayload) -> None:
    if tc.state.get(f"erasure/{payload.erasure_id}") is not None:
        fail("duplicate_id", erasure_id=payload.erasure_id)
    subject = get_subject_or_fail(tc.state, payload.subject_id)
    _check_sender(tc, subject)
    _check_transition(tc, payload, erasure_marker(tc.state, payload.subject_id))

    requested_by = tc.sender.member_id or "subject"
    tc.state.put(
        f"erasure/{payload.erasure_id}",
        {
            "erasure_id": payload.erasure_id,
            "subject_id": payload.subject_id,
            "mode": payload.mode,
            "retain_until": payload.retain_until,
            "reason": payload.reason,
            "requested_by": requested_by,
            "recorded_on": tc.today,
            "at": tc.block.time_ms,
        },
    )
    new_state = STATE_ERASED if payload.mode == "erase" else STATE_FROZEN
    marker = new_marker(new_state, payload.erasure_id, tc.today, payload.retain_until, payload.reason, tc.block.time_ms)
    tc.state.put(f"subject_erasure/{payload.subject_id}", marker)
    if payload.mode == "freeze":
        tc.state.put(f"deadline/{add_days(payload.retain_until, 1)}/{DEADLINE_KIND}/{payload.subject_id}", 1)
    # No member list: the event concerns every member, so every node applies it to its own store.
    tc.emit(event_type_of(marker), event_data(payload.subject_id, marker))


def new_marker(state: str, erasure_id: str, since: str, retain_until: str | None, reason: str, at_ms: int) -> dict[str, Any]:
    """Return a `subject_erasure/<subject_id>` marker. `at_ms` is the time of the block that sets it."""
    return {"state": state, "erasure_id": erasure_id, "since": since, "retain_until": retain_until, "reason": reason, "at_ms": at_ms}


def event_type_of(marker: dict[str, Any]) -> str:
    return EVENT_ERASED if marker["state"] == STATE_ERASED else EVENT_FROZEN


def event_data(subject_id: str, marker: dict[str, Any]) -> dict[str, Any]:
    """Return the data of the `subject.erased` or `subject.frozen` event for a marker."""
    return {
        "erasure_id": marker["erasure_id"],
        "subject_id": subject_id,
        "retain_until": marker["retain_until"],
        "reason": marker["reason"],
        "at_ms": marker["at_ms"],
    }


def expire_freeze(state: Any, subject_id: str, today: str, time_ms: int) -> list[Event]:
    """Erase a frozen subject whose retention date has passed, unless a later freeze extended the date."""
    marker = erasure_marker(state, subject_id)
    if marker is None or marker["state"] != STATE_FROZEN or marker["retain_until"] >= today:
        return []
    marker = new_marker(STATE_ERASED, marker["erasure_id"], today, None, "retention_ended", time_ms)
    state.put(f"subject_erasure/{subject_id}", marker)
    return [Event(EVENT_ERASED, event_data(subject_id, marker))]


ROUTES: dict[str, TxRoute] = {
    "subject.erase": route(SubjectErasePayload, erase_subject, MEMBER_ROLES, subject_allowed=True),
}
