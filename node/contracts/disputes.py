"""Disputes on loan records (D9, C13) and complaints about agencies (C14).

State keys:
  dispute/<dispute_id>                    the dispute
  dispute_open/<loan_id>/<dispute_id>     1 while unresolved; it pauses collection and negative reporting
  dispute_by_loan/<loan_id>/<dispute_id>  1 (every dispute, for credit reports)
  complaint/<complaint_id>                the complaint
  deadline/<date>/dispute/<dispute_id>    escalation to the regulator when unresolved after N days
  deadline/<date>/complaint/<id>          overdue notice when unanswered after N days
"""

from __future__ import annotations

from typing import Any, Literal

from node.contracts.context import TxContext, TxRoute, route
from node.contracts.dates import add_days
from node.contracts.errors import fail
from node.contracts.models import Hex64, Payload, RecordId, ReasonCode
from node.contracts.registry import active_members, get_member_or_fail
from node.execution import Event

MEMBER_ROLES = ("bank", "credit_agency", "collector", "regulator")


class DisputeOpenPayload(Payload):
    dispute_id: RecordId
    loan_id: RecordId
    reason: ReasonCode
    note_hash: Hex64 | None = None
    written: bool = False
    evidence: Hex64 | None = None


class DisputeResolvePayload(Payload):
    dispute_id: RecordId
    resolution: Literal["corrected", "confirmed", "undetermined"]
    note_hash: Hex64 | None = None


class ComplaintFilePayload(Payload):
    complaint_id: RecordId
    agency: RecordId
    category: Literal["harassment", "contact_hours", "third_party_disclosure", "excessive_contact", "data_error", "other"]
    statement_hash: Hex64
    subject_id: Hex64 | None = None


class ComplaintAnswerPayload(Payload):
    complaint_id: RecordId
    finding: Literal["upheld", "dismissed"]
    answer_hash: Hex64


def open_disputes(state: Any, loan_id: str) -> list[dict[str, Any]]:
    prefix = f"dispute_open/{loan_id}/"
    return [state.get(f"dispute/{key[len(prefix):]}") for key, _ in state.scan(prefix)]


def collection_paused(state: Any, loan: dict[str, Any], params: dict[str, Any]) -> bool:
    """C13 / C15: an open dispute pauses collection; under the "written" mode only a written one does."""
    disputes = open_disputes(state, loan["loan_id"])
    if params["dispute_pause_mode"] == "written":
        return any(dispute["written"] for dispute in disputes)
    return bool(disputes)


def require_no_open_dispute(state: Any, loan: dict[str, Any], params: dict[str, Any]) -> None:
    if collection_paused(state, loan, params):
        fail("dispute_open", loan_id=loan["loan_id"])


def regulators(state: Any) -> list[str]:
    return [member["member_id"] for member in active_members(state) if member["role"] == "regulator"]


def open_dispute(tc: TxContext, payload: DisputeOpenPayload) -> None:
    if tc.state.get(f"dispute/{payload.dispute_id}") is not None:
        fail("duplicate_id", dispute_id=payload.dispute_id)
    loan = tc.state.get(f"loan/{payload.loan_id}")
    if loan is None:
        fail("not_found", loan_id=payload.loan_id)
    if not tc.sender.is_member and tc.sender.subject_id != loan["subject_id"]:
        fail("not_authorized", loan_id=payload.loan_id, reason="a subject may dispute only its own records")
    deadline = add_days(tc.today, tc.params["dispute_resolve_days"])
    dispute = payload.model_dump()
    dispute.update(
        {
            "subject_id": loan["subject_id"],
            "creditor": loan["creditor"],
            "opened_by": tc.sender.member_id or "subject",
            "opened_on": tc.today,
            "resolve_by": deadline,
            "status": "open",
            "escalated_on": None,
            "resolution": None,
            "resolved_on": None,
            "resolved_by": None,
            "note_hash": None,
        }
    )
    tc.state.put(f"dispute/{payload.dispute_id}", dispute)
    tc.state.put(f"dispute_open/{payload.loan_id}/{payload.dispute_id}", 1)
    tc.state.put(f"dispute_by_loan/{payload.loan_id}/{payload.dispute_id}", 1)
    tc.state.put(f"deadline/{add_days(deadline, 1)}/dispute/{payload.dispute_id}", 1)
    concerned = [loan["creditor"]]
    if loan["case_id"]:
        agency = tc.state.get(f"case/{loan['case_id']}")["agency"]
        concerned += [agency] if agency else []
    tc.emit("dispute.opened", {"dispute_id": payload.dispute_id, "loan_id": payload.loan_id, "resolve_by": deadline}, concerned)


def resolve_dispute(tc: TxContext, payload: DisputeResolvePayload) -> None:
    """D9: the creditor resolves within the deadline; after escalation only the regulator may."""
    from node.contracts.loans import save_loan

    dispute = tc.state.get(f"dispute/{payload.dispute_id}")
    if dispute is None:
        fail("not_found", dispute_id=payload.dispute_id)
    if dispute["status"] == "resolved":
        fail("dispute_closed", dispute_id=payload.dispute_id)
    allowed = tc.sender.role == "regulator" or (tc.sender.member_id == dispute["creditor"] and dispute["status"] == "open")
    if not allowed:
        fail("not_authorized", dispute_id=payload.dispute_id, status=dispute["status"])
    dispute.update({"status": "resolved", "resolution": payload.resolution, "resolved_on": tc.today, "resolved_by": tc.sender.member_id, "note_hash": payload.note_hash})
    tc.state.put(f"dispute/{payload.dispute_id}", dispute)
    tc.state.delete(f"dispute_open/{dispute['loan_id']}/{payload.dispute_id}")
    # Collection may resume: recompute the loan's case and next event now.
    save_loan(tc, tc.state.get(f"loan/{dispute['loan_id']}"))
    tc.emit("dispute.resolved", {"dispute_id": payload.dispute_id, "resolution": payload.resolution}, (dispute["creditor"],))


def escalate_dispute(state: Any, dispute_id: str, today: str) -> list[Event]:
    dispute = state.get(f"dispute/{dispute_id}")
    if dispute["status"] != "open":
        return []
    dispute["status"] = "escalated"
    dispute["escalated_on"] = today
    state.put(f"dispute/{dispute_id}", dispute)
    return [Event("dispute.escalated", {"dispute_id": dispute_id, "loan_id": dispute["loan_id"]}, tuple([dispute["creditor"], *regulators(state)]))]


def file_complaint(tc: TxContext, payload: ComplaintFilePayload) -> None:
    if tc.state.get(f"complaint/{payload.complaint_id}") is not None:
        fail("duplicate_id", complaint_id=payload.complaint_id)
    if get_member_or_fail(tc.state, payload.agency)["role"] not in ("collector", "credit_agency"):
        fail("not_collector", agency=payload.agency)
    subject_id = payload.subject_id
    if not tc.sender.is_member:
        if subject_id not in (None, tc.sender.subject_id):
            fail("not_authorized", subject_id=subject_id)
        subject_id = tc.sender.subject_id
    deadline = add_days(tc.today, tc.params["complaint_answer_days"])
    complaint = payload.model_dump()
    complaint.update({"subject_id": subject_id, "filed_by": tc.sender.member_id or "subject", "filed_on": tc.today, "answer_by": deadline, "status": "open", "finding": None, "answer_hash": None, "answered_on": None, "late": False})
    tc.state.put(f"complaint/{payload.complaint_id}", complaint)
    tc.state.put(f"deadline/{add_days(deadline, 1)}/complaint/{payload.complaint_id}", 1)
    tc.emit("complaint.filed", {"complaint_id": payload.complaint_id, "agency": payload.agency, "answer_by": deadline}, tuple([payload.agency, *regulators(tc.state)]))


def answer_complaint(tc: TxContext, payload: ComplaintAnswerPayload) -> None:
    complaint = tc.state.get(f"complaint/{payload.complaint_id}")
    if complaint is None:
        fail("not_found", complaint_id=payload.complaint_id)
    if complaint["status"] == "answered":
        fail("complaint_closed", complaint_id=payload.complaint_id)
    complaint.update({"status": "answered", "finding": payload.finding, "answer_hash": payload.answer_hash, "answered_on": tc.today, "late": tc.today > complaint["answer_by"]})
    tc.state.put(f"complaint/{payload.complaint_id}", complaint)
    tc.emit("complaint.answered", {"complaint_id": payload.complaint_id, "finding": payload.finding}, (complaint["agency"],))


def flag_complaint_overdue(state: Any, complaint_id: str) -> list[Event]:
    complaint = state.get(f"complaint/{complaint_id}")
    if complaint["status"] != "open":
        return []
    complaint["status"] = "overdue"
    state.put(f"complaint/{complaint_id}", complaint)
    return [Event("complaint.overdue", {"complaint_id": complaint_id, "answer_by": complaint["answer_by"]}, tuple(regulators(state)))]


ROUTES: dict[str, TxRoute] = {
    "dispute.open": route(DisputeOpenPayload, open_dispute, MEMBER_ROLES, subject_allowed=True),
    "dispute.resolve": route(DisputeResolvePayload, resolve_dispute, ("bank", "regulator")),
    "complaint.file": route(ComplaintFilePayload, file_complaint, MEMBER_ROLES, subject_allowed=True),
    "complaint.answer": route(ComplaintAnswerPayload, answer_complaint, ("regulator",)),
}
